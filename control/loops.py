"""The two loop kinds an archive needs, as pure functions of readings and time.

On/off units (dehumidifiers, humidifiers) switch with hysteresis and minimum
run and rest times: a compressor started more often than every ten minutes
wears out, and a room that swings by a few per cent over hours is better kept
than one chased around its target every minute. HVAC set-points are walked
toward the target a small step at a time, because what damages paper is the
daily swing, not being half a degree off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from stackwatch.config.control import TargetPeriod


@dataclass(slots=True)
class UnitState:
    """An on/off unit as last commanded; `since` is when it last changed (min times count from there)."""

    on: bool | None = None  # None: not known yet (first cycle after start)
    since: float = float("-inf")
    starts: int = 0

    def may_switch(self, want_on: bool, now: float, min_on: float, min_off: float) -> bool:
        if self.on is None or self.on == want_on:
            return True
        return now - self.since >= (min_on if self.on else min_off)

    def switch(self, on: bool, now: float) -> None:
        if self.on == on:
            return
        if on:
            self.starts += 1
        self.on = on
        self.since = now


def humidity_demand(rh: float, target: float, hysteresis: float, dehumidifying: bool,
                    humidifying: bool) -> tuple[bool, bool]:
    """Wanted (dehumidify, humidify) at `rh`, given what runs now.

    Dehumidifying starts at target + h and stops at target − h/2; humidifying
    starts at target − h and stops at target + h/2. Stopping past the target
    gives each run a useful length; the two can never run together.
    """
    dehumidify = rh >= target + hysteresis or (dehumidifying and rh > target - hysteresis / 2)
    humidify = rh <= target - hysteresis or (humidifying and rh < target + hysteresis / 2)
    if dehumidify and humidify:
        dehumidify, humidify = rh > target, rh <= target
    return dehumidify, humidify


def thermostat_demand(rh: float, target: float) -> tuple[bool, bool]:
    """The plain humidistat the benchmark compares against: on above the target, off below it."""
    return rh > target, rh < target


@dataclass(slots=True)
class SetpointState:
    """The set-point as last commanded, when it last stepped, and the trim learnt to hold the room on target."""

    value: float | None = None
    stepped_at: float = float("-inf")
    trim: float = 0.0


def next_setpoint(state: SetpointState, target: float, measured: float | None, now: float, *, max_step: float,
                  step_interval: float, trim_limit: float, low: float, high: float) -> float | None:
    """The set-point to command now, or None to leave it (not yet time for a step, or already there).

    The unit's own controller holds the room near its set-point; a room that
    stays warm of the target (a sensor placed high, a sunny wall) leans the
    set-point the other way, half the error per step, never beyond `trim_limit`.
    """
    if state.value is not None and now - state.stepped_at < step_interval:
        return None
    if measured is not None and state.value is not None:
        state.trim = max(-trim_limit, min(trim_limit, state.trim + 0.5 * (target - measured)))
    wanted = max(low, min(high, target + state.trim))
    step = 0.0 if state.value is None else max(-max_step, min(max_step, wanted - state.value))
    step_to = round(wanted if state.value is None else state.value + step, 2)
    state.stepped_at = now
    if state.value is not None and abs(step_to - state.value) < 1e-9:
        return None
    return step_to


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def period_at(periods: Sequence[TargetPeriod], now: float, timezone: str) -> TargetPeriod | None:
    """The first period that applies at `now` in the site's zone (None: the base target)."""
    local = dt.datetime.fromtimestamp(now, ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    for period in periods:
        if period.months and local.month not in period.months:
            continue
        start, end = _minutes(period.start), _minutes(period.end)
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        if inside:
            return period
    return None
