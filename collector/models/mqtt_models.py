"""MQTT devices (Zigbee2MQTT, Tasmota, Shelly), from the payloads in shared/domain/devices.md.

With a model, the device's `topic` is its own name in its ecosystem (the
Zigbee2MQTT friendly name, the Tasmota topic, the Shelly id); the model builds
the real topics from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .library import DeviceModel, Fragment, Options, register

DEVICES_MD = "shared/domain/devices.md"
Z2M_BATTERY_INTERVAL = 25 * 3600.0  # Zigbee2MQTT marks battery devices offline after 25 h of silence


def _name(device: Mapping[str, Any]) -> str:
    name = device.get("topic")
    if not isinstance(name, str) or not name:
        raise ValueError(
            "a device with an MQTT model needs `topic`: its name in its ecosystem (e.g. the Zigbee2MQTT friendly name)"
        )
    return name


def _zigbee(points: list[Fragment], uncertain: list[Fragment]) -> Any:
    def build(options: Options, device: Mapping[str, Any]) -> Fragment:
        state_topic = f"{options['base_topic']}/{_name(device)}"
        return {
            "topic": state_topic,
            "availability": {
                "topic": f"{state_topic}/availability",
                "path": "state",
                "online": ["online"],
                "offline": ["offline"],
            },
            "uncertain_when": uncertain,
            "points": [{**p, "expected_interval": Z2M_BATTERY_INTERVAL} for p in points],
        }

    return build


_Z2M_OPTIONS = {"base_topic": "zigbee2mqtt"}
_BATTERY = {"id": "battery", "quantity": "battery", "unit": "%", "path": "battery", "valid_min": 0, "valid_max": 100}

register(
    DeviceModel(
        name="z2m-aqara-th",
        protocol="mqtt",
        title="Aqara WSDCGQ11LM temperature/humidity/pressure (Zigbee2MQTT)",
        source=f"{DEVICES_MD}: zigbee2mqtt/<name> JSON: temperature, humidity, pressure, battery, voltage, linkquality",
        options=_Z2M_OPTIONS,
        build=_zigbee(
            [
                {
                    "id": "temperature",
                    "quantity": "temperature",
                    "unit": "°C",
                    "path": "temperature",
                    "valid_min": -20,
                    "valid_max": 60,
                },
                {
                    "id": "humidity",
                    "quantity": "humidity",
                    "unit": "%",
                    "path": "humidity",
                    "valid_min": 0,
                    "valid_max": 100,
                },
                {"id": "pressure", "quantity": "pressure", "unit": "hPa", "path": "pressure"},
                _BATTERY,
            ],
            [],
        ),
    )
)
register(
    DeviceModel(
        name="z2m-aqara-leak",
        protocol="mqtt",
        title="Aqara SJCGQ11LM water-leak sensor (Zigbee2MQTT)",
        source=f"{DEVICES_MD}: water_leak bool, battery_low bool, battery, voltage",
        options=_Z2M_OPTIONS,
        build=_zigbee(
            [
                {"id": "water_leak", "quantity": "water_leak", "path": "water_leak", "type": "bool"},
                _BATTERY,
            ],
            [{"path": "battery_low", "equals": True}],
        ),
    )
)
register(
    DeviceModel(
        name="z2m-aqara-door",
        protocol="mqtt",
        title="Aqara MCCGQ11LM door/window contact (Zigbee2MQTT)",
        source=f"{DEVICES_MD}: contact true = closed",
        options=_Z2M_OPTIONS,
        build=_zigbee(
            [
                {"id": "door_open", "quantity": "door_open", "path": "contact", "type": "bool", "invert": True},
                _BATTERY,
            ],
            [{"path": "battery_low", "equals": True}],
        ),
    )
)
register(
    DeviceModel(
        name="z2m-aqara-smoke",
        protocol="mqtt",
        title="Aqara JTYJ-GD-01LM smoke detector (Zigbee2MQTT)",
        source=f"{DEVICES_MD}: smoke, smoke_density, battery_low, tamper, test",
        options=_Z2M_OPTIONS,
        notes="A self-test (test: true) makes the message's readings uncertain, so a test is not taken as a fire.",
        build=_zigbee(
            [
                {"id": "smoke", "quantity": "smoke", "path": "smoke", "type": "bool"},
                {"id": "smoke_density", "quantity": "smoke_density", "path": "smoke_density"},
                {"id": "tamper", "quantity": "tamper", "path": "tamper", "type": "bool"},
                _BATTERY,
            ],
            [{"path": "battery_low", "equals": True}, {"path": "test", "equals": True}],
        ),
    )
)


def _tasmota(options: Options, device: Mapping[str, Any]) -> Fragment:
    sensor = str(options["sensor"])
    name = _name(device)
    points: list[Fragment] = [
        {"id": "temperature", "quantity": "temperature", "unit": "°C", "path": f"{sensor}.Temperature"},
        {
            "id": "humidity",
            "quantity": "humidity",
            "unit": "%",
            "path": f"{sensor}.Humidity",
            "valid_min": 0,
            "valid_max": 100,
        },
    ]
    if sensor.upper().startswith("BME"):
        points.append({"id": "pressure", "quantity": "pressure", "unit": "hPa", "path": f"{sensor}.Pressure"})
    return {
        "topic": f"tele/{name}/SENSOR",
        "availability": {"topic": f"tele/{name}/LWT", "online": ["Online"], "offline": ["Offline"]},
        "timestamp": {"path": "Time", "format": "iso"},
        "require_key": sensor,
        "points": [{**p, "expected_interval": 2 * float(options["tele_period"])} for p in points],
    }


register(
    DeviceModel(
        name="tasmota-sensor",
        protocol="mqtt",
        title="Tasmota SENSOR telemetry (AM2301, BME280, SHT3X...)",
        source=f"{DEVICES_MD}: tele/<topic>/SENSOR with local Time, LWT tele/<topic>/LWT Online/Offline",
        build=_tasmota,
        options={"sensor": "AM2301", "tele_period": 300},
        notes="Time has no zone: read in the site's time zone. sensor: the JSON key of the sensor (AM2301, BME280).",
    )
)


def _shelly_gen1(_options: Options, device: Mapping[str, Any]) -> Fragment:
    base = f"shellies/{_name(device)}/sensor"
    return {
        "topic": f"{base}/temperature",
        "points": [
            {"id": "temperature", "quantity": "temperature", "unit": "°C", "topic": f"{base}/temperature"},
            {
                "id": "humidity",
                "quantity": "humidity",
                "unit": "%",
                "topic": f"{base}/humidity",
                "valid_min": 0,
                "valid_max": 100,
            },
            {"id": "sensor_error", "quantity": "sensor_error", "topic": f"{base}/error"},
        ],
    }


register(
    DeviceModel(
        name="shelly-ht-gen1",
        protocol="mqtt",
        title="Shelly H&T (Gen1)",
        source=f"{DEVICES_MD}: shellies/<id>/sensor/temperature, /humidity plain numbers; /error ≠ 0 = sensor fault",
        build=_shelly_gen1,
    )
)


def _shelly_gen2(_options: Options, device: Mapping[str, Any]) -> Fragment:
    return {
        "topic": f"{_name(device)}/events/rpc",
        "require_key": "params",
        "timestamp": {"path": "params.ts", "format": "epoch_s"},
        "points": [
            {"id": "temperature", "quantity": "temperature", "unit": "°C", "path": 'params."temperature:0".tC'},
            {
                "id": "humidity",
                "quantity": "humidity",
                "unit": "%",
                "path": 'params."humidity:0".rh',
                "valid_min": 0,
                "valid_max": 100,
            },
            {"id": "battery", "quantity": "battery", "unit": "%", "path": 'params."devicepower:0".battery.percent'},
        ],
    }


register(
    DeviceModel(
        name="shelly-ht-gen2",
        protocol="mqtt",
        title="Shelly H&T Gen2/Gen3 (JSON-RPC notifications)",
        source=f"{DEVICES_MD}: <id>/events/rpc NotifyFullStatus with params.ts, humidity:0.rh, temperature:0.tC",
        build=_shelly_gen2,
        notes="NotifyStatus messages carry only what changed; each key present becomes a reading.",
    )
)
