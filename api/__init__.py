"""The HTTP API (FastAPI): acknowledge links and reply webhooks now; the full API with issue 5."""
