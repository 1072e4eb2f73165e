"""The MQTT collector against a real mosquitto, fed by the device simulators."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.mqtt.split import SplitMqttCollector
from collector.mqtt.subscriber import MqttCollector
from simulators.mqtt_sim import MqttDeviceSim, MqttSim
from simulators.room import RoomModel
from stackwatch.clock import SystemClock
from stackwatch.config.model import SiteConfig
from stackwatch.localservers import LocalMosquitto
from stackwatch.pipeline import ListSink
from stackwatch.readings import Quality, Reading

pytestmark = pytest.mark.integration

ZONE = "Europe/Berlin"


def _z2m(device_id: str, name: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": device_id, "topic": f"zigbee2mqtt/{name}", "points": points,
            "availability": {"topic": f"zigbee2mqtt/{name}/availability", "path": "state"}, **extra}


def _tasmota(device_id: str, name: str, sensor: str) -> dict[str, Any]:
    points = [{"id": "temperature", "path": f"{sensor}.Temperature"}, {"id": "humidity", "path": f"{sensor}.Humidity"}]
    if sensor == "BME280":
        points.append({"id": "pressure", "path": f"{sensor}.Pressure"})
    return {"id": device_id, "topic": f"tele/{name}/SENSOR", "require_key": sensor, "points": points,
            "timestamp": {"path": "Time"}, "availability": {"topic": f"tele/{name}/LWT"}}


# Explicit points, as a site file writes them without the model library.
DEVICES: list[dict[str, Any]] = [
    _z2m("th", "stack-th", [{"id": p, "path": p} for p in
                            ("temperature", "humidity", "pressure", "battery", "voltage", "linkquality")]),
    _z2m("leak", "stack-leak", [
        {"id": "water_leak", "path": "water_leak", "type": "bool"},
        {"id": "battery_low", "path": "battery_low", "type": "bool"},
        {"id": "battery", "path": "battery"}, {"id": "voltage", "path": "voltage"}],
        uncertain_when=[{"path": "battery_low"}]),
    _z2m("door", "stack-door", [
        {"id": "door_open", "path": "contact", "type": "bool", "invert": True}, {"id": "battery", "path": "battery"}]),
    _z2m("smoke", "stack-smoke", [
        {"id": "smoke", "path": "smoke", "type": "bool"}, {"id": "smoke_density", "path": "smoke_density"},
        {"id": "battery_low", "path": "battery_low", "type": "bool"},
        {"id": "tamper", "path": "tamper", "type": "bool"}, {"id": "test", "path": "test", "type": "bool"}],
        uncertain_when=[{"path": "battery_low"}, {"path": "test"}]),
    _tasmota("tas-am", "tasmota_AM", "AM2301"),
    _tasmota("tas-bme", "tasmota_BME", "BME280"),
    {"id": "ht1", "points": [
        {"id": "temperature", "topic": "shellies/shellyht-A1/sensor/temperature"},
        {"id": "humidity", "topic": "shellies/shellyht-A1/sensor/humidity"},
        {"id": "sensor_error", "topic": "shellies/shellyht-A1/sensor/error"}]},
    {"id": "ht2", "topic": "shellyhtg3-b2/events/rpc", "require_key": "method=NotifyFullStatus",
     "timestamp": {"path": "params.ts", "format": "epoch_s"},
     "points": [{"id": "temperature", "path": 'params."temperature:0".tC'},
                {"id": "humidity", "path": 'params."humidity:0".rh'},
                {"id": "battery", "path": 'params."devicepower:0".battery.percent'}]},
]


def site(port: int, **mqtt: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "it", "timezone": ZONE}, "buildings": [{"id": "b1"}],
        "rooms": [{"id": "stack1", "building": "b1", "profile": "paper"}],
        "mqtt": {"port": port, "reconnect_min": 0.1, "reconnect_max": 0.5, **mqtt},
        "devices": [{"protocol": "mqtt", "room": "stack1", **device} for device in DEVICES],
    })


class SimClock:
    """The simulators' injected clock: starts now, moves only when told."""

    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


def devices(room: RoomModel, now: Callable[[], float]) -> list[MqttDeviceSim]:
    return [
        MqttDeviceSim("z2m-aqara-th", "stack-th", room, now),
        MqttDeviceSim("z2m-aqara-leak", "stack-leak", room, now),
        MqttDeviceSim("z2m-aqara-door", "stack-door", room, now),
        MqttDeviceSim("z2m-aqara-smoke", "stack-smoke", room, now),
        MqttDeviceSim("tasmota-sensor", "tasmota_AM", room, now, {"sensor": "AM2301", "timezone": ZONE}),
        MqttDeviceSim("tasmota-sensor", "tasmota_BME", room, now, {"sensor": "BME280", "timezone": ZONE}),
        MqttDeviceSim("shelly-ht-gen1", "shellyht-A1", room, now),
        MqttDeviceSim("shelly-ht-gen2", "shellyhtg3-b2", room, now),
    ]


ALL_POINTS = {f"{d['id']}.{p['id']}" for d in DEVICES for p in d["points"]}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.005)


class MarkedListSink(ListSink):
    """A ListSink that keeps marks like the spool does, for `mqtt.receiver: process`; `marks` outlive a collector."""

    def __init__(self, marks: dict[str, int]) -> None:
        super().__init__()
        self.marks = marks

    def accept_marked(self, readings: Sequence[Reading], mark: tuple[str, int]) -> None:
        with self._lock:
            self.readings.extend(readings)
            self.marks[mark[0]] = mark[1]

    def mark(self, name: str) -> int:
        return self.marks.get(name, 0)


Collector = MqttCollector | SplitMqttCollector


class Harness:
    def __init__(self, mosquitto: LocalMosquitto, receiver: str = "thread", state: Path | None = None) -> None:
        self.mosquitto = mosquitto
        self.receiver = receiver
        self.state = state
        self.marks: dict[str, int] = {}
        self.clock = SimClock()
        self.room = RoomModel("stack1", t_set=18.0, rh_set=48.0)
        self.sim = MqttSim("127.0.0.1", mosquitto.port, devices(self.room, self.clock), now=self.clock)
        self.collectors: list[Collector] = []

    def collector(self, sink: Any = None, **mqtt: Any) -> tuple[Collector, Any]:
        collector: Collector
        if self.receiver == "process":
            assert self.state is not None
            sink = sink if sink is not None else MarkedListSink(self.marks)
            collector = SplitMqttCollector(site(self.mosquitto.port, **mqtt), sink, SystemClock(),
                                           self.state / "raw.db")
        else:
            sink = sink if sink is not None else ListSink()
            collector = MqttCollector(site(self.mosquitto.port, **mqtt), sink, SystemClock())
        self.collectors.append(collector)
        collector.start()
        wait_until(lambda: collector.connected, what="collector connected")
        return collector, sink

    def device(self, topic: str) -> MqttDeviceSim:
        return next(d for d in self.sim.devices if d.topic == topic)

    def close(self) -> None:
        for collector in self.collectors:
            collector.stop()
        self.sim.close()


@pytest.fixture(params=["thread", "process"])
def rig(mosquitto: LocalMosquitto, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The in-process collector, and the receiver process with mapping here (`mqtt.receiver`)."""
    harness = Harness(mosquitto, request.param, tmp_path / "state")
    harness.sim.connect()
    yield harness
    harness.close()


def latest(readings: Sequence[Reading]) -> dict[str, Reading]:
    return {r.point: r for r in readings if r.quality is not Quality.COMM_FAILURE}


def test_every_point_of_every_model_arrives_with_the_right_value(rig: Harness) -> None:
    rig.room.set_event("door_open", True)
    rig.room.set_event("water_leak", True)
    collector, sink = rig.collector()
    rig.sim.publish_once()
    wait_until(lambda: latest(sink.readings).keys() >= ALL_POINTS, what="every point")
    got = latest(sink.readings)
    state = rig.room.state(rig.clock())
    for key in ("th.temperature", "tas-am.temperature", "tas-bme.temperature", "ht1.temperature", "ht2.temperature"):
        assert got[key].value == pytest.approx(state.temperature, abs=0.051), key
    for key in ("th.humidity", "tas-am.humidity", "tas-bme.humidity", "ht1.humidity", "ht2.humidity"):
        assert got[key].value == pytest.approx(state.humidity, abs=0.051), key
    assert 950 < got["th.pressure"].value < 1050 and 950 < got["tas-bme.pressure"].value < 1050  # type: ignore[operator]
    assert got["door.door_open"].value is True  # contact false → door open
    assert got["leak.water_leak"].value is True and got["leak.battery_low"].value is False
    assert got["smoke.smoke"].value is False and got["smoke.test"].value is False
    assert got["ht1.sensor_error"].value == 0.0 and got["ht2.battery"].value == 88.0
    assert {r.quality for r in got.values()} == {Quality.GOOD}
    sent_at = int(rig.clock()) * 1_000_000_000
    assert {got[k].ts_ns for k in ("tas-am.temperature", "tas-bme.pressure", "ht2.humidity")} == {sent_at}
    assert collector.malformed == collector.unexpected == collector.callback_errors == 0
    wait_until(lambda: collector.acked == collector.messages_received, what="all acknowledged")


def test_faults_are_counted_without_crashing_and_good_messages_still_arrive(rig: Harness) -> None:
    collector, sink = rig.collector()
    rig.sim.set_fault("malformed")
    for _ in range(3):  # truncated JSON, wrong types, binary junk
        rig.sim.publish_once()
    rig.sim.set_fault("malformed", False)
    rig.sim.set_fault("oversized")
    rig.sim.publish_once()
    rig.sim.set_fault("oversized", False)
    # Per cycle 10 subscribed messages: 4 Zigbee, 2 Tasmota, 3 Shelly Gen1 topics, 1 Shelly Gen2.
    wait_until(lambda: collector.malformed >= 30 and collector.oversized >= 10, what="faulty messages counted")
    time.sleep(0.05)
    assert (collector.malformed, collector.oversized) == (30, 10)
    assert all(r.value is None for r in sink.readings if r.quality is Quality.BAD)
    assert not [r for r in sink.readings if r.quality is Quality.GOOD]
    rig.clock.t += 60
    rig.sim.publish_once()
    wait_until(lambda: {r.point for r in sink.readings if r.quality is Quality.GOOD} >= ALL_POINTS,
               what="good readings after the faults")
    assert collector.connected and collector.callback_errors == 0 and collector.reconnects == 0


def test_offline_duplicate_and_out_of_order(rig: Harness) -> None:
    _, sink = rig.collector()
    th, tasmota = rig.device("stack-th"), rig.device("tasmota_AM")
    th.set_fault("offline")
    tasmota.set_fault("out-of-order")
    tasmota.set_fault("duplicate")
    rig.sim.publish_once()  # the offline notice
    rig.sim.publish_once()  # silence
    wait_until(lambda: sum(r.point == "tas-am.temperature" for r in sink.readings) == 8, what="tasmota messages")
    time.sleep(0.05)
    failures = [r for r in sink.readings if r.quality is Quality.COMM_FAILURE]
    assert {r.point for r in failures} == {p for p in ALL_POINTS if p.startswith("th.")}
    assert not [r for r in sink.readings if r.point.startswith("th.") and r.quality is Quality.GOOD]
    stamps = [r.ts_ns for r in sink.readings if r.point == "tas-am.temperature"]
    now_ns = int(rig.clock()) * 1_000_000_000
    assert stamps == [now_ns, now_ns, now_ns - 60_000_000_000, now_ns - 60_000_000_000] * 2
    th.set_fault("offline", False)
    rig.sim.publish_once()
    wait_until(lambda: any(r.point == "th.temperature" and r.quality is Quality.GOOD for r in sink.readings),
               what="th back online")


def test_messages_published_while_the_collector_is_down_arrive_when_it_returns(rig: Harness) -> None:
    first, first_sink = rig.collector()
    rig.sim.publish_once()
    wait_until(lambda: {r.point for r in first_sink.readings} >= ALL_POINTS, what="first cycle")
    first.stop()
    published_at = []
    for _ in range(5):
        rig.clock.t += 60
        published_at.append(int(rig.clock.t) * 1_000_000_000)
        rig.sim.publish_once()
    second, sink = rig.collector()
    wait_until(lambda: {r.ts_ns for r in sink.readings if r.point == "ht2.temperature"} >= set(published_at),
               what="every queued Shelly message")
    wait_until(lambda: {r.ts_ns for r in sink.readings if r.point == "tas-bme.pressure"} >= set(published_at),
               what="every queued Tasmota message")
    wait_until(lambda: sum(r.point == "th.temperature" for r in sink.readings) >= 5, what="queued Zigbee messages")
    assert second.client_id == first.client_id


def test_collector_reconnects_and_resubscribes_after_a_broker_restart(rig: Harness, mosquitto: LocalMosquitto) -> None:
    collector, sink = rig.collector()
    rig.sim.publish_once()
    wait_until(lambda: {r.point for r in sink.readings} >= ALL_POINTS, what="before the restart")
    mosquitto.stop()
    wait_until(lambda: not collector.connected, what="collector noticed")
    mosquitto.start()
    wait_until(lambda: collector.connected and collector.reconnects >= 1, what="collector reconnected")
    rig.sim.wait_connected()
    before = len(sink.readings)
    rig.clock.t += 60
    rig.sim.publish_once()
    wait_until(lambda: {r.point for r in sink.readings[before:]} >= ALL_POINTS, what="after the restart")
    assert {r.ts_ns for r in sink.readings[before:] if r.point == "ht2.temperature"} == {
        int(rig.clock.t) * 1_000_000_000}


class FlakySink:
    """A spool that refuses the first `fail` commits (disk full), then works."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.refused = 0
        self.inner = ListSink()
        self._lock = threading.Lock()

    @property
    def readings(self) -> list[Reading]:
        return self.inner.readings

    def accept(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            if self.fail > 0:
                self.fail -= 1
                self.refused += 1
                raise OSError("database or disk is full")
        self.inner.accept(readings)


def test_a_refused_batch_is_delivered_again_after_the_collector_reconnects(rig: Harness) -> None:
    if rig.receiver == "process":
        pytest.skip("the receiver commits raw messages, not to this sink: test_mqtt_split covers a refusing spool")
    sink = FlakySink(fail=2)
    collector, _ = rig.collector(sink)
    rig.sim.publish_once()
    wait_until(lambda: {r.point for r in sink.readings} >= ALL_POINTS, what="redelivered after refusals")
    assert sink.refused == 2 and collector.accept_failures == 2
    assert collector.session_restarts == 2 and collector.reconnects >= 2


def test_nothing_is_acknowledged_that_the_sink_did_not_accept(rig: Harness) -> None:
    if rig.receiver == "process":
        pytest.skip("the receiver commits raw messages, not to this sink: test_mqtt_split covers a refusing spool")
    refusing = FlakySink(fail=10**9)
    first, _ = rig.collector(refusing)
    rig.sim.publish_once()
    wait_until(lambda: first.accept_failures >= 1, what="first refusal")
    first.stop()
    assert refusing.readings == []
    _, sink = rig.collector()  # same client id: the broker still holds every message
    wait_until(lambda: {r.point for r in sink.readings} >= ALL_POINTS, what="all messages from the broker")


def test_sites_using_the_model_library(mosquitto: LocalMosquitto) -> None:
    """Devices that say `model:` expand to the same topics and paths the simulators publish."""
    models = pytest.importorskip("collector.models")
    from stackwatch.config import parse_config

    names = [("z2m-aqara-th", "lib-th", {}), ("z2m-aqara-leak", "lib-leak", {}), ("z2m-aqara-door", "lib-door", {}),
             ("z2m-aqara-smoke", "lib-smoke", {}), ("tasmota-sensor", "lib_bme", {"sensor": "BME280"}),
             ("shelly-ht-gen1", "shellyht-C3", {}), ("shelly-ht-gen2", "shellyhtg3-d4", {})]
    entries = "\n".join(
        f"  - {{id: d{i}, protocol: mqtt, room: stack1, model: {model}, topic: {topic}"
        + (f", model_options: {{sensor: {opts['sensor']}}}" if opts else "") + "}"
        for i, (model, topic, opts) in enumerate(names))
    text = (f"site: {{id: lib, timezone: {ZONE}}}\nbuildings: [{{id: b1}}]\n"
            f"rooms: [{{id: stack1, building: b1, profile: paper}}]\n"
            f"mqtt: {{port: {mosquitto.port}, reconnect_min: 0.1}}\ndevices:\n{entries}\n")
    try:
        config = parse_config(text, expander=models.expand_device)
    except Exception as error:  # the library is being written alongside; a mismatch is reported, not hidden
        pytest.fail(f"model library could not expand the simulated models: {error}")
    clock = SimClock()
    room = RoomModel("stack1")
    sims = [MqttDeviceSim(model, topic, room, clock, {**opts, "timezone": ZONE}) for model, topic, opts in names]
    sink = ListSink()
    collector = MqttCollector(config, sink, SystemClock())
    collector.start()
    try:
        wait_until(lambda: collector.connected, what="connected")
        with MqttSim("127.0.0.1", mosquitto.port, sims, now=clock, client_id="lib-sim") as sim:
            sim.publish_once()
            expected = {f"{d.id}.{p.id}" for d in config.devices for p in d.points}
            wait_until(lambda: expected <= {r.point for r in sink.readings if r.quality is Quality.GOOD},
                       what="every library point")
        assert collector.malformed == 0 and collector.unexpected == 0
    finally:
        collector.stop()


def test_simulator_publishes_each_interval_of_the_injected_clock(mosquitto: LocalMosquitto) -> None:
    """A minute of device time every 100 ms of real time: the background publisher follows the injected clock."""
    start, origin = float(int(time.time()) - 86400), time.monotonic()  # behind real time: plausible device times

    def fast() -> float:
        return start + (time.monotonic() - origin) * 600.0

    sink = ListSink()
    collector = MqttCollector(site(mosquitto.port), sink, SystemClock())
    collector.start()
    try:
        wait_until(lambda: collector.connected, what="connected")
        shelly = MqttDeviceSim("shelly-ht-gen2", "shellyhtg3-b2", RoomModel("stack1"), fast)
        with MqttSim("127.0.0.1", mosquitto.port, [shelly], now=fast, interval=60.0, client_id="fast-sim") as sim:
            sim.start(poll=0.005)
            wait_until(lambda: sum(r.point == "ht2.temperature" for r in sink.readings) >= 4, what="four cycles")
            sim.stop()
            assert sim.published >= 4 + 1  # the online notice, then one message per cycle
        stamps = sorted(r.ts_ns for r in sink.readings if r.point == "ht2.temperature")
        gaps = {round((b - a) / 1e9) for a, b in itertools.pairwise(stamps)}
        assert gaps == {60}
    finally:
        collector.stop()


def test_collector_started_before_the_broker_connects_when_it_comes_up(mosquitto: LocalMosquitto) -> None:
    mosquitto.stop()
    sink = ListSink()
    collector = MqttCollector(site(mosquitto.port), sink, SystemClock())
    collector.start()  # returns at once; paho keeps trying in the background
    try:
        time.sleep(0.3)
        assert not collector.connected
        mosquitto.start()
        wait_until(lambda: collector.connected, what="connected once the broker is up")
        clock = SimClock()
        with MqttSim("127.0.0.1", mosquitto.port, devices(RoomModel("stack1"), clock), now=clock) as sim:
            sim.publish_once()
            wait_until(lambda: {r.point for r in sink.readings} >= ALL_POINTS, what="readings")
    finally:
        collector.stop()


def test_a_receiver_process_killed_mid_stream_is_started_again_and_nothing_is_lost_or_doubled(
        mosquitto: LocalMosquitto, tmp_path: Path) -> None:
    """`mqtt.receiver: process`: SIGKILL the receiver while messages flow; each one is stored once, none lost."""
    config = SiteConfig.model_validate({
        "site": {"id": "kill"}, "buildings": [{"id": "b1"}],
        "rooms": [{"id": "stack1", "building": "b1", "profile": "paper"}],
        "mqtt": {"port": mosquitto.port, "reconnect_min": 0.1, "reconnect_max": 0.5, "receiver": "process"},
        "devices": [{"id": "counter", "protocol": "mqtt", "room": "stack1", "topic": "test/counter",
                     "points": [{"id": "n"}]}],
    })
    sink = MarkedListSink({})
    collector = SplitMqttCollector(config, sink, SystemClock(), tmp_path / "raw.db")
    collector.start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="kill-publisher")
    publisher.max_queued_messages_set(0)
    count = 3000
    try:
        wait_until(lambda: collector.connected, what="connected")
        time.sleep(0.3)  # the subscription is in place
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()

        def publish() -> None:
            for n in range(1, count + 1):
                publisher.publish("test/counter", str(n), qos=1)
                time.sleep(1 / 1500)

        feeding = threading.Thread(target=publish, daemon=True)
        feeding.start()
        wait_until(lambda: len(sink.readings) >= count // 3, what="a third of the stream")
        process = collector._process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        feeding.join(30)
        wait_until(lambda: {r.value for r in sink.readings} >= {float(n) for n in range(1, count + 1)}, 30,
                   what="every counter message")
        time.sleep(0.5)  # a late duplicate would show now
        values = [r.value for r in sink.readings]
        assert len(values) == count and len({r.ts_ns for r in sink.readings}) == count
        assert collector.receiver_starts == 2 and collector.malformed == 0
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        collector.stop()
