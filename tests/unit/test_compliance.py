"""Compliance figures (issue 7): hand-made series with known answers, DST, empty input and a year's timing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from reports.compliance import (
    Completeness,
    Excursion,
    completeness,
    daily_fluctuation,
    excursions,
    fluctuation_summary,
    summary,
    time_in_limits,
)

STEP = 600.0  # 10-minute samples
DAY = 86400.0
T0 = datetime(2024, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp()
LOW, HIGH = 14.0, 24.0  # JGJ 25-2010 table 5.2.1, paper records, °C
MAX_GAP = 1800.0


def series(start: float, hours: float, value: float = 20.0, step: float = STEP) -> list[tuple[float, float]]:
    return [(start + i * step, value) for i in range(round(hours * 3600 / step))]


def with_excursion() -> list[tuple[float, float]]:
    """24 h at 10 min, above 24 °C from 10:00 to 11:50 (peak 26.5 at 11:00), back at 12:00."""
    data = series(T0, 24)
    for i, (ts, _) in enumerate(data):
        if T0 + 10 * 3600 <= ts < T0 + 12 * 3600:
            data[i] = (ts, 26.5 if ts == T0 + 11 * 3600 else 25.0)
    return data


# --- excursions and time within limits ---------------------------------------------------------

def test_two_hour_excursion_exact_start_end_duration_peak() -> None:
    found = excursions(with_excursion(), LOW, HIGH, MAX_GAP)
    assert found == [Excursion(start=T0 + 36000, end=T0 + 43200, duration=7200.0, peak=26.5, side="high",
                               limit=HIGH, ended_by="return")]


def test_time_in_limits_of_the_excursion_day() -> None:
    share = time_in_limits(with_excursion(), LOW, HIGH, T0, T0 + DAY, MAX_GAP)
    assert (share.within, share.outside, share.unknown) == (79200.0, 7200.0, 0.0)
    assert share.share_of_known == pytest.approx(11 / 12)
    assert share.share_of_period == pytest.approx(11 / 12)


def test_values_exactly_at_a_limit_are_within() -> None:
    data = [(ts, HIGH if i % 2 else LOW) for i, (ts, _) in enumerate(series(T0, 24))]
    assert excursions(data, LOW, HIGH, MAX_GAP) == []
    share = time_in_limits(data, LOW, HIGH, T0, T0 + DAY, MAX_GAP)
    assert share.within == DAY and share.outside == 0.0
    assert share.share_of_known == 1.0


def test_a_gap_beyond_max_gap_is_unknown_not_within() -> None:
    # no samples between 02:00 and 06:00: the 02:00 sample holds 30 min, then 3.5 h unknown
    data = [s for s in series(T0, 24) if not T0 + 2 * 3600 < s[0] < T0 + 6 * 3600]
    share = time_in_limits(data, LOW, HIGH, T0, T0 + DAY, MAX_GAP)
    assert share.unknown == 4 * 3600 - MAX_GAP
    assert share.outside == 0.0
    assert share.within == DAY - share.unknown
    assert share.share_of_known == 1.0  # the known time was all within ...
    assert share.share_of_period == pytest.approx((DAY - 12600) / DAY)  # ... but the period's share drops


def test_a_sample_before_the_period_holds_into_it_and_the_last_holds_to_the_end() -> None:
    data = [(T0 - 300, 20.0), (T0 + 600, 30.0)]
    share = time_in_limits(data, LOW, HIGH, T0, T0 + 3600, MAX_GAP)
    assert (share.within, share.outside, share.unknown) == (600.0, 1800.0, 1200.0)


def test_a_gap_ends_an_excursion_which_did_not_visibly_end() -> None:
    data = [(T0, 20.0), (T0 + 600, 25.0), (T0 + 1200, 25.5), (T0 + 9000, 25.0), (T0 + 9600, 20.0)]
    found = excursions(data, LOW, HIGH, MAX_GAP)
    assert [(e.start, e.end, e.peak, e.ended_by) for e in found] == [
        (T0 + 600, T0 + 1200 + MAX_GAP, 25.5, "gap"),
        (T0 + 9000, T0 + 9600, 25.0, "return"),
    ]


def test_low_excursions_min_duration_side_switch_and_end_of_data() -> None:
    data = [(T0, 20.0), (T0 + 600, 13.0), (T0 + 1200, 12.5), (T0 + 1800, 20.0),  # low, 20 min
            (T0 + 2400, 13.9), (T0 + 3000, 20.0),                                # low, 10 min
            (T0 + 3600, 25.0), (T0 + 4200, 10.0), (T0 + 4800, 10.0)]             # high then low to the end
    found = excursions(data, LOW, HIGH, MAX_GAP, min_duration=900, until=T0 + 5400)
    assert [(e.side, e.start, e.duration, e.peak, e.limit, e.ended_by) for e in found] == [
        ("low", T0 + 600, 1200.0, 12.5, LOW, "return"),
        ("low", T0 + 4200, 1200.0, 10.0, LOW, "end"),
    ]
    every = excursions(data, LOW, HIGH, MAX_GAP)
    assert [(e.side, e.duration) for e in every] == [("low", 1200.0), ("low", 600.0), ("high", 600.0),
                                                     ("low", 600.0)]


def test_one_sided_limits() -> None:
    data = [(T0, -50.0), (T0 + 600, 70.0), (T0 + 1200, 50.0)]
    assert [e.side for e in excursions(data, None, 60.0, MAX_GAP)] == ["high"]
    assert time_in_limits(data, None, None, T0, T0 + 1800, MAX_GAP).within == 1800.0


# --- summary ------------------------------------------------------------------------------------

def test_summary_is_time_weighted() -> None:
    data = [(0.0, 10.0), (100.0, 30.0), (400.0, 30.0)]
    assert tuple(summary(data)) == (10.0, 25.0, 30.0, 3)  # 10 for 100 s, 30 for 300 s
    assert summary(data, max_gap=100).mean == 20.0  # each held at most 100 s
    assert tuple(summary([(5.0, 21.5)])) == (21.5, 21.5, 21.5, 1)
    lo, mean, hi, count = summary(with_excursion())
    assert (lo, hi, count) == (20.0, 26.5, 144)
    assert mean == pytest.approx((132 * 20 + 11 * 25 + 26.5 - 20) / 143)  # the last sample weighs nothing


# --- completeness -------------------------------------------------------------------------------

def test_completeness_lists_the_leading_gap_the_hole_and_the_trailing_gap() -> None:
    data = [s for s in series(T0, 24) if s[0] >= T0 + 3600 and not T0 + 2 * 3600 < s[0] < T0 + 6 * 3600
            and s[0] <= T0 + 22 * 3600]
    data.append((T0 + DAY + 600, 20.0))  # after the period: ignored
    data.remove((T0 + 8 * 3600, 20.0))  # a 20-minute hole: below 3 × 10 min, not a gap
    result = completeness(data, STEP, T0, T0 + DAY)
    assert result.expected == 144
    assert result.present == 144 - 6 - 23 - 11 - 1
    assert result.ratio == pytest.approx(result.present / 144)
    assert result.gaps == [(T0, T0 + 3600), (T0 + 7200, T0 + 21600), (T0 + 22 * 3600, T0 + DAY)]
    assert result.gap_seconds == 3600 + 14400 + 7200


def test_completeness_of_a_full_day() -> None:
    result = completeness(series(T0, 24), STEP, T0, T0 + DAY)
    assert (result.expected, result.present, result.ratio, result.gaps) == (144, 144, 1.0, [])


# --- daily fluctuation (JGJ 25-2010 §5.2.3) -----------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def test_daily_fluctuation_splits_at_local_midnight_in_shanghai() -> None:
    start = local(SHANGHAI, 2024, 6, 1)  # 2024-05-31 16:00 UTC
    data = dict(series(start, 48))
    data[local(SHANGHAI, 2024, 6, 1, 23, 50)] = 23.9  # day 1: range 3.9, within 4
    data[local(SHANGHAI, 2024, 6, 2, 0, 0)] = 16.0    # day 2: 16.0 ... 24.5, range 8.5
    data[local(SHANGHAI, 2024, 6, 2, 12, 0)] = 24.5
    days = daily_fluctuation(sorted(data.items()), 4.0, "Asia/Shanghai")
    # a split at UTC midnight would put 23:50 and 00:00 local (15:50, 16:00 UTC) in one day, over 3 days
    assert [(d.date, d.min, d.max, d.samples, d.within, d.within_band) for d in days] == [
        (date(2024, 6, 1), 20.0, 23.9, 144, True, None),
        (date(2024, 6, 2), 16.0, 24.5, 144, False, None),
    ]
    assert days[1].range == 8.5
    assert (days[0].start, days[0].end) == (start, start + DAY)
    summary_ = fluctuation_summary(days)
    assert (summary_.days_measured, summary_.days_within, summary_.days_within_band, summary_.share) == (
        2, 1, None, 0.5)


def test_both_readings_of_the_rule_with_a_set_point() -> None:
    start = local(SHANGHAI, 2024, 6, 1)
    data = series(start, 72)
    values = {0: (18.0, 22.0), 1: (20.5, 24.0), 2: (15.1, 19.1)}  # min and max of each day
    data = [(ts, values[int((ts - start) // DAY)][0 if i % 2 else 1]) for i, (ts, _) in enumerate(data)]
    days = daily_fluctuation(data, 4.0, SHANGHAI, set_point=20.0, band=2.0)
    # day 1: range 4 and ±2 exactly: both within. day 2: range 3.5 within, but 24 is 4 above the set-point.
    # day 3: 19.1 − 15.1 = 4.000000000000002 in floats, still within; 15.1 is 4.9 below: out of band.
    assert [(d.within, d.within_band) for d in days] == [(True, True), (True, False), (True, False)]
    summary_ = fluctuation_summary(days)
    assert (summary_.days_within, summary_.days_within_band) == (3, 1)


def test_dst_days_in_berlin_last_23_and_25_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = daily_fluctuation(series(local(berlin, 2024, 3, 30), 47), 4.0, "Europe/Berlin")
    assert [(d.date, d.samples, d.end - d.start) for d in spring] == [
        (date(2024, 3, 30), 144, DAY), (date(2024, 3, 31), 138, DAY - 3600)]
    autumn = daily_fluctuation(series(local(berlin, 2024, 10, 27), 25), 4.0, berlin)
    assert [(d.date, d.samples, d.end - d.start) for d in autumn] == [(date(2024, 10, 27), 150, DAY + 3600)]


# --- empty input and bad arguments --------------------------------------------------------------

def test_empty_input_gives_zeros_and_none() -> None:
    share = time_in_limits([], LOW, HIGH, T0, T0 + DAY, MAX_GAP)
    assert (share.within, share.outside, share.unknown, share.share_of_known, share.share_of_period) == (
        0.0, 0.0, DAY, None, 0.0)
    assert tuple(summary([])) == (None, None, None, 0)
    assert excursions([], LOW, HIGH, MAX_GAP) == []
    assert daily_fluctuation([], 4.0, "Asia/Shanghai") == []
    empty = fluctuation_summary([])
    assert (empty.days_measured, empty.days_within, empty.days_within_band, empty.share) == (0, 0, None, None)
    assert completeness([], STEP, T0, T0 + DAY) == Completeness(144, 0, 0.0, [(T0, T0 + DAY)], DAY)
    assert completeness([], STEP, T0, T0) == Completeness(0, 0, None, [], 0.0)
    assert time_in_limits([], LOW, HIGH, T0, T0, MAX_GAP).share_of_period is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        time_in_limits([], LOW, HIGH, T0, T0 - 1, MAX_GAP)
    with pytest.raises(ValueError, match="max_gap"):
        excursions([], LOW, HIGH, 0)
    with pytest.raises(ValueError, match="expected_interval"):
        completeness([], 0, T0, T0 + DAY)


# --- a year of 1-minute samples -----------------------------------------------------------------

def test_a_year_of_one_minute_samples_is_fast() -> None:
    n = 525_600
    year = [(T0 + 60.0 * i, 19.0 + 6.0 * math.sin(i / 900.0)) for i in range(n)]
    end = T0 + 60.0 * n
    timings: dict[str, float] = {}
    calls: dict[str, Callable[[], object]] = {
        "time_in_limits": lambda: time_in_limits(year, LOW, HIGH, T0, end, 180.0),
        "summary": lambda: summary(year, 180.0),
        "excursions": lambda: excursions(year, LOW, HIGH, 180.0),
        "daily_fluctuation": lambda: daily_fluctuation(year, 4.0, "Asia/Shanghai", 20.0, 2.0),
        "completeness": lambda: completeness(year, 60.0, T0, end),
    }
    for name, call in calls.items():
        began = time.perf_counter()
        result = call()
        timings[name] = time.perf_counter() - began
        assert result is not None
    total = sum(timings.values())
    print(f"\n525,600 samples: {', '.join(f'{k} {v:.3f} s' for k, v in timings.items())}; total {total:.3f} s")
    assert total < 5.0
    assert completeness(year, 60.0, T0, end).ratio == 1.0
    assert len(daily_fluctuation(year, 4.0, "Asia/Shanghai")) == 366  # a UTC-aligned year spans 366 local days
