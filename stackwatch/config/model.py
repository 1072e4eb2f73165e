"""The whole site file, with the checks that span sections (references, unique ids)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator

from .alarms import AlarmsConfig
from .api import ApiConfig
from .base import StrictModel
from .devices import Device, Gateway, ModbusDevice, MqttDevice
from .notify import NotifyConfig
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
            elif isinstance(device, MqttDevice) and self.mqtt is None:
                raise CrossReferenceError(f"{path}.protocol", "MQTT devices need an `mqtt` broker section")
        return self

    def building_of(self, room_id: str) -> str:
        for room in self.rooms:
            if room.id == room_id:
                return room.building
        raise KeyError(room_id)
