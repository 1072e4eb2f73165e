"""Alarm outputs against the real servers: `events` lines through the spool into influxd, and retained alarm
states on mosquitto, also across a broker that is down at start or goes away mid-stream."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alarms.model import AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority
from alarms.outputs import EventSpoolOutput, MqttAlarmPublisher, event_title, event_ts_ns
from stackwatch.config.services import InfluxConfig, MqttBroker
from stackwatch.localservers import LocalInfluxd, LocalMosquitto
from stackwatch.store.influx import InfluxClient
from stackwatch.store.spool import Spool
from stackwatch.store.writer import InfluxWriter

pytestmark = pytest.mark.integration

SITE = "it"
DEFINITION = AlarmDefinition(
    key="th-101.humidity:high", cause="humidity_high", priority=Priority.MEDIUM, site=SITE, room="stack1",
    building="b1", source="th-101.humidity", description="RH above 60 %", limit=60.0, unit="%",
)
GATEWAY = AlarmDefinition(key="gw/main+#:comm_loss", cause="comm_loss", priority=Priority.HIGH, site=SITE, room=None,
                          building=None, source="gw-main", description="gateway silent")


def event(seq: int, kind: EventKind, state: AlarmState, ts: float, **changes: Any) -> AlarmEvent:
    base = AlarmEvent(seq=seq, ts=ts, alarm=DEFINITION.key, occurrence=3, kind=kind, state=state,
                      previous=AlarmState.NORMAL, priority=Priority.MEDIUM, cause=DEFINITION.cause, room="stack1",
                      building="b1", site=SITE, source=DEFINITION.source, actor="system")
    return replace(base, **changes)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- InfluxDB ---------------------------------------------------------------------------------------


async def test_events_go_through_the_spool_into_influxdb_and_come_back(influxd: LocalInfluxd,
                                                                        tmp_path: Path) -> None:
    config = InfluxConfig(url=influxd.url, database="alarms", flush_interval=0.05)
    spool = Spool(tmp_path / "spool.db")
    client = InfluxClient(config)
    writer = InfluxWriter(spool, client, config)
    output = EventSpoolOutput(spool, on_append=writer.notify)
    ts = time.time()
    events = [
        event(101, EventKind.RAISED, AlarmState.ACTIVE_UNACK, ts, value=66.2, limit=60.0,
              message='RH 66.2 % > 60 %, "paper",\nrising'),
        event(102, EventKind.ACKNOWLEDGED, AlarmState.ACTIVE_ACK, ts + 1, previous=AlarmState.ACTIVE_UNACK,
              actor="ann o'neil", comment='checked, "dehumidifier" on\\off'),
        # A shelve and an unshelve twice in one tick: same series and clock time, kept apart by seq.
        event(103, EventKind.SHELVED, AlarmState.ACTIVE_ACK, ts + 2, actor="bob", comment="sensor swap",
              until=ts + 3600),
        event(104, EventKind.UNSHELVED, AlarmState.ACTIVE_ACK, ts + 2, actor="bob"),
        event(105, EventKind.UNSHELVED, AlarmState.ACTIVE_ACK, ts + 2, actor="bob"),
        event(106, EventKind.RAISED, AlarmState.ACTIVE_UNACK, ts + 3, alarm=GATEWAY.key, cause="comm_loss",
              room=None, building=None, priority=Priority.HIGH, source="gw-main"),
    ]
    await writer.start()
    try:
        await asyncio.to_thread(output, events[:3])
        await asyncio.to_thread(output, events[3:])
        await asyncio.to_thread(output, events[:2])  # a re-send rewrites the same points
        deadline = time.monotonic() + 20
        while spool.depth() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert spool.depth() == 0 and spool.rejected_count() == 0, writer.last_error
    finally:
        await writer.stop()
    rows = [row for series in client.query("SELECT * FROM events") for row in series.rows()]
    assert len(rows) == len(events)
    by_time = {row["time"]: row for row in rows}
    for sent in events:
        row = by_time[event_ts_ns(sent)]
        assert row["alarm"] == sent.alarm and row["kind"] == sent.kind.value and row["seq"] == sent.seq
        assert row["site"] == SITE and row["room"] == sent.room and row["building"] == sent.building
        assert row["state"] == sent.state.value and row["occurrence"] == 3 and row["priority"] == sent.priority.value
        assert row["message"] == sent.message and row["title"] == event_title(sent)
        assert (row["actor"] or "") == sent.actor and (row["comment"] or "") == sent.comment
        assert row["value"] == sent.value and row["limit"] == sent.limit and row["until"] == sent.until
    # Grafana's annotation query: the text field and the tags, for one room.
    titles = client.query("SELECT title, kind FROM events WHERE room = 'stack1' AND kind = 'raised'")
    assert titles[0].rows()[0]["title"] == "RAISED humidity_high stack1: RH 66.2 % > 60 %, \"paper\",\nrising"
    client.close()


# -- MQTT -------------------------------------------------------------------------------------------


class Subscriber:
    """A plain paho client, as another system would subscribe."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def received(self) -> list[tuple[str, dict[str, Any], bool]]:
        with self.lock:
            return [(topic, json.loads(payload), retain) for topic, payload, retain in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribers() -> Iterator[Callable[[int, str], Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topic: str) -> Subscriber:
        made.append(Subscriber(port, topic))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


def broker(port: int) -> MqttBroker:
    return MqttBroker(port=port, reconnect_min=0.1, reconnect_max=0.5)


def status(state: AlarmState, **changes: Any) -> AlarmStatus:
    return AlarmStatus(key=DEFINITION.key, state=state, occurrence=3, priority=Priority.MEDIUM, **changes)


def delivered(publisher: MqttAlarmPublisher) -> bool:
    stats = publisher.stats()
    return bool(stats["connected"]) and stats["states_pending"] == 0 and stats["unacknowledged"] == 0


STATE_TOPIC = f"stackwatch/{SITE}/alarms/stack1/th-101.humidity:high"


def test_a_late_subscriber_gets_the_retained_state_and_normal_stays_normal(
        mosquitto: LocalMosquitto, subscribers: Callable[[int, str], Subscriber]) -> None:
    live = subscribers(mosquitto.port, f"stackwatch/{SITE}/alarms/events")
    publisher = MqttAlarmPublisher(broker(mosquitto.port), SITE)
    publisher.start()
    try:
        ts = time.time()
        raise_ = event(1, EventKind.RAISED, AlarmState.ACTIVE_UNACK, ts, value=66.2, limit=60.0,
                       message="RH 66.2 % > 60 %")
        gateway = event(2, EventKind.RAISED, AlarmState.ACTIVE_UNACK, ts, alarm=GATEWAY.key, cause="comm_loss",
                        room=None, building=None, priority=Priority.HIGH)
        publisher.publish([raise_, gateway], [
            (status(AlarmState.ACTIVE_UNACK, active_since=ts, condition=True, value=66.2), DEFINITION),
            (AlarmStatus(key=GATEWAY.key, state=AlarmState.ACTIVE_UNACK, occurrence=1, priority=Priority.HIGH),
             GATEWAY),
        ])
        wait_until(lambda: delivered(publisher))
        late = subscribers(mosquitto.port, f"stackwatch/{SITE}/alarms/+/+")
        wait_until(lambda: len(late.received()) == 2)
        states = {topic: (payload, retain) for topic, payload, retain in late.received()}
        payload, retain = states[STATE_TOPIC]
        assert retain and payload["state"] == "active_unacknowledged" and payload["message"] == "RH 66.2 % > 60 %"
        assert payload["value"] == 66.2 and payload["updated"] == ts and payload["seq"] == 1
        # `/`, `+`, `#` in a key stay inside their level.
        assert states[f"stackwatch/{SITE}/alarms/_site/gw%2Fmain%2B%23:comm_loss"][0]["key"] == GATEWAY.key
        wait_until(lambda: len(live.received()) == 2)
        assert [(p["seq"], retain) for _, p, retain in live.received()] == [(1, False), (2, False)]

        ack = event(3, EventKind.ACKNOWLEDGED, AlarmState.ACTIVE_ACK, ts + 5, actor="ann")
        clear = event(4, EventKind.CLEARED, AlarmState.NORMAL, ts + 9, message="RH 57.0 % back below 60 %")
        publisher.publish([ack, clear], [(status(AlarmState.NORMAL, acked_by="ann", acked_at=ts + 5), DEFINITION)])
        wait_until(lambda: delivered(publisher))
        later = subscribers(mosquitto.port, STATE_TOPIC)
        wait_until(lambda: len(later.received()) == 1)
        _, payload, retain = later.received()[0]
        assert retain and payload["state"] == "normal" and payload["event"] == "cleared"  # not an empty payload
        assert payload["acked_by"] == "ann" and payload["seq"] == 4
    finally:
        publisher.stop()


def test_publisher_started_while_the_broker_is_down_delivers_when_it_comes(
        mosquitto: LocalMosquitto, subscribers: Callable[[int, str], Subscriber],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="alarms.outputs")
    mosquitto.stop()
    publisher = MqttAlarmPublisher(broker(mosquitto.port), SITE, prefix="archive/stackwatch")
    publisher.start()  # does not raise
    try:
        ts = time.time()
        for seq, state in enumerate([AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK, AlarmState.RETURNED_UNACK], 1):
            started = time.monotonic()
            publisher.publish([event(seq, EventKind.RAISED, state, ts + seq)], [(status(state), DEFINITION)])
            assert time.monotonic() - started < 0.1  # never waits for the broker
        time.sleep(1.0)  # several reconnect attempts
        assert not publisher.connected
        mosquitto.start()
        wait_until(lambda: delivered(publisher))
        late = subscribers(mosquitto.port, "archive/stackwatch/+/alarms/+/+")
        wait_until(lambda: len(late.received()) == 1)
        topic, payload, retain = late.received()[0]
        assert topic == f"archive/{STATE_TOPIC}" and retain
        assert payload["state"] == "returned_unacknowledged" and payload["seq"] == 3  # the latest only
        assert publisher.stats()["events_published"] == 3 and publisher.stats()["events_dropped"] == 0
        assert publisher.stats()["states_published"] == 1
    finally:
        publisher.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "alarms.outputs"]
    assert sum("unreachable" in m for m in messages) == 1, messages
    assert sum("back for alarm states" in m for m in messages) == 1, messages


def test_a_broker_outage_mid_stream_leaves_the_latest_state_retained(
        mosquitto: LocalMosquitto, subscribers: Callable[[int, str], Subscriber]) -> None:
    publisher = MqttAlarmPublisher(broker(mosquitto.port), SITE)
    publisher.start()
    try:
        ts = time.time()
        publisher.publish([event(1, EventKind.RAISED, AlarmState.ACTIVE_UNACK, ts)],
                          [(status(AlarmState.ACTIVE_UNACK), DEFINITION)])
        wait_until(lambda: delivered(publisher))
        mosquitto.stop()
        wait_until(lambda: not publisher.connected)
        for seq, state in ((2, AlarmState.ACTIVE_ACK), (3, AlarmState.NORMAL)):
            publisher.publish([event(seq, EventKind.ACKNOWLEDGED, state, ts + seq)], [(status(state), DEFINITION)])
        mosquitto.start()  # persistent: it still holds seq 1 as the retained state
        wait_until(lambda: delivered(publisher))
        late = subscribers(mosquitto.port, STATE_TOPIC)
        wait_until(lambda: len(late.received()) == 1)
        _, payload, retain = late.received()[0]
        assert retain and payload["state"] == "normal" and payload["seq"] == 3
    finally:
        publisher.stop()
