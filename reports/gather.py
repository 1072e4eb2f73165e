"""The one way the inspectors' report is gathered, whoever asks (the CLI, the API, a schedule).

`open_sources` opens what the service wrote, read-only: InfluxDB history, the alarm journal, the notifier's
store and the audit trail (a file that does not exist yet is simply absent: a site without paging has no
notifier store). `gather` turns them and a period into the complete report dict. The API passes the
service's own open parts through `from_services` and calls the same `gather`, so a report from the shell
and one from the API can never differ in what they contain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alarms.journal import Journal
from alarms.model import AlarmState, EventKind
from alarms.notify.store import NotifyStore
from api.audit import AuditTrail
from api.history import HistoryQuery
from control.journal import ControlJournal
from stackwatch.catalog import PointCatalog
from stackwatch.config.loader import resolve_state_dir
from stackwatch.config.model import SiteConfig
from stackwatch.store.influx import InfluxClient

from .alarm_report import AlarmContext, notifications_by_ticket
from .control_report import control_section
from .environment import RoomHistory, compliance_report

if TYPE_CHECKING:
    from api.services import ApiServices

NOTIFY_STORE = "notify.db"  # the notifier's store in the state folder (alarms.notify.notifier)
MAX_EVENTS = 10_000_000


@dataclass
class Sources:
    """What a report is built from. Only `history` is required; a missing journal means no alarm sections."""

    history: RoomHistory
    journal: Journal | None = None
    notify: NotifyStore | None = None
    audit: AuditTrail | None = None
    control: ControlJournal | None = None  # sites with environmental control
    config_digest: str = ""  # SHA-256 of the site file the limits came from


def integrity(audit: AuditTrail | None, config_digest: str) -> dict[str, Any]:
    """What the figures can be trusted on: the audit chain's state and the site file the limits came from."""
    result: dict[str, Any] = {"config_sha256": config_digest}
    if audit is not None:
        verification = audit.verify()
        seq, head = audit.head()
        result["audit"] = {"ok": verification.ok, "rows": verification.rows,
                           "first_broken": verification.first_broken, "reason": verification.reason,
                           "head_seq": seq, "head_hash": head}
    return result


@contextmanager
def open_sources(config: SiteConfig, config_path: str | Path) -> Iterator[Sources]:
    """Everything the service wrote, opened read-only (the service may be running), closed on leaving."""
    state = resolve_state_dir(config, config_path)
    with ExitStack() as stack:
        client = InfluxClient(config.storage.influxdb)
        stack.callback(client.close)
        history = HistoryQuery(client, PointCatalog.from_config(config), timezone=config.site.timezone)
        sources = Sources(history=history,
                          config_digest=hashlib.sha256(Path(config_path).read_bytes()).hexdigest())
        if (state / config.alarms.journal).exists():
            sources.journal = Journal(state / config.alarms.journal, readonly=True)
            stack.callback(sources.journal.close)
        if (state / NOTIFY_STORE).exists():
            sources.notify = NotifyStore(state / NOTIFY_STORE, readonly=True)
            stack.callback(sources.notify.close)
        if (state / config.control.journal).exists():
            sources.control = ControlJournal(state / config.control.journal, readonly=True)
            stack.callback(sources.control.close)
        if (state / config.api.audit).exists():
            sources.audit = AuditTrail(state / config.api.audit, readonly=True)
            stack.callback(sources.audit.close)
        yield sources


def from_services(services: ApiServices) -> Sources:
    """The running service's parts, as the API holds them (reads only)."""
    if services.history is None:
        raise LookupError("reports need InfluxDB")
    alarms = services.alarm_service or services.alarms  # the engine in process, or the journal (`stackwatch api`)
    return Sources(history=services.history,
                   journal=alarms.journal if alarms is not None else None,
                   notify=services.acknowledger.store if services.acknowledger is not None else None,
                   audit=services.audit if isinstance(services.audit, AuditTrail) else None,
                   control=services.control_journal, config_digest=services.config_digest)


def alarm_context(journal: Journal | None, notify: NotifyStore | None, start: float) -> AlarmContext:
    """How the alarms stood when the period began, and every message the notifier sent or tried."""
    before = journal.latest_before(start) if journal else []
    open_tickets = sorted({e.occurrence for e in before if e.state is not AlarmState.NORMAL and e.occurrence})
    raised_before = [raised for ticket in open_tickets if journal
                     for raised in journal.events(occurrence=ticket, kinds=[EventKind.RAISED], limit=1)]
    hidden_before = [event for kinds in ((EventKind.SHELVED, EventKind.UNSHELVED),
                                         (EventKind.OUT_OF_SERVICE, EventKind.IN_SERVICE)) if journal
                     for event in journal.latest_before(start, kinds) if event.kind is kinds[0]]
    notifications = {}
    if notify is not None:
        since = min([start, *(e.ts for e in raised_before)])
        notifications = notifications_by_ticket(notify.deliveries(limit=MAX_EVENTS),
                                                notify.attempts(since=since, limit=MAX_EVENTS))
    return AlarmContext(before=before, raised_before=raised_before, hidden_before=hidden_before,
                        notifications=notifications)


def gather(config: SiteConfig, sources: Sources, start: float, end: float, *, rooms: Sequence[str] | None = None,
           generated: float | None = None) -> dict[str, Any]:
    """The complete compliance report for `rooms` (default every room) over [start, end).

    KeyError for an unknown room, ValueError for an empty period."""
    events = sources.journal.events(since=start, until=end, limit=MAX_EVENTS) if sources.journal else []
    report = compliance_report(config, sources.history, events, start, end, rooms=rooms or None,
                               integrity=integrity(sources.audit, sources.config_digest), generated=generated,
                               context=alarm_context(sources.journal, sources.notify, start))
    if sources.control is not None:
        # From well before the period, so an override set earlier and still running is listed with its setter.
        rows = sources.control.rows(since=start - config.control.max_override, until=end, limit=MAX_EVENTS)
        report["control"] = control_section(rows, rooms or None, start, end)
    return report


def report_from_files(config: SiteConfig, config_path: str | Path, start: float, end: float, *,
                      rooms: Sequence[str] | None = None, generated: float | None = None) -> dict[str, Any]:
    """`gather` over what the service wrote in its state folder and InfluxDB."""
    with open_sources(config, config_path) as sources:
        return gather(config, sources, start, end, rooms=rooms, generated=generated)
