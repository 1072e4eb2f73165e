"""Alarm outputs without servers: the `events` line against `influxdb_client.Point`, payloads, topics, and the
MQTT publisher's bookkeeping against a fake paho client (the real broker is in tests/integration)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import MQTTErrorCode

from alarms.model import AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority
from alarms.outputs import (
    SEQ_SPREAD_NS,
    EventSpoolOutput,
    MqttAlarmPublisher,
    alarm_state,
    alarm_state_payload,
    event_line,
    event_payload,
    event_title,
    events_topic,
    state_topic,
    topic_level,
)
from stackwatch.config.services import MqttBroker
from stackwatch.store.lineprotocol import series_key
from stackwatch.store.spool import Spool
from tests.unit.test_lineprotocol import parse, reference

TS = 1_717_000_000.25

DEFINITION = AlarmDefinition(
    key="th-101.humidity:high", cause="humidity_high", priority=Priority.MEDIUM, site="main", room="main-1-paper",
    building="main", source="th-101.humidity", description="RH above 60 % (paper stack)", limit=60.0, unit="%",
)


def raised(**changes: Any) -> AlarmEvent:
    event = AlarmEvent(
        seq=42, ts=TS, alarm=DEFINITION.key, occurrence=7, kind=EventKind.RAISED, state=AlarmState.ACTIVE_UNACK,
        previous=AlarmState.NORMAL, priority=Priority.MEDIUM, cause="humidity_high", room="main-1-paper",
        building="main", site="main", source="th-101.humidity", value=66.2, limit=60.0,
        message="RH 66.2 % > 60 %", actor="system",
    )
    return replace(event, **changes)


def event_tags(event: AlarmEvent) -> dict[str, str]:
    return {"site": event.site, "building": event.building or "", "room": event.room or "", "alarm": event.alarm,
            "cause": event.cause, "priority": event.priority.value, "kind": event.kind.value}


def reference_line(event: AlarmEvent) -> str:
    """The line `influxdb_client.Point` writes for the event, its fields spelled out here from the schema."""
    fields: dict[str, object] = {"state": event.state.value, "previous": event.previous.value,
                                 "occurrence": event.occurrence, "seq": event.seq, "message": event.message,
                                 "title": event_title(event)}
    optional = {"value": event.value, "limit": event.limit, "until": event.until, "actor": event.actor or None,
                "comment": event.comment or None}
    fields.update({name: value for name, value in optional.items() if value is not None})
    return reference("events", event_tags(event), fields, 1_717_000_000_250_000_000 + event.seq % SEQ_SPREAD_NS)


# -- the `events` line ------------------------------------------------------------------------------


def test_a_raised_event_has_every_tag_and_its_numbers() -> None:
    measurement, tags, fields, ts = parse(event_line(raised()))
    assert measurement == "events"
    assert tags == {"alarm": "th-101.humidity:high", "building": "main", "cause": "humidity_high", "kind": "raised",
                    "priority": "medium", "room": "main-1-paper", "site": "main"}
    assert fields == {"state": "active_unacknowledged", "previous": "normal", "occurrence": 7, "seq": 42,
                      "message": "RH 66.2 % > 60 %", "value": 66.2, "limit": 60.0, "actor": "system",
                      "title": "RAISED humidity_high main-1-paper: RH 66.2 % > 60 %"}
    assert ts == 1_717_000_000_250_000_042


def test_absent_things_are_left_out_and_integers_stay_integers() -> None:
    event = raised(room=None, building=None, value=None, limit=None, message="", actor="", kind=EventKind.REALARM)
    line = event_line(event)
    _, tags, fields, _ = parse(line)
    assert set(tags) == {"site", "alarm", "cause", "priority", "kind"}
    assert set(fields) == {"state", "previous", "occurrence", "seq", "message", "title"}
    assert fields["message"] == ""
    assert fields["title"] == "REALARM humidity_high main: th-101.humidity:high"  # the building, else the site
    assert " occurrence=7i," in line or ",occurrence=7i," in line


def test_numbers_are_floats_whatever_they_arrive_as_and_non_finite_ones_are_left_out() -> None:
    line = event_line(raised(value=66, limit=math.inf, until=math.nan))
    _, _, fields, _ = parse(line)
    assert ",value=66.0," in line and "limit" not in fields and "until" not in fields


def test_an_acknowledgement_and_a_shelving_carry_who_why_and_until() -> None:
    ack = raised(seq=43, kind=EventKind.ACKNOWLEDGED, state=AlarmState.ACTIVE_ACK, message="", actor="alice",
                 comment="dehumidifier on", value=None)
    _, _, fields, _ = parse(event_line(ack))
    assert fields["actor"] == "alice" and fields["comment"] == "dehumidifier on"
    assert fields["title"] == "ACKNOWLEDGED humidity_high main-1-paper: th-101.humidity:high (by alice): " \
                              "dehumidifier on"
    shelf = raised(seq=44, kind=EventKind.SHELVED, message="", actor="bob", comment="sensor swap",
                   until=1_717_003_600.0)
    _, _, fields, _ = parse(event_line(shelf))
    assert fields["until"] == 1_717_003_600.0
    assert event_title(shelf).endswith("(by bob): sensor swap, until 2024-05-29 17:26 UTC")


SPECIAL = ' ,="\\\n\t\r'
free_text = st.text(alphabet=SPECIAL + "aZ09_-.:é中🙂", max_size=16)
# Tag values: anything InfluxDB can store (no empty value, no trailing backslash: `series_key` refuses those).
tag_text = st.text(alphabet=SPECIAL + "aZ09_-.:", min_size=1, max_size=12).filter(lambda s: not s.endswith("\\"))


@settings(max_examples=200)
@given(message=free_text, comment=free_text, actor=free_text, alarm=tag_text, room=tag_text, cause=tag_text,
       value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
       seq=st.integers(min_value=1, max_value=10**12))
@example(message='RH "66.2 %",\nrising\\', comment="a=b, c\td", actor="o'neil", alarm="gw:main,1 2=3",
         room="room 1,b", cause="x", value=1e16, seq=1)
def test_escaping_matches_the_reference_encoder(message: str, comment: str, actor: str, alarm: str, room: str,
                                                cause: str, value: float | None, seq: int) -> None:
    event = raised(message=message, comment=comment, actor=actor, alarm=alarm, room=room, cause=cause, value=value,
                   seq=seq)
    ours = event_line(event)
    expected = reference_line(event)
    # Same measurement, tags, field values and time; the reference only sorts fields and trims whole floats.
    assert parse(ours) == parse(expected)
    series = series_key("events", event_tags(event))
    assert ours.startswith(series + " ") and expected.startswith(series + " ")  # text-identical series key
    fields = parse(ours)[2]
    assert fields["message"] == message and fields.get("comment", "") == comment and fields.get("actor", "") == actor


def test_a_tag_influxdb_cannot_store_raises() -> None:
    with pytest.raises(ValueError):
        event_line(raised(alarm="ends\\"))
    with pytest.raises(ValueError):
        event_line(raised(ts=math.inf))


def test_timestamps_are_unique_per_series_and_identical_on_resend() -> None:
    shelve = raised(seq=1_000, kind=EventKind.SHELVED, actor="bob")
    twice = raised(seq=1_001, kind=EventKind.SHELVED, actor="bob")  # same alarm, same kind, same clock time
    assert parse(event_line(shelve))[3] != parse(event_line(twice))[3]
    assert event_line(shelve) == event_line(replace(shelve))  # a re-send rewrites the identical point
    assert parse(event_line(raised(seq=123_456_789)))[3] == 1_717_000_000_250_456_789  # < 1 ms: charts do not move
    # The float 1717000000.123456 is 1717000000.1234560012...: its own value, to the nanosecond.
    assert parse(event_line(raised(ts=1_717_000_000.123456, seq=1_000_000)))[3] == 1_717_000_000_123_456_001


def test_the_spool_output_appends_once_skips_the_unencodable_and_wakes_the_writer(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    woken: list[int] = []
    output = EventSpoolOutput(spool, on_append=lambda: woken.append(1))
    events = [raised(seq=1), raised(seq=2, message="line one\nline two"), raised(seq=3, alarm="bad\\"),
              raised(seq=4, kind=EventKind.ACKNOWLEDGED, actor="alice")]
    output(events)
    batches = spool.peek(100)
    assert len(batches) == 1  # one commit
    assert batches[0].lines == [event_line(e) for e in events if e.seq != 3]
    assert output.unencodable == 1 and output.lines_appended == 3 and woken == [1]
    output([])
    output([raised(seq=5, alarm="bad\\")])
    assert len(spool.peek(100)) == 1 and woken == [1]


# -- payloads and topics ----------------------------------------------------------------------------

STATE_KEYS = {"key", "state", "priority", "cause", "room", "building", "site", "source", "occurrence",
              "active_since", "value", "limit", "message", "acked_by", "acked_at", "ack_comment", "shelved_until",
              "shelve_reason", "suppressed_by", "out_of_service", "updated"}


def status(**changes: Any) -> AlarmStatus:
    base = AlarmStatus(key=DEFINITION.key, state=AlarmState.ACTIVE_UNACK, occurrence=7, priority=Priority.MEDIUM,
                       active_since=TS, condition=True, value=66.2)
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_state_payload_has_the_current_state_and_why() -> None:
    payload = json.loads(alarm_state_payload(status(), DEFINITION, raised()))
    assert set(payload) >= STATE_KEYS
    assert payload == {
        "key": "th-101.humidity:high", "state": "active_unacknowledged", "priority": "medium",
        "cause": "humidity_high", "room": "main-1-paper", "building": "main", "site": "main",
        "source": "th-101.humidity", "description": "RH above 60 % (paper stack)", "occurrence": 7,
        "active_since": TS, "condition": True, "value": 66.2, "limit": 60.0, "unit": "%",
        "message": "RH 66.2 % > 60 %", "acked_by": "", "acked_at": None, "ack_comment": "", "shelved_until": None,
        "shelved_by": "", "shelve_reason": "", "suppressed_by": "", "out_of_service": False, "oos_reason": "",
        "event": "raised", "seq": 42, "updated": TS,
    }


def test_state_payload_without_an_event_and_with_odd_numbers_is_still_strict_json() -> None:
    odd = status(state=AlarmState.NORMAL, value=math.nan, acked_by="ann", acked_at=TS + 60, ack_comment='"ok"\n',
                 shelved_until=math.inf)
    text = alarm_state_payload(odd, DEFINITION, updated=TS + 120).decode()
    payload = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert payload["state"] == "normal" and payload["value"] is None and payload["shelved_until"] is None
    assert payload["message"] == "" and payload["event"] is None and payload["updated"] == TS + 120
    assert payload["ack_comment"] == '"ok"\n' and payload["limit"] == 60.0  # the definition's limit


def test_state_of_another_alarm_is_refused() -> None:
    with pytest.raises(ValueError):
        alarm_state(status(key="other"), DEFINITION)
    with pytest.raises(ValueError):
        alarm_state(status(), DEFINITION, raised(alarm="other"))


def test_event_payload_is_the_whole_event() -> None:
    payload = json.loads(event_payload(raised(extra={"rule": "limit"}, value=math.nan)))
    assert payload["seq"] == 42 and payload["kind"] == "raised" and payload["extra"] == {"rule": "limit"}
    assert payload["value"] is None and payload["title"].startswith("RAISED humidity_high")


def test_topics_keep_every_key_on_a_topic_of_its_own() -> None:
    assert state_topic("stackwatch", "main", "main-1-paper", "th-101.humidity:high") == \
        "stackwatch/main/alarms/main-1-paper/th-101.humidity:high"
    assert state_topic("org/sw/", "main", None, "gw-main:comm_loss") == "org/sw/main/alarms/_site/gw-main:comm_loss"
    assert topic_level("a/b+c#d%e\0") == "a%2Fb%2Bc%23d%25e%00"
    assert topic_level("a/b") != topic_level("a%2Fb")  # distinct keys stay distinct
    assert events_topic("stackwatch", "main") == "stackwatch/main/alarms/events"
    for bad in ("", "/", "a/+", "a/#", "a//b"):
        with pytest.raises(ValueError):
            state_topic(bad, "main", None, "k")


# -- the publisher's bookkeeping, against a fake paho ----------------------------------------------


class FakeClient:
    """paho's publish contract: QoS 1 messages are kept until acknowledged, refused when the queue is full."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.on_connect: Any = None
        self.on_connect_fail: Any = None
        self.on_disconnect: Any = None
        self.on_publish: Any = None
        self.queue_size = 0
        self.sent: list[tuple[str, bytes, bool, int]] = []  # topic, payload, retain, mid
        self.pending: dict[int, str] = {}
        self.auto_ack = False
        self.raise_for: str | None = None
        self._mid = 0
        self.lock = threading.Lock()
        self.connect_args: tuple[str, int, int] | None = None

    def username_pw_set(self, username: str | None, password: str | None = None) -> None:
        self.auth = (username, password)

    def tls_set(self, ca_certs: str | None = None) -> None:
        self.ca = ca_certs

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        pass

    def max_queued_messages_set(self, queue_size: int) -> None:
        self.queue_size = queue_size

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        self.connect_args = (host, port, keepalive)

    def loop_start(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> SimpleNamespace:
        assert qos == 1
        if self.raise_for and self.raise_for in topic:
            raise ValueError("topic refused")
        with self.lock:
            if len(self.pending) >= self.queue_size:
                return SimpleNamespace(mid=0, rc=MQTTErrorCode.MQTT_ERR_QUEUE_SIZE)
            self._mid += 1
            mid = self._mid
            self.pending[mid] = topic
            self.sent.append((topic, payload, retain, mid))
        if self.auto_ack:  # the acknowledgement overtakes the publisher's bookkeeping
            self.ack(mid)
        return SimpleNamespace(mid=mid, rc=MQTTErrorCode.MQTT_ERR_SUCCESS)

    # -- driving it --

    def connect(self) -> None:
        self.on_connect(self, None, SimpleNamespace(session_present=False), SimpleNamespace(is_failure=False), None)

    def drop(self) -> None:
        self.on_disconnect(self, None, None, "lost", None)

    def ack(self, mid: int) -> None:
        with self.lock:
            del self.pending[mid]
        self.on_publish(self, None, mid, None, None)

    def ack_all(self) -> None:
        for mid in list(self.pending):
            self.ack(mid)

    def states(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(topic, json.loads(payload)) for topic, payload, retain, _ in self.sent if retain]

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(payload) for _, payload, retain, _ in self.sent if not retain]


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def fake() -> Iterator[tuple[MqttAlarmPublisher, FakeClient]]:
    clients: list[FakeClient] = []

    def factory(client_id: str) -> FakeClient:
        clients.append(FakeClient(client_id))
        return clients[-1]

    broker = MqttBroker(host="broker", port=1884, username="u", password="p", keepalive=20)
    publisher = MqttAlarmPublisher(broker, "main", max_queued=50, client_factory=factory)  # type: ignore[arg-type]
    publisher.start()
    yield publisher, clients[0]
    publisher.stop(timeout=0)


def step(publisher: MqttAlarmPublisher, n: int) -> None:
    """What the engine does after journaling event `n` of the alarm."""
    publisher.publish([raised(seq=n, message=f"step {n}")], [(status(), DEFINITION)])


def test_the_client_is_set_up_from_the_broker_section(fake: tuple[MqttAlarmPublisher, FakeClient]) -> None:
    publisher, client = fake
    assert client.client_id == "stackwatch-main-alarms" == publisher.client_id
    assert client.connect_args == ("broker", 1884, 20) and client.auth == ("u", "p") and client.queue_size == 50


def test_states_wait_for_the_broker_and_only_the_latest_goes(fake: tuple[MqttAlarmPublisher, FakeClient]) -> None:
    publisher, client = fake
    for n in (1, 2, 3):
        step(publisher, n)
    wait_until(lambda: len(client.events()) == 3)  # events go to paho's queue at once
    time.sleep(0.05)
    assert client.states() == [] and publisher.stats()["states_pending"] == 1
    client.connect()
    wait_until(lambda: len(client.states()) == 1)
    topic, payload = client.states()[0]
    assert topic == "stackwatch/main/alarms/main-1-paper/th-101.humidity:high" and payload["seq"] == 3
    assert [e["seq"] for e in client.events()] == [1, 2, 3]


def test_one_message_per_topic_in_flight_so_a_resend_cannot_overtake(
        fake: tuple[MqttAlarmPublisher, FakeClient]) -> None:
    publisher, client = fake
    client.connect()
    step(publisher, 1)
    wait_until(lambda: len(client.states()) == 1)
    client.drop()  # unacknowledged: paho resends it after the reconnect
    for n in (2, 3):
        step(publisher, n)
    client.connect()
    time.sleep(0.05)
    assert len(client.states()) == 1  # nothing more until the broker acknowledged seq 1
    client.ack_all()
    wait_until(lambda: len(client.states()) == 2)
    assert client.states()[-1][1]["seq"] == 3
    client.ack_all()
    wait_until(lambda: publisher.stats()["unacknowledged"] == 0)
    assert publisher.stats()["states_pending"] == 0
    assert publisher.stats()["states_held"] == 0  # retained on the broker: the payload is not kept in memory


def test_acknowledgements_that_overtake_the_bookkeeping_are_not_lost(
        fake: tuple[MqttAlarmPublisher, FakeClient]) -> None:
    publisher, client = fake
    client.auto_ack = True
    client.connect()
    for n in range(1, 30):
        step(publisher, n)
    wait_until(lambda: publisher.stats()["states_pending"] == 0 and publisher.stats()["unacknowledged"] == 0)
    assert client.states()[-1][1]["seq"] == 29 and len(client.events()) == 29


def test_a_full_queue_drops_events_but_keeps_states(fake: tuple[MqttAlarmPublisher, FakeClient],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    publisher, client = fake
    for n in range(1, 61):
        step(publisher, n)
    wait_until(lambda: publisher.stats()["events_dropped"] == 10)
    assert sum("queue full" in r.getMessage() for r in caplog.records) == 1  # logged once
    client.connect()  # the queue is still full: the state waits
    time.sleep(0.1)
    assert client.states() == []
    client.ack_all()
    wait_until(lambda: len(client.states()) == 1)
    assert client.states()[0][1]["seq"] == 60


def test_publish_never_raises(fake: tuple[MqttAlarmPublisher, FakeClient]) -> None:
    publisher, client = fake
    client.connect()
    client.raise_for = "other"
    other = replace(DEFINITION, key="other", room="r2")
    publisher.publish([raised()], [(status(key="wrong"), DEFINITION), (status(key="other"), other),
                                   (status(), DEFINITION)])
    wait_until(lambda: len(client.states()) == 1)
    wait_until(lambda: publisher.stats()["publish_errors"] == 2)
    assert client.states()[0][1]["key"] == DEFINITION.key


def test_outage_and_recovery_are_logged_once_each(fake: tuple[MqttAlarmPublisher, FakeClient],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    publisher, client = fake
    caplog.set_level("INFO", logger="alarms.outputs")
    for _ in range(3):
        client.on_connect_fail(client, None)
    client.connect()
    client.drop()
    client.drop()
    client.on_connect(client, None, None, SimpleNamespace(is_failure=True), None)
    client.connect()
    messages = [r.getMessage() for r in caplog.records if r.name == "alarms.outputs"]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("dropped the connection" in m for m in messages) == 1
    assert sum(" back for alarm states" in m for m in messages) == 2
    assert publisher.connected and publisher.connects == 2
