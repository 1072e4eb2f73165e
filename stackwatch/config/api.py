"""The `api:` section: where the HTTP API listens (acknowledge links, reply webhooks; the dashboard later)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from .base import Duration, StrictModel


class ApiConfig(StrictModel):
    enabled: bool = Field(True, description="Serve the HTTP API from `stackwatch run`.")
    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to reach it from phones on the network.")
    port: int = Field(8080, ge=1, le=65535)
    inbound_token: SecretStr | None = Field(
        None, description="Shared secret an SMS or mail gateway must send (header X-Stackwatch-Token or ?token=) "
        "with replies; unset: replies are accepted on the PIN alone.")
    max_body_bytes: int = Field(65536, ge=1024, description="Larger request bodies are refused (413).")
    token_ttl: Duration = Field(43200.0, description="How long a login token works (12h).")
    login_max_failures: int = Field(5, ge=1, le=100, description="Failed logins before the account is locked.")
    login_lockout: Duration = Field(900.0, description="How long a lock-out lasts (15m).")
    users: str = Field("users.db", description="SQLite file of users, tokens and API keys; relative to `state_dir`.")
    audit: str = Field("audit.db", description="The hash-chained audit trail; relative to `state_dir`.")
