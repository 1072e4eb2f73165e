"""The rule kinds of alarms/rules.py on an injected clock: every time is a plain float of seconds.

Rules return True/False at an edge of their condition and None otherwise, so
most tests collect the edges a sequence of readings produces. Many clocks here
start at 0.0 on purpose: a timer that started at 0 is still a running timer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable

import pytest

from alarms.model import AlarmDefinition, Priority
from alarms.rules import (
    CommLossRule,
    CondensationRule,
    Delay,
    FluctuationRule,
    LimitRule,
    RateRule,
    SensorFaultRule,
    StaleRule,
    StateRule,
    SustainedRule,
    calibration_stage,
    dew_point,
)
from stackwatch.readings import Quality

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
EPOCH = 1_700_000_000.0  # a realistic wall-clock start beside the 0.0 of a test clock
STARTS = pytest.mark.parametrize("start", [0.0, EPOCH], ids=["clock-at-zero", "epoch"])


def definition(key: str = "th-101.humidity:high", cause: str = "humidity_high",
               limit: float | None = 60.0) -> AlarmDefinition:
    return AlarmDefinition(key=key, cause=cause, priority=Priority.HIGH, site="main", room="r101",
                           building="b1", source=key.split(":")[0], description=f"{cause} test alarm",
                           limit=limit, unit="%")


def high_limit(limit: float = 60.0, deadband: float = 2.0, on_delay: float = 0.0,
               off_delay: float = 0.0) -> LimitRule:
    return LimitRule(definition(), high=True, limit=limit, deadband=deadband, on_delay=on_delay, off_delay=off_delay)


def low_limit(limit: float = 45.0, deadband: float = 2.0, on_delay: float = 0.0,
              off_delay: float = 0.0) -> LimitRule:
    return LimitRule(definition("th-101.humidity:low", "humidity_low", limit), high=False, limit=limit,
                     deadband=deadband, on_delay=on_delay, off_delay=off_delay)


def feed(rule: LimitRule | StateRule | RateRule | FluctuationRule,
         readings: Iterable[tuple[float, float]]) -> list[tuple[float, bool]]:
    """Feed (ts, value) readings; return the edges as (ts, new condition)."""
    edges = []
    for ts, value in readings:
        changed = rule.on_value(ts, value)
        if changed is not None:
            edges.append((ts, changed))
    return edges


def tick_until(rule: Callable[[float], bool | None], start: float, end: float,
               step: float = 1.0) -> list[tuple[float, bool]]:
    """Call `rule(now)` (an on_tick) every `step` seconds from start to end inclusive; return the edges."""
    edges = []
    steps = round((end - start) / step)
    for i in range(steps + 1):
        now = start + i * step
        changed = rule(now)
        if changed is not None:
            edges.append((now, changed))
    return edges


def roundtrip(snapshot: dict[str, object] | None) -> dict[str, object]:
    """What the journal gives back: the snapshot through JSON."""
    assert snapshot is not None
    restored: dict[str, object] = json.loads(json.dumps(snapshot))
    return restored


# --- Delay ----------------------------------------------------------------------------------------------------------


def test_delay_without_delays_follows_the_raw_condition() -> None:
    delay = Delay()
    assert delay.update(True, 0.0) is True
    assert delay.update(True, 1.0) is None
    assert delay.update(False, 2.0) is False
    assert delay.update(False, 3.0) is None


@STARTS
def test_delay_fires_only_when_the_condition_held_for_the_full_on_delay(start: float) -> None:
    delay = Delay(on_delay=600.0)
    assert delay.update(True, start) is None
    assert delay.update(True, start + 599.0) is None
    assert delay.update(True, start + 600.0) is True
    assert delay.active


def test_delay_dip_restarts_the_on_delay() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, 0.0)
    delay.update(False, 500.0)
    assert delay.update(True, 550.0) is None
    assert delay.update(True, 1100.0) is None  # 600 s after the dip's end would be 1150
    assert delay.update(True, 1150.0) is True


@STARTS
def test_delay_on_delay_expires_on_tick_without_new_readings(start: float) -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, start)
    assert delay.tick(start + 599.0) is None
    assert delay.tick(start + 600.0) is True
    assert delay.tick(start + 601.0) is None


@STARTS
def test_delay_off_delay_keeps_the_output_until_clear_for_the_full_delay(start: float) -> None:
    delay = Delay(off_delay=60.0)
    assert delay.update(True, start) is True
    assert delay.update(False, start + 10.0) is None
    assert delay.update(False, start + 69.0) is None
    assert delay.update(False, start + 70.0) is False
    assert not delay.active


def test_delay_condition_returning_during_off_delay_keeps_it_active() -> None:
    delay = Delay(off_delay=60.0)
    delay.update(True, 0.0)
    delay.update(False, 10.0)
    assert delay.update(True, 50.0) is None
    assert delay.clearing_since is None
    assert delay.update(False, 100.0) is None
    assert delay.tick(159.0) is None
    assert delay.tick(160.0) is False


def test_delay_clock_jump_backwards_restarts_the_pending_timer_from_the_jump() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, 10_000.0)
    assert delay.tick(4_000.0) is None  # no crash, no instant fire
    assert delay.pending_since == 4_000.0
    assert delay.tick(4_599.0) is None
    assert delay.tick(4_600.0) is True


def test_delay_backwards_reading_while_pending_restarts_from_the_jump_without_firing() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, 10_000.0)
    assert delay.update(True, 4_000.0) is None
    assert delay.pending_since == 4_000.0
    assert delay.update(True, 4_600.0) is True


def test_delay_clock_jump_backwards_restarts_the_off_delay_from_the_jump() -> None:
    delay = Delay(off_delay=60.0)
    delay.update(True, 10_000.0)
    delay.update(False, 10_010.0)
    assert delay.tick(5_000.0) is None
    assert delay.tick(5_059.0) is None
    assert delay.tick(5_060.0) is False


def test_delay_clock_jump_forwards_counts_as_elapsed() -> None:
    delay = Delay(on_delay=600.0, off_delay=60.0)
    delay.update(True, 0.0)
    assert delay.tick(7 * DAY) is True
    delay.update(False, 7 * DAY + 1.0)
    assert delay.tick(30 * DAY) is False


def test_delay_marks_itself_dirty_when_a_timer_starts_or_ends() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(False, 0.0)
    assert not delay.dirty
    delay.update(True, 1.0)
    assert delay.dirty
    delay.dirty = False
    delay.update(True, 2.0)
    assert not delay.dirty  # the same timer still running: nothing new to journal
    delay.update(True, 601.0)
    assert delay.dirty


def test_delay_snapshot_restore_resumes_a_pending_timer() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, 100.0)
    resumed = Delay(on_delay=600.0)
    resumed.restore(roundtrip(delay.snapshot()))
    assert resumed.tick(699.0) is None
    assert resumed.tick(700.0) is True


def test_delay_force_sets_the_output_without_timers() -> None:
    delay = Delay(on_delay=600.0)
    delay.update(True, 0.0)
    delay.force(True)
    assert delay.active and delay.pending_since is None and delay.clearing_since is None
    assert delay.update(True, 1.0) is None
    assert delay.update(False, 2.0) is False


# --- LimitRule: high and low ----------------------------------------------------------------------------------------


def test_high_limit_exactly_at_the_limit_is_not_in_alarm() -> None:
    rule = high_limit(limit=60.0)
    assert rule.on_value(0.0, 60.0) is None
    assert rule.on_value(1.0, 60.01) is True


def test_low_limit_exactly_at_the_limit_is_not_in_alarm() -> None:
    rule = low_limit(limit=45.0)
    assert rule.on_value(0.0, 45.0) is None
    assert rule.on_value(1.0, 44.99) is True


def test_high_limit_clears_only_at_or_below_limit_minus_deadband() -> None:
    rule = high_limit(limit=60.0, deadband=2.0)
    assert rule.on_value(0.0, 61.0) is True
    assert rule.on_value(1.0, 60.0) is None
    assert rule.on_value(2.0, 58.01) is None
    assert rule.on_value(3.0, 58.0) is False


def test_low_limit_clears_only_at_or_above_limit_plus_deadband() -> None:
    rule = low_limit(limit=45.0, deadband=2.0)
    assert rule.on_value(0.0, 44.0) is True
    assert rule.on_value(1.0, 45.0) is None
    assert rule.on_value(2.0, 46.99) is None
    assert rule.on_value(3.0, 47.0) is False


def hovering(limit: float, hours: float = 6.0, every: float = MINUTE) -> list[tuple[float, float]]:
    """Readings alternating limit + 0.3 and limit − 0.3."""
    count = int(hours * HOUR / every)
    return [(i * every, limit + (0.3 if i % 2 == 0 else -0.3)) for i in range(count)]


@pytest.mark.parametrize("on_delay", [0.0, 600.0])
@pytest.mark.parametrize("high", [True, False], ids=["high", "low"])
def test_value_hovering_at_the_limit_activates_exactly_once_with_a_deadband(high: bool, on_delay: float) -> None:
    rule = high_limit(60.0, 2.0, on_delay, 60.0) if high else low_limit(45.0, 2.0, on_delay, 60.0)
    edges = feed(rule, hovering(rule.limit))
    assert [changed for _, changed in edges] == [True]


def test_value_hovering_at_the_limit_chatters_without_a_deadband() -> None:
    rule = high_limit(60.0, deadband=0.0)
    edges = feed(rule, hovering(60.0, hours=1.0))
    assert sum(1 for _, changed in edges if changed) == 30  # what the deadband is there to prevent


@STARTS
def test_limit_on_delay_needs_the_excess_for_the_full_delay(start: float) -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    readings = [(start + i * MINUTE, 62.0) for i in range(12)]
    assert feed(rule, readings) == [(start + 600.0, True)]


@STARTS
def test_limit_on_delay_expires_on_tick_between_readings(start: float) -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    assert rule.on_value(start, 62.0) is None
    assert tick_until(rule.on_tick, start, start + 900.0, step=30.0) == [(start + 600.0, True)]


def test_limit_dip_back_into_range_resets_the_on_delay() -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    readings = [(0.0, 62.0), (300.0, 62.0), (400.0, 57.0), (500.0, 62.0), (1000.0, 62.0), (1100.0, 62.0)]
    assert feed(rule, readings) == [(1100.0, True)]


@STARTS
def test_limit_off_delay_needs_the_value_back_in_range_for_the_full_delay(start: float) -> None:
    rule = high_limit(60.0, 2.0, off_delay=60.0)
    readings = [(start, 62.0), (start + 10.0, 57.0), (start + 40.0, 57.0), (start + 69.0, 57.0), (start + 70.0, 57.0)]
    assert feed(rule, readings) == [(start, True), (start + 70.0, False)]


def test_limit_excess_during_the_off_delay_keeps_the_alarm() -> None:
    rule = high_limit(60.0, 2.0, off_delay=60.0)
    readings = [(0.0, 62.0), (10.0, 57.0), (50.0, 61.0), (100.0, 57.0), (150.0, 57.0), (160.0, 57.0)]
    assert feed(rule, readings) == [(0.0, True), (160.0, False)]


def test_limit_ignores_a_reading_older_than_the_last_one() -> None:
    rule = high_limit(60.0, 2.0)
    assert rule.on_value(100.0, 62.0) is True
    assert rule.on_value(50.0, 40.0) is None  # late: the newer excess stands
    assert rule.value == 62.0
    assert rule.on_value(110.0, 62.0) is None
    assert rule.on_value(120.0, 40.0) is False


def test_limit_late_reading_does_not_start_or_reset_an_on_delay() -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    rule.on_value(1000.0, 62.0)
    assert rule.on_value(900.0, 40.0) is None
    assert rule.on_value(1600.0, 62.0) is True


def test_limit_clock_jump_backwards_restarts_the_pending_on_delay_without_firing() -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    rule.on_value(10_000.0, 62.0)
    assert rule.on_tick(3_000.0) is None
    assert tick_until(rule.on_tick, 3_000.0, 4_000.0, step=10.0) == [(3_600.0, True)]


def test_limit_clock_jump_forwards_counts_the_delay_as_elapsed() -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    rule.on_value(0.0, 62.0)
    assert rule.on_tick(5 * DAY) is True


def test_limit_reading_after_a_forward_jump_fires_at_once() -> None:
    rule = high_limit(60.0, 2.0, on_delay=600.0)
    assert feed(rule, [(0.0, 62.0), (DAY, 62.0)]) == [(DAY, True)]


def test_limit_records_the_value_it_decided_on() -> None:
    rule = high_limit(60.0, 2.0)
    rule.on_value(0.0, 63.5)
    assert rule.value == 63.5


# --- SustainedRule --------------------------------------------------------------------------------------------------


def mould_rule() -> SustainedRule:
    return SustainedRule(definition("th-101.humidity:mould", "mould_risk", 65.0), high=True, limit=65.0,
                         deadband=2.0, on_delay=48 * HOUR, off_delay=0.0)


@STARTS
def test_sustained_fires_after_48_hours_above_the_limit(start: float) -> None:
    rule = mould_rule()
    readings = [(start + i * 15 * MINUTE, 70.0) for i in range(4 * 50)]
    assert feed(rule, readings) == [(start + 48 * HOUR, True)]


def test_sustained_resets_when_the_value_falls_clear_of_the_limit() -> None:
    rule = mould_rule()
    readings = [(i * HOUR, 70.0) for i in range(40)] + [(40 * HOUR, 62.0)]
    readings += [(i * HOUR, 70.0) for i in range(41, 100)]
    assert feed(rule, readings) == [(89 * HOUR, True)]  # 48 h counted from the new start at 41 h
    assert rule.delay.active


def test_sustained_timer_resumes_after_restart_from_its_original_start() -> None:
    start = 1000.0
    before = mould_rule()
    feed(before, [(start + i * HOUR, 70.0) for i in range(11)])
    assert before.dirty
    snapshot = roundtrip(before.snapshot())

    restart = start + 10.5 * HOUR
    after = mould_rule()
    after.restore(snapshot)
    assert after.delay.pending_since == start
    readings = [(restart + i * HOUR, 70.0) for i in range(60)]
    edges = feed(after, readings)
    assert edges == [(start + 48 * HOUR + 0.5 * HOUR, True)]  # first reading at or after start + 48 h
    assert edges[0][0] < restart + 48 * HOUR


def test_sustained_restored_timer_fires_on_tick_at_original_start_plus_48_hours() -> None:
    start = 1000.0
    before = mould_rule()
    before.on_value(start, 70.0)
    after = mould_rule()
    after.restore(roundtrip(before.snapshot()))
    restart = start + 20 * HOUR
    assert after.on_value(restart, 70.0) is None
    assert after.on_tick(start + 48 * HOUR - 1.0) is None
    assert after.on_tick(start + 48 * HOUR) is True


# --- StateRule ------------------------------------------------------------------------------------------------------


def state_rule(on_delay: float = 0.0, off_delay: float = 0.0,
               when: Callable[[float], bool] | None = None) -> StateRule:
    return StateRule(definition("door-1.door_open:held_open", "door_held_open", None), on_delay=on_delay,
                     off_delay=off_delay, when=when)


def test_state_follows_the_discrete_value() -> None:
    rule = state_rule()
    assert feed(rule, [(0.0, 0.0), (1.0, 1.0), (2.0, 1.0), (3.0, 0.0), (4.0, 1.0)]) == [
        (1.0, True), (3.0, False), (4.0, True)]
    assert rule.value == 1.0


@STARTS
def test_state_on_delay_fires_on_tick_when_held_the_full_delay(start: float) -> None:
    rule = state_rule(on_delay=600.0)
    assert rule.on_value(start, 1.0) is None
    assert tick_until(rule.on_tick, start, start + 900.0, step=10.0) == [(start + 600.0, True)]
    assert rule.on_value(start + 901.0, 0.0) is False


@STARTS
def test_state_on_delay_fires_on_a_reading_after_the_full_delay(start: float) -> None:
    rule = state_rule(on_delay=600.0)
    assert feed(rule, [(start, 1.0), (start + 300.0, 1.0), (start + 600.0, 1.0)]) == [(start + 600.0, True)]


def test_state_released_before_the_on_delay_never_alarms() -> None:
    rule = state_rule(on_delay=600.0)
    rule.on_value(0.0, 1.0)
    assert rule.on_value(300.0, 0.0) is None
    assert tick_until(rule.on_tick, 300.0, 2000.0, step=10.0) == []


def test_state_ignores_a_reading_older_than_the_last_one() -> None:
    rule = state_rule()
    assert rule.on_value(100.0, 1.0) is True
    assert rule.on_value(50.0, 0.0) is None
    assert rule.on_value(110.0, 0.0) is False


CLOSING = 1000.0
OPENING = 5000.0


def closed(ts: float) -> bool:
    """The site closes at CLOSING and opens again at OPENING."""
    return CLOSING <= ts < OPENING


def test_state_with_when_is_no_alarm_inside_opening_hours() -> None:
    rule = state_rule(when=closed)
    assert rule.on_value(500.0, 1.0) is None
    assert rule.on_value(900.0, 0.0) is None


def test_state_with_when_alarms_at_once_outside_opening_hours() -> None:
    rule = state_rule(when=closed)
    assert rule.on_value(2000.0, 1.0) is True
    assert rule.on_value(2100.0, 0.0) is False


def test_state_left_on_at_closing_time_alarms_at_closing_time_on_tick() -> None:
    rule = state_rule(when=closed)
    rule.on_value(500.0, 1.0)
    assert tick_until(rule.on_tick, 500.0, 1500.0, step=10.0) == [(CLOSING, True)]


def test_state_still_on_at_opening_time_clears_on_tick() -> None:
    rule = state_rule(when=closed)
    rule.on_value(2000.0, 1.0)
    assert tick_until(rule.on_tick, 2000.0, 6000.0, step=10.0) == [(OPENING, False)]


def test_state_off_at_closing_time_stays_quiet() -> None:
    rule = state_rule(when=closed)
    rule.on_value(500.0, 0.0)
    assert tick_until(rule.on_tick, 500.0, 1500.0, step=10.0) == []


# --- RateRule -------------------------------------------------------------------------------------------------------


def rate_rule(per_hour: float = 10.0, window: float = 900.0, off_delay: float = 300.0) -> RateRule:
    return RateRule(definition("th-101.humidity:rate", "humidity_rate", per_hour), per_hour=per_hour,
                    window=window, off_delay=off_delay)


def ramp(per_hour: float, start: float, end: float, step: float = 10.0, base: float = 50.0,
         t0: float = 0.0) -> list[tuple[float, float]]:
    count = round((end - start) / step)
    return [(start + i * step, base + per_hour * (start + i * step - t0) / HOUR) for i in range(count + 1)]


def test_rate_needs_half_a_window_of_history_before_judging() -> None:
    rule = rate_rule(per_hour=10.0, window=900.0)
    edges = feed(rule, ramp(60.0, 0.0, 900.0, step=10.0))
    assert edges == [(450.0, True)]
    assert rule.value == pytest.approx(60.0)


def test_rate_steady_value_never_alarms() -> None:
    rule = rate_rule()
    assert feed(rule, [(i * 10.0, 50.0) for i in range(1000)]) == []


def test_rate_below_the_threshold_never_alarms() -> None:
    rule = rate_rule(per_hour=10.0)
    assert feed(rule, ramp(8.0, 0.0, 4 * HOUR)) == []


def test_rate_falling_counts_like_rising() -> None:
    rule = rate_rule(per_hour=10.0)
    assert feed(rule, ramp(-30.0, 0.0, 900.0))[0][1] is True


def test_rate_clears_after_the_change_stops_and_the_off_delay_passes() -> None:
    rule = rate_rule(per_hour=10.0, window=900.0, off_delay=300.0)
    edges = feed(rule, ramp(60.0, 0.0, 1800.0))
    top = 50.0 + 60.0 * 1800.0 / HOUR
    edges += feed(rule, [(1800.0 + i * 10.0, top) for i in range(1, 361)])
    assert [changed for _, changed in edges] == [True, False]
    cleared = edges[1][0]
    # raw false once the rate over the window is ≤ 8 %/h (20 % hysteresis), then 300 s of off-delay
    assert 1800.0 + 300.0 < cleared <= 1800.0 + 900.0 + 300.0


def test_rate_keeps_its_samples_bounded() -> None:
    rule = rate_rule(window=900.0)
    longest = 0
    for i in range(2 * 3600):
        rule.on_value(float(i), 50.0 + math.sin(i / 100.0))
        longest = max(longest, len(rule.samples))
    assert longest <= 32


def test_rate_ignores_a_reading_older_than_the_last_one() -> None:
    rule = rate_rule(per_hour=10.0)
    feed(rule, [(i * 10.0, 50.0) for i in range(100)])
    assert rule.on_value(100.0, 90.0) is None
    assert feed(rule, [(1000.0 + i * 10.0, 50.0) for i in range(100)]) == []


def test_rate_after_a_gap_longer_than_the_window_judges_nothing_until_history_returns() -> None:
    rule = rate_rule(per_hour=10.0, window=900.0)
    feed(rule, ramp(60.0, 0.0, 900.0))
    assert rule.delay.active
    # one reading after an hour of silence: too little history; the alarm's raw condition ends
    assert rule.on_value(900.0 + HOUR, 80.0) is None
    assert rule.raw is False
    assert rule.on_tick(900.0 + HOUR + 300.0) is False


# --- FluctuationRule ------------------------------------------------------------------------------------------------


def fluctuation_rule(allowance: float = 4.0) -> FluctuationRule:
    return FluctuationRule(definition("th-101.temperature:fluctuation", "temperature_fluctuation", allowance),
                           allowance=allowance)


def test_fluctuation_exactly_at_the_allowance_is_not_in_alarm() -> None:
    rule = fluctuation_rule(4.0)
    assert feed(rule, [(0.0, 20.0), (HOUR, 24.0)]) == []
    assert rule.value == 4.0
    assert rule.on_value(2 * HOUR, 24.1) is True


def test_fluctuation_spread_over_the_rolling_day_clears_when_the_extreme_leaves_the_window() -> None:
    rule = fluctuation_rule(4.0)
    readings = [(0.0, 20.0)] + [(i * MINUTE, 22.0) for i in range(1, 60)] + [(HOUR, 25.0)]
    readings += [(HOUR + i * MINUTE, 22.0) for i in range(1, 2 * 24 * 60)]
    edges = feed(rule, readings)
    # 20 °C at 0 h and 25 °C at 1 h: in alarm at 1 h; the 20 °C leaves the 24 h window at 24 h (spread 3)
    assert edges == [(HOUR, True), (DAY, False)]


def test_fluctuation_deques_stay_bounded_over_three_days_of_one_second_readings() -> None:
    rule = fluctuation_rule(4.0)
    history: list[tuple[float, float]] = []
    longest = 0
    for i in range(3 * 86400):
        ts = float(i)
        value = 20.0 + 3.0 * math.sin(2 * math.pi * ts / (2 * DAY)) + 0.2 * math.sin(ts / 50.0)
        rule.on_value(ts, value)
        history.append((ts, value))
        longest = max(longest, len(rule.maxima), len(rule.minima))
    assert longest <= DAY / rule.bucket + 1
    now_slot = history[-1][0] - history[-1][0] % rule.bucket
    window = [v for ts, v in history if ts - ts % rule.bucket > now_slot - DAY]
    assert rule.value == round(max(window) - min(window), 3)


def test_fluctuation_ignores_a_reading_older_than_the_last_one() -> None:
    rule = fluctuation_rule(4.0)
    feed(rule, [(0.0, 20.0), (HOUR, 21.0)])
    assert rule.on_value(10.0, 30.0) is None
    assert rule.value == 1.0


def test_fluctuation_window_survives_a_restart() -> None:
    before = fluctuation_rule(4.0)
    feed(before, [(0.0, 20.0), (HOUR, 23.0)])
    after = fluctuation_rule(4.0)
    after.restore(roundtrip(before.snapshot()))
    assert after.on_value(2 * HOUR, 24.5) is True


# --- SensorFaultRule and CommLossRule -------------------------------------------------------------------------------


def sensor_fault_rule(on_delay: float = 30.0, off_delay: float = 0.0) -> SensorFaultRule:
    return SensorFaultRule(definition("th-101.humidity:sensor_fault", "sensor_fault", None), on_delay, off_delay)


def comm_loss_rule(on_delay: float = 30.0, off_delay: float = 0.0) -> CommLossRule:
    return CommLossRule(definition("th-101:comm_loss", "comm_loss", None), on_delay, off_delay)


def qualities(rule: SensorFaultRule | CommLossRule,
              readings: Iterable[tuple[float, Quality]]) -> list[tuple[float, bool]]:
    edges = []
    for ts, quality in readings:
        changed = rule.on_quality(ts, quality)
        if changed is not None:
            edges.append((ts, changed))
    return edges


@STARTS
def test_sensor_fault_after_bad_readings_for_the_on_delay(start: float) -> None:
    rule = sensor_fault_rule(on_delay=30.0)
    readings = [(start + i * 10.0, Quality.BAD) for i in range(5)] + [(start + 50.0, Quality.GOOD)]
    assert qualities(rule, readings) == [(start + 30.0, True), (start + 50.0, False)]


def test_sensor_fault_a_good_reading_resets_the_on_delay() -> None:
    rule = sensor_fault_rule(on_delay=30.0)
    readings = [(0.0, Quality.BAD), (20.0, Quality.GOOD), (25.0, Quality.BAD), (50.0, Quality.BAD),
                (55.0, Quality.BAD)]
    assert qualities(rule, readings) == [(55.0, True)]


def test_sensor_fault_ignores_comm_failure() -> None:
    rule = sensor_fault_rule(on_delay=30.0)
    assert qualities(rule, [(float(i), Quality.COMM_FAILURE) for i in range(100)]) == []
    assert rule.delay.pending_since is None
    # a comm failure neither resets a pending fault nor clears an active one
    assert qualities(rule, [(100.0, Quality.BAD), (120.0, Quality.COMM_FAILURE), (130.0, Quality.BAD),
                            (140.0, Quality.COMM_FAILURE)]) == [(130.0, True)]
    assert rule.delay.active


def test_sensor_fault_uncertain_is_no_fault() -> None:
    rule = sensor_fault_rule(on_delay=0.0)
    assert qualities(rule, [(0.0, Quality.BAD), (1.0, Quality.UNCERTAIN)]) == [(0.0, True), (1.0, False)]


def test_sensor_fault_on_delay_expires_on_tick() -> None:
    rule = sensor_fault_rule(on_delay=30.0)
    rule.on_quality(0.0, Quality.BAD)
    assert tick_until(rule.on_tick, 0.0, 60.0) == [(30.0, True)]


@STARTS
def test_sensor_fault_off_delay_clears_on_a_reading_once_good_for_the_full_delay(start: float) -> None:
    rule = sensor_fault_rule(on_delay=0.0, off_delay=60.0)
    readings = [(start, Quality.BAD), (start + 10.0, Quality.GOOD), (start + 40.0, Quality.GOOD),
                (start + 70.0, Quality.GOOD)]
    assert qualities(rule, readings) == [(start, True), (start + 70.0, False)]


def test_sensor_fault_ignores_a_reading_older_than_the_last_one() -> None:
    rule = sensor_fault_rule(on_delay=0.0)
    assert rule.on_quality(100.0, Quality.BAD) is True
    assert rule.on_quality(50.0, Quality.GOOD) is None
    assert rule.delay.active


@STARTS
def test_comm_loss_after_failures_for_the_on_delay(start: float) -> None:
    rule = comm_loss_rule(on_delay=30.0)
    readings = [(start + i * 10.0, Quality.COMM_FAILURE) for i in range(4)]
    assert qualities(rule, readings) == [(start + 30.0, True)]


@pytest.mark.parametrize("quality", [Quality.GOOD, Quality.UNCERTAIN, Quality.BAD, Quality.STALE])
def test_comm_loss_clears_on_any_answer(quality: Quality) -> None:
    rule = comm_loss_rule(on_delay=0.0)
    assert rule.on_quality(0.0, Quality.COMM_FAILURE) is True
    assert rule.on_quality(1.0, Quality.COMM_FAILURE) is None
    assert rule.on_quality(2.0, quality) is False


def test_comm_loss_a_single_answer_resets_the_on_delay() -> None:
    rule = comm_loss_rule(on_delay=30.0)
    readings = [(0.0, Quality.COMM_FAILURE), (20.0, Quality.BAD), (25.0, Quality.COMM_FAILURE),
                (50.0, Quality.COMM_FAILURE), (55.0, Quality.COMM_FAILURE)]
    assert qualities(rule, readings) == [(55.0, True)]


@STARTS
def test_comm_loss_off_delay_clears_on_a_reading_once_answering_for_the_full_delay(start: float) -> None:
    rule = comm_loss_rule(on_delay=0.0, off_delay=60.0)
    readings = [(start, Quality.COMM_FAILURE), (start + 10.0, Quality.GOOD), (start + 70.0, Quality.GOOD)]
    assert qualities(rule, readings) == [(start, True), (start + 70.0, False)]


def test_comm_loss_ignores_a_reading_older_than_the_last_one() -> None:
    rule = comm_loss_rule(on_delay=0.0)
    assert rule.on_quality(100.0, Quality.COMM_FAILURE) is True
    assert rule.on_quality(50.0, Quality.GOOD) is None
    assert rule.delay.active


# --- StaleRule ------------------------------------------------------------------------------------------------------


def stale_rule(after: float = 60.0, started: float = 0.0) -> StaleRule:
    return StaleRule(definition("th-101.humidity:no_data", "no_data", None), after=after, started=started)


def test_stale_fires_after_the_interval_without_usable_readings_and_clears_on_the_next() -> None:
    rule = stale_rule(after=60.0, started=0.0)
    assert tick_until(rule.on_tick, 0.0, 100.0) == [(61.0, True)]
    assert rule.value == 61.0
    assert rule.dirty
    assert rule.on_quality(100.0, Quality.GOOD) is False
    assert rule.on_quality(101.0, Quality.GOOD) is None
    assert tick_until(rule.on_tick, 101.0, 200.0) == [(162.0, True)]


def test_stale_is_measured_from_the_engine_start_when_the_point_never_reported() -> None:
    rule = stale_rule(after=60.0, started=EPOCH)
    assert rule.on_tick(EPOCH + 60.0) is None
    assert rule.on_tick(EPOCH + 61.0) is True


@pytest.mark.parametrize("quality", [Quality.BAD, Quality.COMM_FAILURE, Quality.STALE])
def test_stale_unusable_readings_do_not_count_as_data(quality: Quality) -> None:
    rule = stale_rule(after=60.0)
    for i in range(100):
        assert rule.on_quality(float(i), quality) is None
    assert rule.on_tick(61.0) is True
    assert rule.on_quality(62.0, quality) is None  # nor do they clear it


def test_stale_uncertain_readings_are_usable_data() -> None:
    rule = stale_rule(after=60.0)
    for i in range(0, 200, 30):
        rule.on_quality(float(i), Quality.UNCERTAIN)
        assert rule.on_tick(float(i) + 29.0) is None


def test_stale_clock_jump_backwards_measures_from_the_jump() -> None:
    rule = stale_rule(after=60.0)
    rule.on_quality(10_000.0, Quality.GOOD)
    assert rule.on_tick(5_000.0) is None
    assert tick_until(rule.on_tick, 5_000.0, 5_100.0) == [(5_061.0, True)]


def test_stale_clock_jump_forwards_counts_as_silence() -> None:
    rule = stale_rule(after=60.0)
    rule.on_quality(0.0, Quality.GOOD)
    assert rule.on_tick(DAY) is True


def test_stale_snapshot_restore_keeps_the_alarm_and_the_last_reading() -> None:
    before = stale_rule(after=60.0, started=0.0)
    before.on_tick(100.0)
    after = stale_rule(after=60.0, started=200.0)
    after.restore(roundtrip(before.snapshot()))
    assert after.active
    assert after.on_quality(210.0, Quality.GOOD) is False


# --- dew point and condensation -------------------------------------------------------------------------------------


def magnus_by_vapour_pressure(t: float, rh: float) -> float:
    """Sonntag 1990 Magnus form the long way: saturation pressure, actual pressure, inverted (hPa)."""
    saturation = 6.112 * math.exp(17.62 * t / (243.12 + t))
    actual = rh / 100.0 * saturation
    x = math.log(actual / 6.112)
    return 243.12 * x / (17.62 - x)


def ipi_dew_point(t: float, rh: float) -> float:
    """The Image Permanence Institute calculator's form (standards.md §5: within about 0.1 °C of Magnus)."""
    return float((rh / 100.0) ** (1 / 8)) * (112 + 0.9 * t) + 0.1 * t - 112


def test_dew_point_reference_value_20c_50pc() -> None:
    assert dew_point(20.0, 50.0) == pytest.approx(9.3, abs=0.05)


@pytest.mark.parametrize(("t", "rh", "expected"), [(20.0, 50.0, 9.26), (25.0, 60.0, 16.69), (10.0, 80.0, 6.71),
                                                  (0.0, 50.0, -9.20)])
def test_dew_point_matches_published_magnus_values(t: float, rh: float, expected: float) -> None:
    assert dew_point(t, rh) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("t", [-10.0, 0.0, 14.0, 20.0, 24.0, 35.0])
@pytest.mark.parametrize("rh", [5.0, 25.0, 45.0, 60.0, 95.0])
def test_dew_point_equals_magnus_computed_through_vapour_pressure(t: float, rh: float) -> None:
    assert dew_point(t, rh) == pytest.approx(magnus_by_vapour_pressure(t, rh), abs=1e-9)


@pytest.mark.parametrize("t", [10.0, 14.0, 18.0, 20.0, 24.0, 28.0])
@pytest.mark.parametrize("rh", [30.0, 40.0, 50.0, 60.0, 70.0])
def test_dew_point_agrees_with_ipi_in_the_stack_room_range(t: float, rh: float) -> None:
    assert dew_point(t, rh) == pytest.approx(ipi_dew_point(t, rh), abs=0.15)


def test_dew_point_at_saturation_is_the_air_temperature() -> None:
    assert dew_point(18.0, 100.0) == pytest.approx(18.0, abs=1e-9)


def test_dew_point_at_zero_humidity_is_finite() -> None:
    assert math.isfinite(dew_point(20.0, 0.0))


def condensation_rule(margin: float = 2.0, off_delay: float = 60.0) -> CondensationRule:
    return CondensationRule(definition("r101.surface_temperature:condensation", "condensation_risk", margin),
                            margin=margin, off_delay=off_delay)


def test_condensation_decides_only_when_temperature_humidity_and_surface_are_known() -> None:
    rule = condensation_rule()
    assert rule.on_value(0.0, 5.0) is None
    assert rule.on_room(1.0, "temperature", 20.0) is None
    assert rule.on_room(2.0, "humidity", 50.0) is True  # surface 5 °C, dew point 9.3 °C


def test_condensation_exactly_at_the_margin_is_not_in_alarm() -> None:
    rule = condensation_rule(margin=2.0)
    rule.on_room(0.0, "temperature", 20.0)
    rule.on_room(0.0, "humidity", 50.0)
    point = dew_point(20.0, 50.0)
    assert rule.on_value(1.0, point + 2.0) is None
    assert rule.value == 2.0
    assert rule.on_value(2.0, point + 1.9) is True


@STARTS
def test_condensation_clears_with_hysteresis_after_the_off_delay(start: float) -> None:
    rule = condensation_rule(margin=2.0, off_delay=60.0)
    rule.on_room(start, "temperature", 20.0)
    rule.on_room(start, "humidity", 50.0)
    point = dew_point(20.0, 50.0)
    assert rule.on_value(start, point + 1.0) is True
    assert rule.on_value(start + 10.0, point + 2.3) is None  # within the 0.5 K hysteresis: still raw
    assert rule.delay.clearing_since is None
    assert rule.on_value(start + 20.0, point + 3.0) is None  # clear: off-delay starts
    assert rule.on_value(start + 79.0, point + 3.0) is None
    assert rule.on_value(start + 80.0, point + 3.0) is False


@STARTS
def test_condensation_restored_active_clears_after_the_off_delay(start: float) -> None:
    rule = condensation_rule(margin=2.0, off_delay=60.0)
    rule.restore({"active": True, "pending_since": None, "clearing_since": None, "raw": True, "value": 1.0})
    rule.on_room(start, "temperature", 20.0)
    rule.on_room(start, "humidity", 50.0)
    point = dew_point(20.0, 50.0)
    assert rule.on_value(start, point + 3.0) is None
    assert rule.on_value(start + 30.0, point + 3.0) is None
    assert rule.on_value(start + 60.0, point + 3.0) is False


def test_condensation_rising_room_humidity_raises_it() -> None:
    rule = condensation_rule(margin=2.0)
    rule.on_value(0.0, 14.0)
    rule.on_room(0.0, "temperature", 20.0)
    assert rule.on_room(0.0, "humidity", 50.0) is None  # dew point 9.3: 4.7 K of margin
    assert rule.on_room(60.0, "humidity", 70.0) is True  # dew point 14.4: below the surface


# --- calibration ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days_left", "stage"), [(92, 0), (91, 1), (31, 1), (30, 2), (1, 2), (0, 3), (-5, 3)])
def test_calibration_stage(days_left: int, stage: int) -> None:
    assert calibration_stage(days_left) == stage
