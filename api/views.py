"""What the API shows of rooms, devices, points and alarms: plain functions of the service's state.

A room's colour on the dashboard is decided here, once: `alarm` when a
critical or high alarm of the room is not normal, `warning` for any other
alarm, `no_data` when neither temperature nor humidity has a fresh usable
reading, else `normal`. A stale value is shown with its age, never as fresh.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from alarms.model import AlarmDefinition, AlarmState, AlarmStatus, Priority
from alarms.profiles import effective_limits
from alarms.rules import dew_point
from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.config.site import Room
from stackwatch.readings import Reading

STATE_FLAGS = ("fire", "smoke", "water_leak", "door_open", "motion", "fire_pre_alarm", "fire_trouble",
               "suppression_pre_discharge", "suppression_discharge")
FRESH_DEFAULT = 600.0  # seconds a reading counts as current when its point has no expected interval


def fresh_after(info: PointInfo) -> float:
    return max(60.0, 3 * info.expected_interval) if info.expected_interval else FRESH_DEFAULT


def reading_view(info: PointInfo, reading: Reading | None, now: float) -> dict[str, Any]:
    if reading is None:
        return {"point": info.key, "quantity": info.quantity, "unit": info.unit, "value": None, "quality": None,
                "ts": None, "age": None, "fresh": False}
    age = max(0.0, now - reading.ts_ns / 1e9)
    return {"point": info.key, "quantity": info.quantity, "unit": info.unit, "value": reading.value,
            "quality": reading.quality.value, "detail": reading.detail, "ts": reading.ts_ns / 1e9,
            "age": round(age, 1), "fresh": age <= fresh_after(info)}


def _usable_value(info: PointInfo, reading: Reading | None, now: float) -> float | None:
    if reading is None or not reading.quality.usable or reading.value is None or isinstance(reading.value, str):
        return None
    if now - reading.ts_ns / 1e9 > fresh_after(info):
        return None
    return float(reading.value)


def points_by_room(catalog: PointCatalog) -> dict[str, list[PointInfo]]:
    rooms: dict[str, list[PointInfo]] = {}
    for info in catalog:
        rooms.setdefault(info.room, []).append(info)
    return rooms


def room_view(room: Room, points: list[PointInfo], latest: Mapping[str, Reading], now: float,
              alarms: Iterable[tuple[AlarmDefinition, AlarmStatus]]) -> dict[str, Any]:
    climate: dict[str, list[float]] = {"temperature": [], "humidity": []}
    flags: dict[str, bool | None] = {}
    for info in points:
        reading = latest.get(info.key)
        if info.quantity in climate:
            value = _usable_value(info, reading, now)
            if value is not None:
                climate[info.quantity].append(value)
        elif info.is_state and info.quantity in STATE_FLAGS:
            state = _usable_value(info, reading, now)
            if state is None:
                flags.setdefault(info.quantity, None)  # unknown, unless another sensor of the room knows
            else:
                flags[info.quantity] = bool(flags.get(info.quantity)) or bool(state)
    temperature = sum(climate["temperature"]) / len(climate["temperature"]) if climate["temperature"] else None
    humidity = sum(climate["humidity"]) / len(climate["humidity"]) if climate["humidity"] else None
    own = [(d, s) for d, s in alarms if d.room == room.id and s.state is not AlarmState.NORMAL]
    return {
        "id": room.id, "name": room.name or room.id, "building": room.building, "floor": room.floor,
        "profile": room.profile,
        "limits": limits_view(room),
        "temperature": None if temperature is None else round(temperature, 2),
        "humidity": None if humidity is None else round(humidity, 2),
        "dew_point": None if temperature is None or humidity is None else round(dew_point(temperature, humidity), 2),
        "states": flags,
        "status": room_status(own, temperature is None and humidity is None and bool(points)),
        "alarms": {"active": len(own), "unacknowledged": sum(1 for _, s in own if s.state.unacknowledged),
                   "worst": min((s.priority for _, s in own), key=lambda p: p.rank).value if own else None},
    }


@functools.lru_cache(maxsize=4096)
def limits_view(room: Room) -> dict[str, dict[str, Any]]:
    """A room's limits with their sources: the config is immutable, so computed once per room."""
    limits = effective_limits(room)
    return {field: {"value": getattr(limits, field), "source": limits.source_of(field)}
            for field in ("t_min", "t_max", "rh_min", "rh_max", "t_daily_range", "rh_daily_range")}


def room_status(own: list[tuple[AlarmDefinition, AlarmStatus]], no_data: bool) -> str:
    if any(s.priority in (Priority.CRITICAL, Priority.HIGH) for _, s in own):
        return "alarm"
    if own:
        return "warning"
    return "no_data" if no_data else "normal"


def alarm_view(definition: AlarmDefinition, status: AlarmStatus) -> dict[str, Any]:
    return {
        "key": definition.key, "ticket": status.occurrence, "state": status.state.value,
        "priority": status.priority.value, "cause": definition.cause, "room": definition.room,
        "building": definition.building, "source": definition.source, "description": definition.description,
        "limit": definition.limit, "unit": definition.unit, "value": status.value, "condition": status.condition,
        "active_since": status.active_since, "acknowledged_by": status.acked_by or None,
        "acknowledged_at": status.acked_at, "ack_comment": status.ack_comment or None,
        "shelved_until": status.shelved_until, "shelved_by": status.shelved_by or None,
        "shelve_reason": status.shelve_reason or None, "suppressed_by": status.suppressed_by or None,
        "out_of_service": status.out_of_service, "oos_reason": status.oos_reason or None,
        "group": definition.group_key,
    }
