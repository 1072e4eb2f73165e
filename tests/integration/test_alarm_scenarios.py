"""Alarms end to end: `stackwatch run` and the simulators as processes, real influxd and mosquitto, Modbus TCP and
RTU, scenarios switched on the simulators' control topic, alarm states read from the journal the service writes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from stackwatch.localservers import LocalInfluxd, LocalMosquitto

from .service_harness import ON_DELAY, Archive, fast_site, influx, service, start_archive, stop_archive, wait_for

pytestmark = pytest.mark.integration
@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    running = start_archive(tmp_path_factory.mktemp("archive"))
    try:
        wait_for(lambda: "stackwatch running" in running.service.output(), 30, "the service")
        time.sleep(3)  # first polls and MQTT reports
        yield running
    finally:
        stop_archive(running)


def raised(archive: Archive, alarm: str) -> list[AlarmEvent]:
    return [e for e in archive.events(alarm) if e.kind is EventKind.RAISED]


def test_hvac_failure_raises_rh_high_after_its_on_delay_and_clears_after_recovery(archive: Archive) -> None:
    alarm = "th-101.humidity:high"
    archive.control(scenario="hvac-failure", room="main-1-paper", rh_rate=3600, rh_peak=20)
    try:
        events = wait_for(lambda: raised(archive, alarm), 30, f"{alarm} raised")
    except AssertionError:
        raise AssertionError(archive.diagnostics()) from None
    event = events[0]
    assert event.priority is Priority.HIGH and event.limit == 60.0 and event.value is not None and event.value > 60
    assert "JGJ 25-2010" in event.message
    first_above = influx(archive.influxd).query(
        "SELECT first(\"value\") FROM humidity WHERE device = 'th-101' AND \"value\" > 60")[0].values[0][0] / 1e9
    assert event.ts - first_above >= ON_DELAY - 0.05, "raised before its on-delay ran out"
    assert event.ts - first_above < ON_DELAY + 6, "raised long after its on-delay"

    ack = archive.cli("alarms", "ack", f"#{event.occurrence}", "--user", "li.wei", "--comment", "portable unit on")
    assert ack.returncode == 0, ack.stderr
    assert archive.state(alarm) is AlarmState.ACTIVE_ACK
    listing = json.loads(archive.cli("alarms", "list", "--json").stdout)
    assert any(row["alarm"] == alarm and row["acked_by"] == "li.wei" for row in listing)

    archive.control(scenario="hvac-failure", room="main-1-paper", on=False)
    wait_for(lambda: archive.state(alarm) is AlarmState.NORMAL, 40, f"{alarm} cleared after recovery")
    kinds = [e.kind for e in archive.events(alarm)]
    assert kinds == [EventKind.RAISED, EventKind.ACKNOWLEDGED, EventKind.CLEARED]

    def in_influx() -> list[Any]:
        series = influx(archive.influxd).query(f"SELECT \"kind\", \"state\", actor FROM events WHERE alarm = '{alarm}'")
        return series[0].values if series else []

    rows = wait_for(lambda: len(in_influx()) >= 3 and in_influx(), 15, "the events in InfluxDB")
    assert [row[1] for row in rows] == ["raised", "acknowledged", "cleared"]
    assert rows[1][3] == "li.wei"


def test_fire_in_room_raises_a_critical_alarm_within_a_second_of_the_poll_that_sees_it(archive: Archive) -> None:
    alarm = "fire-main.zone4_fire:fire"  # zone 4 is main-2-film
    retained: list[dict[str, Any]] = []
    subscriber = paho.Client(CallbackAPIVersion.VERSION2)
    got = threading.Event()

    def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        if payload.get("key") == alarm and payload.get("state") != "normal":
            retained.append(payload)
            got.set()

    subscriber.on_message = on_message
    archive.control(scenario="fire-in-room", room="main-2-film")
    try:
        events = wait_for(lambda: raised(archive, alarm), 15, f"{alarm} raised")
        event = events[0]
        assert event.priority is Priority.CRITICAL and event.room == "main-2-film"
        first_seen = wait_for(lambda: influx(archive.influxd).query(
            "SELECT first(\"value\") FROM state WHERE device = 'fire-main' AND point = 'zone4_fire' "
            "AND \"value\" = true"), 10, "the fire reading in InfluxDB")
        seen_at = first_seen[0].values[0][0] / 1e9
        assert 0 <= event.ts - seen_at <= 1.0, (event.ts, seen_at)
        # The room's temperature alarms are explained by the fire: hidden, not raised.
        assert not raised(archive, "comet-201.temperature:high")
        # Other systems see the alarm as a retained state, even subscribing late.
        subscriber.connect("127.0.0.1", archive.mosquitto.port)
        subscriber.subscribe("stackwatch/district-archive/alarms/main-2-film/#", qos=1)
        subscriber.loop_start()
        assert got.wait(10), "no retained alarm state on MQTT"
        assert retained[0]["priority"] == "critical" and retained[0]["occurrence"] == event.occurrence
    finally:
        subscriber.loop_stop()
        archive.control(scenario="fire-in-room", room="main-2-film", on=False)


def test_flapping_humidity_at_a_limit_gives_one_alarm_not_dozens(archive: Archive) -> None:
    alarm = "th-a201-clone.humidity:high"  # annex-2-mixed: RH limit 60 %
    archive.control(scenario="flapping-humidity", room="annex-2-mixed", around=60.0, amplitude=1.0, period=4)
    try:
        wait_for(lambda: raised(archive, alarm), 30, f"{alarm} raised")
        time.sleep(20)  # five more periods across the limit
        activations = [e for e in archive.events(alarm) if e.kind in (EventKind.RAISED, EventKind.REACTIVATED)]
        assert len(activations) == 1, [(e.kind, e.ts) for e in archive.events(alarm)]
        crossings = influx(archive.influxd).query(
            "SELECT count(\"value\") FROM humidity WHERE device = 'th-a201-clone' AND \"value\" <= 60")
        assert crossings and crossings[0].values[0][1] >= 5, "the value did not really flap across the limit"
    finally:
        archive.control(scenario="flapping-humidity", room="annex-2-mixed", on=False)


def test_sigkill_during_an_acknowledged_alarm_keeps_it_acknowledged_and_raises_nothing_twice(
    tmp_path: Path,
) -> None:
    archive = start_archive(tmp_path)
    alarm = "leak-b1.leak:water_leak"
    try:
        wait_for(lambda: "stackwatch running" in archive.service.output(), 30, "the service")
        archive.control(scenario="water-leak", room="main-b1-paper")
        try:
            event = wait_for(lambda: raised(archive, alarm), 30, f"{alarm} raised")[0]
        except AssertionError:
            raise AssertionError(archive.diagnostics()) from None
        ack = archive.cli("alarms", "ack", alarm, "--user", "night.guard", "--comment", "mopping up")
        assert ack.returncode == 0, ack.stderr + ack.stdout
        archive.service.kill()
        archive.service.start()
        wait_for(lambda: archive.service.output().count("stackwatch running") >= 2, 30, "the restarted service")
        time.sleep(8)  # several polls of the still-wet cable
        events = archive.events(alarm)
        assert [e.kind for e in events] == [EventKind.RAISED, EventKind.ACKNOWLEDGED], events
        journal = archive.journal()
        status = journal.statuses()[alarm]
        journal.close()
        assert status.state is AlarmState.ACTIVE_ACK and status.acked_by == "night.guard"
        assert status.occurrence == event.occurrence and status.active_since == event.ts
        archive.control(scenario="water-leak", room="main-b1-paper", on=False)
        wait_for(lambda: archive.state(alarm) is AlarmState.NORMAL, 20, "the leak alarm cleared after the restart")
    finally:
        stop_archive(archive)


def test_a_busy_api_port_leaves_the_service_running(tmp_path: Path) -> None:
    import socket

    from .service_harness import site_env as env_for

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    influxd, mosquitto = LocalInfluxd(tmp_path / "influxd"), LocalMosquitto(tmp_path / "mosquitto")
    influxd.start()
    mosquitto.start()
    env = {**env_for(tmp_path, influxd, mosquitto), "STACKWATCH_API_PORT": str(busy.getsockname()[1])}
    svc = service(fast_site(tmp_path), env, tmp_path / "service.log")
    try:
        svc.start()
        wait_for(lambda: "API could not start" in svc.output(), 30, "the API's refusal")
        time.sleep(2)
        assert svc.alive() and "stackwatch running" in svc.output(), svc.output()
    finally:
        svc.stop()
        busy.close()
        mosquitto.stop()
        influxd.stop()
