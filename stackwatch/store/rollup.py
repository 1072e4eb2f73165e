"""Hourly roll-ups of every numeric measurement, done by the service itself.

Raw readings are kept for years, hourly aggregates for ever (ARCHITECTURE.md,
"Retention"), and a year of history must come back in well under two seconds,
which raw 1-minute data cannot do. InfluxDB 1.x continuous queries cover only
the last interval (a restart or an outage leaves holes that nothing fills),
and neither continuous queries nor `SELECT … INTO` exist behind InfluxDB 2.x's
v1 API or in InfluxDB 3. So the roll-up reads with a plain
`SELECT mean, min, max, count … GROUP BY time(1h), *` and writes the rows back
as line protocol: the same two calls work on all three.

Layout: `<measurement>_1h` (e.g. `temperature_1h`) in retention policy
`forever`, with the raw series' tags and fields `mean`, `min`, `max` (floats)
and `count` (integer). Only `good` and `uncertain` readings enter them.

State lives in InfluxDB, next to the aggregates: measurement
`stackwatch_rollup` in `forever`, tag `measurement`, field `done_until`
(epoch seconds; every hour before it is rolled up, from the first raw reading
on). Kept there rather than in a file because it must agree with the data it
describes: a wiped or restored database brings its own state back, the API
reads coverage from the same place without sharing a path with the service,
and a second instance (or a restart) continues where the first stopped.

Writing a roll-up row again overwrites it (same series and timestamp), so
every hour can be redone safely: `backfill` is how late data (a logger's
upload, a spool drained after a long outage) gets into the aggregates.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ..catalog import PointCatalog
from ..clock import Clock, SystemClock
from .influx import InfluxClient, InfluxError, InfluxUnavailable, quote_ident
from .lineprotocol import series_key

log = logging.getLogger(__name__)

HOUR = 3600
ROLLUP_RP = "forever"
ROLLUP_SUFFIX = "_1h"
STATE_MEASUREMENT = "stackwatch_rollup"
USABLE = "(\"quality\" = 'good' OR \"quality\" = 'uncertain')"
_NUMERIC = frozenset({"float", "integer"})
_WRITE_BATCH = 5000
_ROWS_PER_QUERY = 50_000  # keeps one /query answer at a few MB however many series a measurement has


def quote_literal(text: str) -> str:
    """An InfluxQL string literal, safe for any text (the counterpart of `quote_ident`)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def floor_hour(ts: float) -> int:
    return math.floor(ts / HOUR) * HOUR


def ceil_hour(ts: float) -> int:
    return math.ceil(ts / HOUR) * HOUR


def rollup_measurement(measurement: str) -> str:
    return measurement + ROLLUP_SUFFIX


def raw_source(client: InfluxClient, measurement: str) -> str:
    """FROM target of raw readings: the client's retention policy when it writes to one, else the default."""
    if client.retention_policy:
        return f"{quote_ident(client.database)}.{quote_ident(client.retention_policy)}.{quote_ident(measurement)}"
    return quote_ident(measurement)


def rollup_source(client: InfluxClient, measurement: str) -> str:
    return f"{quote_ident(client.database)}.{quote_ident(ROLLUP_RP)}.{quote_ident(rollup_measurement(measurement))}"


def rolled_until(client: InfluxClient, measurements: Iterable[str] | None = None) -> dict[str, float]:
    """How far each measurement is rolled up (epoch seconds, exclusive); absent: not at all.

    Read by the roll-up to resume and by the history API to know which part of a range the aggregates cover.
    """
    wanted = None if measurements is None else set(measurements)
    state = f"{quote_ident(client.database)}.{quote_ident(ROLLUP_RP)}.{quote_ident(STATE_MEASUREMENT)}"
    try:
        series = client.query(f'SELECT last("done_until") AS "done_until" FROM {state} GROUP BY "measurement"',
                              epoch="s")
    except InfluxUnavailable:
        raise
    except InfluxError:  # no `forever` policy yet (fresh database): nothing rolled up
        return {}
    done: dict[str, float] = {}
    for item in series:
        name = item.tags.get("measurement", "")
        if item.values and (wanted is None or name in wanted) and item.values[0][1] is not None:
            done[name] = float(item.values[0][1])
    return done


def client_for_retention_policy(client: InfluxClient, retention_policy: str) -> InfluxClient:
    """A twin of `client` whose writes go to `retention_policy` (the roll-ups' `forever`)."""
    return client.with_retention_policy(retention_policy)


@dataclass(slots=True)
class RollupReport:
    """What one call did; `behind` says completed hours remain (the caller may call again at once)."""

    hours: dict[str, int] = field(default_factory=dict)  # hours rolled per measurement
    rows: int = 0  # roll-up rows written
    done_until: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # measurement -> why it was not rolled up
    behind: bool = False
    seconds: float = 0.0


class Rollup:
    """The service's roll-up job; thread-safe (one roll-up at a time), meant to run in a worker thread."""

    def __init__(self, client: InfluxClient, measurements: PointCatalog | Iterable[str], clock: Clock | None = None,
                 *, max_span: float = 7 * 86400, settle: float = 300.0, writer: InfluxClient | None = None) -> None:
        """`measurements`: a catalog (its numeric measurements) or their names. `max_span` bounds one `run` per
        measurement, so a year of catching up is done in pieces the job can interleave with its schedule.
        `settle`: an hour is rolled up only that long after it ends, so readings still on their way (poll
        cycle, spool flush) are in it. `writer`: a client writing to `forever` (default: a twin of `client`)."""
        self.client = client
        self.clock: Clock = clock or SystemClock()
        self.max_span = max(HOUR, floor_hour(max_span))
        self.settle = settle
        self.writer = writer or client_for_retention_policy(client, ROLLUP_RP)
        if isinstance(measurements, PointCatalog):
            counts = Counter(info.measurement for info in measurements if not info.is_state)
        else:
            counts = Counter({name: 500 for name in measurements})  # series per measurement unknown: a guess
        self.measurements = sorted(counts)
        self._series = dict(counts)
        self._lock = threading.Lock()
        self._policy_ready = False
        self._warned: set[str] = set()

    # -- API -----------------------------------------------------------------

    def run(self, now: float | None = None) -> RollupReport:
        """Roll up the completed hours after the last one done, at most `max_span` per measurement."""
        now = self.clock.now() if now is None else now
        with self._lock:
            return self._roll(None, None, now, bounded=True)

    def backfill(self, start: float, end: float) -> RollupReport:
        """(Re)do every completed hour in [start, end), widened to whole hours; as long as it takes.

        Idempotent. Moves the resume point forward only when the range joins it, so the state keeps meaning
        "everything before this is rolled up".
        """
        if not start < end:
            raise ValueError("backfill needs start < end")
        with self._lock:
            return self._roll(floor_hour(start), ceil_hour(end), self.clock.now(), bounded=False)

    def catch_up(self, budget: float = 600.0) -> RollupReport:
        """`run` again while behind, for at most `budget` seconds: after downtime the hourly job catches up in
        one go instead of a week per hour; each piece saves its progress, so stopping anywhere loses nothing."""
        started = time.monotonic()
        total = RollupReport()
        while True:
            report = self.run()
            for name, hours in report.hours.items():
                total.hours[name] = total.hours.get(name, 0) + hours
            total.rows += report.rows
            total.done_until.update(report.done_until)
            total.skipped.update(report.skipped)
            total.behind = report.behind
            if not report.behind or time.monotonic() - started >= budget:
                total.seconds = time.monotonic() - started
                return total

    def ensure_retention_policy(self) -> None:
        """Create `forever` (DURATION INF) unless it exists. InfluxDB 2.x/3.x have no such statement: there,
        create a bucket without expiry and map it as `<database>/forever` (DBRP) beforehand."""
        if self._policy_ready:
            return
        database = quote_ident(self.client.database)
        policies = self.client.query(f"SHOW RETENTION POLICIES ON {database}", epoch=None)
        names = {row[0] for item in policies for row in item.values if row}
        if ROLLUP_RP not in names:
            self.client.query(f"CREATE RETENTION POLICY {quote_ident(ROLLUP_RP)} ON {database} "
                              "DURATION INF REPLICATION 1", epoch=None)
        self._policy_ready = True

    # -- work ----------------------------------------------------------------

    def _roll(self, start: int | None, end: int | None, now: float, *, bounded: bool) -> RollupReport:
        began = time.monotonic()
        self.ensure_retention_policy()
        report = RollupReport()
        complete = floor_hour(now - self.settle)  # hours ending at or before this are complete
        state = rolled_until(self.client, self.measurements)
        for measurement in self.measurements:
            why = self._not_numeric(measurement)
            if why is not None:
                report.skipped[measurement] = why
                continue
            done = state.get(measurement)
            if done is None:
                first = self._first_raw(measurement)
                if first is None:
                    report.skipped[measurement] = "no readings yet"
                    continue
                done = float(floor_hour(first))
            lo = int(done) if start is None else start
            hi = complete if end is None else min(end, complete)
            if bounded:
                hi = min(hi, lo + self.max_span)
            if bounded and hi < complete:
                report.behind = True
            hours = 0
            step = min(self.max_span, HOUR * max(1, _ROWS_PER_QUERY // max(1, self._series.get(measurement, 1))))
            t = lo
            while t < hi:
                upto = min(hi, t + step)
                report.rows += self._roll_window(measurement, t, upto)
                hours += (upto - t) // HOUR
                if t <= done < upto:  # joins the frontier: everything before `upto` is now rolled up
                    done = float(upto)
                    self._save(measurement, upto)
                t = upto
            report.hours[measurement] = hours
            report.done_until[measurement] = done
        report.seconds = time.monotonic() - began
        return report

    def _roll_window(self, measurement: str, start: int, end: int) -> int:
        q = (f'SELECT mean("value") AS "mean", min("value") AS "min", max("value") AS "max", '
             f'count("value") AS "count" FROM {raw_source(self.client, measurement)} '
             f"WHERE {USABLE} AND time >= {start * 10**9} AND time < {end * 10**9} "
             "GROUP BY time(1h), * fill(none)")
        target = rollup_measurement(measurement)
        lines: list[str] = []
        written = 0
        for item in self.client.query(q, epoch="s"):
            key = series_key(target, item.tags)
            for ts, mean, low, high, count in item.values:
                if not count or mean is None:
                    continue
                lines.append(f"{key} mean={float(mean)!r},min={float(low)!r},max={float(high)!r},"
                             f"count={int(count)}i {int(ts) * 10**9}")
                if len(lines) >= _WRITE_BATCH:
                    self.writer.write(lines)
                    written += len(lines)
                    lines = []
        self.writer.write(lines)
        return written + len(lines)

    def _save(self, measurement: str, done_until: int) -> None:
        key = series_key(STATE_MEASUREMENT, {"measurement": measurement})
        self.writer.write([f"{key} done_until={done_until}i {done_until * 10**9}"])

    def _first_raw(self, measurement: str) -> float | None:
        series = self.client.query(f'SELECT first("value") FROM {raw_source(self.client, measurement)}', epoch="s")
        for item in series:
            if item.values:
                return float(item.values[0][0])
        return None

    def _not_numeric(self, measurement: str) -> str | None:
        """Why `measurement` cannot be averaged, or None. A text-valued MQTT point makes `value` a string field
        (in the shards it was written to); mean() would fail the whole query, so such a measurement is left
        out, with one warning."""
        series = self.client.query(f"SHOW FIELD KEYS FROM {raw_source(self.client, measurement)}", epoch=None)
        types = {str(row[1]) for item in series for row in item.values if row and row[0] == "value"}
        if not types:
            return None  # no data yet: `_first_raw` says so
        if types <= _NUMERIC:
            return None
        why = f"field `value` has type(s) {', '.join(sorted(types))}; only numbers are rolled up"
        if measurement not in self._warned:
            self._warned.add(measurement)
            log.warning("roll-up skips measurement %r: %s", measurement, why)
        return why


def schedule(scheduler: AsyncIOScheduler, rollup: Rollup, *, minute: int = 5, budget: float = 600.0,
             run_at_start: bool = True) -> Any:
    """Add the hourly job (at `minute` past each hour, UTC) and return APScheduler's `Job`.

    The work is blocking HTTP, so it runs in a worker thread and the event loop keeps serving. One instance
    at a time, missed runs coalesced into one, a late run still done within the hour: the state makes any run
    catch up on everything missed. `run_at_start` also runs it once now, so a restart after downtime does not
    wait for minute 5 to catch up.
    """
    async def job() -> None:
        try:
            report = await asyncio.to_thread(rollup.catch_up, budget)
        except InfluxUnavailable as error:
            log.warning("roll-up: InfluxDB unavailable (%s); the next run catches up", error)
            return
        except InfluxError as error:  # e.g. no `forever` policy and the server cannot create one (2.x/3.x)
            log.error("roll-up failed: %s; the next run tries again", error)
            return
        if report.rows or report.behind:
            log.info("roll-up: %d rows, %s hours in %.1f s%s", report.rows, report.hours, report.seconds,
                     "; still behind, continuing next run" if report.behind else "")

    options: dict[str, Any] = {}
    if run_at_start:
        options["next_run_time"] = datetime.now(UTC)
    return scheduler.add_job(job, "cron", minute=minute, timezone="UTC", id="stackwatch-rollup",
                             name="hourly roll-up", max_instances=1, coalesce=True, misfire_grace_time=3600,
                             replace_existing=True, **options)
