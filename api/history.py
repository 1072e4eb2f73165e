"""History of one point or of one room's points, read from InfluxDB (issue 5).

Kept free of FastAPI so the route layer stays thin and this stays testable on
its own: callers get `KeyError` for an unknown point or room and `ValueError`
for a request that cannot be answered as asked (the routes map them to 404
and 422).

Where each aggregation comes from, and why:

* `raw`: the readings as stored, every quality (a gap of `comm_failure` is
  part of the history); refused past `limit` rows rather than truncated.
* `1m`: `GROUP BY time(1m)` on raw readings; the range is bounded by `limit`.
* `1h`, `1d`: from the hourly roll-up (`stackwatch.store.rollup`), which is
  what makes a year answer in milliseconds instead of scanning half a million
  readings per point. The part the roll-up does not cover yet (the current
  hour, or everything when the roll-up has not run) is computed from raw
  readings the same way and joined, so the answer never has a hole at the end.
* `1d` is the count-weighted mean of the hourly means, sum(mean·count) /
  sum(count): exactly the mean of the day's good readings, where a mean of
  means would over-weight hours with few readings. Days are local days of the
  site's time zone (InfluxQL `tz()`); from the roll-up they are exact in zones
  whose offset is a whole number of hours (Asia/Shanghai is).

Aggregates widen the range to whole buckets (an hour, a local day), so every
bucket returned is complete. Only `good` and `uncertain` readings enter them.
Nothing a caller sends reaches InfluxQL: points and rooms are looked up in the
catalog, and what is sent is the catalog's names, quoted.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.store.influx import InfluxClient
from stackwatch.store.influx import Series as InfluxSeries
from stackwatch.store.rollup import (
    USABLE,
    ceil_hour,
    floor_hour,
    quote_literal,
    raw_source,
    rolled_until,
    rollup_source,
)

Agg = Literal["raw", "1m", "1h", "1d"]
AGGS: tuple[str, ...] = get_args(Agg)
# (ts seconds, mean, min, max, count); raw: the value three times and count 1 (0 for a reading without a value)
Row = tuple[float, float | None, float | None, float | None, int]

MAX_SPAN = 10 * 366 * 86400.0
DEFAULT_LIMIT = 100_000
ZONE_HINT = "times need a zone, e.g. 2026-11-30T08:00:00+08:00"
_RELATIVE = re.compile(r"now(?:\s*-\s*(\d+(?:\.\d+)?)\s*([smhdw]))?", re.IGNORECASE)
_BUCKET = {"1m": 60, "1h": 3600, "1d": 86400}
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ISO 8601 with a zone (`…+08:00`, `…Z`) or `now`, `now-24h`, `now-7d` (s/m/h/d/w).

    A time without a zone is refused rather than guessed: the server's zone, the site's and the reader's
    can all differ, and an archive inspector's "08:00" read in the wrong one is eight hours off.
    """
    stripped = text.strip()
    relative = _RELATIVE.fullmatch(stripped)
    if relative:
        base = time.time() if now is None else now
        amount, unit = relative.groups()
        return base - (float(amount) * _UNIT[unit.lower()] if amount else 0.0)
    try:
        parsed = dt.datetime.fromisoformat(stripped.upper())  # RFC 3339 allows a lowercase `t` and `z`
    except ValueError:
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "…"
        raise ValueError(f"unreadable time {shown!r}: give ISO 8601 with a zone, e.g. 2026-11-30T08:00:00+08:00, "
                         "or now-24h") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(ZONE_HINT)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class Series:
    """One point's history. `source`: "raw", "rollup 1h", or "rollup 1h + raw" when the tail not yet rolled
    up was computed from raw readings. `quality` (raw only) runs parallel to `rows`."""

    point: str
    quantity: str
    unit: str
    agg: str
    source: str
    rows: list[Row] = field(default_factory=list)
    quality: list[str] | None = None


class HistoryQuery:
    """Blocking (HTTP to InfluxDB): the route layer calls it in a worker thread."""

    def __init__(self, client: InfluxClient, catalog: PointCatalog, *, timezone: str = "UTC",
                 max_span: float = MAX_SPAN) -> None:
        """`timezone`: the site's (`site.timezone`), which decides where a `1d` bucket starts."""
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {timezone!r}") from error
        self.timezone = timezone
        self.client = client
        self.catalog = catalog
        self.max_span = max_span
        self._rooms = {info.room for info in catalog}
        self._quantities = {info.quantity for info in catalog}

    # -- API -----------------------------------------------------------------

    def point(self, point_key: str, start: float, end: float, agg: Agg = "1h",
              limit: int = DEFAULT_LIMIT) -> Series:
        if point_key not in self.catalog:
            raise KeyError(f"unknown point {point_key!r}")
        return self._history([self.catalog[point_key]], start, end, agg, limit)[0]

    def room(self, room_id: str, quantity: str, start: float, end: float, agg: Agg = "1h",
             limit: int = DEFAULT_LIMIT) -> list[Series]:
        """One series per point of `quantity` in the room, in catalog order, empty ones included (a sensor
        with no data in the range is shown as such, not left out); [] if the room has no such point."""
        if room_id not in self._rooms:
            raise KeyError(f"unknown room {room_id!r}")
        if quantity not in self._quantities:
            raise KeyError(f"unknown quantity {quantity!r}")
        infos = [info for info in self.catalog if info.room == room_id and info.quantity == quantity]
        self._check(start, end, agg, limit)
        by_measurement: dict[str, list[PointInfo]] = {}
        for info in infos:  # one quantity is one measurement, unless some of its points are on/off states
            by_measurement.setdefault(info.measurement, []).append(info)
        found = {s.point: s for group in by_measurement.values() for s in self._history(group, start, end, agg, limit)}
        return [found[info.key] for info in infos]

    # -- building blocks -----------------------------------------------------

    def _check(self, start: float, end: float, agg: str, limit: int) -> None:
        if agg not in AGGS:
            raise ValueError(f"agg must be one of {', '.join(AGGS)}, not {agg!r}")
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError("start and end must be finite times")
        if start >= end:
            raise ValueError("start must be before end")
        if end - start > self.max_span:
            raise ValueError(f"a range is at most {self.max_span / 86400 / 366:g} years")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        buckets = math.ceil((end - start) / _BUCKET[agg]) if agg in _BUCKET else 0
        if buckets > limit:
            wider = {"1m": "agg=1h or 1d", "1h": "agg=1d"}.get(agg, "")
            raise ValueError(f"{buckets:,} {agg} buckets exceed the limit of {limit:,}; ask for "
                             f"{wider + ' or ' if wider else ''}a shorter range")

    def _history(self, infos: Sequence[PointInfo], start: float, end: float, agg: str,
                 limit: int) -> list[Series]:
        self._check(start, end, agg, limit)
        if agg != "raw" and any(info.is_state for info in infos):
            raise ValueError("on/off points have only raw history (agg=raw)")
        measurement = infos[0].measurement
        where = _points_filter(infos)
        if agg == "raw":
            return self._raw(infos, measurement, where, start, end, limit)
        if agg == "1m":
            start, end = math.floor(start / 60) * 60, math.ceil(end / 60) * 60
            rows = self._grouped(_raw_aggregate(self.client, measurement, where, start, end, "1m", None))
            return [_series(info, agg, "raw", rows.get(_key(info), [])) for info in infos]
        tz = quote_literal(self.timezone) if agg == "1d" else None
        if agg == "1h":
            start, end = floor_hour(start), ceil_hour(end)
        else:
            start, end = self._day_floor(start), self._day_ceil(end)
        covered = rolled_until(self.client, [measurement]).get(measurement)
        split = start if covered is None else min(max(covered, start), end)
        parts: list[dict[tuple[str, str], list[Row]]] = []
        if split > start:
            parts.append(self._grouped(_rollup_aggregate(self.client, measurement, where, start, split, agg, tz)))
        if split < end:
            parts.append(self._grouped(_raw_aggregate(self.client, measurement, where, split, end, agg, tz)))
        source = "raw" if split == start else "rollup 1h" if split == end else "rollup 1h + raw"
        return [_series(info, agg, source, _merge([part.get(_key(info), []) for part in parts]))
                for info in infos]

    def _raw(self, infos: Sequence[PointInfo], measurement: str, where: str, start: float, end: float,
             limit: int) -> list[Series]:
        q = (f'SELECT "value", "quality" FROM {raw_source(self.client, measurement)} WHERE ({where}) '
             f'AND time >= {_ns(start)} AND time < {_ns(end)} GROUP BY "device", "point" LIMIT {limit + 1}')
        rows: dict[tuple[str, str], list[Row]] = {}
        quality: dict[tuple[str, str], list[str]] = {}
        for item in self.client.query(q, epoch="ms"):
            key = (item.tags.get("device", ""), item.tags.get("point", ""))
            value_at, quality_at = item.columns.index("value"), item.columns.index("quality")
            for row in item.values:
                value = row[value_at]
                number = float(value) if isinstance(value, int | float) else None  # text points: quality only
                rows.setdefault(key, []).append((row[0] / 1000, number, number, number, 0 if number is None else 1))
                quality.setdefault(key, []).append(str(row[quality_at] or ""))
            if len(rows.get(key, ())) > limit:
                raise ValueError(f"more than {limit:,} raw readings of {key[0]}.{key[1]} in this range; "
                                 "ask for an aggregate (agg=1m, 1h or 1d) or a shorter range")
        return [Series(info.key, info.quantity, info.unit, "raw", "raw", rows.get(_key(info), []),
                       quality.get(_key(info), [])) for info in infos]

    @staticmethod
    def _grouped(series: Iterable[InfluxSeries]) -> dict[tuple[str, str], list[Row]]:
        """Rows per (device, point), merged when a point's readings carry other tags too (moved rooms)."""
        by_point: dict[tuple[str, str], list[list[Row]]] = {}
        for item in series:
            key = (item.tags.get("device", ""), item.tags.get("point", ""))
            rows: list[Row] = [(float(ts), float(mean), float(low), float(high), int(count))
                               for ts, mean, low, high, count in item.values if count]
            by_point.setdefault(key, []).append(rows)
        return {key: _merge(parts) if len(parts) > 1 else parts[0] for key, parts in by_point.items()}

    def _day_floor(self, ts: float) -> int:
        local = dt.datetime.fromtimestamp(ts, self.zone)
        return int(dt.datetime.combine(local.date(), dt.time(), self.zone).timestamp())

    def _day_ceil(self, ts: float) -> int:
        floor = self._day_floor(ts)
        if floor == ts:
            return floor
        next_day = dt.datetime.fromtimestamp(floor, self.zone).date() + dt.timedelta(days=1)
        return int(dt.datetime.combine(next_day, dt.time(), self.zone).timestamp())


def _ns(ts: float) -> int:
    return round(ts * 1e9)


def _key(info: PointInfo) -> tuple[str, str]:
    return (info.device, info.point)


def _points_filter(infos: Sequence[PointInfo]) -> str:
    return " OR ".join(f'("device" = {quote_literal(info.device)} AND "point" = {quote_literal(info.point)})'
                       for info in infos)


def _tail(tz: str | None) -> str:
    return " fill(none)" + (f" tz({tz})" if tz else "")


def _raw_aggregate(client: InfluxClient, measurement: str, where: str, start: float, end: float, bucket: str,
                   tz: str | None) -> list[InfluxSeries]:
    q = (f'SELECT mean("value"), min("value"), max("value"), count("value") '
         f"FROM {raw_source(client, measurement)} WHERE ({where}) AND {USABLE} "
         f'AND time >= {_ns(start)} AND time < {_ns(end)} GROUP BY time({bucket}), "device", "point"{_tail(tz)}')
    return client.query(q, epoch="s")


def _rollup_aggregate(client: InfluxClient, measurement: str, where: str, start: float, end: float, bucket: str,
                      tz: str | None) -> list[InfluxSeries]:
    source = rollup_source(client, measurement)
    span = f"time >= {_ns(start)} AND time < {_ns(end)}"
    if bucket == "1h":
        q = (f'SELECT "mean", "min", "max", "count" FROM {source} WHERE ({where}) AND {span} '
             'GROUP BY "device", "point"')
    else:  # weighted: sum(mean·count) / sum(count) per bucket
        q = ('SELECT sum("w") / sum("n"), min("lo"), max("hi"), sum("n") FROM '
             f'(SELECT "mean" * "count" AS "w", "count" AS "n", "min" AS "lo", "max" AS "hi" FROM {source} '
             f'WHERE ({where}) AND {span}) WHERE {span} GROUP BY time({bucket}), "device", "point"{_tail(tz)}')
    return client.query(q, epoch="s")


def _merge(parts: Sequence[Sequence[Row]]) -> list[Row]:
    """Rows of several sources joined by bucket; a bucket found twice (a day partly rolled up, partly raw)
    is combined as one: count-weighted mean, lowest min, highest max, counts added."""
    nonempty = [part for part in parts if part]
    if len(nonempty) == 1:
        return list(nonempty[0])
    buckets: dict[float, Row] = {}
    for part in nonempty:
        for row in part:
            seen = buckets.get(row[0])
            buckets[row[0]] = row if seen is None else _combine(seen, row)
    return [buckets[ts] for ts in sorted(buckets)]


def _combine(a: Row, b: Row) -> Row:
    count = a[4] + b[4]
    if a[1] is None or b[1] is None or count == 0:
        return a if b[1] is None else b
    mean = (a[1] * a[4] + b[1] * b[4]) / count
    low = min(x for x in (a[2], b[2]) if x is not None)
    high = max(x for x in (a[3], b[3]) if x is not None)
    return (a[0], mean, low, high, count)


def _series(info: PointInfo, agg: str, source: str, rows: list[Row]) -> Series:
    return Series(info.key, info.quantity, info.unit, agg, source, rows)
