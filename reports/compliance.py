"""Environmental compliance figures for one room and one quantity over a period (issue 7).

Pure functions over plain data. A *series* is a list of `(ts_seconds, value)` samples of one
quantity of one room, sorted by time, holding usable readings only (the caller filters quality).
Every function makes one pass over the series and allocates per result, not per sample, so a
year of 1-minute samples takes a fraction of a second.

Conventions shared by all functions:

- A sample holds its value until the next sample, but never for longer than `max_gap`; time
  beyond that is *unknown*, never counted as within the limits. The last sample holds until the
  period's end (or `until`), again at most `max_gap`.
- Limits are the allowed range, inclusive: a value exactly at a limit is within it (as the alarm
  engine's `LimitRule` decides). `None` for a limit means no limit on that side.
- Daily fluctuation follows JGJ 25-2010 §5.2.3 in both readings: max − min over each calendar day
  in the site's time zone against the allowance (4 °C / 10 % RH), and every value within
  set-point ± band (±2 °C / ±5 % RH) when a set-point is configured.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

Sample = tuple[float, float]  # (ts_seconds, value)

# Tolerance for comparisons of *derived* figures (max − min, |value − set-point|) so that float
# rounding (22.3 − 18.3 = 4.000000000000002) does not fail a day that is exactly at its allowance.
# Raw values against raw limits are compared exactly.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class TimeShare:
    """Seconds of the period within, outside and without data, and the share within.

    `share_of_known` is within / (within + outside); `share_of_period` is within / the whole
    period, the figure that cannot hide missing data. Either is None when its denominator is 0.
    """

    within: float
    outside: float
    unknown: float
    share_of_known: float | None
    share_of_period: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    """Minimum, time-weighted mean and maximum of a series (None when empty), and its sample count.

    Unpacks as a tuple: `lo, mean, hi, count = summary(series)`.
    """

    min: float | None
    mean: float | None
    max: float | None
    count: int

    def __iter__(self) -> Iterator[float | int | None]:
        return iter((self.min, self.mean, self.max, self.count))


@dataclass(frozen=True, slots=True)
class Excursion:
    """A contiguous run of samples outside one limit.

    `end` is the first return within limits (`ended_by="return"`), or the last outside sample plus
    its holding time when a gap longer than `max_gap` (`"gap"`) or the end of the data (`"end"`)
    cuts the run: those two say the excursion's true end was not observed.
    """

    start: float
    end: float
    duration: float
    peak: float
    side: Literal["high", "low"]
    limit: float
    ended_by: Literal["return", "gap", "end"]


@dataclass(frozen=True, slots=True)
class Day:
    """One calendar day in the site's time zone: both readings of JGJ 25-2010 §5.2.3.

    `within`: max − min ≤ allowance. `within_band`: every value within set-point ± band, None when
    no set-point (or band) is configured. `start`/`end` are the day's bounds in UTC seconds (a DST
    day lasts 23 or 25 hours); `samples` counts the readings that day.
    """

    date: date
    min: float
    max: float
    range: float
    within: bool
    within_band: bool | None
    samples: int
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class FluctuationSummary:
    """Days within the daily allowance (and the set-point band) out of days with any reading."""

    days_measured: int
    days_within: int
    days_within_band: int | None
    share: float | None


@dataclass(frozen=True, slots=True)
class Completeness:
    """Samples present in [start, end) against those expected, and every gap in the period.

    `ratio` is present / expected (not capped: above 1 means sampling faster than expected);
    None when no sample is expected. `gaps` are (start, end) intervals with no sample longer than
    `gap_factor × expected_interval`, including before the first and after the last sample.
    """

    expected: int
    present: int
    ratio: float | None
    gaps: list[tuple[float, float]]
    gap_seconds: float


def _check_period(period_start: float, period_end: float) -> None:
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")


def _check_max_gap(max_gap: float) -> None:
    if not max_gap > 0:
        raise ValueError(f"max_gap must be positive, got {max_gap}")


def time_in_limits(samples: Sequence[Sample], low: float | None, high: float | None,
                   period_start: float, period_end: float, max_gap: float) -> TimeShare:
    """Seconds of [period_start, period_end) within limits, outside them and without data.

    A sample before the period still holds into it (at most `max_gap`); samples at or after the
    period's end are ignored.
    """
    _check_period(period_start, period_end)
    _check_max_gap(max_gap)
    within = outside = 0.0
    n = len(samples)
    for i in range(n):
        ts, value = samples[i]
        if ts >= period_end:
            break
        held_until = ts + max_gap
        if i + 1 < n:
            following = samples[i + 1][0]
            if following < held_until:
                held_until = following
        a = ts if ts > period_start else period_start
        b = held_until if held_until < period_end else period_end
        if b <= a:
            continue
        if (low is None or value >= low) and (high is None or value <= high):
            within += b - a
        else:
            outside += b - a
    length = period_end - period_start
    known = within + outside
    return TimeShare(
        within=within,
        outside=outside,
        unknown=max(length - known, 0.0),
        share_of_known=within / known if known > 0 else None,
        share_of_period=within / length if length > 0 else None,
    )


def summary(samples: Sequence[Sample], max_gap: float | None = None) -> Summary:
    """Min, time-weighted mean, max and count of a series.

    Each sample weighs the time it holds (until the next sample, at most `max_gap` when given);
    the last sample weighs nothing. When no sample has any weight (one sample, or all at the same
    instant) the mean is the plain average.
    """
    n = len(samples)
    if n == 0:
        return Summary(None, None, None, 0)
    if max_gap is not None:
        _check_max_gap(max_gap)
    cap = math.inf if max_gap is None else max_gap
    lo = hi = samples[0][1]
    weighted = 0.0
    weight = 0.0
    plain = 0.0
    prev_ts, prev_value = samples[0]
    for ts, value in samples:  # the first pair repeats the seed: dt 0, weight 0
        if value < lo:
            lo = value
        elif value > hi:
            hi = value
        dt = ts - prev_ts
        if dt > cap:
            dt = cap
        weighted += prev_value * dt
        weight += dt
        plain += value
        prev_ts, prev_value = ts, value
    mean = weighted / weight if weight > 0 else plain / n
    return Summary(lo, mean, hi, n)


def excursions(samples: Sequence[Sample], low: float | None, high: float | None, max_gap: float,
               min_duration: float = 0.0, until: float | None = None) -> list[Excursion]:
    """Every contiguous run outside the limits, with its start, end, duration, peak and limit.

    A run starts at its first outside sample and ends at the next sample within the limits; a gap
    longer than `max_gap` ends it after `max_gap`. The last sample holds until `until` (the end of
    the period, at most `max_gap`), or not at all when `until` is None. A switch from high to low
    (or back) between consecutive samples ends one excursion and starts the other. Runs shorter
    than `min_duration` are left out.
    """
    _check_max_gap(max_gap)
    found: list[Excursion] = []
    n = len(samples)
    side: Literal["high", "low"] | None = None
    start = peak = 0.0
    for i in range(n):
        ts, value = samples[i]
        if high is not None and value > high:
            now: Literal["high", "low"] | None = "high"
        elif low is not None and value < low:
            now = "low"
        else:
            now = None
        if now != side:
            if side is not None:  # returned within limits, or switched sides
                _add(found, side, start, ts, peak, low, high, "return", min_duration)
            side = now
            start = ts
            peak = value
        elif now == "high":
            if value > peak:
                peak = value
        elif now == "low" and value < peak:
            peak = value
        if side is None:
            continue
        # does the run survive until the next sample?
        if i + 1 < n:
            following = samples[i + 1][0]
            if following - ts > max_gap:
                _add(found, side, start, ts + max_gap, peak, low, high, "gap", min_duration)
                side = None
        else:
            end = ts if until is None else max(ts, min(until, ts + max_gap))
            _add(found, side, start, end, peak, low, high, "end", min_duration)
    return found


def _add(found: list[Excursion], side: Literal["high", "low"], start: float, end: float, peak: float,
         low: float | None, high: float | None, ended_by: Literal["return", "gap", "end"],
         min_duration: float) -> None:
    duration = end - start
    if duration < min_duration:
        return
    limit = high if side == "high" else low
    assert limit is not None  # a side is only entered when its limit exists
    found.append(Excursion(start, end, duration, peak, side, limit, ended_by))


def _local_midnight(day: date, zone: tzinfo) -> float:
    """UTC seconds of the day's first instant in the zone (DST-safe: zoneinfo resolves the offset)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def daily_fluctuation(samples: Sequence[Sample], allowance: float, timezone: str | tzinfo,
                      set_point: float | None = None, band: float | None = None) -> list[Day]:
    """Per calendar day in the site's time zone: min, max, range and both §5.2.3 verdicts.

    `allowance` is the max − min allowance (4 °C, 10 % RH); `band` the ± half-width around
    `set_point` (2 °C, 5 % RH). Days without a reading are not listed (they are not measured).
    The zone is resolved once per day, not per sample.
    """
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    days: list[Day] = []
    day_start = day_end = -math.inf
    current: date | None = None
    lo = hi = 0.0
    count = 0

    def close() -> None:
        assert current is not None
        spread = hi - lo
        within_band: bool | None = None
        if set_point is not None and band is not None:
            within_band = hi - set_point <= band + EPSILON and set_point - lo <= band + EPSILON
        days.append(Day(current, lo, hi, spread, spread <= allowance + EPSILON, within_band, count,
                        day_start, day_end))

    for ts, value in samples:
        if ts >= day_end or ts < day_start:
            if current is not None:
                close()
            current = datetime.fromtimestamp(ts, zone).date()
            day_start = _local_midnight(current, zone)
            day_end = _local_midnight(current + timedelta(days=1), zone)
            lo = hi = value
            count = 1
            continue
        if value < lo:
            lo = value
        elif value > hi:
            hi = value
        count += 1
    if current is not None:
        close()
    return days


def fluctuation_summary(days: Sequence[Day]) -> FluctuationSummary:
    """Days within the allowance (and within the set-point band, when configured) of days measured."""
    measured = len(days)
    within = sum(1 for day in days if day.within)
    banded = [day.within_band for day in days if day.within_band is not None]
    return FluctuationSummary(
        days_measured=measured,
        days_within=within,
        days_within_band=sum(banded) if banded else None,
        share=within / measured if measured else None,
    )


def completeness(samples: Sequence[Sample], expected_interval: float, period_start: float,
                 period_end: float, gap_factor: float = 3) -> Completeness:
    """Samples present against expected over [period_start, period_end), and the gaps.

    Expected is the whole number of `expected_interval`s in the period. A gap is any interval
    without a sample longer than `gap_factor × expected_interval`, measured from the period's
    start to the first sample, between samples, and from the last sample to the period's end.
    """
    _check_period(period_start, period_end)
    if not expected_interval > 0:
        raise ValueError(f"expected_interval must be positive, got {expected_interval}")
    threshold = gap_factor * expected_interval
    gaps: list[tuple[float, float]] = []
    present = 0
    previous = period_start
    for ts, _value in samples:
        if ts < period_start:
            continue
        if ts >= period_end:
            break
        if ts - previous > threshold:
            gaps.append((previous, ts))
        previous = ts
        present += 1
    if period_end - previous > threshold:
        gaps.append((previous, period_end))
    expected = math.floor((period_end - period_start) / expected_interval + EPSILON)
    return Completeness(
        expected=expected,
        present=present,
        ratio=present / expected if expected else None,
        gaps=gaps,
        gap_seconds=sum(end - start for start, end in gaps),
    )
