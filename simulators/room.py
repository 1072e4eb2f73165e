"""A stack room's climate and events, as the simulated devices see them.

Deterministic for a given seed and time, so two simulators (or a test and a
simulator) agree on what a room "is" at any instant of the injected clock.
Temperature and RH drift with a daily cycle around the room's set-points;
events (fire, leak, door) are switched by scenarios and faults.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field


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


@dataclass
class RoomModel:
    """Daily cycle: temperature peaks mid-afternoon, RH moves opposite; a small per-room phase and noise."""

    room_id: str
    t_set: float = 18.0
    rh_set: float = 50.0
    t_amplitude: float = 1.0
    rh_amplitude: float = 3.0
    t_offset: float = 0.0  # scenarios move the room (hvac-failure adds heat and damp)
    rh_offset: float = 0.0
    events: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._phase = (zlib.crc32(self.room_id.encode()) % 1000) / 1000.0 * 2 * math.pi / 12

    def state(self, now: float) -> RoomState:
        day = 2 * math.pi * ((now % 86400.0) / 86400.0)
        cycle = math.sin(day - 2 * math.pi * 9 / 24 + self._phase)  # warmest around 15:00 UTC-ish
        wobble = math.sin(now / 97.0 + self._phase) * 0.05
        temperature = self.t_set + self.t_offset + self.t_amplitude * cycle + wobble
        humidity = self.rh_set + self.rh_offset - self.rh_amplitude * cycle + wobble * 4
        humidity = min(100.0, max(0.0, humidity))
        return RoomState(temperature=round(temperature, 3), humidity=round(humidity, 3), **self.events)

    def set_event(self, name: str, on: bool) -> None:
        if name not in RoomState.__dataclass_fields__ or name in ("temperature", "humidity"):
            raise ValueError(f"unknown room event {name!r}")
        self.events[name] = on
