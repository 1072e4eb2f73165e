"""Rule kinds: pure functions of readings and time that decide whether an alarm's *condition* holds.

No I/O and no clock of their own: every call carries the reading's timestamp
or `now`. A rule returns `True`/`False` when its condition changes and `None`
when it does not, so the engine does work only at edges.

Two families, so the engine filters quality once per reading:
* value rules (`on_value(ts, value)`) see only usable values: a `bad` or
  `comm_failure` reading, or a NaN, never raises or clears a limit alarm;
* quality rules (`on_quality(ts, quality)`) see every reading: sensor faults,
  communication loss and no-data are about the data itself.

Timers (on-delay, off-delay, sustained conditions) are small snapshots that
the engine journals when they change, so a 48-hour mould condition resumes
after a restart instead of starting again at zero.

Times are seconds (floats). A clock that jumps backwards restarts a pending
timer from the jump rather than leaving it pending for ever; a forward jump
counts as elapsed time (the hours did pass, as far as anyone can know).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from stackwatch.readings import Quality

from .model import AlarmDefinition
from .window import PairQueue

Snapshot = dict[str, Any]


class Delay:
    """On-delay and off-delay over a raw condition: ISA-18.2's debounce in time."""

    __slots__ = ("active", "clearing_since", "dirty", "off_delay", "on_delay", "pending_since")

    def __init__(self, on_delay: float = 0.0, off_delay: float = 0.0) -> None:
        self.on_delay = on_delay
        self.off_delay = off_delay
        self.active = False
        self.pending_since: float | None = None  # raw true since, while not yet active
        self.clearing_since: float | None = None  # raw false since, while still active
        self.dirty = False

    def update(self, raw: bool, ts: float) -> bool | None:
        if not self.active:
            self.clearing_since = None
            if not raw:
                if self.pending_since is not None:
                    self.pending_since = None
                    self.dirty = True
                return None
            if self.pending_since is None or ts < self.pending_since:
                self.pending_since = ts
                self.dirty = True
            return self._expire(ts)
        self.pending_since = None
        if raw:
            if self.clearing_since is not None:
                self.clearing_since = None
                self.dirty = True
            return None
        if self.clearing_since is None or ts < self.clearing_since:
            self.clearing_since = ts
            self.dirty = True
        return self._expire(ts)

    def tick(self, now: float) -> bool | None:
        if self.pending_since is None and self.clearing_since is None:
            return None
        if self.pending_since is not None and now < self.pending_since:
            self.pending_since = now
            self.dirty = True
        if self.clearing_since is not None and now < self.clearing_since:
            self.clearing_since = now
            self.dirty = True
        return self._expire(now)

    def _expire(self, now: float) -> bool | None:
        if self.pending_since is not None and now - self.pending_since >= self.on_delay:
            self.active, self.pending_since, self.dirty = True, None, True
            return True
        if self.clearing_since is not None and now - self.clearing_since >= self.off_delay:
            self.active, self.clearing_since, self.dirty = False, None, True
            return False
        return None

    def force(self, active: bool) -> None:
        """Set the output (restored from the journal) without timers."""
        self.active = active
        self.pending_since = self.clearing_since = None

    def snapshot(self) -> Snapshot:
        return {"active": self.active, "pending_since": self.pending_since, "clearing_since": self.clearing_since}

    def restore(self, snapshot: Snapshot) -> None:
        self.active = bool(snapshot.get("active", False))
        self.pending_since = snapshot.get("pending_since")
        self.clearing_since = snapshot.get("clearing_since")


class Rule:
    """Base of all rules: one rule decides one alarm's condition."""

    __slots__ = ("definition", "value")

    def __init__(self, definition: AlarmDefinition) -> None:
        self.definition = definition
        self.value: float | None = None  # what the condition was last decided on, for the event

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def dirty(self) -> bool:
        return False

    def clean(self) -> None:
        """Mark the snapshot as journaled."""

    def on_tick(self, now: float) -> bool | None:
        return None

    def snapshot(self) -> Snapshot | None:
        return None

    def restore(self, snapshot: Snapshot) -> None:
        """Resume from a journaled snapshot."""


class DelayedRule(Rule):
    """A rule whose raw condition passes through on/off delays (most kinds)."""

    __slots__ = ("delay", "last_ts", "raw")

    def __init__(self, definition: AlarmDefinition, on_delay: float, off_delay: float) -> None:
        super().__init__(definition)
        self.delay = Delay(on_delay, off_delay)
        self.raw = False
        self.last_ts = -math.inf

    @property
    def dirty(self) -> bool:
        return self.delay.dirty

    def clean(self) -> None:
        self.delay.dirty = False

    def decide(self, raw: bool, ts: float) -> bool | None:
        self.raw = raw
        return self.delay.update(raw, ts)

    def on_tick(self, now: float) -> bool | None:
        return self.delay.tick(now)

    def snapshot(self) -> Snapshot:
        return {**self.delay.snapshot(), "raw": self.raw, "value": self.value}

    def restore(self, snapshot: Snapshot) -> None:
        self.delay.restore(snapshot)
        self.raw = bool(snapshot.get("raw", self.delay.active))
        self.value = snapshot.get("value")


class LimitRule(DelayedRule):
    """High or low limit with deadband: exactly at the limit is within it (limits are the allowed range).

    Once in excess, a high alarm's raw condition holds until the value is at or
    below `limit − deadband`, so a value hovering at the limit does not chatter.
    """

    __slots__ = ("deadband", "high", "limit")

    def __init__(self, definition: AlarmDefinition, *, high: bool, limit: float, deadband: float,
                 on_delay: float, off_delay: float) -> None:
        super().__init__(definition, on_delay, off_delay)
        self.high = high
        self.limit = limit
        self.deadband = deadband

    def on_value(self, ts: float, value: float) -> bool | None:
        if ts < self.last_ts:
            return None  # a late reading never overrides a newer one
        self.last_ts = ts
        self.value = value
        if self.high:
            raw = value > self.limit - self.deadband if self.raw else value > self.limit
        else:
            raw = value < self.limit + self.deadband if self.raw else value < self.limit
        if raw == self.raw and self.delay.pending_since is None and self.delay.clearing_since is None:
            return None  # the common case: nothing changed, no timer running
        return self.decide(raw, ts)


class SustainedRule(LimitRule):
    """A limit that matters only when it holds for long (RH above 65 % for 48 h: mould can germinate)."""


class StateRule(DelayedRule):
    """A discrete state (fire, leak, door open...) with an optional on-delay (door held open for N minutes).

    `when` narrows the condition by time (a door or motion outside opening hours
    is intrusion): it is asked on each reading and on each tick, so a door left
    open at closing time turns into an alarm at closing time.
    """

    __slots__ = ("state", "when")

    def __init__(self, definition: AlarmDefinition, *, on_delay: float = 0.0, off_delay: float = 0.0,
                 when: Callable[[float], bool] | None = None) -> None:
        super().__init__(definition, on_delay, off_delay)
        self.when = when
        self.state = False

    def on_value(self, ts: float, value: float) -> bool | None:
        if ts < self.last_ts:
            return None
        self.last_ts = ts
        self.state = bool(value)
        self.value = 1.0 if self.state else 0.0
        raw = self.state and (self.when is None or self.when(ts))
        if raw == self.raw and self.delay.pending_since is None and self.delay.clearing_since is None:
            return None
        return self.decide(raw, ts)

    def on_tick(self, now: float) -> bool | None:
        if self.when is not None and self.state:
            raw = self.when(now)
            if raw != self.raw:
                changed = self.decide(raw, now)
                if changed is not None:
                    return changed
        return self.delay.tick(now)


class RateRule(DelayedRule):
    """Change faster than `per_hour` over a `window` (default 15 min): an HVAC fault shows here first.

    Samples are thinned to one per `window / 30`, so memory is a few dozen
    floats per point whatever the reading rate.
    """

    __slots__ = ("per_hour", "samples", "step", "window")

    def __init__(self, definition: AlarmDefinition, *, per_hour: float, window: float = 900.0,
                 off_delay: float = 300.0) -> None:
        super().__init__(definition, 0.0, off_delay)
        self.per_hour = per_hour
        self.window = window
        self.step = window / 30
        self.samples = PairQueue()

    def on_value(self, ts: float, value: float) -> bool | None:
        if ts < self.last_ts:
            return None
        self.last_ts = ts
        samples = self.samples
        samples.append_spaced(ts, value, self.step)
        oldest_ts, oldest = samples.expire(math.nextafter(ts - self.window, -math.inf))  # older than `window`
        span = ts - oldest_ts
        if span < self.window / 2:
            return self.decide(False, ts) if self.raw else None  # too little history to judge a rate
        rate = abs(value - oldest) / span * 3600.0
        self.value = round(rate, 3)
        threshold = self.per_hour * (0.8 if self.raw else 1.0)  # 20 % hysteresis
        raw = rate > threshold
        if raw == self.raw and self.delay.pending_since is None and self.delay.clearing_since is None:
            return None
        return self.decide(raw, ts)


class FluctuationRule(DelayedRule):
    """Max − min over the rolling 24 h against the profile's daily allowance (JGJ 25-2010 §5.2.3).

    Two monotonic queues of per-bucket extremes give the window's max and min in
    amortised O(1) per reading and at most 289 entries each, however often the
    point reports. A new extreme counts at once; an old one leaves the window
    with its 5-minute bucket, so the window is 24 h less up to 5 minutes.
    Why 5 minutes, not 1: a smooth transmitter (float output, 0.01 noise) keeps
    about 490 per-minute entries a day and 126 per-5-minute ones: with 6,668
    T/RH points, 65 MB against 17 MB (bench/memory_day.py).
    """

    __slots__ = ("allowance", "bucket", "maxima", "minima", "window")

    def __init__(self, definition: AlarmDefinition, *, allowance: float, window: float = 86400.0,
                 bucket: float = 300.0) -> None:
        super().__init__(definition, 0.0, 0.0)
        self.allowance = allowance
        self.window = window
        self.bucket = bucket
        self.maxima = PairQueue()  # (bucket start, value), values decreasing
        self.minima = PairQueue()  # values increasing

    def on_value(self, ts: float, value: float) -> bool | None:
        if ts < self.last_ts:
            return None
        self.last_ts = ts
        slot = ts - ts % self.bucket
        self.maxima.push_highest(slot, value)
        self.minima.push_lowest(slot, value)
        horizon = slot - self.window
        spread = self.maxima.expire(horizon)[1] - self.minima.expire(horizon)[1]
        self.value = round(spread, 3)
        raw = spread > self.allowance
        if raw == self.raw:
            return None
        return self.decide(raw, ts)

    def snapshot(self) -> Snapshot:
        return {**super().snapshot(), "maxima": list(self.maxima), "minima": list(self.minima)}

    def restore(self, snapshot: Snapshot) -> None:
        super().restore(snapshot)
        self.maxima = PairQueue((float(a), float(b)) for a, b in snapshot.get("maxima", []))
        self.minima = PairQueue((float(a), float(b)) for a, b in snapshot.get("minima", []))


class SensorFaultRule(DelayedRule):
    """A point that reads only `bad` (sentinels, NaN, wrong types) for a while: the sensor, not the room."""

    def on_quality(self, ts: float, quality: Quality) -> bool | None:
        if quality is Quality.COMM_FAILURE or ts < self.last_ts:
            return None  # no answer says nothing about the sensor
        self.last_ts = ts
        raw = quality is Quality.BAD
        if raw == self.raw and self.delay.pending_since is None and self.delay.clearing_since is None:
            return None
        return self.decide(raw, ts)


class CommLossRule(DelayedRule):
    """A device that answers only with communication failures for a while (one per device)."""

    def on_quality(self, ts: float, quality: Quality) -> bool | None:
        if ts < self.last_ts:
            return None
        self.last_ts = ts
        raw = quality is Quality.COMM_FAILURE
        if raw == self.raw and self.delay.pending_since is None and self.delay.clearing_since is None:
            return None
        return self.decide(raw, ts)


class StaleRule(Rule):
    """No usable reading within `after` seconds: the data stopped, whatever the reason.

    Distinct from communication loss: a battery sensor that went silent, or a
    point whose readings are all `bad`, is stale without any device failing to
    answer. Measured from the engine's start when the point never reported.
    """

    __slots__ = ("_dirty", "active", "after", "last_usable")

    def __init__(self, definition: AlarmDefinition, *, after: float, started: float) -> None:
        super().__init__(definition)
        self.after = after
        self.last_usable = started
        self.active = False
        self._dirty = False

    def on_quality(self, ts: float, quality: Quality) -> bool | None:
        if not quality.usable:
            return None
        if ts > self.last_usable:
            self.last_usable = ts
        if self.active:
            self.active = False
            self._dirty = True
            return False
        return None

    def on_tick(self, now: float) -> bool | None:
        if now < self.last_usable:
            self.last_usable = now  # the clock jumped back: measure from the jump
        if not self.active and now - self.last_usable > self.after:
            self.active = True
            self.value = round(now - self.last_usable, 1)
            self._dirty = True
            return True
        return None

    @property
    def dirty(self) -> bool:
        return self._dirty

    def clean(self) -> None:
        self._dirty = False

    def snapshot(self) -> Snapshot:
        return {"active": self.active, "last_usable": self.last_usable}

    def restore(self, snapshot: Snapshot) -> None:
        self.active = bool(snapshot.get("active", False))
        self.last_usable = max(self.last_usable, float(snapshot.get("last_usable", self.last_usable)))


def dew_point(temperature: float, humidity: float) -> float:
    """Magnus form with Sonntag 1990 coefficients (−45…60 °C, ±0.35 °C; standards.md §5)."""
    gamma = math.log(max(humidity, 0.1) / 100.0) + 17.62 * temperature / (243.12 + temperature)
    return 243.12 * gamma / (17.62 - gamma)


class CondensationRule(DelayedRule):
    """A surface or supply-air temperature within `margin` K of the room's dew point: water will condense.

    Fed by three points: the room's air temperature and RH (`on_room`) and the
    surface temperature (`on_value`). Decides only when all three are known.
    """

    __slots__ = ("humidity", "margin", "surface", "temperature")

    def __init__(self, definition: AlarmDefinition, *, margin: float, off_delay: float = 60.0) -> None:
        super().__init__(definition, 0.0, off_delay)
        self.margin = margin
        self.temperature: float | None = None
        self.humidity: float | None = None
        self.surface: float | None = None

    def on_room(self, ts: float, quantity: str, value: float) -> bool | None:
        if quantity == "temperature":
            self.temperature = value
        else:
            self.humidity = value
        return self._judge(ts)

    def on_value(self, ts: float, value: float) -> bool | None:
        self.surface = value
        return self._judge(ts)

    def _judge(self, ts: float) -> bool | None:
        if self.temperature is None or self.humidity is None or self.surface is None:
            return None
        point = dew_point(self.temperature, self.humidity)
        gap = self.surface - point
        self.value = round(gap, 2)
        raw = gap < self.margin + (0.5 if self.raw else 0.0)
        if raw == self.raw and self.delay.clearing_since is None:
            return None
        return self.decide(raw, ts)


def calibration_stage(days_left: int) -> int:
    """0 nothing due; 1 within 3 months; 2 within 1 month; 3 due today or overdue (issue 3)."""
    if days_left <= 0:
        return 3
    if days_left <= 30:
        return 2
    if days_left <= 91:
        return 1
    return 0
