"""The `api:` section: where the HTTP API listens (acknowledge links, reply webhooks; the dashboard later)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from .base import StrictModel


class ApiConfig(StrictModel):
    enabled: bool = Field(True, description="Serve the HTTP API from `stackwatch run`.")
    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to reach it from phones on the network.")
    port: int = Field(8080, ge=1, le=65535)
    inbound_token: SecretStr | None = Field(
        None, description="Shared secret an SMS or mail gateway must send (header X-Stackwatch-Token or ?token=) "
        "with replies; unset: replies are accepted on the PIN alone.")
    max_body_bytes: int = Field(65536, ge=1024, description="Larger request bodies are refused (413).")
