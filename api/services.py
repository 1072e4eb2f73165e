"""What the API's routes need from the running service, passed in by the app factory.

Routes call these and never open a database themselves, so a test builds the
app from a small config with the parts it needs (STYLE.md: the app factory
takes its services).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.notify.acknowledge import Acknowledger
from alarms.performance import AlarmPerformance
from stackwatch.catalog import PointCatalog
from stackwatch.config.model import SiteConfig
from stackwatch.livestate import LiveState

from .history import HistoryQuery
from .live import LiveFeed
from .metrics import Sample
from .model import Audit

T = TypeVar("T")


class AlarmAccess(Protocol):
    """The alarm runtime: actions and reads run on the engine's own thread."""

    journal: Journal
    performance: AlarmPerformance

    def call(self, action: Callable[[AlarmEngine, float], T], timeout: float = 10.0) -> T: ...


@dataclass
class ApiServices:
    config: SiteConfig
    catalog: PointCatalog
    live: LiveState
    now: Callable[[], float]
    feed: LiveFeed = field(default_factory=LiveFeed)
    alarms: AlarmAccess | None = None
    acknowledger: Acknowledger | None = None
    history: HistoryQuery | None = None  # tests pass any object with `point` and `room`
    audit: Audit | None = None
    health: Callable[[], dict[str, dict[str, Any]]] = lambda: {}
    metrics: Callable[[], list[Sample]] = list
    config_digest: str = ""  # SHA-256 of the site file: reports say which limits they were checked against
