"""HTTP API (issue 5; not yet built)."""
