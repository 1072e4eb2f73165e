"""One room's control decision per step: interlocks, then operators, then the loops.

Pure: readings, overrides and time in, the wanted value of each actuator out
(the runtime writes only what differs from what it last commanded). The order
is the safety order: an interlock beats an operator's override, an override
beats a loop, and a loop with no trustworthy reading holds rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackwatch.config.control import TargetPeriod

from . import interlocks
from .interlocks import InterlockState
from .loops import SetpointState, UnitState, humidity_demand, next_setpoint, period_at
from .plan import ActuatorPlan, RoomPlan

AUTO, MANUAL, INTERLOCK = "auto", "manual", "interlock"


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's manual setting of an actuator (`value`), or of a whole loop (`<room>/<loop>`: the loop holds)."""

    target: str
    value: float | None
    who: str
    reason: str
    since: float
    until: float

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "who": self.who, "reason": self.reason, "since": self.since, "until": self.until}


@dataclass(frozen=True, slots=True)
class Desired:
    actuator: str
    value: float
    source: str  # auto | manual | interlock
    reason: str


@dataclass(frozen=True, slots=True)
class ClimateInput:
    """A room's temperature or RH as the loops may use it: a value, or why there is none."""

    value: float | None
    problem: str = ""


@dataclass(slots=True)
class LoopStatus:
    mode: str = AUTO  # auto | manual | interlock | hold
    target: float | None = None
    band: tuple[float, float] | None = None
    period: str = ""
    measured: float | None = None
    problem: str = ""


def loop_target(room: str, loop: str) -> str:
    return f"{room}/{loop}"


@dataclass
class RoomController:
    plan: RoomPlan
    actuators: Mapping[str, ActuatorPlan]
    timezone: str
    units: dict[str, UnitState] = field(default_factory=dict)
    setpoint: SetpointState = field(default_factory=SetpointState)
    interlock: InterlockState = field(default_factory=InterlockState)
    loops: dict[str, LoopStatus] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.plan.control.actuators():
            if self.actuators[name].spec.kind == "switch":
                self.units.setdefault(name, UnitState())
        if self.plan.control.humidity is not None:
            self.loops.setdefault("humidity", LoopStatus())
        if self.plan.control.temperature is not None:
            self.loops.setdefault("temperature", LoopStatus())

    def observe_safety(self, fire_points: list[str], leak_points: list[str], now: float) -> list[str]:
        return interlocks.update(self.interlock, fire_points, leak_points, now, self.plan.control.interlocks.reset)

    def step(self, temperature: ClimateInput, humidity: ClimateInput, overrides: Mapping[str, Override],
             now: float) -> list[Desired]:
        out: dict[str, Desired] = {}
        self._interlocks(out)
        for name in self.plan.control.actuators():
            override = overrides.get(name)
            if name not in out and override is not None and override.value is not None:
                out[name] = Desired(name, override.value, MANUAL, f"manual by {override.who}: {override.reason}")
        self._humidity(humidity, overrides, out, now)
        self._temperature(temperature, overrides, out, now)
        for desired in out.values():
            unit = self.units.get(desired.actuator)
            if unit is not None:
                unit.switch(bool(desired.value), now)
            elif self.plan.control.temperature and desired.actuator == self.plan.control.temperature.setpoint \
                    and desired.source != AUTO:
                self.setpoint.value = desired.value
        return list(out.values())

    def _interlocks(self, out: dict[str, Desired]) -> None:
        control, state = self.plan.control, self.interlock
        locks = control.interlocks
        if state.latched:
            why = (f"fire interlock ({state.cause})" if state.fire
                   else f"fire interlock latched ({state.cause}), awaiting an operator's reset")
            for name in locks.air_handling + locks.dampers + self._loop_switches():
                out[name] = Desired(name, 0, INTERLOCK, why)
        if state.leak_latched:
            why = (f"leak interlock ({state.leak_cause})" if state.leak
                   else f"leak interlock latched ({state.leak_cause}), awaiting an operator's reset")
            humidifiers = control.humidity.humidifiers if control.humidity else []
            for name in locks.leak_valves + humidifiers:
                out.setdefault(name, Desired(name, 0, INTERLOCK, why))
        if state.restore and not state.latched and not state.leak_latched:
            state.restore = False
            for name in locks.air_handling + locks.dampers + locks.leak_valves:
                if name not in self._loop_switches():
                    out.setdefault(name, Desired(name, 1, AUTO, "interlock reset: back in service"))

    def _loop_switches(self) -> list[str]:
        control = self.plan.control
        names: list[str] = []
        if control.humidity is not None:
            names += control.humidity.dehumidifiers + control.humidity.humidifiers
        if control.temperature is not None and control.temperature.run is not None:
            names.append(control.temperature.run)
        return names

    def _mode(self, loop: str, reading: ClimateInput, overrides: Mapping[str, Override]) -> tuple[str, str]:
        if self.interlock.latched:
            return INTERLOCK, "fire interlock"
        override = overrides.get(loop_target(self.plan.room, loop))
        if override is not None:
            return MANUAL, f"manual by {override.who}: {override.reason}"
        if reading.value is None:
            return "hold", reading.problem or "no usable reading"
        return AUTO, ""

    def _status(self, loop: str, periods: Sequence[TargetPeriod], base: float, band: float, reading: ClimateInput,
                overrides: Mapping[str, Override], now: float) -> LoopStatus:
        """The loop's target now (its period's, else the base), band, reading and mode, kept for the API."""
        status = self.loops[loop]
        period = period_at(periods, now, self.timezone)
        target = period.target if period is not None else base
        status.target, status.period, status.measured = target, period.name if period else "", reading.value
        status.band = (target - band, target + band)
        status.mode, status.problem = self._mode(loop, reading, overrides)
        return status

    def _humidity(self, reading: ClimateInput, overrides: Mapping[str, Override], out: dict[str, Desired],
                  now: float) -> None:
        loop = self.plan.control.humidity
        if loop is None:
            return
        status = self._status("humidity", loop.periods, self.plan.rh_target, self.plan.rh_band, reading, overrides,
                              now)
        target = status.target
        if status.mode != AUTO or reading.value is None or target is None:
            return
        rh = reading.value
        dehumidifying = any(self.units[n].on for n in loop.dehumidifiers)
        humidifying = any(self.units[n].on for n in loop.humidifiers)
        want_dry, want_wet = humidity_demand(rh, target, loop.hysteresis, dehumidifying, humidifying)
        for names, want, verb in ((loop.dehumidifiers, want_dry, "dehumidify"),
                                  (loop.humidifiers, want_wet, "humidify")):
            for name in names:
                if name in out:
                    continue
                unit = self.units[name]
                if unit.may_switch(want, now, loop.min_on, loop.min_off):
                    value, reason = want, (f"RH {rh:.1f} % (target {target:g} %): "
                                           f"{verb}" if want else f"RH {rh:.1f} % (target {target:g} %): stop")
                else:
                    value = bool(unit.on)
                    reason = f"RH {rh:.1f} %: {'runs' if unit.on else 'rests'} its minimum time"
                out[name] = Desired(name, float(value), AUTO, reason)

    def _temperature(self, reading: ClimateInput, overrides: Mapping[str, Override], out: dict[str, Desired],
                     now: float) -> None:
        loop = self.plan.control.temperature
        if loop is None:
            return
        status = self._status("temperature", loop.periods, self.plan.t_target, self.plan.t_band, reading, overrides,
                              now)
        target = status.target if status.target is not None else self.plan.t_target
        if status.mode in (INTERLOCK, MANUAL):
            return
        if loop.run is not None and loop.run not in out:
            out[loop.run] = Desired(loop.run, 1, AUTO, "the loop keeps its unit running")
        if status.mode != AUTO or loop.setpoint in out:
            return
        spec = self.actuators[loop.setpoint].spec
        low = spec.min if spec.min is not None else target - loop.trim
        high = spec.max if spec.max is not None else target + loop.trim
        value = next_setpoint(self.setpoint, target, reading.value, now, max_step=loop.max_step,
                              step_interval=loop.step_interval, trim_limit=loop.trim, low=low, high=high)
        if value is not None:
            self.setpoint.value = value
            out[loop.setpoint] = Desired(loop.setpoint, value, AUTO,
                                         f"room {reading.value:.1f} °C, target {target:g} °C"
                                         + (f" ({status.period})" if status.period else ""))
