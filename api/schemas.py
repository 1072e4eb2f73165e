"""Response bodies of the HTTP API, for the OpenAPI document (issue 5: "an accurate OpenAPI document").

Hot routes answer with `JSONResponse` built from plain dicts (`api.views`), which is several times faster than
validating every answer through a model; they name their model with `responses={200: {"model": …}}`, which
documents without validating. The rest use `response_model`, which also validates. Either way every model
forbids unknown keys, and `tests/unit/test_api_schemas.py` validates a real answer of every GET route against
the model its route declares, so a key added to a view but not here fails a test instead of drifting.
"""

# No `from __future__ import annotations`: pydantic and FastAPI read these annotations at run time.
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alarms.model import AlarmState, EventKind, Priority
from stackwatch.readings import Quality

Number = float | None
Value = bool | float | str | None  # a reading: number, on/off state or text; None when there is none


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- errors ---------------------------------------------------------------------------------------------------

class ParameterProblem(Strict):
    where: str = Field(description="The parameter, e.g. `query.from` or `body.minutes`.")
    problem: str


class Problem(Strict):
    """Every 4xx/5xx answer: a sentence, or (422 from parameter checks) one entry per bad parameter."""

    detail: str | list[ParameterProblem]


# --- health ---------------------------------------------------------------------------------------------------

class Health(Strict):
    status: Literal["ok"]


class Check(BaseModel):
    """One readiness check; checks add their own figures (`depth`, `detail`, `age_seconds`, `what` …)."""

    model_config = ConfigDict(extra="allow")
    ok: bool


class Readiness(Strict):
    ready: bool = Field(description="All checks ok (503 otherwise).")
    checks: dict[str, Check]
    scope: str | None = Field(None, description="What these checks can and cannot see (the standalone API).")


class InboundReply(Strict):
    ok: bool
    result: str
    ticket: int | None


# --- site, rooms, devices, points -----------------------------------------------------------------------------

class BuildingView(Strict):
    id: str
    name: str
    floors: list[str]
    rooms: list[str]


class SiteView(Strict):
    id: str
    name: str
    timezone: str
    buildings: list[BuildingView]


class Limit(Strict):
    value: float
    source: str = Field(description="The standard's clause, or the site file's path when the site tightened it.")


class Limits(Strict):
    t_min: Limit
    t_max: Limit
    rh_min: Limit
    rh_max: Limit
    t_daily_range: Limit
    rh_daily_range: Limit


class RoomAlarms(Strict):
    active: int
    unacknowledged: int
    worst: Priority | None


class RoomView(Strict):
    id: str
    name: str
    building: str
    floor: str
    profile: str
    limits: Limits
    temperature: Number = Field(description="Mean of the room's fresh usable readings, °C.")
    humidity: Number
    dew_point: Number
    states: dict[str, bool | None] = Field(description="fire, water_leak, door_open …: None when no sensor knows.")
    status: Literal["normal", "warning", "alarm", "no_data"]
    alarms: RoomAlarms


class PointReading(Strict):
    point: str
    quantity: str
    unit: str
    value: Value
    quality: Quality | None
    detail: str | None = Field(None, description="Why a reading is not good (present when there is a reading).")
    ts: Number = Field(description="When it was read, UTC epoch seconds.")
    age: Number = Field(description="Seconds since it was read.")
    fresh: bool = Field(description="False once older than three expected intervals (or 10 minutes).")


class RoomDetail(RoomView):
    points: list[PointReading]


class DeviceSummary(Strict):
    id: str
    protocol: str
    model: str | None
    room: str
    points: list[str]


class DeviceDetail(Strict):
    id: str
    protocol: str
    model: str | None
    room: str
    calibration_due: str | None
    points: list[PointReading]


# --- history --------------------------------------------------------------------------------------------------

HistoryRow = tuple[float, float | None, float | None, float | None, int]


class HistorySeries(Strict):
    point: str
    quantity: str
    unit: str
    agg: str
    source: str = Field(description='"raw", "rollup 1h" or "rollup 1h + raw".')
    rows: list[HistoryRow] = Field(description="[ts, mean, min, max, count]; raw: the value three times, count 1.")
    quality: list[str] | None = Field(description="Raw only: each row's quality.")


class RoomHistory(Strict):
    room: str
    quantity: str
    from_: float = Field(alias="from")
    to: float
    agg: str
    limits: Limits
    series: list[HistorySeries]


# --- alarms ---------------------------------------------------------------------------------------------------

class AlarmEventView(Strict):
    seq: int
    ts: float
    alarm: str
    ticket: int
    kind: EventKind
    state: AlarmState
    previous: AlarmState
    priority: Priority
    cause: str
    room: str | None
    building: str | None
    source: str
    value: Number
    limit: Number
    message: str
    actor: str
    comment: str
    until: Number


class AlarmView(Strict):
    key: str
    ticket: int
    state: AlarmState
    priority: Priority
    cause: str
    room: str | None
    building: str | None
    source: str
    description: str
    limit: Number
    unit: str
    value: Number
    condition: bool
    active_since: Number
    acknowledged_by: str | None
    acknowledged_at: Number
    ack_comment: str | None
    shelved_until: Number
    shelved_by: str | None
    shelve_reason: str | None
    suppressed_by: str | None
    out_of_service: bool
    oos_reason: str | None
    group: str


class AlarmDetail(AlarmView):
    journal: list[AlarmEventView]


class ActionResult(Strict):
    events: list[AlarmEventView] = Field(description="The journaled events the action caused.")


class ChatteringAlarm(Strict):
    alarm: str
    activations: int
    last: float
    episodes: int


class StaleAlarm(Strict):
    alarm: str
    priority: str
    active_since: float
    active_for: float
    hidden: bool


class PriorityShare(Strict):
    count: int
    share: float


class AlarmPerformanceView(Strict):
    site: str
    period_start: Number
    period_end: float
    activations: int
    alarms_last_10min: int
    peak_10min: int
    avg_per_10min: Number
    in_flood: bool
    flood_since: Number
    floods: int
    flood_seconds: float
    flood_share: Number
    chattering: list[ChatteringAlarm]
    chattering_episodes: int
    chattering_alarms: int
    stale: list[StaleAlarm]
    priority_distribution: dict[str, PriorityShare]


# --- audit ----------------------------------------------------------------------------------------------------

class AuditVerificationView(Strict):
    ok: bool
    rows: int
    first_broken: int | None
    reason: str


class AuditRowView(Strict):
    seq: int
    ts: float
    actor: str
    remote: str
    action: str
    target: str
    reason: str
    detail: dict[str, Any]
    prev: str
    hash: str


class AuditPage(Strict):
    verification: AuditVerificationView
    rows: list[AuditRowView]


# --- reports --------------------------------------------------------------------------------------------------

class ReportSite(Strict):
    id: str
    name: str
    timezone: str


class ReportPeriod(Strict):
    from_: float = Field(alias="from")
    to: float


class ComplianceRoom(BaseModel):
    """One room's figures; issue 7 is still adding sections, so further keys are allowed (and described in the
    report's own documentation) while these are fixed."""

    model_config = ConfigDict(extra="allow")
    room: str
    name: str
    building: str
    profile: str
    temperature: dict[str, Any]
    humidity: dict[str, Any]
    alarms: dict[str, Any]


class ComplianceReport(BaseModel):
    """The compliance report (JSON; `format=csv` gives its key figures per room as CSV)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    site: ReportSite
    period: ReportPeriod
    generated: Number
    rooms: list[ComplianceRoom]
    integrity: dict[str, Any]


def documented(model: type[BaseModel] | Any, description: str = "") -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers with a `JSONResponse`: the model documents the 200 body."""
    return {200: {"model": model, **({"description": description} if description else {})}}


_ERROR_TEXT = {
    401: "No valid token or API key", 403: "The role lacks the permission", 404: "No such room, device, point or alarm",
    409: "The alarm's lifecycle refuses the action (the reason is in `detail`)",
    413: "Request body too large", 422: "A parameter is invalid (each one named in `detail`)",
    503: "A part the answer needs is not available (InfluxDB, the alarm engine, the audit trail)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the error answers a route gives, all shaped as `Problem`."""
    return {code: {"model": Problem, "description": _ERROR_TEXT[code]} for code in codes}
