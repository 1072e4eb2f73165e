"""The alarm engine in the running service: its own thread, fed by the reading hub through a queue.

Why a thread: the hub calls listeners on the asyncio loop (Modbus) and on the
MQTT acknowledgement thread; the engine journals to SQLite. A queue keeps both
callers at the cost of an append, and one thread owns the engine, so the
engine needs no locks. Operator actions (API, CLI commands in the journal)
are run on the same thread through `call`.

Why the queue is bounded: a burst (a broker handing over a night of queued
messages) arrives faster than the rules run, and every queued reading is
memory. Past `max_queued` readings a collector thread waits for the engine, as
it waits for a full spool, so the broker keeps what is not yet taken. The
asyncio loop never waits (it also serves the API); its sources (Modbus polls)
are paced by their schedule, not by a backlog.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from api.model import Audit
from stackwatch.catalog import PointCatalog
from stackwatch.clock import Clock
from stackwatch.command_queue import Command
from stackwatch.config.model import SiteConfig
from stackwatch.readings import Reading

from .engine import AlarmEngine, Output
from .journal import Journal
from .model import AlarmEvent, AlarmStatus
from .performance import AlarmPerformance
from .ruleset import build_ruleset

log = logging.getLogger("stackwatch.alarms")
T = TypeVar("T")
_STOP = object()


class _Batch(NamedTuple):
    received: float  # perf_counter when the hub handed it over: the start of alarm latency
    readings: Sequence[Reading]


class _Call(NamedTuple):
    action: Callable[[AlarmEngine, float], Any]
    future: Future[Any]
COMMAND_POLL = 0.5  # seconds between looks at the journal's command table (CLI actions)
MAX_QUEUED_READINGS = 20_000  # about 0.15 s of the engine's work; a collector thread waits beyond it


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class AlarmRuntime:
    def __init__(self, config: SiteConfig, catalog: PointCatalog, state_dir: Path, clock: Clock,
                 outputs: Sequence[Output] = (), audit: Audit | None = None,
                 max_queued: int = MAX_QUEUED_READINGS) -> None:
        self.clock = clock
        self.audit = audit
        self.config = config
        journal_path = Path(config.alarms.journal)
        self.journal = Journal(journal_path if journal_path.is_absolute() else state_dir / journal_path)
        now = clock.now()
        self.performance = AlarmPerformance(config.site.id)
        for event in self.journal.events(since=now - 86400.0, limit=100_000):
            self.performance.observe(event)
        self.engine = AlarmEngine(build_ruleset(config, catalog, now), self.journal, config.alarms, now,
                                  [*outputs, self._observe])
        self.tick_interval = config.alarms.tick
        self._queue: queue.SimpleQueue[_Batch | _Call | object] = queue.SimpleQueue()
        self.max_queued = max_queued
        self._queued = 0  # readings handed over and not yet evaluated
        self._room = threading.Condition()
        self.most_queued = 0  # high-water mark of `_queued` (status and benchmark)
        self.waits = 0  # hand-overs that had to wait for the engine
        self._thread: threading.Thread | None = None
        self.latencies: list[float] | None = None  # set to a list to record reading → journaled (benchmark)

    def _observe(self, events: Sequence[AlarmEvent], _statuses: Sequence[AlarmStatus]) -> None:
        for event in events:
            self.performance.observe(event)

    # --- the reading hub's listener -----------------------------------------------------------------------------

    def __call__(self, readings: Sequence[Reading]) -> None:
        with self._room:
            if self._queued >= self.max_queued and self.running and not _on_event_loop():
                self.waits += 1
                while self._queued >= self.max_queued and self.running:
                    self._room.wait(0.5)
            self._queued += len(readings)
            if self._queued > self.most_queued:
                self.most_queued = self._queued
        self._queue.put(_Batch(time.perf_counter(), readings))

    @property
    def queued(self) -> int:
        """Readings handed over that the engine has not evaluated yet."""
        return self._queued

    def _taken(self, count: int) -> None:
        with self._room:
            self._queued -= count
            self._room.notify_all()

    # --- operator actions from other threads --------------------------------------------------------------------

    def call(self, action: Callable[[AlarmEngine, float], T], timeout: float = 10.0) -> T:
        """Run `action(engine, now)` on the engine's thread and return its result (or raise its error)."""
        if self._thread is None:
            return action(self.engine, self.clock.now())
        future: Future[T] = Future()
        self._queue.put(_Call(action, future))
        return future.result(timeout)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alarm-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(10)
            self._thread = None
        self.engine.checkpoint(self.clock.now())
        self.journal.close()

    def _run(self) -> None:
        next_tick = self.clock.now()
        next_commands = 0.0
        while True:
            wait = max(0.0, min(next_tick - self.clock.now(), 0.2))
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if item is not None:
                    self._handle(item)
                now = self.clock.now()
                if now >= next_tick:
                    self.engine.tick(now)
                    next_tick = now + self.tick_interval
                if time.monotonic() >= next_commands:
                    next_commands = time.monotonic() + COMMAND_POLL
                    commands = self.journal.commands.take_pending()
                    if commands:
                        self._audit(self.engine.run_commands(commands, now))
            except Exception:  # one bad batch must not stop alarm decisions for good
                log.exception("alarm engine failed on a batch; going on")

    def _audit(self, outcomes: Sequence[tuple[Command, str, str]]) -> None:
        if self.audit is None:
            return
        for command, status, result in outcomes:
            via = str(command.args.get("via") or "cli")
            if via == "api":  # `stackwatch api` audits its own actions, with the client's address
                continue
            reason = str(command.args.get("comment") or command.args.get("reason") or "")
            self.audit.append(command.actor, f"alarm.{command.action}" + ("" if status == "done" else ".refused"),
                              command.target, detail={"via": via, "result": result}, reason=reason,
                              remote=str(command.args.get("remote") or via))

    def _handle(self, item: object) -> None:
        if isinstance(item, _Call):
            try:
                item.future.set_result(item.action(self.engine, self.clock.now()))
            except Exception as error:
                item.future.set_exception(error)
            return
        if not isinstance(item, _Batch):
            return
        batches = [item]
        while True:  # take whatever else is queued: one journal commit for a burst
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(more, _Batch):
                self._queue.put(more)  # a call or the stop: after this burst
                break
            batches.append(more)
        readings = [reading for batch in batches for reading in batch.readings]
        try:
            events = self.engine.process(readings, self.clock.now())
        finally:
            self._taken(len(readings))
        if events and self.latencies is not None:
            done = time.perf_counter()
            self.latencies.extend(done - batch.received for batch in batches)
