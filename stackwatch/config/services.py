"""Where readings go (InfluxDB, spool) and where MQTT readings come from (the broker)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from .base import Duration, StrictModel


class InfluxConfig(StrictModel):
    """The InfluxDB v1 HTTP API: `/write` and `/query`, also served by InfluxDB 2.x and 3.x."""

    url: str = Field("http://127.0.0.1:8086", description="Base URL of the InfluxDB HTTP API.")
    database: str = Field("stackwatch", min_length=1, description="Database (1.x), or bucket mapped by DBRP (2.x/3.x).")
    retention_policy: str | None = Field(None, description="Retention policy to write to; unset: the database default.")
    username: str | None = Field(None, description="1.x user (basic auth). May come from ${ENV}.")
    password: SecretStr | None = None
    token: SecretStr | None = Field(None, description="2.x/3.x token, sent as `Authorization: Token ...`.")
    create_database: bool = Field(True, description="Run CREATE DATABASE at start (1.x; harmless if it exists).")
    timeout: Duration = Field(10.0, description="HTTP timeout per request.")
    batch_lines: int = Field(5000, ge=1, le=100_000, description="Lines per write request at most.")
    flush_interval: Duration = Field(1.0, description="Longest a reading waits in the spool before a write is tried.")
    retry_max: Duration = Field(30.0, description="Longest back-off between write attempts while InfluxDB is down.")

    @model_validator(mode="after")
    def _one_auth(self) -> InfluxConfig:
        if self.token is not None and self.username is not None:
            raise ValueError("give either `token` or `username`/`password`, not both")
        return self


class SpoolConfig(StrictModel):
    path: str = Field("spool.db", description="SQLite file; relative paths are under `state_dir`.")
    fsync: bool = Field(
        False,
        description="fsync every spool commit (survives power loss, slower). "
        "Off still survives a killed process: SQLite WAL with synchronous=NORMAL.",
    )
    backlog_warning: int = Field(100_000, ge=1, description="Spooled readings above which /readyz reports a backlog.")


class StorageConfig(StrictModel):
    influxdb: InfluxConfig = Field(default_factory=InfluxConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)


class MqttBroker(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: str | None = None
    client_id: str | None = Field(
        None, description="Fixed client id for the persistent session. Default: stackwatch-<site id>."
    )
    keepalive: int = Field(30, ge=5, le=3600)
    qos: Literal[0, 1] = Field(1, description="Subscription QoS; 1 with a persistent session loses nothing.")
    reconnect_min: Duration = 1.0
    reconnect_max: Duration = 30.0
    max_payload_bytes: int = Field(65536, ge=64, description="Larger payloads are counted as oversized and dropped.")
    ack_batch: int = Field(
        16,
        ge=1,
        le=1000,
        description="Messages spooled per commit before their acknowledgements are sent. "
        "Keep below the broker's max_inflight_messages (mosquitto: 20).",
    )
    receiver: Literal["thread", "process"] = Field(
        "process",
        description="`thread`: payloads are mapped on the MQTT client's thread and readings spooled before the "
        "acknowledgement. `process`: a receiver process of its own commits raw messages to a spool file next "
        "to the reading spool and acknowledges them; the service maps them from there (more messages/s on "
        "several cores; same guarantees).",
    )
