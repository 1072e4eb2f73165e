"""Drains the spool into InfluxDB: the only path by which readings leave the spool.

A row is deleted only after InfluxDB acknowledged every one of its lines (or the
bad ones were moved to `rejected`), so a crash, an outage or a cancelled stop
re-sends at worst; re-sending is harmless because a reading's timestamp is fixed
when it is accepted and InfluxDB overwrites an identical point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..clock import Clock, SystemClock
from ..config.services import InfluxConfig
from .influx import InfluxRefused, InfluxRejected, InfluxUnavailable
from .spool import Spool, SpoolBatch

log = logging.getLogger(__name__)
RunBlocking = Callable[..., Awaitable[Any]]


class LineWriter(Protocol):
    """The one call the writer needs from `InfluxClient` (tests pass a small fake)."""

    def write(self, lines: Sequence[str]) -> None: ...


@dataclass(slots=True)
class Chunk:
    """At most `batch_lines` lines, with the spool row of each, and the rows this chunk completes."""

    lines: list[str]
    row_of_line: list[int]
    completes: list[int]


def plan_chunks(batches: Sequence[SpoolBatch], batch_lines: int) -> list[Chunk]:
    """Cut the peeked rows into requests; a row split across chunks completes with its last chunk."""
    chunks: list[Chunk] = []
    current = Chunk([], [], [])
    for batch in batches:
        lines = batch.lines
        if not lines:  # nothing to send, but the row must still go
            current.completes.append(batch.id)
        start = 0
        while start < len(lines):
            room = batch_lines - len(current.lines)
            take = lines[start:start + room]
            current.lines.extend(take)
            current.row_of_line.extend([batch.id] * len(take))
            start += len(take)
            if start >= len(lines):
                current.completes.append(batch.id)
            if len(current.lines) >= batch_lines:
                chunks.append(current)
                current = Chunk([], [], [])
    if current.lines or current.completes:
        chunks.append(current)
    return chunks


class InfluxWriter:
    """An asyncio task; counters are plain attributes for /metrics."""

    def __init__(self, spool: Spool, client: LineWriter, config: InfluxConfig | None = None,
                 clock: Clock | None = None, *, retry_initial: float = 0.5, run_blocking: RunBlocking | None = None,
                 prepare: Callable[[], None] | None = None) -> None:
        """`config` gives batch_lines, flush_interval and retry_max. Unless `prepare` is given, a client with
        `create_database` gets it run (with `config.create_database`) before the first write and after each
        outage, so a fresh server, or one that lost its data, is set up again without a restart."""
        config = config or InfluxConfig()
        self.spool = spool
        self.client = client
        self.batch_lines = config.batch_lines
        self.flush_interval = config.flush_interval
        self.retry_max = config.retry_max
        self.retry_initial = min(retry_initial, config.retry_max)
        self._clock: Clock = clock or SystemClock()
        self._run_blocking: RunBlocking = run_blocking or asyncio.to_thread
        if prepare is None and config.create_database:
            prepare = getattr(client, "create_database", None)
        self._prepare = prepare
        self._prepared = prepare is None
        # counters
        self.lines_written = 0
        self.write_requests = 0
        self.write_failures = 0  # requests that failed for want of a server (retried)
        self.write_rejections = 0  # requests InfluxDB refused for their content (bisected)
        self.lines_rejected = 0
        self.last_write_latency_s = 0.0
        self.outage = False
        self.outage_since: float | None = None
        self.last_error = ""
        # state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._notify_pending = False
        self._notify_lock = threading.Lock()

    @property
    def spool_depth(self) -> int:
        return self.spool.depth()

    def stats(self) -> dict[str, float | int | bool]:
        return {"lines_written": self.lines_written, "write_requests": self.write_requests,
                "write_failures": self.write_failures, "write_rejections": self.write_rejections,
                "lines_rejected": self.lines_rejected, "last_write_latency_s": self.last_write_latency_s,
                "spool_depth": self.spool.depth(), "spool_rejected": self.spool.rejected_count(),
                "outage": self.outage}

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start draining on the running loop (any backlog from before a restart goes first)."""
        if self._task is not None:
            raise RuntimeError("writer already started")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="influx-writer")

    def notify(self) -> None:
        """New rows are in the spool. Safe from any thread; a burst of calls costs one loop wake-up.

        Batching by size and time: the writer wakes early only for a full request
        (`batch_lines`); a smaller backlog waits for `flush_interval`. Waking on
        every append turned a steady stream into hundreds of tiny requests a second.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or self.spool.depth() < self.batch_lines:
            return
        with self._notify_lock:
            if self._notify_pending:
                return
            self._notify_pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(self._on_notify)

    def _on_notify(self) -> None:
        with self._notify_lock:
            self._notify_pending = False
        if self._wake is not None:
            self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush what InfluxDB takes within `timeout` seconds, then stop; the rest stays in the spool."""
        task = self._task
        if task is None:
            return
        assert self._stop is not None and self._wake is not None
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.warning("InfluxDB writer stopped with %d lines still spooled", self.spool.depth())
        self._task = None

    async def drain(self) -> None:
        """Write until the spool is empty (benchmarks, tests and shutdown); raises while InfluxDB is down."""
        while await self._drain_once():
            pass

    # -- the loop --------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None and self._stop is not None
        delay = self.retry_initial
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self.drain()
            except InfluxUnavailable as error:
                self._enter_outage(error)
                await self._wait(delay, wake_on_notify=False)
                delay = min(self.retry_max, delay * 2)
                continue
            except Exception:  # a spool error must not end the task silently; keep trying
                log.exception("InfluxDB writer: unexpected error; retrying in %.1fs", delay)
                await self._wait(delay, wake_on_notify=False)
                delay = min(self.retry_max, delay * 2)
                continue
            delay = self.retry_initial
            await self._wait(self.flush_interval, wake_on_notify=True)
        try:  # final flush: one pass, no back-off
            await self.drain()
        except InfluxUnavailable as error:
            self._enter_outage(error)
        except Exception:
            log.exception("InfluxDB writer: final flush failed; the rest stays in the spool")

    async def _wait(self, seconds: float, *, wake_on_notify: bool) -> None:
        assert self._wake is not None and self._stop is not None
        waiters = [asyncio.ensure_future(self._clock.sleep(seconds)), asyncio.ensure_future(self._stop.wait())]
        if wake_on_notify:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _drain_once(self) -> bool:
        """One peek's worth; False when the spool was empty."""
        batches: list[SpoolBatch] = await self._run_blocking(self.spool.peek, self.batch_lines)
        if not batches:
            return False
        if not self._prepared:
            await self._run_prepare()
        for chunk in plan_chunks(batches, self.batch_lines):
            if chunk.lines:
                await self._write_chunk(chunk)
            if chunk.completes:
                await self._run_blocking(self.spool.delete, chunk.completes)
        return True

    async def _run_prepare(self) -> None:
        assert self._prepare is not None
        try:
            await self._run_blocking(self._prepare)
        except InfluxRejected as error:  # e.g. a 2.x/3.x server without CREATE DATABASE: writes will tell
            log.warning("InfluxDB set-up step failed (%s); writing anyway", error)
        self._prepared = True

    async def _write_chunk(self, chunk: Chunk) -> None:
        bad = await self._write_isolating(chunk.lines, 0)
        if not bad:
            return
        grouped: dict[tuple[int, str], list[str]] = {}
        for index, reason in bad:
            grouped.setdefault((chunk.row_of_line[index], reason), []).append(chunk.lines[index])
        for (row_id, reason), lines in grouped.items():
            await self._run_blocking(self.spool.reject, row_id, lines, reason)
            self.lines_rejected += len(lines)
        log.warning("InfluxDB rejected %d line(s), moved to the spool's `rejected` table; first reason: %s",
                    len(bad), bad[0][1])

    async def _write_isolating(self, lines: list[str], offset: int) -> list[tuple[int, str]]:
        """Write `lines`; on a rejection, bisect to find the bad lines. Returns (index, reason) of each."""
        try:
            await self._write(lines)
            return []
        except InfluxRejected as error:
            self.write_rejections += 1
            if len(lines) == 1 or error.dropped == len(lines):  # every point refused: no need to look closer
                return [(offset + i, error.message) for i in range(len(lines))]
        middle = len(lines) // 2
        left = await self._write_isolating(lines[:middle], offset)
        right = await self._write_isolating(lines[middle:], offset + middle)
        return left + right

    async def _write(self, lines: list[str]) -> None:
        self.write_requests += 1
        started = time.perf_counter()
        try:
            await self._run_blocking(self.client.write, lines)
        except InfluxUnavailable:
            self.write_failures += 1
            raise
        except InfluxRejected:
            self._leave_outage()  # it answered: the server is up
            raise
        self.last_write_latency_s = time.perf_counter() - started
        self.lines_written += len(lines)
        self._leave_outage()

    # -- outage reporting: once when it starts, once when it ends --------------

    def _enter_outage(self, error: InfluxUnavailable) -> None:
        self.last_error = str(error)
        self._prepared = self._prepare is None
        if self.outage:
            log.debug("InfluxDB still unavailable: %s", error)
            return
        self.outage = True
        self.outage_since = self._clock.now()
        level = logging.ERROR if isinstance(error, InfluxRefused) else logging.WARNING
        log.log(level, "InfluxDB unavailable (%s); readings stay in the spool (%d lines) and are retried",
                error, self.spool.depth())

    def _leave_outage(self) -> None:
        if not self.outage:
            return
        lasted = self._clock.now() - (self.outage_since or self._clock.now())
        self.outage = False
        self.outage_since = None
        log.info("InfluxDB available again after %.1fs; %d lines still spooled", lasted, self.spool.depth())
