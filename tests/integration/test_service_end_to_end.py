"""The whole service as it is deployed: `stackwatch run` and `stackwatch-sim` as processes, real influxd and
mosquitto, Modbus TCP and RTU (pseudo-terminals) and MQTT, on the example district archive."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.modbus.models import ACTUATOR_MODELS
from simulators.site import read_site
from stackwatch.catalog import PointCatalog
from stackwatch.config import load_config
from stackwatch.localservers import LocalInfluxd, LocalMosquitto, free_port
from stackwatch.store.influx import InfluxRejected
from stackwatch.store.spool import Spool

from .service_harness import EXAMPLE, influx, running, service, simulators, site_env, wait_for

pytestmark = pytest.mark.integration


def _series_counts(server: LocalInfluxd) -> dict[tuple[str, str], int]:
    try:
        found = influx(server).query('SELECT count("quality") FROM /.*/ GROUP BY "device", "point"')
    except InfluxRejected as error:  # before the service created the database
        if "database not found" in str(error):
            return {}
        raise
    return {(s.tags["device"], s.tags["point"]): int(s.values[0][1]) for s in found}


def test_every_configured_point_arrives_with_the_room_models_values(
    tmp_path: Path, influxd: LocalInfluxd, mosquitto: LocalMosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = site_env(tmp_path, influxd, mosquitto)
    for key, value in env.items():
        if key.startswith("STACKWATCH_"):
            monkeypatch.setenv(key, value)
    catalog = PointCatalog.from_config(load_config(EXAMPLE))
    expected = {(info.device, info.point) for info in catalog}
    svc = service(EXAMPLE, env, tmp_path / "service.log")
    sim = simulators(EXAMPLE, env, tmp_path / "sim.log")
    with running(sim, svc):

        def missing() -> set[tuple[str, str]]:
            return expected - set(_series_counts(influxd))

        try:
            wait_for(lambda: not missing(), 30, "every configured point in InfluxDB")
        except AssertionError:
            raise AssertionError(
                f"missing {sorted(missing())}\n--- service\n{svc.output()}\n--- sim\n{sim.output()}"
            ) from None
        assert svc.alive() and sim.alive()

        site = read_site(EXAMPLE)
        rooms = site.rooms
        # A room whose climate answers its actuators (closed-loop physics in the simulator) is not a function of
        # time alone: its readings are checked for plausibility here, and exactly in test_control_closed_loop.
        controlled = {device.room for device in site.devices if device.model in ACTUATOR_MODELS}
        actuator_devices = {device.id for device in site.devices if device.model in ACTUATOR_MODELS}
        client = influx(influxd)
        checked = 0
        for measurement, attribute in (("temperature", "temperature"), ("humidity", "humidity")):
            for series in client.query(
                f'SELECT last("value"), "quality" FROM "{measurement}" GROUP BY "device", "room"'
            ):
                ts, value, quality = series.values[0]
                assert quality == "good", series
                if series.tags["room"] in controlled:
                    assert (10.0 < float(value) < 30.0) if attribute == "temperature" else (30 < float(value) < 70)
                    checked += 1
                    continue
                truth = getattr(rooms[series.tags["room"]].state(ts / 1e9), attribute)
                # Registers carry tenths; the sample is taken within a second of the stamp.
                assert float(value) == pytest.approx(truth, abs=0.12), (series.tags, value, truth)
                checked += 1
        assert checked == 20  # every T/RH sensor of the site: 10 devices
        for series in client.query('SELECT last("value"), "quality" FROM "state" GROUP BY "device", "point"'):
            _, value, quality = series.values[0]
            if series.tags["device"] in actuator_devices:  # a running CRAC, a relay the loops switched on
                assert quality == "good", series.tags
                continue
            assert (value, quality) == (False, "good"), series.tags  # no fire, leak, open door in a quiet archive


def test_faults_switched_on_the_simulators_become_quality_flags(
    tmp_path: Path, influxd: LocalInfluxd, mosquitto: LocalMosquitto
) -> None:
    env = site_env(tmp_path, influxd, mosquitto)
    svc = service(EXAMPLE, env, tmp_path / "service.log")
    sim = simulators(EXAMPLE, env, tmp_path / "sim.log")
    control = paho.Client(CallbackAPIVersion.VERSION2)
    control.connect("127.0.0.1", mosquitto.port)
    control.loop_start()
    client = influx(influxd)

    def qualities(device: str, measurement: str) -> list[tuple[str, str | None]]:
        rows = client.query(
            f'SELECT "quality", "detail" FROM "{measurement}" WHERE "device" = \'{device}\' AND time > now() - 5s'
        )
        return [(row[1], row[2]) for series in rows for row in series.values]

    def command(body: dict[str, object]) -> None:
        control.publish("stackwatch-sim/district-archive/control", json.dumps(body), qos=1).wait_for_publish(5)

    try:
        with running(sim, svc):
            wait_for(lambda: _series_counts(influxd).get(("th-b1", "temperature")), 20, "first RTU readings")
            command({"device": "th-b1", "fault": "timeout"})  # a dead device on the RS-485 bus
            command({"device": "hmp-202", "fault": "sentinel"})  # 0x7FFF / 0x8000 in the integer registers
            command({"device": "z2m-th-a101", "fault": "malformed", "on": True})
            wait_for(
                lambda: any(q == "comm_failure" for q, _ in qualities("th-b1", "temperature")),
                15,
                "comm_failure for the silent device",
            )
            wait_for(
                lambda: any(
                    q == "bad" and (d or "").startswith("sentinel") for q, d in qualities("hmp-202", "humidity")
                ),
                15,
                "bad quality for the sentinel",
            )
            # Its bus neighbour keeps its readings, and good ones.
            wait_for(
                lambda: (
                    qualities("th-101", "temperature")
                    and all(q == "good" for q, _ in qualities("th-101", "temperature"))
                ),
                10,
                "th-101 still good",
            )
            wait_for(lambda: "malformed" in svc.output(), 10, "malformed MQTT payloads logged")
            assert re.search(r"malformed.*zigbee2mqtt/th-annex-101", svc.output())
            command({"device": "th-b1", "fault": "none"})
            wait_for(
                lambda: qualities("th-b1", "temperature") and qualities("th-b1", "temperature")[-1][0] == "good",
                40,
                "th-b1 back after recovery",
            )
            assert svc.alive()
    finally:
        control.disconnect()
        control.loop_stop()


COUNTER_SITE = """
site: {{id: e2e}}
buildings: [{{id: b}}]
rooms: [{{id: r, building: b, profile: paper}}]
state_dir: {state}
gateways: [{{type: modbus-tcp, id: g, host: 127.0.0.1, port: {modbus_port}, timeout: 0.3}}]
mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: stackwatch-e2e, receiver: {receiver}}}
storage:
  influxdb: {{url: "{influx_url}", database: stackwatch, flush_interval: 0.2, retry_max: 1}}
devices:
  - {{id: counter, protocol: mqtt, room: r, topic: test/counter, points: [{{id: n}}]}}
  - {{id: th, protocol: modbus, model: xy-md02, gateway: g, unit: 1, room: r, poll_interval: 0.1}}
"""


class CounterPublisher(threading.Thread):
    """Publishes 1..count as plain payloads (no device timestamp: the hard case), QoS 1, at a steady pace."""

    def __init__(self, port: int, count: int, per_second: float) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.pause = port, count, 1.0 / per_second
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="e2e-counter")
        self.client.max_queued_messages_set(0)

    def run(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        infos = []
        for n in range(1, self.count + 1):
            infos.append(self.client.publish("test/counter", str(n), qos=1))
            time.sleep(self.pause)
        for info in infos:
            info.wait_for_publish(30)
        self.client.disconnect()
        self.client.loop_stop()


def _counter_stats(server: LocalInfluxd) -> tuple[int, int, float, float]:
    found = influx(server).query(
        'SELECT count("value"), count(distinct("value")), min("value"), max("value") '
        'FROM "n" WHERE "device" = \'counter\''
    )
    if not found:
        return (0, 0, 0.0, 0.0)
    _, count, distinct, low, high = found[0].values[0]
    return int(count), int(distinct), float(low), float(high)


def _times(server: LocalInfluxd, until_ns: int) -> set[int]:
    found = influx(server).query(f'SELECT "value" FROM "temperature" WHERE "device" = \'th\' AND time <= {until_ns}')
    return {int(row[0]) for series in found for row in series.values}


def _receiver_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"MQTT receiver process (\d+) started", log.read_text(errors="replace"))]


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("receiver", ["thread", "process"])
def test_sigkill_and_influx_outage_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, influxd: LocalInfluxd, mosquitto: LocalMosquitto, receiver: str
) -> None:
    modbus_port = free_port()
    config = tmp_path / "site.yaml"
    config.write_text(
        COUNTER_SITE.format(
            state=tmp_path / "state", modbus_port=modbus_port, mqtt_port=mosquitto.port, influx_url=influxd.url,
            receiver=receiver,
        )
    )
    env = site_env(tmp_path, influxd, mosquitto)
    sim = simulators(config, env, tmp_path / "sim.log").start()
    svc = service(config, env, tmp_path / "service.log").start()
    count = 4000
    try:
        wait_for(lambda: _series_counts(influxd).get(("th", "temperature")), 20, "the service writing")
        # A message published before the session's first subscription is nobody's: not one to count.
        wait_for(lambda: "MQTT connected" in svc.output(), 20, "the MQTT session")
        time.sleep(0.5)
        publisher = CounterPublisher(mosquitto.port, count, per_second=800)
        publisher.start()
        time.sleep(1.0)

        influxd.stop()  # InfluxDB away: readings pile up in the spool...
        time.sleep(1.0)
        svc.kill()  # ...and the service dies mid-stream, MQTT batches and Modbus polls in flight
        killed_at = time.time_ns()
        if receiver == "process":  # its receiver process goes with it, so no orphan holds the broker session
            pids = _receiver_pids(tmp_path / "service.log")
            assert pids, svc.output()
            wait_for(lambda: _gone(pids[-1]), 5, "the receiver process gone with the service")
        with Spool(tmp_path / "state" / "spool.db") as spool:
            pending = {
                int(line.rsplit(" ", 1)[1])
                for batch in spool.peek(1_000_000)
                for line in batch.lines
                if line.startswith("temperature,") and ",device=th," in line
            }
        influxd.start()
        before = _times(influxd, killed_at)  # what reached InfluxDB before the outage (the service is dead)
        svc = service(config, env, tmp_path / "service2.log").start()

        time.sleep(1.0)
        influxd.stop()  # and a second outage with the service running
        time.sleep(2.0)
        influxd.start()

        publisher.join(60)
        assert not publisher.is_alive()
        wait_for(lambda: _counter_stats(influxd)[0] >= count, 60, f"{count} counter readings", interval=0.5)
        time.sleep(1.5)  # anything late would be a duplicate: give it the chance to show
        total, distinct, low, high = _counter_stats(influxd)
        assert (total, distinct, low, high) == (count, count, 1.0, float(count)), svc.output()

        # Every Modbus reading taken before the kill, written or spooled, is in InfluxDB exactly once.
        after = _times(influxd, killed_at)
        assert pending, "the kill should have caught readings in the spool"
        assert after == before | pending
        assert svc.alive()
    finally:
        svc.stop()
        sim.stop()
