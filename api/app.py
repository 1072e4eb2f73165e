"""The HTTP API: for now what paging needs (acknowledge links and reply webhooks) and liveness.

Issue 5 grows it into the full API; the shape is already the one it keeps: an
app factory that takes its services, handlers that call them and never touch
a database.

Acknowledge links answer GET with a page and act only on POST: chat apps and
mail scanners open links to preview them, and a preview must not acknowledge
a fire alarm.
"""

from __future__ import annotations

import hmac
import html
import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from alarms.notify.acknowledge import Acknowledger, Outcome
from stackwatch.config.api import ApiConfig

Now = Callable[[], float]
_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>stackwatch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:32rem}}
button{{font-size:1.3rem;padding:.6rem 1.2rem}}textarea{{width:100%}}.no{{color:#b00}}.ok{{color:#070}}</style>
</head><body>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(lang="zh", body=body), status_code=status)


def create_app(config: ApiConfig, acknowledger: Acknowledger | None, now: Now = time.time) -> FastAPI:
    app = FastAPI(title="stackwatch", version="0.1.0",
                  description="Monitoring and environmental control for archive stack rooms.")

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_body_bytes):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ack/{token}", response_class=HTMLResponse, tags=["acknowledge"])
    def ack_page(token: str) -> HTMLResponse:
        if acknowledger is None:
            return _page("<p class=no>Paging is not configured.</p>", 404)
        checked = acknowledger.check_link(token, now())
        if not checked.ok:
            return _page(f"<p class=no>{html.escape(checked.text)}</p>", 403)
        return _page(f"""<h1>#{checked.ticket}</h1>
<form method="post"><p>确认告警 / Acknowledge the alarm as <b>{html.escape(checked.person)}</b></p>
<p><textarea name="comment" rows="3" placeholder="备注 / comment"></textarea></p>
<button type="submit">确认 / Acknowledge</button></form>""")

    @app.post("/ack/{token}", response_class=HTMLResponse, tags=["acknowledge"])
    async def ack(token: str, request: Request) -> HTMLResponse:
        if acknowledger is None:
            return _page("<p class=no>Paging is not configured.</p>", 404)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        comment = form.get("comment", [""])[0][:500]
        outcome = acknowledger.by_link(token, now(), comment)
        if outcome.ok:
            return _page(f"<p class=ok>#{outcome.ticket}: {html.escape(outcome.text)}</p>")
        status = 403 if outcome.ticket is None else 409
        return _page(f"<p class=no>{html.escape(outcome.text)}</p>", status)

    def _authorised(request: Request) -> bool:
        if config.inbound_token is None:
            return True
        given = request.headers.get("x-stackwatch-token") or request.query_params.get("token") or ""
        return hmac.compare_digest(given.encode(), config.inbound_token.get_secret_value().encode())

    async def _fields(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError:
                return {}
            return {str(k).lower(): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return {k.lower(): v[0] for k, v in parse_qs(body).items()}

    def _reply(outcome: Outcome) -> JSONResponse:
        return JSONResponse({"ok": outcome.ok, "result": outcome.text, "ticket": outcome.ticket},
                            status_code=200 if outcome.ok else 422)

    @app.post("/api/v1/inbound/sms", tags=["acknowledge"])
    async def inbound_sms(request: Request) -> JSONResponse:
        """An SMS gateway's inbound webhook: `from` and `text` (JSON or form; Twilio's `From`/`Body` too)."""
        if acknowledger is None or not _authorised(request):
            return JSONResponse({"detail": "not accepted"}, status_code=403)
        fields = await _fields(request)
        sender, text = fields.get("from", ""), fields.get("text") or fields.get("body") or fields.get("content", "")
        if not sender or not text:
            return JSONResponse({"detail": "`from` and `text` are required"}, status_code=422)
        return _reply(acknowledger.by_reply("sms", sender, text, now()))

    @app.post("/api/v1/inbound/email", tags=["acknowledge"])
    async def inbound_email(request: Request) -> JSONResponse:
        """An inbound-mail webhook: `from`, `subject`, `text` (the reply's plain body)."""
        if acknowledger is None or not _authorised(request):
            return JSONResponse({"detail": "not accepted"}, status_code=403)
        fields = await _fields(request)
        sender = fields.get("from", "")
        text = f"{fields.get('subject', '')}\n{fields.get('text', '')}".strip()
        if not sender or not text:
            return JSONResponse({"detail": "`from` and `text` or `subject` are required"}, status_code=422)
        return _reply(acknowledger.by_reply("email", sender, _first_lines(text), now()))

    return app


def _first_lines(text: str) -> str:
    """A reply's own words: quoted history below (`> …`, `On … wrote:`) may hold other tickets' numbers."""
    lines = []
    for line in text.splitlines():
        if line.startswith(">") or line.rstrip().endswith(("wrote:", "写道：", "写道:")):
            break
        lines.append(line)
    return "\n".join(lines)
