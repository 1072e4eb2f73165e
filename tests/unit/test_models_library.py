"""The device model library: maps as devices.md gives them, merged with what the site file says."""

from __future__ import annotations

from typing import Any

import pytest

from collector.models import MODELS, expand_device
from stackwatch.config import ConfigError, parse_config
from stackwatch.config.devices import ModbusDevice, MqttDevice

SITE = """
site: {id: s}
buildings: [{id: a}]
rooms: [{id: r1, building: a, profile: paper}, {id: r2, building: a, profile: film}]
gateways: [{type: modbus-tcp, id: g1, host: 127.0.0.1}]
mqtt: {host: 127.0.0.1}
devices:
"""


def load(device_yaml: str) -> Any:
    return parse_config(SITE + device_yaml).devices[0]


def test_every_model_expands_into_a_valid_device() -> None:
    for name, model in MODELS.items():
        line = (
            f"  - {{id: d, model: {name}, gateway: g1, room: r1}}\n"
            if model.protocol == "modbus"
            else f"  - {{id: d, model: {name}, topic: dev1, room: r1}}\n"
        )
        device = load(line)
        assert device.points, name


def test_xy_md02_standard_and_clone() -> None:
    device: ModbusDevice = load("  - {id: d, model: xy-md02, gateway: g1, room: r1}\n")
    points = {p.id: p for p in device.points}
    assert (points["temperature"].address, points["temperature"].type, points["temperature"].scale) == (1, "int16", 0.1)
    clone: ModbusDevice = load(
        "  - {id: d, model: xy-md02, gateway: g1, room: r1, model_options: {variant: clone, divisor: 100}}\n"
    )
    cpoints = {p.id: p for p in clone.points}
    assert cpoints["temperature"].address == 0 and cpoints["temperature"].negative_above == 10000
    assert cpoints["humidity"].scale == 0.01


def test_vaisala_floats_are_low_word_first() -> None:
    device: ModbusDevice = load("  - {id: d, model: vaisala-hmp110, gateway: g1, unit: 240, room: r1}\n")
    rh = device.points[0]
    assert (rh.id, rh.address, rh.type, rh.word_order) == ("humidity", 0, "float32", "little")
    ints: ModbusDevice = load(
        "  - {id: d, model: vaisala-hmp110, gateway: g1, room: r1, model_options: {registers: int16}}\n"
    )
    assert ints.points[0].sentinels == [0x7FFF, 0x8000, 0x8001]


def test_fire_gateway_zones_and_rooms() -> None:
    device: ModbusDevice = load(
        "  - {id: f, model: notifier-fire-gateway, gateway: g1, room: r1, "
        "model_options: {zones: 2, first_address: 100, zone_rooms: 'r1,r2'}}\n"
    )
    fire = {p.id: p for p in device.points}
    assert fire["zone2_fire"].address == 101 and fire["zone2_fire"].room == "r2"
    assert (fire["zone1_fire"].mask, fire["zone1_fire"].equals) == (0x08FF, 0x0810)
    assert fire["zone1_pre_alarm"].bit == 14 and fire["zone1_trouble"].bit == 13


def test_rle_uses_manual_numbering() -> None:
    device: ModbusDevice = load("  - {id: l, model: rle-seahawk, gateway: g1, room: r1}\n")
    leak = device.points[0]
    assert device.addressing == "one-based" and device.wire_address(leak) == 0 and leak.bit == 0


def test_own_points_override_and_extend_and_use_points_selects() -> None:
    device: ModbusDevice = load(
        "  - id: io\n    model: moxa-e1210\n    gateway: g1\n    room: r1\n    use_points: [di0, extra]\n"
        "    points:\n      - {id: di0, quantity: door_open, room: r2}\n"
        "      - {id: extra, table: coil, address: 16}\n"
    )
    assert [p.id for p in device.points] == ["di0", "extra"]
    assert device.points[0].quantity == "door_open" and device.points[0].room == "r2"
    assert device.points[0].table == "discrete"


def test_mqtt_models_build_topics_from_the_device_name() -> None:
    tasmota: MqttDevice = load(
        "  - {id: t, model: tasmota-sensor, topic: lab, room: r1, model_options: {sensor: BME280}}\n"
    )
    assert tasmota.topic == "tele/lab/SENSOR"
    assert tasmota.availability is not None and tasmota.availability.topic == "tele/lab/LWT"
    assert [p.path for p in tasmota.points] == ["BME280.Temperature", "BME280.Humidity", "BME280.Pressure"]
    shelly: MqttDevice = load("  - {id: s, model: shelly-ht-gen1, topic: shellyht-1, room: r1}\n")
    assert [p.topic for p in shelly.points][:2] == [
        "shellies/shellyht-1/sensor/temperature",
        "shellies/shellyht-1/sensor/humidity",
    ]
    door: MqttDevice = load("  - {id: d, model: z2m-aqara-door, topic: door1, room: r1}\n")
    assert door.topic == "zigbee2mqtt/door1" and door.points[0].invert


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  - {id: d, model: nope, gateway: g1, room: r1}\n", "devices[0].model (line 8): unknown model 'nope'"),
        ("  - {id: d, model: xy-md02, protocol: mqtt, room: r1}\n", "is a modbus device"),
        ("  - {id: d, model: xy-md02, gateway: g1, room: r1, model_options: {zones: 3}}\n", "has no option 'zones'"),
        ("  - {id: d, model: moxa-e1210, gateway: g1, room: r1, use_points: [di99]}\n", "use_points names 'di99'"),
        ("  - {id: d, model: z2m-aqara-th, room: r1}\n", "needs `topic`"),
        (
            "  - {id: d, model: notifier-fire-gateway, gateway: g1, room: r1, model_options: {zones: 1, "
            "zone_rooms: 'r1,r2'}}\n",
            "2 rooms for 1 zones",
        ),
    ],
)
def test_model_errors_are_named(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(SITE + line)
    assert message in caught.value.problems[0], caught.value.problems


def test_expand_device_leaves_input_alone() -> None:
    raw = {
        "id": "d",
        "model": "comet-t3510",
        "gateway": "g1",
        "room": "r1",
        "points": [{"id": "dew_point", "scale": 1}],
    }
    before = repr(raw)
    expanded = expand_device(raw)
    assert repr(raw) == before
    assert {p["id"]: p for p in expanded["points"]}["dew_point"]["scale"] == 1
