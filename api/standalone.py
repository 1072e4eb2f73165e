"""`stackwatch api`: the HTTP API in a process of its own, beside a running `stackwatch run`.

The routes are the same; what they ask is answered from what the service leaves behind:

* **Latest state** from InfluxDB: one request per refresh, one statement per measurement,
  `SELECT last("quality"), "value", "detail" … GROUP BY "device", "point"` over the last day, cached for a
  second. `last(*)` would be one statement, but it takes each field's last value on its own, so a
  `comm_failure` without a value would show the value of an earlier good reading, and its time is the start
  of the range, not the reading's: a single selector with the other fields beside it returns the newest
  reading's own fields and time. Readings are what InfluxDB holds, so they trail the service by its write
  batching (about a second); each carries its own time, so `age` and `fresh` are true, and when InfluxDB stops
  answering, the last answer is served with ages that keep growing until its points read as stale.
* **Alarms** from the alarm journal (SQLite WAL, read while the service writes): statuses (cached for half a
  second), definitions from the site file (`alarms.ruleset.build_ruleset`, as the engine builds them), events
  and the ISA-18.2 figures from the journal's events.
* **Actions** (acknowledge, shelve, unshelve, out of / in service) go through the journal's `commands` table
  exactly as `stackwatch alarms ack` does: the service applies them within half a second and records the
  outcome; a refusal is 409 with the lifecycle's reason, and a command nobody takes within `ACT_WAIT` seconds is
  withdrawn and answered 503.
* **Live events**: a follower thread polls the journal every half second for alarm transitions and, while a
  stream is open, InfluxDB every second for changed readings, and feeds the same `LiveFeed` the service feeds.
* **Users and the audit trail** are the service's own SQLite files: both take every write in one IMMEDIATE
  transaction, so two processes keep lock-outs, tokens and the audit hash chain consistent (the audit head
  anchor never moves backwards). SQLite needs the two processes on one machine (or one local volume), not on
  a network file system.

Acknowledge links and SMS/e-mail replies stay with `stackwatch run`, which holds the paging secret, and so do
the climate control routes (`/api/v1/control`), whose runtime writes to the devices.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.lifecycle import ActionRefused
from alarms.model import AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus
from alarms.performance import AlarmPerformance
from alarms.ruleset import build_ruleset
from control.journal import ControlJournal
from control.remote import JournalControl
from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.clock import Clock, SystemClock
from stackwatch.command_queue import WITHDRAWN
from stackwatch.config.loader import resolve_state_dir
from stackwatch.config.model import SiteConfig
from stackwatch.readings import Quality, Reading
from stackwatch.store.influx import InfluxClient, InfluxError, quote_ident
from stackwatch.store.rollup import raw_source

from .app import create_app
from .audit import AuditTrail
from .auth import UserStore, ensure_admin, make_auth
from .history import HistoryQuery
from .live import LiveFeed
from .metrics import Sample, alarm_samples
from .routes_control import build_control_router
from .services import ACTIONS, AlarmsUnavailable, ApiServices, StateUnavailable

log = logging.getLogger("stackwatch.api")
T = TypeVar("T")

STATE_TTL = 1.0  # seconds an InfluxDB answer serves every request
LOOKBACK = 86400.0  # how far back the latest-state query looks; a point silent for longer shows no reading
STATUS_TTL = 0.5  # seconds the journal's alarm statuses are reused
EVENTS_EVERY = 0.5  # seconds between looks at the journal for alarm transitions (the engine's command poll too)
READINGS_EVERY = 1.0  # seconds between looks at InfluxDB for changed readings, while a stream is open
ACT_WAIT = 5.0  # seconds an action waits for the service before it is withdrawn (503)
READINGS_STALE = 300.0  # the newest reading in InfluxDB older than this: the collector is not writing
SCOPE = ("standalone API (`stackwatch api`): checks InfluxDB (the latest-state query), that its newest reading is "
         f"under {READINGS_STALE:g} s old (the service's collector writes), the alarm journal and the users store; "
         "the broker, gateways, spool backlog, alarm engine, notifier and climate control live in `stackwatch run`: "
         "see its /readyz")


class InfluxLatest:
    """The newest reading of every point, as InfluxDB holds it (`api.services.LatestState`)."""

    def __init__(self, client: InfluxClient, catalog: PointCatalog, now: Callable[[], float], *,
                 ttl: float = STATE_TTL, lookback: float = LOOKBACK) -> None:
        self.client = client
        self.catalog = catalog
        self.now = now
        self.ttl = ttl
        self.lookback = lookback
        self._measurements = sorted({info.measurement for info in catalog})
        self._points = {(info.device, info.point): info for info in catalog}
        self._latest: dict[str, Reading] = {}
        self._tried: float | None = None  # monotonic time of the last attempt, successful or not
        self._lock = threading.Lock()
        self.answered_at: float | None = None  # clock time of the last answer
        self.last_error = ""
        self.query_seconds = 0.0

    def statement(self, now: float) -> str:
        since = round((now - self.lookback) * 1e9)
        return "; ".join(f'SELECT last("quality"), "value", "detail" FROM {raw_source(self.client, m)} '
                         f'WHERE time > {since} GROUP BY {quote_ident("device")}, {quote_ident("point")}'
                         for m in self._measurements)

    def _current(self) -> bool:
        """The last attempt is recent enough: `ttl`, or twice the query's own time when that is longer, so a
        large site (10,000 points: half a second per query) keeps InfluxDB and this process at most a third busy."""
        tried = self._tried
        return tried is not None and time.monotonic() - tried < max(self.ttl, 2 * self.query_seconds)

    def refresh(self) -> dict[str, Reading]:
        """The cached answer while it is current; else one request to InfluxDB. One thread asks at a time; the
        others meanwhile get the previous answer rather than wait (they wait only for the very first)."""
        if self._current():
            return self._answer()
        if not self._lock.acquire(blocking=self.answered_at is None):
            return self._latest
        try:
            if self._current():
                return self._answer()  # another thread asked while this one waited
            started = time.monotonic()
            try:
                latest = self._query()
            except InfluxError as error:
                self._tried = time.monotonic()
                if self.last_error != str(error):
                    log.error("latest state: InfluxDB does not answer: %s", error)
                self.last_error = str(error)
                return self._answer()
            if self.last_error:
                log.info("latest state: InfluxDB answers again")
            self._latest, self.last_error = latest, ""
            self._tried = time.monotonic()
            self.query_seconds = self._tried - started
            self.answered_at = self.now()
            return latest
        finally:
            self._lock.release()

    def _answer(self) -> dict[str, Reading]:
        """The last answer; before InfluxDB ever answered there is none, and saying "no readings" would lie."""
        if self.answered_at is None:
            raise StateUnavailable(f"the latest readings come from InfluxDB, which does not answer: "
                                   f"{self.last_error or 'not asked yet'}")
        return self._latest

    def _query(self) -> dict[str, Reading]:
        latest: dict[str, Reading] = {}
        for series in self.client.query(self.statement(self.now()), epoch="ns"):
            info = self._points.get((series.tags.get("device", ""), series.tags.get("point", "")))
            if info is None or not series.values:
                continue  # a point no longer in the site file
            row = series.values[0]
            latest[info.key] = _reading(info, row[0], row[1], row[2], row[3])
        return latest

    def get(self, point: str) -> Reading | None:
        return self.refresh().get(point)

    def snapshot(self) -> dict[str, Reading]:
        return dict(self.refresh())

    def __len__(self) -> int:
        return len(self.refresh())


def _reading(info: PointInfo, ts: Any, quality: Any, value: Any, detail: Any) -> Reading:
    try:
        known = Quality(str(quality))
    except ValueError:
        known, detail = Quality.BAD, f"unknown quality {quality!r} in InfluxDB"
    if value is not None:
        if info.is_state:
            value = bool(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # JSON writes 24.0 as 24
    return Reading(info.key, int(ts), value, known, str(detail or ""))


class JournalAlarms:
    """`api.services.AlarmService` from the alarm journal of a service running in another process."""

    def __init__(self, journal: Journal, definitions: Mapping[str, AlarmDefinition], site: str,
                 now: Callable[[], float], *, wait: float = ACT_WAIT, ttl: float = STATUS_TTL) -> None:
        self.journal = journal
        self.definitions = dict(definitions)
        self.now = now
        self.wait = wait
        self.ttl = ttl
        self.performance = AlarmPerformance(site)
        recent = journal.events(since=now() - 86400.0, limit=100_000)  # as the runtime warms its figures up
        for event in recent:
            self.performance.observe(event)
        self.seq = self._head(max((event.seq for event in recent), default=journal.count_events()))
        self._statuses: dict[str, AlarmStatus] = {}
        self._read: float | None = None
        self._lock = threading.Lock()

    def _head(self, seq: int) -> int:
        """The journal's newest event number, from a known lower bound."""
        while True:
            newer = self.journal.events(after_seq=seq, limit=10_000)
            if not newer:
                return seq
            seq = newer[-1].seq

    # --- reads ----------------------------------------------------------------------------------------------

    def _current(self) -> dict[str, AlarmStatus]:
        with self._lock:
            if self._read is None or time.monotonic() - self._read >= self.ttl:
                journaled = self.journal.statuses()
                self._statuses = {key: journaled.get(key) or AlarmStatus(key=key, priority=definition.priority)
                                  for key, definition in self.definitions.items()}
                self._read = time.monotonic()
            return self._statuses

    def _forget(self) -> None:
        with self._lock:
            self._read = None

    def statuses(self) -> list[AlarmStatus]:
        return list(self._current().values())

    def shown(self, room: str | None = None) -> list[tuple[AlarmDefinition, AlarmStatus]]:
        """As the engine's list: not normal, or hidden while its condition holds; most urgent first."""
        shown = [status for status in self._current().values()
                 if status.state is not AlarmState.NORMAL or (status.hidden and status.condition)]
        shown.sort(key=lambda s: (s.priority.rank, -(s.active_since or 0.0)))
        pairs = [(self.definitions[status.key], status) for status in shown]
        return [pair for pair in pairs if room is None or pair[0].room == room]

    def find(self, target: str) -> tuple[AlarmDefinition, AlarmStatus]:
        """An alarm key, or a ticket number (`123` or `#123`), resolved as the engine resolves it."""
        statuses = self._current()
        if target in statuses:
            return self.definitions[target], statuses[target]
        ticket = target.lstrip("#")
        if ticket.isdigit():
            for key, status in statuses.items():
                if status.occurrence == int(ticket):
                    return self.definitions[key], status
        raise ActionRefused(f"no alarm {target!r}")

    # --- actions --------------------------------------------------------------------------------------------

    def act(self, action: str, target: str, actor: str, args: dict[str, Any]) -> list[AlarmEvent]:
        """Leave the command for the service and wait for its verdict; the events it journaled are returned."""
        if action not in ACTIONS:
            raise ActionRefused(f"unknown action {action!r}")
        key = self.find(target)[0].key
        mark = self._head(self.seq)
        commands = self.journal.commands
        command = commands.submit(self.now(), action, key, actor, args)
        started = time.monotonic()
        while (outcome := commands.check(command, time.monotonic() - started, self.wait, self.now())) is None:
            time.sleep(0.05)
        status, result = outcome
        if status == WITHDRAWN:
            raise AlarmsUnavailable(f"no stackwatch service took the command within {self.wait:g} s (is "
                                    "`stackwatch run` running on this site's state folder?); it was withdrawn")
        if status == "refused":
            raise ActionRefused(result)
        if status != "done":
            raise AlarmsUnavailable(f"the command ended {status}: {result}")
        self._forget()
        events = self.journal.events(alarm=key, after_seq=mark, limit=1000)
        own = next((event for event in events if event.actor == actor), None)
        return [event for event in events if own is not None and event.ts == own.ts]

    def call(self, action: Callable[[AlarmEngine, float], T], timeout: float = 10.0) -> T:
        """`api.services.AlarmAccess` for routes that need the engine itself: not in this process."""
        raise AlarmsUnavailable("the alarm engine runs in `stackwatch run`; this standalone API reads its journal")

    # --- following ------------------------------------------------------------------------------------------

    def poll(self) -> list[AlarmEvent]:
        """Events journaled since the last poll (the follower's; one thread calls it)."""
        events = self.journal.events(after_seq=self.seq, limit=10_000)
        if events:
            self.seq = events[-1].seq
            for event in events:
                self.performance.observe(event)
            self._forget()
        return events


class Follower:
    """Feeds the live stream from the journal (alarm transitions) and InfluxDB (readings, while a client listens)."""

    def __init__(self, feed: LiveFeed, alarms: JournalAlarms, latest: InfluxLatest, *,
                 events_every: float = EVENTS_EVERY, readings_every: float = READINGS_EVERY) -> None:
        self.feed, self.alarms, self.latest = feed, alarms, latest
        self.events_every, self.readings_every = events_every, readings_every
        self._seen: dict[str, Reading] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def step(self, readings: bool) -> None:
        events = self.alarms.poll()
        if events:
            self.feed.alarm_events(events)
        if readings:
            try:
                latest = self.latest.refresh()
            except StateUnavailable:
                return  # InfluxDB has not answered yet; /readyz says so
            changed = [reading for key, reading in latest.items() if self._seen.get(key) != reading]
            self._seen = dict(latest)
            if changed:
                self.feed.readings(changed)

    def _run(self) -> None:
        next_readings = 0.0
        while not self._stop.wait(self.events_every):
            due = self.feed.clients > 0 and time.monotonic() >= next_readings
            if due:
                next_readings = time.monotonic() + self.readings_every
            try:
                self.step(due)
            except Exception:  # a failed look is logged and the next one tried: the stream must go on
                log.exception("following the journal and InfluxDB failed; trying again")


@dataclass
class Standalone:
    app: FastAPI
    follower: Follower
    closing: tuple[Callable[[], None], ...]

    def close(self) -> None:
        self.follower.stop()
        for close in self.closing:
            close()


def _journal_path(config: SiteConfig, state_dir: Path) -> Path:
    path = Path(config.alarms.journal)
    return path if path.is_absolute() else state_dir / path


def build(config: SiteConfig, config_path: str | Path, clock: Clock | None = None, *,
          wait: float = ACT_WAIT) -> Standalone:
    """The app and its follower, on the service's state folder and InfluxDB."""
    clock = clock or SystemClock()
    state_dir = resolve_state_dir(config, config_path)
    state_dir.mkdir(parents=True, exist_ok=True)
    catalog = PointCatalog.from_config(config)
    influx = InfluxClient(config.storage.influxdb)
    latest = InfluxLatest(influx, catalog, clock.now)
    journal = Journal(_journal_path(config, state_dir))  # writable: actions are commands in it
    alarms = JournalAlarms(journal, build_ruleset(config, catalog, clock.now()).definitions, config.site.id,
                           clock.now, wait=wait)
    audit = AuditTrail(state_dir / config.api.audit)
    users = UserStore(state_dir / config.api.users, audit=audit, config=config.api, clock=clock.now)
    first = ensure_admin(users, state_dir)
    if first is not None:
        log.warning("first start: admin password written to %s; change it with `stackwatch users passwd admin`",
                    first)
    feed = LiveFeed()

    def health() -> dict[str, dict[str, Any]]:
        return _health(latest, alarms, users, clock.now())

    services = ApiServices(
        config=config, catalog=catalog, live=latest, now=clock.now, feed=feed, alarms=alarms, alarm_service=alarms,
        audit=audit, history=HistoryQuery(InfluxClient(config.storage.influxdb), catalog,
                                          timezone=config.site.timezone),
        health=health, metrics=lambda: _metrics(latest, alarms, clock.now()),
        config_digest=hashlib.sha256(Path(config_path).read_bytes()).hexdigest(), readiness_scope=SCOPE)
    auth = make_auth(users, config.api)
    closers = [journal.close, users.close, audit.close, influx.close]
    control = None
    if config.control.enabled and config.control.rooms:  # the service's view and command table, in its journal
        control_journal = ControlJournal(state_dir / config.control.journal)
        control = JournalControl(control_journal, clock.now, wait=wait)
        services.control_journal = control_journal
        closers.append(control_journal.close)
    app = create_app(config.api, services, auth.require,
                     extra_routers=(auth.router, auth.users_router, build_control_router(control, auth.require, audit)))
    return Standalone(app, Follower(feed, alarms, latest), tuple(closers))


def _health(latest: InfluxLatest, alarms: JournalAlarms, users: UserStore, now: float) -> dict[str, dict[str, Any]]:
    try:
        readings = latest.refresh()
    except StateUnavailable:
        readings = {}
    newest = max((reading.ts_ns for reading in readings.values()), default=None)
    age = None if newest is None else round(now - newest / 1e9, 1)
    checks: dict[str, dict[str, Any]] = {
        "influxdb": {"ok": latest.answered_at is not None and not latest.last_error,
                     "what": "InfluxDB answers the latest-state query", "detail": latest.last_error,
                     "query_seconds": round(latest.query_seconds, 3)},
        "readings": {"ok": age is not None and age <= READINGS_STALE,
                     "what": f"InfluxDB's newest reading is under {READINGS_STALE:g} s old: the service writes",
                     "newest_age_seconds": age, "points": len(readings)},
    }
    try:
        statuses = alarms.statuses()
        checks["alarm_journal"] = {"ok": True, "what": "the alarm journal can be read", "alarms": len(statuses)}
    except Exception as error:  # a probe reports, it does not fail
        checks["alarm_journal"] = {"ok": False, "what": "the alarm journal can be read", "detail": str(error)}
    try:
        users.has_users()
        checks["users"] = {"ok": True, "what": "the users store can be read (logins)"}
    except Exception as error:
        checks["users"] = {"ok": False, "what": "the users store can be read (logins)", "detail": str(error)}
    return checks


def _metrics(latest: InfluxLatest, alarms: JournalAlarms, now: float) -> list[Sample]:
    samples = [Sample("stackwatch_influx_up", 0 if latest.last_error or latest.answered_at is None else 1,
                      "1 while InfluxDB answers the latest-state query."),
               Sample("stackwatch_state_query_seconds", latest.query_seconds, "Last latest-state query's time."),
               Sample("stackwatch_state_age_seconds",
                      math.inf if latest.answered_at is None else max(0.0, now - latest.answered_at),
                      "Seconds since InfluxDB last answered the latest-state query.")]
    statuses = alarms.statuses()
    samples += alarm_samples(statuses)
    return samples


def serve(config: SiteConfig, config_path: str | Path, host: str | None = None, port: int | None = None) -> int:
    """`stackwatch api`: serve until SIGINT/SIGTERM."""
    standalone = build(config, config_path)
    host = host or config.api.host
    port = port or config.api.port
    standalone.follower.start()
    server = uvicorn.Server(uvicorn.Config(standalone.app, host=host, port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    log.info("standalone API for site %s on http://%s:%d", config.site.id, host, port)
    try:
        server.run()
    finally:
        standalone.close()
    return 0 if server.started else 1
