"""What the simulators need from a site file, read as plain data.

The simulators stand in for hardware, so they do not use the service's config
model: they read the same YAML the way an installer reads a wiring plan
(gateways and their addresses, devices, their models, rooms).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from .climate import DEFAULT_VOLUME, DEFAULT_WEATHER, ClimatePhysics, weather_preset
from .modbus.models import ACTUATOR_MODELS, HvacController
from .room import RoomModel

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Set-points a well-run room of each profile sits at (mid-band of JGJ 25-2010 / DA/T 87-2021).
PROFILE_SETPOINTS: dict[str, tuple[float, float]] = {
    "paper": (19.0, 52.0), "special": (17.0, 50.0), "film": (19.0, 50.0), "film-master": (14.0, 40.0),
    "magnetic": (19.0, 50.0), "optical": (17.5, 35.0), "photo": (18.0, 35.0), "mixed": (18.0, 50.0),
    "office": (22.0, 50.0),
}
NARROW_SWING = {"film-master": 0.5}


def _substitute(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: _substitute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    return value


@dataclass
class SimDeviceSpec:
    id: str
    model: str
    protocol: str
    room: str
    gateway: str | None = None
    unit: int = 1
    topic: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimGatewaySpec:
    id: str
    type: str  # modbus-tcp | modbus-rtu
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    framer: str = "socket"


@dataclass
class SimSite:
    site_id: str
    rooms: dict[str, RoomModel]
    gateways: list[SimGatewaySpec]
    devices: list[SimDeviceSpec]
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    timezone: str = "UTC"  # devices that report local time (Tasmota) are set to the site's zone

    def devices_on(self, gateway: str) -> list[SimDeviceSpec]:
        return [d for d in self.devices if d.gateway == gateway]

    @property
    def mqtt_devices(self) -> list[SimDeviceSpec]:
        return [d for d in self.devices if d.protocol == "mqtt"]

    def attach_physics(self) -> list[str]:
        """Give every room with actuator devices closed-loop physics (once); returns those rooms' ids.

        The room starts at its set-points in the default weather, warmest mid-afternoon in the site's zone; a
        room without an `hvac-controller` has its temperature held at its set-point by the building (a system
        stackwatch does not drive), so only its moisture is left to its actuators and the weather.
        """
        try:
            offset = (datetime.now(ZoneInfo(self.timezone)).utcoffset() or timedelta(0)).total_seconds() / 3600.0
        except (KeyError, ValueError, OSError):
            offset = 0.0
        weather = weather_preset(DEFAULT_WEATHER).at_local(offset)
        attached = []
        for room_id, room in self.rooms.items():
            models = {d.model for d in self.devices if d.room == room_id and d.protocol == "modbus"}
            if room.physics is not None or not models & ACTUATOR_MODELS:
                continue
            held = None if HvacController.model in models else room.t_set
            room.physics = ClimatePhysics(room_id, DEFAULT_VOLUME,
                                          temperature=room.t_set, humidity=room.rh_set, weather=weather,
                                          held_temperature=held)
            attached.append(room_id)
        return attached


def read_site(path: str | Path) -> SimSite:
    data = _substitute(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    rooms = {}
    for room in data.get("rooms", []):
        profile = room.get("profile", "paper")
        t_set, rh_set = PROFILE_SETPOINTS.get(profile, (18.0, 50.0))
        swing = NARROW_SWING.get(profile, 1.0)  # a master-film vault holds 13–15 °C: a 1 K swing would touch it
        rooms[room["id"]] = RoomModel(room["id"], t_set=t_set, rh_set=rh_set, t_amplitude=swing)
    gateways = []
    for gw in data.get("gateways", []):
        if gw["type"] == "modbus-rtu":
            gateways.append(SimGatewaySpec(
                id=gw["id"], type="modbus-rtu", serial_port=str(gw["port"]), baudrate=int(gw.get("baudrate", 9600)),
                parity=str(gw.get("parity", "N")), stopbits=int(gw.get("stopbits", 1)),
                bytesize=int(gw.get("bytesize", 8))))
        else:
            gateways.append(SimGatewaySpec(id=gw["id"], type="modbus-tcp", host=str(gw.get("host", "127.0.0.1")),
                                           port=int(gw.get("port", 502)), framer=str(gw.get("framer", "socket"))))
    devices = []
    for dev in data.get("devices", []):
        if not dev.get("model"):
            continue  # a custom device has no simulated hardware
        devices.append(SimDeviceSpec(
            id=dev["id"], model=dev["model"], protocol=dev.get("protocol", "modbus"), room=dev["room"],
            gateway=dev.get("gateway"), unit=int(dev.get("unit", 1)), topic=dev.get("topic"),
            options=dict(dev.get("model_options") or {})))
    mqtt = data.get("mqtt") or None
    site = SimSite(site_id=data["site"]["id"], rooms=rooms, gateways=gateways, devices=devices,
                   mqtt_host=None if mqtt is None else str(mqtt.get("host", "127.0.0.1")),
                   mqtt_port=1883 if mqtt is None else int(mqtt.get("port", 1883)),
                   timezone=str(data["site"].get("timezone", "UTC")))
    site.attach_physics()
    return site
