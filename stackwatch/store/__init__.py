"""InfluxDB line protocol, the HTTP client, the durable spool and the writer that drains it."""
