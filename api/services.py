"""What the API's routes need from the running service, passed in by the app factory.

Routes call these and never open a database themselves, so a test builds the
app from a small config with the parts it needs (STYLE.md: the app factory
takes its services).

Alarms reach the routes through `AlarmService`: in `stackwatch run` it is the
engine itself (`EngineAlarms`, every read and action on the engine's thread);
in `stackwatch api` it is the journal (`api.standalone.JournalAlarms`: reads
from SQLite, actions through the journal's command table like the CLI's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.lifecycle import ActionRefused
from alarms.model import AlarmDefinition, AlarmEvent, AlarmStatus
from alarms.notify.acknowledge import Acknowledger
from alarms.performance import AlarmPerformance
from control.journal import ControlJournal
from stackwatch.catalog import PointCatalog
from stackwatch.config.model import SiteConfig
from stackwatch.readings import Reading

from .history import HistoryQuery
from .live import LiveFeed
from .metrics import Sample
from .model import Audit

T = TypeVar("T")
# The journal's command names (`alarms.journal.Command.action`), shared by the CLI and both alarm services.
ACTIONS = ("ack", "shelve", "unshelve", "out_of_service", "in_service")


class Unavailable(Exception):
    """A part the answer needs cannot be reached: the app answers 503 with this text."""


class AlarmsUnavailable(Unavailable):
    """No alarm engine takes the action (the service is not running, or runs in another process)."""


class StateUnavailable(Unavailable):
    """The latest readings cannot be had (the standalone API before InfluxDB first answered)."""


class LatestState(Protocol):
    """The newest reading per point: `stackwatch.livestate.LiveState` in the service, InfluxDB's last values
    in the standalone API (`api.standalone.InfluxLatest`)."""

    def get(self, point: str) -> Reading | None: ...

    def snapshot(self) -> dict[str, Reading]: ...


class AlarmAccess(Protocol):
    """The in-process alarm runtime (`alarms.runtime.AlarmRuntime`): actions and reads run on its thread."""

    journal: Journal
    performance: AlarmPerformance

    def call(self, action: Callable[[AlarmEngine, float], T], timeout: float = 10.0) -> T: ...


class AlarmService(Protocol):
    """What the alarm routes ask, wherever the engine runs. `find` and `act` raise `ActionRefused` (unknown
    alarm, or the lifecycle refuses), `act` also `AlarmsUnavailable` when no engine takes the action."""

    journal: Journal
    performance: AlarmPerformance

    def shown(self, room: str | None = None) -> list[tuple[AlarmDefinition, AlarmStatus]]: ...

    def find(self, target: str) -> tuple[AlarmDefinition, AlarmStatus]: ...

    def statuses(self) -> list[AlarmStatus]: ...

    def act(self, action: str, target: str, actor: str, args: dict[str, Any]) -> list[AlarmEvent]: ...


class EngineAlarms:
    """`AlarmService` over the engine in this process."""

    def __init__(self, runtime: AlarmAccess) -> None:
        self.runtime = runtime
        self.journal = runtime.journal
        self.performance = runtime.performance

    def shown(self, room: str | None = None) -> list[tuple[AlarmDefinition, AlarmStatus]]:
        def read(engine: AlarmEngine, _now: float) -> list[tuple[AlarmDefinition, AlarmStatus]]:
            pairs = ((engine.definition(status.key), status) for status in engine.not_normal())
            return [pair for pair in pairs if room is None or pair[0].room == room]
        return self.runtime.call(read)

    def find(self, target: str) -> tuple[AlarmDefinition, AlarmStatus]:
        def read(engine: AlarmEngine, _now: float) -> tuple[AlarmDefinition, AlarmStatus]:
            key = engine.resolve(target)
            return engine.definition(key), engine.status[key]
        return self.runtime.call(read)

    def statuses(self) -> list[AlarmStatus]:
        return self.runtime.call(lambda engine, _now: list(engine.status.values()))

    def act(self, action: str, target: str, actor: str, args: dict[str, Any]) -> list[AlarmEvent]:
        def do(engine: AlarmEngine, now: float) -> list[AlarmEvent]:
            key = engine.resolve(target)
            if action == "ack":
                return engine.acknowledge(key, actor, str(args.get("comment", "")), now)
            if action == "shelve":
                return engine.shelve(key, actor, str(args.get("reason", "")), now + float(args["duration"]), now)
            if action == "unshelve":
                return engine.unshelve(key, actor, now)
            if action in ("out_of_service", "in_service"):
                return engine.set_out_of_service(key, action == "out_of_service", actor,
                                                 str(args.get("reason", "")), now)
            raise ActionRefused(f"unknown action {action!r}")
        return self.runtime.call(do)


@dataclass
class ApiServices:
    config: SiteConfig
    catalog: PointCatalog
    live: LatestState
    now: Callable[[], float]
    feed: LiveFeed = field(default_factory=LiveFeed)
    alarms: AlarmAccess | None = None  # the in-process runtime; `alarm_service` is made from it when not given
    acknowledger: Acknowledger | None = None
    history: HistoryQuery | None = None  # tests pass any object with `point` and `room`
    audit: Audit | None = None
    health: Callable[[], dict[str, dict[str, Any]]] = lambda: {}
    metrics: Callable[[], list[Sample]] = list
    config_digest: str = ""  # SHA-256 of the site file: reports say which limits they were checked against
    alarm_service: AlarmService | None = None
    readiness_scope: str = ""  # what /readyz can and cannot see, when it is not the whole service
    control_journal: ControlJournal | None = None  # the control runtime's journal, for the reports

    def __post_init__(self) -> None:
        if self.alarm_service is None and self.alarms is not None:
            self.alarm_service = EngineAlarms(self.alarms)
