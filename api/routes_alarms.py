"""Alarm routes: the list and each alarm's journal (read), acknowledge/shelve/out of service (act), audit (audit).

Actions run on the engine's thread through the runtime, so the lifecycle's
rules (a reason to shelve, nothing to acknowledge on a normal alarm) are
enforced in one place: a refusal comes back as 409 with the reason. Every
action is written to the audit trail with who, from where and why.
"""

# No `from __future__ import annotations`: FastAPI must see the route annotations, which name local
# dependency aliases, as objects.
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from alarms.engine import AlarmEngine
from alarms.lifecycle import ActionRefused
from alarms.model import AlarmEvent, Priority

from .history import parse_time
from .live import alarm_event_json
from .model import Principal
from .services import AlarmAccess, ApiServices
from .views import alarm_view

Require = Callable[[str], Any]


class Acknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=1000, description="What was done or seen.")


class Shelve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why (ISA-18.2: every shelved alarm is explained).")
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="How long; at most 7 days.")


class OutOfService(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def build_alarm_router(services: ApiServices, require: Require) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    reader = Annotated[Principal, Depends(require("read"))]
    actor = Annotated[Principal, Depends(require("act"))]
    auditor = Annotated[Principal, Depends(require("audit"))]

    def runtime() -> AlarmAccess:
        if services.alarms is None:
            raise HTTPException(503, "the alarm engine is not running")
        return services.alarms

    @router.get("/alarms", tags=["alarms"])
    def list_alarms(_: reader, state: Literal["active", "past"] = "active", priority: Priority | None = None,
                    room: str | None = None,
                    since: Annotated[str | None, Query(description="ISO 8601 with zone (past alarms)")] = None,
                    until: Annotated[str | None, Query(description="ISO 8601 with zone (past alarms)")] = None,
                    limit: Annotated[int, Query(ge=1, le=10000)] = 500) -> list[dict[str, Any]]:
        """Active alarms (most urgent first) or past activations from the journal, filtered."""
        alarms = runtime()
        if state == "active":
            def read(engine: AlarmEngine, _now: float) -> list[dict[str, Any]]:
                return [alarm_view(engine.definition(s.key), s) for s in engine.not_normal()]
            rows = alarms.call(read)
        else:
            try:
                start = parse_time(since) if since else services.now() - 7 * 86400
                end = parse_time(until) if until else None
            except ValueError as error:
                raise HTTPException(422, str(error)) from None
            events = alarms.journal.events(since=start, until=end, limit=100_000)
            rows = [alarm_event_json(e) for e in events if e.kind.value in ("raised", "reactivated")]
        rows = [r for r in rows if (priority is None or r["priority"] == priority.value)
                and (room is None or r["room"] == room)]
        return rows[:limit]

    @router.get("/alarms/{target}", tags=["alarms"])
    def get_alarm(target: str, _: reader) -> dict[str, Any]:
        """One alarm (key or ticket `123`) with its current state and its whole journal."""
        alarms = runtime()

        def read(engine: AlarmEngine, _now: float) -> dict[str, Any]:
            key = engine.resolve(target)
            return alarm_view(engine.definition(key), engine.status[key])
        try:
            view = alarms.call(read)
        except ActionRefused:
            raise HTTPException(404, f"no alarm {target!r}") from None
        view["journal"] = [alarm_event_json(e) for e in alarms.journal.events(alarm=view["key"], limit=10_000)]
        return view

    def act(target: str, principal: Principal, request: Request, action: str, reason: str,
            run: Callable[[AlarmEngine, str, float], list[AlarmEvent]]) -> dict[str, Any]:
        alarms = runtime()

        def do(engine: AlarmEngine, now: float) -> list[AlarmEvent]:
            return run(engine, engine.resolve(target), now)
        try:
            events = alarms.call(do)
        except ActionRefused as refusal:
            status = 404 if str(refusal).startswith("no alarm") else 409
            raise HTTPException(status, str(refusal)) from None
        if services.audit is not None:
            services.audit.append(principal.user, f"alarm.{action}", events[0].alarm if events else target,
                                  detail={"tickets": sorted({e.occurrence for e in events})}, reason=reason,
                                  remote=request.client.host if request.client else "")
        return {"events": [alarm_event_json(e) for e in events]}

    @router.post("/alarms/{target}/acknowledge", tags=["alarms"])
    def acknowledge(target: str, body: Acknowledge, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "acknowledge", body.comment,
                   lambda e, key, now: e.acknowledge(key, principal.user, body.comment, now))

    @router.post("/alarms/{target}/shelve", tags=["alarms"])
    def shelve(target: str, body: Shelve, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "shelve", body.reason,
                   lambda e, key, now: e.shelve(key, principal.user, body.reason, now + body.minutes * 60, now))

    @router.post("/alarms/{target}/unshelve", tags=["alarms"])
    def unshelve(target: str, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "unshelve", "",
                   lambda e, key, now: e.unshelve(key, principal.user, now))

    @router.post("/alarms/{target}/out-of-service", tags=["alarms"])
    def out_of_service(target: str, body: OutOfService, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "out_of_service", body.reason,
                   lambda e, key, now: e.set_out_of_service(key, True, principal.user, body.reason, now))

    @router.post("/alarms/{target}/in-service", tags=["alarms"])
    def in_service(target: str, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "in_service", "",
                   lambda e, key, now: e.set_out_of_service(key, False, principal.user, "", now))

    @router.get("/alarm-performance", tags=["alarms"])
    def performance(_: reader) -> dict[str, Any]:
        """ISA-18.2 figures: rate per 10 minutes, floods, chattering, stale alarms, priority distribution."""
        alarms = runtime()
        statuses = alarms.call(lambda engine, _now: list(engine.status.values()))
        return dict(alarms.performance.figures(services.now(), statuses))

    @router.get("/audit", tags=["audit"])
    def audit(_: auditor, since: str | None = None, action: str | None = None,
              limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
        """The audit trail (inspector, admin) and whether its hash chain is intact."""
        trail = services.audit
        if trail is None:
            raise HTTPException(503, "no audit trail configured")
        try:
            start = parse_time(since) if since else None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        rows = trail.rows(since=start, action=action, limit=limit)  # type: ignore[attr-defined]
        verification = trail.verify()  # type: ignore[attr-defined]
        return {"verification": {"ok": verification.ok, "rows": verification.rows,
                                 "first_broken": verification.first_broken, "reason": verification.reason},
                "rows": [row.__dict__ if hasattr(row, "__dict__") else _slots(row) for row in rows]}

    return router


def _slots(row: object) -> dict[str, Any]:
    return {name: getattr(row, name) for name in getattr(row, "__slots__", ())}
