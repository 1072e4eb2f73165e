"""The stack-room dashboard (static files in `web/`, served by the API at `/`) and Grafana provisioning."""

from pathlib import Path

WEB = Path(__file__).resolve().parent / "web"
