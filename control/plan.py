"""The site file's control section resolved once: targets filled in, actuators and sensors looked up.

The loops then run on plain data and never search the config while a fire is on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alarms.profiles import effective_limits
from stackwatch.catalog import PointCatalog, PointInfo, point_key
from stackwatch.config.control import Actuator, RoomControl
from stackwatch.config.model import SiteConfig


@dataclass(frozen=True, slots=True)
class ActuatorPlan:
    name: str  # `<device>.<actuator>`
    device: str
    room: str
    spec: Actuator
    readback: str | None  # point key of the read-back point, or None: read the written address

    def encode(self, value: float) -> int:
        """The raw register or coil value for an engineering `value`; ValueError outside the allowed range."""
        spec = self.spec
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {value} is not a value")
        if spec.kind == "switch":
            if value not in (0, 1):
                raise ValueError(f"{self.name} is a switch: 0 or 1, not {value:g}")
            return int(value)
        if spec.kind == "mode" and int(value) not in spec.modes.values():
            raise ValueError(f"{self.name}: {value:g} is not one of its modes {spec.modes}")
        if spec.min is not None and value < spec.min - 1e-9:
            raise ValueError(f"{self.name}: {value:g} is below its allowed minimum {spec.min:g}")
        if spec.max is not None and value > spec.max + 1e-9:
            raise ValueError(f"{self.name}: {value:g} is above its allowed maximum {spec.max:g}")
        raw = round((value - spec.offset) / spec.scale)
        if spec.type == "int16":
            if not -32768 <= raw <= 32767:
                raise ValueError(f"{self.name}: {value:g} does not fit an int16 register")
            return raw & 0xFFFF
        if not 0 <= raw <= 0xFFFF:
            raise ValueError(f"{self.name}: {value:g} does not fit a uint16 register")
        return raw

    def decode(self, raw: int) -> float:
        """What a read-back of the written address means in engineering units."""
        if self.spec.table == "coil" or self.spec.kind == "switch":
            return float(bool(raw))
        if self.spec.type == "int16" and raw & 0x8000:
            raw -= 0x10000
        return raw * self.spec.scale + self.spec.offset

    def agrees(self, commanded: float, readback: float) -> bool:
        if self.spec.kind == "switch":
            return bool(commanded) == bool(readback)
        return abs(commanded - readback) <= self.spec.tolerance + abs(self.spec.scale) / 2 + 1e-9


@dataclass(frozen=True, slots=True)
class RoomPlan:
    room: str
    control: RoomControl
    rh_target: float
    rh_band: float
    t_target: float
    t_band: float
    temperature_points: tuple[str, ...]
    humidity_points: tuple[str, ...]
    fire_points: tuple[str, ...]
    leak_points: tuple[str, ...]


def _sensors(in_room: list[PointInfo], chosen: list[str], quantity: str) -> tuple[str, ...]:
    return tuple(info.key for info in in_room if info.quantity == quantity and (not chosen or info.key in chosen))


@dataclass(frozen=True, slots=True)
class ControlPlan:
    timezone: str
    rooms: dict[str, RoomPlan]
    actuators: dict[str, ActuatorPlan]
    watched: frozenset[str]  # points whose change must wake the interlocks at once

    @classmethod
    def from_config(cls, config: SiteConfig, catalog: PointCatalog) -> ControlPlan:
        rooms: dict[str, RoomPlan] = {}
        actuators: dict[str, ActuatorPlan] = {}
        by_id = {room.id: room for room in config.rooms}
        for room_control in config.control.rooms:
            room = by_id[room_control.room]
            limits = effective_limits(room)
            in_room = [info for info in catalog if info.room == room.id]
            interlocks = room_control.interlocks
            rh_half = (limits.rh_max - limits.rh_min) / 2
            t_half = (limits.t_max - limits.t_min) / 2
            humidity, temperature = room_control.humidity, room_control.temperature
            rooms[room.id] = RoomPlan(
                room=room.id, control=room_control,
                rh_target=humidity.target if humidity and humidity.target is not None
                else (limits.rh_min + limits.rh_max) / 2,
                rh_band=min(humidity.band, rh_half) if humidity else rh_half,
                t_target=temperature.target if temperature and temperature.target is not None
                else (limits.t_min + limits.t_max) / 2,
                t_band=min(temperature.band, t_half) if temperature else t_half,
                temperature_points=_sensors(in_room, room_control.sensors, "temperature"),
                humidity_points=_sensors(in_room, room_control.sensors, "humidity"),
                fire_points=tuple(info.key for info in in_room if info.is_state
                                  and info.quantity in interlocks.fire_quantities),
                leak_points=tuple(info.key for info in in_room if info.is_state
                                  and info.quantity in interlocks.leak_quantities))
            for name in room_control.actuators():
                found = config.actuator(name)
                assert found is not None  # the config checked every reference
                device, spec = found
                actuators[name] = ActuatorPlan(
                    name=name, device=device.id, room=room.id, spec=spec,
                    readback=point_key(device.id, spec.readback) if spec.readback else None)
        watched = frozenset(key for plan in rooms.values() for key in plan.fire_points + plan.leak_points)
        return cls(timezone=config.site.timezone, rooms=rooms, actuators=actuators, watched=watched)
