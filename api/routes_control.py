"""Control routes: each room's loops, interlocks and actuators (read); manual overrides and interlock resets (act).

Overrides always expire (at most `control.max_override`), and an interlock
outranks them: an operator can hold a dehumidifier off for servicing, but
cannot run air handling in a room the fire panel says is burning. Every action
is journaled by the control runtime and written to the audit trail here.
"""

# No `from __future__ import annotations`: FastAPI must see the route annotations as objects.
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from control.journal import ControlJournal
from control.remote import ControlUnavailable
from control.runtime import ControlRefused

from .history import parse_time
from .model import Audit, Principal

Require = Callable[[str], Any]


class ControlAccess(Protocol):
    """The runtime in the service, or `control.remote.JournalControl` in `stackwatch api`."""

    journal: ControlJournal

    def status(self) -> dict[str, Any]: ...

    async def act(self, action: str, target: str, who: str, args: Mapping[str, Any]) -> dict[str, Any]: ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OverrideBody(_Strict):
    value: float | None = Field(
        None, description="For an actuator: the value to hold (0/1 for a switch, °C for a set-point). "
        "For a loop (`<room>/humidity`): leave out; the loop then holds its units as they are.")
    reason: str = Field(min_length=1, max_length=1000, description="Why; shown to the next shift and inspectors.")
    minutes: float = Field(gt=0, le=7 * 24 * 60, description="How long until it returns to automatic by itself.")


class ResetBody(_Strict):
    reason: str = Field("", max_length=1000, description="What was checked before air handling restarts.")


class OverrideView(_Strict):
    value: float | None
    who: str
    reason: str
    since: float
    until: float


class LoopView(_Strict):
    mode: str = Field(description="auto, manual, interlock, or hold (no good reading: units held as they are).")
    target: float | None
    band: list[float] | None
    period: str
    measured: float | None
    problem: str
    override: OverrideView | None


class ActuatorView(_Strict):
    id: str
    kind: str = Field(description="switch, setpoint or mode.")
    role: str = Field(description="dehumidifier, humidifier, temperature_setpoint, air_handling, damper, leak_valve.")
    min: float | None = Field(description="Lowest value an override may set (set-points).")
    max: float | None = Field(description="Highest value an override may set (set-points).")
    modes: dict[str, int] = Field(description="Mode names and their values (mode actuators).")
    device: str
    commanded: float | None
    source: str
    reason: str
    state: str = Field(description="unknown, pending (awaiting read-back), verified, retry, failed.")
    attempts: int
    issued_at: float | None
    readback: float | None
    detail: str
    alarm: bool
    on_since: float | None
    starts: int | None
    override: OverrideView | None


class InterlockView(_Strict):
    fire: bool
    latched: bool
    tripped_at: float | None
    cleared_at: float | None
    cause: str
    leak: bool
    leak_latched: bool
    leak_cause: str
    awaiting_reset: bool


class RoomControlView(_Strict):
    room: str
    interlock: InterlockView
    loops: dict[str, LoopView]
    actuators: list[ActuatorView]


class ControlView(_Strict):
    enabled: bool
    now: float | None = None
    interval: float | None = None
    as_of: float | None = Field(None, description="`stackwatch api` only: when the service last saved this view.")
    rooms: list[RoomControlView]


class ControlLogRow(_Strict):
    id: int
    ts: float
    kind: str
    room: str
    target: str
    value: float | None
    source: str
    who: str
    reason: str
    detail: dict[str, Any]


class ControlActionResult(_Strict):
    message: str
    override: OverrideView | None = None


def build_control_router(runtime: ControlAccess | None, require: Require, audit: Audit | None) -> APIRouter:
    router = APIRouter(prefix="/api/v1/control", tags=["control"])
    reader = Annotated[Principal, Depends(require("read"))]
    actor = Annotated[Principal, Depends(require("act"))]

    def running() -> ControlAccess:
        if runtime is None:
            raise HTTPException(404, "no climate control is configured at this site")
        return runtime

    def audited(principal: Principal, request: Request, action: str, target: str, reason: str,
                detail: dict[str, Any]) -> None:
        if audit is not None:
            audit.append(principal.user, action, target, detail=detail, reason=reason,
                         remote=request.client.host if request.client else "")

    @router.get("", response_model=ControlView)
    def control_state(_: reader) -> dict[str, Any]:
        """Every controlled room: its loops (mode, target, band, reading), interlock and actuators."""
        if runtime is None:
            return {"enabled": False, "rooms": []}
        return {"enabled": True, **runtime.status()}

    @router.get("/log", response_model=list[ControlLogRow], responses={422: {"description": "bad parameters"}})
    def control_log(_: reader, room: str | None = None, target: str | None = None,
                    since: Annotated[str | None, Query(alias="from", description="ISO 8601 with zone")] = None,
                    until: Annotated[str | None, Query(alias="to", description="ISO 8601 with zone")] = None,
                    limit: Annotated[int, Query(ge=1, le=10000)] = 500) -> list[dict[str, Any]]:
        """Every command with its reason and outcome, overrides, interlock trips and resets: newest last."""
        control = running()
        try:
            start = parse_time(since) if since else None
            end = parse_time(until) if until else None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return [row.as_dict() for row in control.journal.rows(since=start, until=end, room=room, target=target,
                                                                  limit=limit)]

    async def act(action: str, target: str, principal: Principal, args: dict[str, Any], *,
                  missing: str = "") -> dict[str, Any]:
        """Coroutines on the event loop, the runtime's own thread: no locking needed in the service."""
        control = running()
        try:
            return await control.act(action, target, principal.user, args)
        except KeyError:
            raise HTTPException(404, missing or f"no actuator or loop {target!r}") from None
        except ControlRefused as refusal:
            raise HTTPException(409, str(refusal)) from None
        except ControlUnavailable as error:
            raise HTTPException(503, str(error)) from None


    @router.put("/overrides/{target:path}", response_model=ControlActionResult,
                responses={404: {"description": "unknown actuator or loop"}, 409: {"description": "refused"},
                           503: {"description": "no service took the command (`stackwatch api`)"}})
    async def set_override(target: str, body: OverrideBody, principal: actor, request: Request) -> dict[str, Any]:
        """Put an actuator (`<device>.<actuator>`) or a loop (`<room>/humidity`) in manual until it expires."""
        result = await act("override", target, principal,
                           {"value": body.value, "reason": body.reason, "seconds": body.minutes * 60})
        audited(principal, request, "control.override", target, body.reason,
                {"value": body.value, "until": (result.get("override") or {}).get("until")})
        return result

    @router.delete("/overrides/{target:path}", response_model=ControlActionResult,
                   responses={404: {"description": "unknown actuator or loop"}, 409: {"description": "refused"},
                              503: {"description": "no service took the command (`stackwatch api`)"}})
    async def clear_override(target: str, principal: actor, request: Request,
                             reason: Annotated[str, Query(max_length=1000)] = "") -> dict[str, Any]:
        """Back to automatic now."""
        result = await act("release", target, principal, {"reason": reason})
        audited(principal, request, "control.override_end", target, reason, {})
        return result

    @router.post("/rooms/{room}/reset", response_model=ControlActionResult,
                 responses={404: {"description": "room not controlled"}, 409: {"description": "refused"},
                            503: {"description": "no service took the command (`stackwatch api`)"}})
    async def reset_room(room: str, body: ResetBody, principal: actor, request: Request) -> dict[str, Any]:
        """Release a latched fire or leak interlock once its states have cleared: loops and air handling resume."""
        result = await act("reset", room, principal, {"reason": body.reason},
                           missing=f"room {room!r} is not controlled")
        audited(principal, request, "control.reset", room, body.reason, {})
        return result

    return router
