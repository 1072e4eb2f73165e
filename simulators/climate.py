"""Closed-loop climate of one stack room: weather outside, the envelope, the collection and the actuators.

A room with actuator devices (a relay module switching a dehumidifier, a
precision air-conditioner) must answer to them, so its temperature and RH are
not a function of time alone: they are integrated forward from the commands.
`ClimatePhysics` is plain Python with no I/O; the Modbus devices of
`simulators.modbus` drive it, and a control benchmark can drive it directly:

    physics = ClimatePhysics("main-1-paper", volume=300.0, temperature=19.0, humidity=52.0,
                             weather="humid-week", start=clock.now())
    physics.set_load("dehumidifier", True, clock.now())   # its relay closed and the unit runs
    physics.set_hvac(True, 19.0, clock.now())             # a CRAC running at 19.0 °C (rooms with one)
    physics.advance(clock.now() + 3600)                   # integrate to an instant (lazily, on every read too)
    physics.temperature, physics.humidity                 # °C and %RH of the room air now
    physics.at(some_instant)                              # (T, RH) at an instant; the past from a short history
    physics.starts["dehumidifier"], physics.run_hours["dehumidifier"]   # for starts per day, energy

Time is float seconds (the injected clock, `stackwatch.clock.ManualClock` in
tests). The state moves in fixed steps of `step` seconds on a grid from the
start instant, so a reading depends only on the instant and the commands'
instants, never on how often it is asked; a command takes effect from the
grid step it falls in. Reads of the past come from the last `HISTORY` seconds
of integrated states (the nearest one at or before the instant).

State: room temperature, the air's absolute humidity (g/m³) and the RH the
collection's accessible surface is in equilibrium with. RH is derived with the
Magnus form (Sonntag 1990 coefficients) as in `simulators.room`. Per hour:
- infiltration moves the air toward outdoor moisture at `air_changes` per hour
  (an open door multiplies it, an open fresh-air damper adds to it);
- temperature relaxes toward outdoors through the envelope and with the
  infiltrating air, slowed by the building's mass;
- the collection exchanges moisture with the air in proportion to the RH
  difference and holds a large capacity per %RH (it buffers RH changes);
- a dehumidifier removes moisture at a fixed capacity, a humidifier adds it,
  a heater or cooler moves temperature at a fixed rate;
- an HVAC unit (the `hvac-controller`) moves temperature toward its set-point
  at a rate bounded by `HVAC_MAX_RATE`; a room wired with an `air_handling`
  load gets no HVAC effect while that is off. A room without an HVAC unit may
  have its temperature held by the building (`held_temperature`), a system
  outside stackwatch's control.

Loads a room can have: `LOADS`. Several units of one kind add up; each is
named by a `source` (the device and relay that switch it).
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, replace

LOADS = ("dehumidifier", "humidifier", "air_handling", "damper", "valve", "heater", "cooler")

# ---- the room ----
DEFAULT_VOLUME = 300.0  # m³: a 100 m² stack room with 3 m ceilings
STEP = 30.0  # s of simulated time per integration step; the fastest process (air ↔ collection) takes ~5 min
HISTORY = 2 * 3600.0  # s of past states kept for reads of the past (an MQTT device's out-of-order message)
MAX_CATCH_UP = 14 * 86400.0  # s: a longer gap is not integrated; the room is taken to have stayed as it was

# Infiltration. Purpose-built repositories are built tight: 0.05–0.2 air changes per hour are measured in
# well-sealed archive stores (BS EN 16893 asks for a tight envelope, with low exchange to damp outdoor swings);
# 0.1/h is a time constant of 10 h for the air alone.
AIR_CHANGES_PER_HOUR = 0.1
DOOR_OPEN_FACTOR = 10.0  # an open door to the corridor: about 1 air change per hour while it stays open
DAMPER_OPEN_AIR_CHANGES = 0.5  # a fresh-air damper open (relay on) adds this; closed, only the envelope leaks

# Temperature. Heavy masonry stores damp the outdoor daily swing to well under 1 K: envelope conduction with a
# time constant of about three days, and the infiltrating air, whose heat goes mostly into walls, shelving and
# boxes (an effective heat capacity about ten times the air's over hours).
ENVELOPE_TAU_HOURS = 72.0
THERMAL_MASS_FACTOR = 10.0

# The collection's moisture buffer. Paper holds about 0.1 % of its mass in water per %RH near 50 %RH; a stack
# room holds some 50 kg of paper per m³ of room, 50 g per %RH per m³. Only the outer sheets of boxed records
# respond within a day: about 5 % of it, 3 g per %RH and m³, some 18 times what the air itself holds per %RH
# at 19 °C (0.16 g/m³). The exchange (2 g/h per m³ and %RH difference) brings the air to the collection's RH
# within about 5 minutes: so large a surface keeps a running dehumidifier only about 1.5 %RH ahead of it.
BUFFER_CAPACITY = 3.0  # g per %RH per m³ of room
BUFFER_CONDUCTANCE = 2.0  # g per hour per %RH of difference per m³ of room

# Actuators (per m³ of room unless given per unit).
DEHUMIDIFIER_CAPACITY = 3.0  # g/h/m³: 0.9 kg/h for 300 m³, a 50 L/day refrigerant unit at archive conditions
DEHUMIDIFIER_FULL_RH = 40.0  # below this RH the coil catches less: capacity falls in proportion
DEHUMIDIFIER_HEAT = 0.2  # K/h: a refrigerant dehumidifier gives its compressor heat back to the room
HUMIDIFIER_CAPACITY = 1.5  # g/h/m³: an ultrasonic / steam unit sized for winter heating seasons
HUMIDIFIER_STOP_RH = 90.0  # a humidifier's own hygrostat limit; its output tapers over the last 10 %RH
HEATER_RATE = 1.0  # K/h: a trim heater against the room's mass
COOLER_RATE = 1.0  # K/h
HVAC_MAX_RATE = 1.5  # K/h: archives ask for slow changes; a CRAC on a heavy room moves it at most this fast
HVAC_TAU_HOURS = 0.5  # a unit closes half an hour's worth of its error per hour, within the rate bound


def saturation_pressure(temperature: float) -> float:
    """hPa over water, Magnus form with Sonntag 1990 coefficients (as simulators.room's dew point)."""
    return 6.112 * math.exp(17.62 * temperature / (243.12 + temperature))


def saturation_density(temperature: float) -> float:
    """g/m³ of water vapour in saturated air at `temperature` °C."""
    return 216.7 * saturation_pressure(temperature) / (273.15 + temperature)


def absolute_humidity(temperature: float, humidity: float) -> float:
    """g/m³ from T (°C) and RH (%)."""
    return saturation_density(temperature) * humidity / 100.0


def relative_humidity(temperature: float, density: float) -> float:
    """%RH of air at `temperature` °C holding `density` g/m³ (above 100 when supersaturated)."""
    return 100.0 * density / saturation_density(temperature)


@dataclass(frozen=True)
class Weather:
    """Outdoors: a daily cycle of temperature, with RH moving the opposite way, warmest at `warmest_hour`.

    `warmest_hour` is UTC hours; `at_local(offset)` moves it to mid-afternoon in a zone `offset` hours ahead.
    """

    name: str
    t_mean: float
    t_swing: float  # half the daily range, K
    rh_mean: float
    rh_swing: float  # half the daily range, %RH
    warmest_hour: float = 15.0

    def outdoor(self, now: float) -> tuple[float, float]:
        """(°C, %RH) outdoors at `now` (epoch seconds)."""
        hours = (now % 86400.0) / 3600.0
        cycle = math.cos(2 * math.pi * (hours - self.warmest_hour) / 24.0)  # +1 at the warmest hour
        return self.t_mean + self.t_swing * cycle, min(100.0, self.rh_mean - self.rh_swing * cycle)

    def at_local(self, utc_offset_hours: float) -> Weather:
        return replace(self, warmest_hour=(15.0 - utc_offset_hours) % 24.0)


# Temperate: a mild spring or autumn day of a mid-latitude city (outdoor 10–20 °C, 55–85 %RH; about 8–9 g/m³).
# Humid week: a plum-rain (梅雨) week in southern China, 26–31 °C at 80–95 %RH, about 25 g/m³ of water in the air.
PRESETS: dict[str, Weather] = {
    "temperate": Weather("temperate", t_mean=15.0, t_swing=5.0, rh_mean=70.0, rh_swing=15.0),
    "humid-week": Weather("humid-week", t_mean=28.5, t_swing=2.5, rh_mean=87.5, rh_swing=7.5),
}
DEFAULT_WEATHER = "temperate"


def weather_preset(name: str) -> Weather:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown weather {name!r}; presets: {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class _Sample:
    at: float
    temperature: float
    density: float  # g/m³ in the air
    buffer_rh: float  # %RH the collection's surface is in equilibrium with


class ClimatePhysics:
    """One room's climate, integrated lazily on the clock it is asked at (see the module docstring)."""

    def __init__(self, room_id: str, volume: float = DEFAULT_VOLUME, *, temperature: float = 19.0,
                 humidity: float = 50.0, weather: Weather | str = DEFAULT_WEATHER, start: float | None = None,
                 held_temperature: float | None = None, air_changes: float = AIR_CHANGES_PER_HOUR,
                 dehumidifier_capacity: float | None = None, humidifier_capacity: float | None = None,
                 step: float = STEP) -> None:
        if volume <= 0 or step <= 0 or air_changes < 0:
            raise ValueError("volume and step are positive, air_changes not negative")
        if not 0.0 <= humidity <= 100.0:
            raise ValueError("humidity is an RH, 0..100")
        self.room_id = room_id
        self.volume = volume
        self._lock = threading.RLock()  # the MQTT publisher thread, the control thread and the Modbus loop all ask
        self.step = step
        self.air_changes = air_changes
        self.held_temperature = held_temperature
        # capacities in g/h for the whole room; the balance works per m³
        self.dehumidifier_capacity = DEHUMIDIFIER_CAPACITY * volume if dehumidifier_capacity is None \
            else dehumidifier_capacity
        self.humidifier_capacity = HUMIDIFIER_CAPACITY * volume if humidifier_capacity is None \
            else humidifier_capacity
        self.weather = weather_preset(weather) if isinstance(weather, str) else weather
        self._t: float | None = start
        self._temperature = temperature
        self._density = absolute_humidity(temperature, humidity)
        self._buffer_rh = humidity
        self._history: deque[_Sample] = deque(maxlen=max(2, int(HISTORY / step) + 1))
        self.door_open = False
        self._wired: dict[str, set[str]] = {kind: set() for kind in LOADS}
        self._running: dict[str, set[str]] = {kind: set() for kind in LOADS}
        self._hvac: dict[str, tuple[bool, float]] = {}  # source → (run, set-point)
        self.hvac_rates: dict[str, float] = {}  # source → K/h delivered in the last step (negative: cooling)
        self.starts: dict[str, int] = dict.fromkeys(LOADS, 0)
        self.run_hours: dict[str, float] = dict.fromkeys(LOADS, 0.0)  # unit-hours summed over a kind's units
        self.hvac_starts = 0
        if start is not None:
            self._record()

    # ---- reading ----

    @property
    def now(self) -> float | None:
        """The instant the state is integrated to (None before the first use)."""
        return self._t

    @property
    def temperature(self) -> float:
        return self._temperature

    @property
    def humidity(self) -> float:
        return min(100.0, relative_humidity(self._temperature, self._density))

    @property
    def absolute_humidity(self) -> float:
        return self._density

    @property
    def buffer_humidity(self) -> float:
        """The RH the collection's surface is in equilibrium with (what a hygrometer in a box would read)."""
        return self._buffer_rh

    def outdoor(self, now: float) -> tuple[float, float]:
        """(°C, %RH) outdoors at `now`."""
        return self.weather.outdoor(now)

    def at(self, now: float) -> tuple[float, float]:
        """(°C, %RH) at `now`: integrates to it, or for an instant already passed, the nearest earlier state."""
        with self._lock:
            if self._t is None or now >= self._t:
                self.advance(now)
                return self.temperature, self.humidity
            index = bisect_right([s.at for s in self._history], now)
            sample = self._history[max(0, index - 1)]
            return sample.temperature, min(100.0, relative_humidity(sample.temperature, sample.density))

    # ---- commands (each integrates to `now` first, so it acts from there on) ----

    def wire(self, kind: str, source: str) -> None:
        """Declare a unit of `kind` in the room (an air_handling or damper unit matters even while off)."""
        with self._lock:
            self._wired[self._kind(kind)].add(source)

    def set_load(self, kind: str, on: bool, now: float | None = None, source: str = "") -> None:
        """A unit of `kind` runs (True) or stops; `source` names it when a room has several of one kind."""
        with self._lock:
            kind = self._kind(kind)
            if now is not None:
                self.advance(now)
            self._wired[kind].add(source)
            running = self._running[kind]
            if on and source not in running:
                running.add(source)
                self.starts[kind] += 1
            elif not on:
                running.discard(source)

    def set_hvac(self, run: bool, setpoint: float, now: float | None = None, source: str = "") -> None:
        """An HVAC unit's effective run state and set-point (°C), from `now` on."""
        with self._lock:
            if now is not None:
                self.advance(now)
            before = self._hvac.get(source, (False, setpoint))[0]
            if run and not before:
                self.hvac_starts += 1
            self._hvac[source] = (run, float(setpoint))

    def remove_hvac(self, source: str = "") -> None:
        self._hvac.pop(source, None)

    def set_door(self, is_open: bool, now: float | None = None) -> None:
        with self._lock:
            if now is not None:
                self.advance(now)
            self.door_open = is_open

    def set_weather(self, weather: Weather | str, now: float | None = None) -> None:
        with self._lock:
            if now is not None:
                self.advance(now)
            self.weather = weather_preset(weather) if isinstance(weather, str) else weather

    def running(self, kind: str) -> int:
        """How many units of `kind` run now."""
        return len(self._running[self._kind(kind)])

    def has_hvac(self) -> bool:
        return bool(self._hvac)

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in LOADS:
            raise ValueError(f"unknown load {kind!r}; one of {', '.join(LOADS)}")
        return kind

    # ---- integration ----

    def advance(self, now: float) -> None:
        """Integrate in whole steps up to `now` (the state stays at the last grid instant at or before it)."""
        with self._lock:
            if self._t is None:
                self._t = now
                self._record()
                return
            if now - self._t > MAX_CATCH_UP:
                skipped = math.floor((now - self._t - MAX_CATCH_UP) / self.step) * self.step
                self._t += skipped
            while self._t + self.step <= now:
                self._step(self._t, self.step / 3600.0)
                self._t += self.step
                self._record()

    def _record(self) -> None:
        assert self._t is not None
        self._history.append(_Sample(self._t, self._temperature, self._density, self._buffer_rh))

    def _air_changes(self) -> float:
        exchange = self.air_changes
        if self._running["damper"]:
            exchange += DAMPER_OPEN_AIR_CHANGES * len(self._running["damper"])
        if self.door_open:
            exchange *= DOOR_OPEN_FACTOR
        return exchange

    def _hvac_rate(self, run: bool, setpoint: float, air_handling: bool) -> float:
        if not run or not air_handling:
            return 0.0
        return max(-HVAC_MAX_RATE, min(HVAC_MAX_RATE, (setpoint - self._temperature) / HVAC_TAU_HOURS))

    def _step(self, t: float, hours: float) -> None:
        t_out, rh_out = self.weather.outdoor(t)
        exchange = self._air_changes()
        temperature, density = self._temperature, self._density
        # ---- heat (K/h) ----
        heat = (t_out - temperature) * (1.0 / ENVELOPE_TAU_HOURS + exchange / THERMAL_MASS_FACTOR)
        air_handling = not self._wired["air_handling"] or bool(self._running["air_handling"])
        self.hvac_rates = {source: self._hvac_rate(run, setpoint, air_handling)
                           for source, (run, setpoint) in self._hvac.items()}
        heat += sum(self.hvac_rates.values())
        if not self._hvac and self.held_temperature is not None:
            heat += self._hvac_rate(True, self.held_temperature, air_handling)
        heat += HEATER_RATE * len(self._running["heater"]) - COOLER_RATE * len(self._running["cooler"])
        heat += DEHUMIDIFIER_HEAT * len(self._running["dehumidifier"])
        # ---- moisture (g/h per m³) ----
        rh_air = relative_humidity(temperature, density)
        from_collection = BUFFER_CONDUCTANCE * (self._buffer_rh - rh_air)
        moisture = from_collection + exchange * (absolute_humidity(t_out, rh_out) - density)
        dehumidifiers = len(self._running["dehumidifier"])
        if dehumidifiers:
            share = min(1.0, max(0.0, rh_air / DEHUMIDIFIER_FULL_RH))
            moisture -= dehumidifiers * self.dehumidifier_capacity / self.volume * share
        humidifiers = len(self._running["humidifier"])
        if humidifiers:
            share = min(1.0, max(0.0, (HUMIDIFIER_STOP_RH - rh_air) / 10.0))
            moisture += humidifiers * self.humidifier_capacity / self.volume * share
        self._temperature = temperature + heat * hours
        # above saturation the surplus condenses on the coldest surfaces (and is lost to the air)
        self._density = min(saturation_density(self._temperature), max(0.0, density + moisture * hours))
        self._buffer_rh = min(100.0, max(0.0, self._buffer_rh - from_collection * hours / BUFFER_CAPACITY))
        for kind, units in self._running.items():
            self.run_hours[kind] += len(units) * hours
