"""The MQTT device simulators publish what devices.md says the real devices publish (no broker needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from simulators.mqtt_sim import FAULTS, MODELS, Message, MqttDeviceSim, MqttSim
from simulators.room import RoomModel

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def device(model: str, topic: str, **options: Any) -> MqttDeviceSim:
    return MqttDeviceSim(model, topic, RoomModel("r1"), lambda: T0, options)


def only(messages: list[Message]) -> tuple[str, dict[str, Any]]:
    [message] = messages
    return message.topic, json.loads(message.payload)


def test_simulators_do_not_import_service_code() -> None:
    code = ("import sys, simulators.mqtt_sim; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('stackwatch', 'collector', 'alarms', 'api')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_zigbee2mqtt_models_and_their_availability() -> None:
    topic, th = only(device("z2m-aqara-th", "lab").messages())
    assert topic == "zigbee2mqtt/lab"
    assert set(th) == {"temperature", "humidity", "pressure", "battery", "voltage", "linkquality"}
    assert set(only(device("z2m-aqara-leak", "l").messages())[1]) >= {"water_leak", "battery_low", "battery", "voltage"}
    assert set(only(device("z2m-aqara-smoke", "s").messages())[1]) >= {
        "smoke", "smoke_density", "battery_low", "tamper", "test"}
    door = device("z2m-aqara-door", "d")
    assert only(door.messages())[1]["contact"] is True  # closed
    door.room.set_event("door_open", True)
    assert only(door.messages())[1]["contact"] is False
    assert door.availability(True) == Message("zigbee2mqtt/d/availability", b'{"state":"online"}', retain=True)
    legacy = device("z2m-aqara-door", "d", legacy_availability=True, base_topic="z2m")
    assert legacy.availability(False) == Message("z2m/d/availability", b"offline", retain=True)


def test_device_values_override_the_payload() -> None:
    smoke = device("z2m-aqara-smoke", "s")
    smoke.set(test=True, battery_low=True)
    payload = only(smoke.messages())[1]
    assert payload["test"] is True and payload["battery_low"] is True


@pytest.mark.parametrize(("sensor", "keys"), [("AM2301", {"Temperature", "Humidity"}),
                                              ("BME280", {"Temperature", "Humidity", "Pressure"})])
def test_tasmota_sensor_local_time_without_zone(sensor: str, keys: set[str]) -> None:
    sim = device("tasmota-sensor", "tasmota_1", sensor=sensor, timezone="Asia/Shanghai")
    topic, payload = only(sim.messages())
    assert topic == "tele/tasmota_1/SENSOR"
    assert payload["Time"] == "2026-01-01T08:00:00" and payload["TempUnit"] == "C"
    assert set(payload[sensor]) == keys
    assert sim.availability(False) == Message("tele/tasmota_1/LWT", b"Offline", retain=True)


def test_shelly_gen1_plain_numbers_and_gen2_notify_full_status() -> None:
    gen1 = device("shelly-ht-gen1", "shellyht-AB").messages()
    assert [m.topic for m in gen1] == [f"shellies/shellyht-AB/sensor/{k}" for k in
                                       ("temperature", "humidity", "battery", "error")]
    assert all(float(m.payload) == float(m.payload.decode()) for m in gen1)
    topic, gen2 = only(device("shelly-ht-gen2", "shellyhtg3-ab").messages())
    assert topic == "shellyhtg3-ab/events/rpc" and gen2["method"] == "NotifyFullStatus"
    assert gen2["params"]["ts"] == T0
    assert set(gen2["params"]["temperature:0"]) == {"id", "tC", "tF"} and "rh" in gen2["params"]["humidity:0"]


def test_values_follow_the_room() -> None:
    sim = device("z2m-aqara-th", "lab")
    state = sim.room.state(T0)
    payload = only(sim.messages())[1]
    assert payload["temperature"] == round(state.temperature, 2) and payload["humidity"] == round(state.humidity, 2)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_malformed_cycles_through_broken_json_wrong_types_and_junk(model: str) -> None:
    sim = device(model, "dev", sensor="BME280")
    sim.set_fault("malformed")
    payloads = [m.payload for _ in range(3) for m in sim.messages()]
    for payload in payloads:
        try:
            document = json.loads(payload)
        except ValueError:
            continue  # not JSON at all
        assert not isinstance(document, int | float)  # Shelly Gen1 plain numbers are never left readable
        text = json.dumps(document)
        assert '"n/a"' in text or '"maybe"' in text  # valid JSON, wrong types
    sim.set_fault("malformed", False)
    assert sim.messages() == sim.state_messages(T0)


def test_oversized_offline_duplicate_out_of_order() -> None:
    sim = device("tasmota-sensor", "t1", oversized_bytes=5000)
    sim.set_fault("oversized")
    assert all(len(m.payload) > 5000 for m in sim.messages())
    sim.set_fault("oversized", False)
    sim.set_fault("offline")
    assert sim.messages() == [Message("tele/t1/LWT", b"Offline", retain=True)]
    assert sim.messages() == []  # silence
    sim.set_fault("offline", False)
    back = sim.messages()
    assert back[0] == Message("tele/t1/LWT", b"Online", retain=True) and len(back) == 2
    sim.set_fault("duplicate")
    sim.set_fault("out-of-order")
    times = [json.loads(m.payload)["Time"] for m in sim.messages()]
    assert times == ["2026-01-01T00:00:00", "2026-01-01T00:00:00", "2025-12-31T23:59:00", "2025-12-31T23:59:00"]


def test_unknown_models_and_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown MQTT model"):
        device("z2m-unknown", "x")
    with pytest.raises(ValueError, match="unknown fault"):
        device("z2m-aqara-th", "x").set_fault("gremlins")
    assert set(FAULTS) == {"malformed", "oversized", "offline", "duplicate", "out-of-order"}


class RecordingDevice(MqttDeviceSim):
    def __init__(self, now: Any) -> None:
        super().__init__("shelly-ht-gen2", "shellyhtg3-ab", RoomModel("r1"), now)
        self.cycles: list[float] = []

    def messages(self, at: float | None = None) -> list[Message]:
        self.cycles.append(self.now() if at is None else at)
        return super().messages(at)


def test_background_publishing_follows_the_injected_clock_on_a_fixed_grid() -> None:
    clock = [T0]
    recorder = RecordingDevice(lambda: clock[0])
    sim = MqttSim("127.0.0.1", 1, [recorder], interval=60.0, now=lambda: clock[0])  # never connected: paho queues

    def settle(count: int) -> None:
        deadline = time.monotonic() + 2.0
        while len(recorder.cycles) < count and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.01)

    sim.start(poll=0.001)
    try:
        settle(1)
        clock[0] += 59.0
        time.sleep(0.02)
        assert recorder.cycles == [T0]  # not yet due
        clock[0] += 1.5
        settle(2)
        clock[0] += 600.0  # a jump: one cycle at the latest due instant, not a burst of ten
        settle(3)
    finally:
        sim.stop()
    assert recorder.cycles == [T0, T0 + 60, T0 + 660]
    assert sim.published == 3
