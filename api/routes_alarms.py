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

from alarms.lifecycle import ActionRefused
from alarms.model import Priority

from .history import parse_time
from .live import alarm_event_json
from .model import Principal
from .schemas import (
    ActionResult,
    AlarmDetail,
    AlarmEventView,
    AlarmPerformanceView,
    AlarmView,
    AuditPage,
    errors,
)
from .services import AlarmService, AlarmsUnavailable, ApiServices
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
    router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 422))
    reader = Annotated[Principal, Depends(require("read"))]
    actor = Annotated[Principal, Depends(require("act"))]
    auditor = Annotated[Principal, Depends(require("audit"))]

    def alarm_service() -> AlarmService:
        if services.alarm_service is None:
            raise HTTPException(503, "the alarm engine is not running")
        return services.alarm_service

    @router.get("/alarms", tags=["alarms"], response_model=list[AlarmView] | list[AlarmEventView],
                responses=errors(503))
    def list_alarms(_: reader, state: Literal["active", "past"] = "active", priority: Priority | None = None,
                    room: str | None = None,
                    since: Annotated[str | None, Query(description="ISO 8601 with zone (past alarms)")] = None,
                    until: Annotated[str | None, Query(description="ISO 8601 with zone (past alarms)")] = None,
                    limit: Annotated[int, Query(ge=1, le=10000)] = 500) -> list[dict[str, Any]]:
        """Active alarms (most urgent first) or past activations from the journal, filtered."""
        alarms = alarm_service()
        if state == "active":
            rows = [alarm_view(definition, status) for definition, status in alarms.shown()]
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

    @router.get("/alarms/{target:path}", tags=["alarms"], response_model=AlarmDetail, responses=errors(404, 503))
    def get_alarm(target: str, _: reader) -> dict[str, Any]:
        """One alarm (key or ticket `123`) with its current state and its whole journal."""
        alarms = alarm_service()
        try:
            view = alarm_view(*alarms.find(target))
        except ActionRefused:
            raise HTTPException(404, f"no alarm {target!r}") from None
        view["journal"] = [alarm_event_json(e) for e in alarms.journal.events(alarm=view["key"], limit=10_000)]
        return view

    def act(target: str, principal: Principal, request: Request, name: str, reason: str, action: str,
            args: dict[str, Any]) -> dict[str, Any]:
        alarms = alarm_service()
        remote = request.client.host if request.client else ""
        try:
            events = alarms.act(action, target, principal.user, {**args, "via": "api", "remote": remote})
        except ActionRefused as refusal:
            status = 404 if str(refusal).startswith("no alarm") else 409
            raise HTTPException(status, str(refusal)) from None
        except AlarmsUnavailable as error:
            raise HTTPException(503, str(error)) from None
        if services.audit is not None:
            services.audit.append(principal.user, f"alarm.{name}", events[0].alarm if events else target,
                                  detail={"tickets": sorted({e.occurrence for e in events})}, reason=reason,
                                  remote=remote)
        return {"events": [alarm_event_json(e) for e in events]}

    acting: dict[str, Any] = {"tags": ["alarms"], "response_model": ActionResult,
                              "responses": errors(404, 409, 413, 503)}

    @router.post("/alarms/{target:path}/acknowledge", **acting)
    def acknowledge(target: str, body: Acknowledge, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "acknowledge", body.comment, "ack", {"comment": body.comment})

    @router.post("/alarms/{target:path}/shelve", **acting)
    def shelve(target: str, body: Shelve, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "shelve", body.reason, "shelve",
                   {"reason": body.reason, "duration": body.minutes * 60})

    @router.post("/alarms/{target:path}/unshelve", **acting)
    def unshelve(target: str, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "unshelve", "", "unshelve", {})

    @router.post("/alarms/{target:path}/out-of-service", **acting)
    def out_of_service(target: str, body: OutOfService, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "out_of_service", body.reason, "out_of_service",
                   {"reason": body.reason})

    @router.post("/alarms/{target:path}/in-service", **acting)
    def in_service(target: str, principal: actor, request: Request) -> dict[str, Any]:
        return act(target, principal, request, "in_service", "", "in_service", {})

    @router.get("/alarm-performance", tags=["alarms"], response_model=AlarmPerformanceView, responses=errors(503))
    def performance(_: reader) -> dict[str, Any]:
        """ISA-18.2 figures: rate per 10 minutes, floods, chattering, stale alarms, priority distribution."""
        alarms = alarm_service()
        return dict(alarms.performance.figures(services.now(), alarms.statuses()))

    @router.get("/audit", tags=["audit"], response_model=AuditPage, responses=errors(503))
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
