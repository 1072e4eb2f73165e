"""A stack room's climate and events, as the simulated devices see them.

Deterministic for a given seed and time, so two simulators (or a test and a
simulator) agree on what a room "is" at any instant of the injected clock.
Temperature and RH drift with a daily cycle around the room's set-points;
events (fire, leak, door) are switched by scenarios and faults. A room with
actuators (`physics`, simulators/climate.py) takes its temperature and RH
from its closed-loop physics instead of the daily cycle; scenario offsets,
held values and events work the same on it.

Scenarios that change the climate over time (simulators/scenarios.py) are
attached as effects the model asks at every reading, instead of writing
values into the model on a timer: a reading then depends only on the clock
and on when the scenario was switched, whoever asks and however often. Each
scenario keeps its timeline of switches, so a reading of the past (an MQTT
device's out-of-order fault sends one) is what the room was then.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Protocol

from .climate import ClimatePhysics


@dataclass
class RoomState:
    temperature: float
    humidity: float
    fire: bool = False
    pre_alarm: bool = False
    trouble: bool = False
    smoke: bool = False
    water_leak: bool = False
    door_open: bool = False
    motion: bool = False

    @property
    def dew_point(self) -> float:
        """Magnus form, Sonntag 1990 coefficients (standards.md §5)."""
        gamma = math.log(max(self.humidity, 0.1) / 100.0) + 17.62 * self.temperature / (243.12 + self.temperature)
        return 243.12 * gamma / (17.62 - gamma)


class ClimateEffect(Protocol):
    """A scenario's hold on a room's climate; evaluated at each instant so readings stay a function of time."""

    def offsets(self, now: float) -> tuple[float, float]:
        """Kelvin and %RH added to the room's daily cycle at `now`."""
        ...

    def humidity(self, now: float) -> float | None:
        """An RH the room shows at `now` instead of its own (after offsets), or None to leave it."""
        ...


@dataclass
class RoomModel:
    """Daily cycle: temperature peaks mid-afternoon, RH moves opposite; a small per-room phase and noise."""

    room_id: str
    t_set: float = 18.0
    rh_set: float = 50.0
    t_amplitude: float = 1.0
    rh_amplitude: float = 3.0
    t_offset: float = 0.0  # set by hand through the control topic; scenarios use `effects`
    rh_offset: float = 0.0
    events: dict[str, bool] = field(default_factory=dict)
    # by scenario name: (since, effect or None when switched off), in time order
    effects: dict[str, list[tuple[float, ClimateEffect | None]]] = field(default_factory=dict)
    physics: ClimatePhysics | None = None  # set for a room whose actuators drive its climate

    def __post_init__(self) -> None:
        self._phase = (zlib.crc32(self.room_id.encode()) % 1000) / 1000.0 * 2 * math.pi / 12

    def state(self, now: float) -> RoomState:
        day = 2 * math.pi * ((now % 86400.0) / 86400.0)
        cycle = math.sin(day - 2 * math.pi * 9 / 24 + self._phase)  # warmest around 15:00 UTC-ish
        wobble = math.sin(now / 97.0 + self._phase) * 0.05
        t_effect, rh_effect, held = self._effects_at(now)
        if self.physics is not None:  # the room's own climate; the wobble stays as the sensors' noise
            t_room, rh_room = self.physics.at(now)
            temperature = t_room + self.t_offset + t_effect + wobble
            humidity = rh_room + self.rh_offset + rh_effect + wobble * 4
        else:
            temperature = self.t_set + self.t_offset + t_effect + self.t_amplitude * cycle + wobble
            humidity = self.rh_set + self.rh_offset + rh_effect - self.rh_amplitude * cycle + wobble * 4
        if held is not None:
            humidity = held
        humidity = min(100.0, max(0.0, humidity))
        return RoomState(temperature=round(temperature, 3), humidity=round(humidity, 3), **self.events)

    def _effects_at(self, now: float) -> tuple[float, float, float | None]:
        """Offsets add up (a failing HVAC under a manual offset); a held RH wins, being what a test aims at."""
        t_sum = rh_sum = 0.0
        held: float | None = None
        for name in self.effects:
            effect = self.effect(name, now)
            if effect is None:
                continue
            dt, drh = effect.offsets(now)
            t_sum, rh_sum = t_sum + dt, rh_sum + drh
            held = effect.humidity(now) if held is None else held
        return t_sum, rh_sum, held

    def effect(self, name: str, now: float) -> ClimateEffect | None:
        """The effect scenario `name` had on the room at `now` (None: off, or not yet switched on)."""
        timeline = self.effects.get(name, [])
        index = bisect_right(timeline, now, key=lambda entry: entry[0])
        return timeline[index - 1][1] if index else None

    def set_effect(self, name: str, effect: ClimateEffect | None, since: float) -> None:
        """Scenario `name` acts through `effect` from `since` on (None: no more); readings before keep theirs."""
        timeline = self.effects.setdefault(name, [])
        timeline.insert(bisect_right(timeline, since, key=lambda entry: entry[0]), (since, effect))

    def set_event(self, name: str, on: bool, now: float | None = None) -> None:
        """Switch an event; `now` (the sim instant) lets a physics room's open door act from then on."""
        if name not in RoomState.__dataclass_fields__ or name in ("temperature", "humidity"):
            raise ValueError(f"unknown room event {name!r}")
        self.events[name] = on
        if name == "door_open" and self.physics is not None:
            self.physics.set_door(on, now)
