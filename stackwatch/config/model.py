"""The whole site file, with the checks that span sections (references, unique ids)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator

from .alarms import AlarmsConfig
from .api import ApiConfig
from .base import StrictModel
from .control import Actuator, ControlConfig, HumidityLoop, RoomControl, TemperatureLoop
from .devices import Device, Gateway, ModbusDevice, MqttDevice
from .notify import NotifyConfig, SmtpChannel
from .reports import ReportsConfig
from .services import MqttBroker, StorageConfig
from .site import Building, Room, SiteInfo


class CrossReferenceError(ValueError):
    """A reference error at a known path inside the config."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _duplicates(ids: Iterable[str]) -> list[str]:
    return [key for key, count in Counter(ids).items() if count > 1]


class SiteConfig(StrictModel):
    version: Literal[1] = Field(1, description="Schema version of this file.")
    site: SiteInfo
    buildings: list[Building] = Field(min_length=1)
    rooms: list[Room] = Field(default_factory=list)
    gateways: list[Gateway] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    mqtt: MqttBroker | None = Field(None, description="Broker for MQTT devices; required when any device uses MQTT.")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig, description="Alarm tuning; defaults suit stack rooms.")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="On-call paging: people, channels, routes.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="The HTTP API (acknowledge links, reply webhooks).")
    reports: ReportsConfig = Field(default_factory=ReportsConfig, description="Monthly compliance report by e-mail.")
    control: ControlConfig = Field(
        default_factory=ControlConfig, description="Environmental control: room loops, interlocks, overrides."
    )
    state_dir: str = Field("state", description="Folder for the spool and journals; relative to the config file.")

    @model_validator(mode="after")
    def _references(self) -> SiteConfig:
        for section, items in (
            ("buildings", self.buildings),
            ("rooms", self.rooms),
            ("gateways", self.gateways),
            ("devices", self.devices),
        ):
            ids = [item.id for item in items]
            for duplicate in _duplicates(ids):
                raise CrossReferenceError(
                    f"{section}[{ids.index(duplicate, ids.index(duplicate) + 1)}].id", f"duplicate id {duplicate!r}"
                )
        buildings = {b.id: b for b in self.buildings}
        rooms = {r.id for r in self.rooms}
        gateways = {g.id: g for g in self.gateways}
        for index, room in enumerate(self.rooms):
            building = buildings.get(room.building)
            if building is None:
                raise CrossReferenceError(f"rooms[{index}].building", f"unknown building {room.building!r}")
            if room.floor is not None and building.floors and room.floor not in building.floors:
                raise CrossReferenceError(
                    f"rooms[{index}].floor",
                    f"floor {room.floor!r} is not one of {building.id}'s floors {building.floors}",
                )
        for room_id in self.alarms.rooms:
            if room_id not in rooms:
                raise CrossReferenceError(f"alarms.rooms.{room_id}", f"unknown room {room_id!r}")
        units: dict[tuple[str, int], str] = {}
        for index, device in enumerate(self.devices):
            path = f"devices[{index}]"
            if device.room not in rooms:
                raise CrossReferenceError(f"{path}.room", f"unknown room {device.room!r}")
            point_ids = [p.id for p in device.points]
            for duplicate in _duplicates(point_ids):
                raise CrossReferenceError(f"{path}.points", f"duplicate point id {duplicate!r}")
            for p_index, point in enumerate(device.points):
                if point.room is not None and point.room not in rooms:
                    raise CrossReferenceError(f"{path}.points[{p_index}].room", f"unknown room {point.room!r}")
            if isinstance(device, ModbusDevice):
                if device.gateway not in gateways:
                    raise CrossReferenceError(f"{path}.gateway", f"unknown gateway {device.gateway!r}")
                key = (device.gateway, device.unit)
                if key in units:
                    raise CrossReferenceError(
                        f"{path}.unit", f"unit {device.unit} on gateway {device.gateway!r} is already {units[key]!r}"
                    )
                units[key] = device.id
                self._check_actuators(path, device)
            elif isinstance(device, MqttDevice) and self.mqtt is None:
                raise CrossReferenceError(f"{path}.protocol", "MQTT devices need an `mqtt` broker section")
        self._check_control()
        self._check_reports(rooms)
        return self

    def _check_reports(self, rooms: set[str]) -> None:
        """The monthly report names rooms that exist and an SMTP channel it can send through."""
        reports = self.reports
        for index, room in enumerate(reports.rooms):
            if room not in rooms:
                raise CrossReferenceError(f"reports.rooms[{index}]", f"unknown room {room!r}")
        if not reports.recipients:
            return
        smtp = [channel.id for channel in self.notify.channels if isinstance(channel, SmtpChannel)]
        if reports.channel is not None and reports.channel not in smtp:
            raise CrossReferenceError("reports.channel", f"{reports.channel!r} is not an SMTP channel of "
                                      f"notify.channels ({', '.join(smtp) or 'there is none'})")
        if not smtp:
            raise CrossReferenceError("reports.recipients", "the monthly report needs an SMTP channel in "
                                      "notify.channels to send through")

    @staticmethod
    def _check_actuators(path: str, device: ModbusDevice) -> None:
        points = {point.id for point in device.points}
        for duplicate in _duplicates(a.id for a in device.actuators):
            raise CrossReferenceError(f"{path}.actuators", f"duplicate actuator id {duplicate!r}")
        for index, actuator in enumerate(device.actuators):
            if actuator.readback is not None and actuator.readback not in points:
                raise CrossReferenceError(f"{path}.actuators[{index}].readback",
                                          f"{actuator.readback!r} is not a point of device {device.id!r}")

    def actuator(self, name: str) -> tuple[ModbusDevice, Actuator] | None:
        """The device and actuator `<device>.<actuator>` names, or None."""
        device_id, _, actuator_id = name.rpartition(".")
        for device in self.devices:
            if device.id == device_id and isinstance(device, ModbusDevice):
                for actuator in device.actuators:
                    if actuator.id == actuator_id:
                        return device, actuator
        return None

    def _check_control(self) -> None:
        # Lazy: the profiles (standards' limits) live with the alarms; the config only borrows them to check targets.
        from alarms.profiles import effective_limits

        rooms = {room.id: room for room in self.rooms}
        seen: set[str] = set()
        for index, room_control in enumerate(self.control.rooms):
            path = f"control.rooms[{index}]"
            room = rooms.get(room_control.room)
            if room is None:
                raise CrossReferenceError(f"{path}.room", f"unknown room {room_control.room!r}")
            if room.id in seen:
                raise CrossReferenceError(f"{path}.room", f"room {room.id!r} is controlled twice")
            seen.add(room.id)
            limits = effective_limits(room)
            self._check_loop_actuators(path, room_control)
            for name, loop, low, high, unit in (
                    ("humidity", room_control.humidity, limits.rh_min, limits.rh_max, "%"),
                    ("temperature", room_control.temperature, limits.t_min, limits.t_max, "°C")):
                if loop is not None:
                    self._check_targets(f"{path}.{name}", loop, low, high, f"{unit} leaves the room's "
                                        f"{'RH' if name == 'humidity' else name} limits {low:g}–{high:g} {unit} "
                                        f"({room.profile})")
            rh, t = room_control.humidity, room_control.temperature
            if rh is not None and t is not None and rh.target is not None and t.target is not None:
                # At a limit: the band pushed against one side, not a band as wide as the whole range
                # (film masters allow 13–15 °C; 14 ± 1 touches both sides and leans toward neither).
                rh_up, rh_down = rh.target + rh.band >= limits.rh_max, rh.target - rh.band <= limits.rh_min
                t_up, t_down = t.target + t.band >= limits.t_max, t.target - t.band <= limits.t_min
                for side, at_rh, at_t in (("upper", rh_up and not rh_down, t_up and not t_down),
                                          ("lower", rh_down and not rh_up, t_down and not t_up)):
                    if at_rh and at_t:
                        raise CrossReferenceError(
                            f"{path}.humidity.target", f"the temperature and RH bands both reach their {side} "
                            "limits: DA/T 87-2021 §5.1.2 asks that set-points never put both at the same side")

    @staticmethod
    def _check_targets(path: str, loop: HumidityLoop | TemperatureLoop, low: float, high: float, why: str) -> None:
        """Every target's band (the base target and each period's) inside the room's limits."""
        targets = [(loop.target, "target")] + [(p.target, f"periods[{i}].target") for i, p in enumerate(loop.periods)]
        for target, where in targets:
            if target is not None and not low <= target - loop.band < target + loop.band <= high:
                raise CrossReferenceError(f"{path}.{where}", f"{target:g} ± {loop.band:g} {why}")

    def _check_loop_actuators(self, path: str, room_control: RoomControl) -> None:
        uses: list[tuple[str, str, tuple[str, ...]]] = []  # (path, name, kinds allowed)
        if room_control.humidity is not None:
            for field in ("dehumidifiers", "humidifiers"):
                uses += [(f"{path}.humidity.{field}[{i}]", name, ("switch",))
                         for i, name in enumerate(getattr(room_control.humidity, field))]
        if room_control.temperature is not None:
            uses.append((f"{path}.temperature.setpoint", room_control.temperature.setpoint, ("setpoint",)))
            if room_control.temperature.run is not None:
                uses.append((f"{path}.temperature.run", room_control.temperature.run, ("switch",)))
        for field in ("air_handling", "dampers", "leak_valves"):
            uses += [(f"{path}.interlocks.{field}[{i}]", name, ("switch",))
                     for i, name in enumerate(getattr(room_control.interlocks, field))]
        for where, name, kinds in uses:
            found = self.actuator(name)
            if found is None:
                raise CrossReferenceError(where, f"unknown actuator {name!r} (write it as <device>.<actuator>)")
            if found[1].kind not in kinds:
                raise CrossReferenceError(where, f"{name!r} is a {found[1].kind}; this needs a {' or '.join(kinds)}")

    def building_of(self, room_id: str) -> str:
        for room in self.rooms:
            if room.id == room_id:
                return room.building
        raise KeyError(room_id)
