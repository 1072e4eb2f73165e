"""The HTTP API under /api/v1: state, history, alarms and their actions, live events, health, metrics, users.

An app factory that takes its services (`ApiServices`); handlers call them
and never touch a database. Every route but health, metrics and the
acknowledge links needs a login token or API key, and the permission of its
kind (read, act, audit, admin; see `api.model.PERMISSIONS`).

Acknowledge links answer GET with a page and act only on POST: chat apps and
mail scanners open links to preview them, and a preview must not acknowledge
a fire alarm.
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from alarms.notify.acknowledge import Outcome
from dashboards import WEB
from stackwatch.config.api import ApiConfig

from .metrics import exposition
from .routes import Require, build_router
from .routes_alarms import build_alarm_router
from .routes_reports import build_report_router
from .schemas import Health, InboundReply, Problem, Readiness, documented, errors
from .services import ApiServices, Unavailable

Now = Callable[[], float]
_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>stackwatch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:32rem}}
button{{font-size:1.3rem;padding:.6rem 1.2rem}}textarea{{width:100%}}.no{{color:#b00}}.ok{{color:#070}}</style>
</head><body>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(lang="zh", body=body), status_code=status)


def create_app(config: ApiConfig, services: ApiServices, require: Require,
               extra_routers: tuple[Any, ...] = ()) -> FastAPI:
    app = FastAPI(title="stackwatch", version="0.1.0",
                  description="Monitoring and environmental control for archive stack rooms.")
    acknowledger = services.acknowledger
    now: Now = services.now
    app.include_router(build_router(services, require))
    app.include_router(build_alarm_router(services, require))
    app.include_router(build_report_router(services, require))
    for router in extra_routers:
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        """422 naming each bad parameter, without echoing the whole input back."""
        problems = [{"where": ".".join(str(part) for part in e.get("loc", ())), "problem": e.get("msg", "")}
                    for e in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(Unavailable)
    async def unavailable(_request: Request, error: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _error: Exception) -> JSONResponse:
        """Never a stack trace to the client; the log has it."""
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_body_bytes):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        return await call_next(request)

    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={**documented(Readiness), 503: {
        "model": Readiness, "description": "Not ready: the failing checks say why"}})
    def readyz() -> JSONResponse:
        """Readiness: InfluxDB, the broker, each gateway and the spool backlog; 503 when any is not ok.
        The standalone API (`stackwatch api`) checks what it can see, and says so in `scope`."""
        checks = services.health()
        ready = all(check.get("ok", False) for check in checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        if services.readiness_scope:
            body["scope"] = services.readiness_scope
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(exposition(services.metrics()), media_type="text/plain; version=0.0.4")

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
        outcome = acknowledger.by_link(token, now(), comment, request.client.host if request.client else "")
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

    inbound: dict[str, Any] = {"tags": ["acknowledge"], "responses": {
        **documented(InboundReply), **errors(403, 413), 422: {"model": InboundReply | Problem,
                                                              "description": "Not understood or refused"}}}

    @app.post("/api/v1/inbound/sms", **inbound)
    async def inbound_sms(request: Request) -> JSONResponse:
        """An SMS gateway's inbound webhook: `from` and `text` (JSON or form; Twilio's `From`/`Body` too)."""
        if acknowledger is None or not _authorised(request):
            return JSONResponse({"detail": "not accepted"}, status_code=403)
        fields = await _fields(request)
        sender, text = fields.get("from", ""), fields.get("text") or fields.get("body") or fields.get("content", "")
        if not sender or not text:
            return JSONResponse({"detail": "`from` and `text` are required"}, status_code=422)
        return _reply(acknowledger.by_reply("sms", sender, text, now()))

    @app.post("/api/v1/inbound/email", **inbound)
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

    if WEB.is_dir():  # last: every API route above wins over a file of the same name
        app.mount("/", StaticFiles(directory=WEB, html=True), name="dashboard")
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """FastAPI documents every 422 as its own `HTTPValidationError`; this app answers 422 (and every error) as
    `Problem` (the `invalid` handler above), so the document says that instead."""
    default = {"$ref": "#/components/schemas/HTTPValidationError"}
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = problem.pop("$defs", {})

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI's own, from every route and the app's settings
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update({"Problem": problem, **definitions})
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    answer = operation.get("responses", {}).get("422", {})
                    body = answer.get("content", {}).get("application/json", {})
                    if body.get("schema") == default:
                        body["schema"] = {"$ref": "#/components/schemas/Problem"}
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _first_lines(text: str) -> str:
    """A reply's own words: quoted history below (`> …`, `On … wrote:`) may hold other tickets' numbers."""
    lines = []
    for line in text.splitlines():
        if line.startswith(">") or line.rstrip().endswith(("wrote:", "写道：", "写道:")):
            break
        lines.append(line)
    return "\n".join(lines)
