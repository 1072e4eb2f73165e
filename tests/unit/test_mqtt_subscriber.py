"""The collector's session and acknowledgement rules, against a small hand-written fake client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from collector.mqtt.subscriber import MqttCollector
from stackwatch.clock import ManualClock
from stackwatch.config.model import SiteConfig
from stackwatch.readings import Reading

TOPIC = "zigbee2mqtt/th"


def site(**mqtt: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "s1"}, "buildings": [{"id": "b1"}],
        "rooms": [{"id": "r1", "building": "b1", "profile": "paper"}],
        "mqtt": {"reconnect_min": 0.01, "reconnect_max": 0.05, **mqtt},
        "devices": [{"id": "th", "protocol": "mqtt", "room": "r1", "topic": TOPIC,
                     "availability": {"topic": f"{TOPIC}/availability"},
                     "points": [{"id": "temperature", "path": "temperature"}, {"id": "humidity", "path": "humidity"}]}],
    })


@dataclass
class FakeMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1
    retain: bool = False


class BadTopicMessage(FakeMessage):
    """What paho hands over for a topic that is not UTF-8: reading `.topic` raises."""

    _topic = b"\xff\xfe"

    def __getattribute__(self, name: str) -> Any:
        if name == "topic":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return super().__getattribute__(name)


@dataclass
class ConnackCode:
    is_failure: bool = False


@dataclass
class Flags:
    session_present: bool = False


class FakeClient:
    """Records what the collector asks of paho; the test plays the broker's side."""

    def __init__(self, events: list[tuple[str, Any]], client_id: str, *, clean_session: bool, manual_ack: bool) -> None:
        self.events = events
        self.client_id, self.clean_session, self.manual_ack = client_id, clean_session, manual_ack
        self.on_connect: Any = None
        self.on_disconnect: Any = None
        self.on_message: Any = None
        self.credentials: tuple[str | None, str | None] | None = None
        self.ca_certs: str | None = "unset"
        self.delays: tuple[float, float] | None = None
        self.is_connected = False

    def username_pw_set(self, username: str | None, password: str | None = None) -> None:
        self.credentials = (username, password)

    def tls_set(self, ca_certs: str | None = None) -> None:
        self.ca_certs = ca_certs

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        self.delays = (min_delay, max_delay)

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        self.events.append(("connect_async", (host, port, keepalive)))

    def loop_start(self) -> None:
        self.events.append(("loop_start", None))

    def loop_stop(self) -> None:
        self.events.append(("loop_stop", None))

    def disconnect(self) -> None:
        self.events.append(("disconnect", None))
        if self.is_connected:
            self.is_connected = False
            self.on_disconnect(self, None, None, ConnackCode(), None)

    def subscribe(self, topic: list[tuple[str, int]]) -> None:
        self.events.append(("subscribe", topic))

    def ack(self, mid: int, qos: int) -> None:
        self.events.append(("ack", mid))

    # the broker's side
    def connack(self, ok: bool = True) -> None:
        self.is_connected = ok
        self.on_connect(self, None, Flags(), ConnackCode(is_failure=not ok), None)

    def deliver(self, mid: int, payload: bytes = b'{"temperature": 20.5, "humidity": 50}', topic: str = TOPIC) -> None:
        self.on_message(self, None, FakeMessage(topic, payload, mid))

    def drop(self) -> None:
        self.is_connected = False
        self.on_disconnect(self, None, None, ConnackCode(is_failure=True), None)


class RecordingSink:
    def __init__(self, events: list[tuple[str, Any]], fail: int = 0) -> None:
        self.events = events
        self.fail = fail  # raise on this many calls first
        self.readings: list[Reading] = []

    def accept(self, readings: Sequence[Reading]) -> None:
        if self.fail > 0:
            self.fail -= 1
            self.events.append(("refused", len(readings)))
            raise OSError("disk full")
        self.readings.extend(readings)
        self.events.append(("accept", len(readings)))


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


class Rig:
    def __init__(self, config: SiteConfig | None = None, fail: int = 0, flush_delay: float = 0.005) -> None:
        self.events: list[tuple[str, Any]] = []
        self.clients: list[FakeClient] = []
        self.sink = RecordingSink(self.events, fail)
        self.collector = MqttCollector(config or site(), self.sink, ManualClock(), self.factory,
                                       flush_delay=flush_delay)

    def factory(self, client_id: str, *, clean_session: bool, manual_ack: bool) -> FakeClient:
        client = FakeClient(self.events, client_id, clean_session=clean_session, manual_ack=manual_ack)
        self.clients.append(client)
        return client

    @property
    def client(self) -> FakeClient:
        return self.clients[-1]

    def acks(self) -> list[int]:
        return [mid for kind, mid in self.events if kind == "ack"]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


@pytest.fixture
def rig() -> Any:
    made: list[Rig] = []

    def make(**kwargs: Any) -> Rig:
        made.append(Rig(**kwargs))
        return made[-1]
    yield make
    for r in made:
        r.collector.stop()


def test_persistent_session_manual_ack_fixed_client_id_and_broker_settings(rig: Any) -> None:
    r = rig(config=site(username="stack", password="s3cret", tls=True, ca_file="/etc/ca.pem", port=8883))
    r.collector.start()
    client = r.client
    assert (client.client_id, client.clean_session, client.manual_ack) == ("stackwatch-s1", False, True)
    assert client.credentials == ("stack", "s3cret")
    assert client.ca_certs == "/etc/ca.pem"
    assert client.delays == (0.01, 0.05)
    assert r.events[:2] == [("connect_async", ("127.0.0.1", 8883, 30)), ("loop_start", None)]
    assert rig(config=site(client_id="archive-a")).collector.client_id == "archive-a"


def test_subscribes_in_on_connect_every_time_with_qos_1(rig: Any) -> None:
    r = rig()
    r.collector.start()
    assert "subscribe" not in r.kinds()
    r.client.connack()
    r.client.drop()
    assert not r.collector.connected
    r.client.connack()
    subscriptions = [arg for kind, arg in r.events if kind == "subscribe"]
    assert subscriptions == [[(f"{TOPIC}", 1), (f"{TOPIC}/availability", 1)]] * 2
    assert (r.collector.connected, r.collector.connects, r.collector.reconnects) == (True, 2, 1)


def test_a_refused_connection_is_not_connected_and_not_subscribed(rig: Any) -> None:
    r = rig()
    r.collector.start()
    r.client.connack(ok=False)
    assert not r.collector.connected and "subscribe" not in r.kinds()


def test_ack_only_after_the_batch_is_accepted(rig: Any) -> None:
    r = rig(config=site(ack_batch=3), flush_delay=60.0)  # only a full batch may flush here
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    r.client.deliver(2)
    time.sleep(0.05)
    assert r.acks() == [] and "accept" not in r.kinds()
    r.client.deliver(3)
    wait_until(lambda: len(r.acks()) == 3)
    tail = r.kinds()[r.kinds().index("accept"):]
    assert tail == ["accept", "ack", "ack", "ack"]
    assert r.events[r.kinds().index("accept")] == ("accept", 6)  # one commit for the batch
    assert r.acks() == [1, 2, 3]  # in the order received
    assert r.collector.acked == 3 and r.collector.readings_produced == 6


def test_the_tail_of_a_batch_is_flushed_by_the_timer(rig: Any) -> None:
    r = rig(config=site(ack_batch=16))
    r.collector.start()
    r.client.connack()
    r.client.deliver(7)
    wait_until(lambda: r.acks() == [7], timeout=1.0)
    assert r.kinds()[-2:] == ["accept", "ack"]


def test_messages_without_readings_are_acknowledged_too(rig: Any) -> None:
    r = rig()
    r.collector.start()
    r.client.connack()
    r.client.deliver(1, payload=b"\x00junk")
    r.client.deliver(2, topic="zigbee2mqtt/unknown")
    r.client.deliver(3, payload=b"online", topic=f"{TOPIC}/availability")
    wait_until(lambda: r.acks() == [1, 2, 3])
    assert "accept" not in r.kinds()  # nothing to spool, nothing to commit
    assert (r.collector.malformed, r.collector.unexpected) == (1, 1)


def test_refused_batch_is_not_acknowledged_and_the_session_restarts_for_redelivery(rig: Any) -> None:
    r = rig(fail=1)
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    wait_until(lambda: r.collector.accept_failures == 1)
    wait_until(lambda: r.kinds().count("loop_start") == 2)  # reconnecting, after the back-off
    assert r.acks() == []
    restart = r.kinds()[r.kinds().index("refused"):]
    assert restart == ["refused", "disconnect", "loop_stop", "connect_async", "loop_start"]
    assert r.collector.session_restarts == 1 and not r.collector.connected
    r.client.connack()  # the broker sends the unacknowledged message again, same packet id
    r.client.deliver(1)
    wait_until(lambda: r.acks() == [1])
    assert [reading.point for reading in r.sink.readings] == ["th.temperature", "th.humidity"]


def test_messages_arriving_after_a_refusal_wait_for_the_new_session(rig: Any) -> None:
    r = rig(fail=1, config=site(ack_batch=1))
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    wait_until(lambda: r.collector.accept_failures == 1)
    r.client.deliver(2)  # still on the old connection: must not be acked out of order
    wait_until(lambda: r.kinds().count("loop_start") == 2)
    time.sleep(0.02)
    assert r.acks() == []
    assert r.collector.dropped == 2


def test_disconnect_drops_held_messages_instead_of_acking_them_on_the_next_session(rig: Any) -> None:
    r = rig(flush_delay=60.0)
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    r.client.drop()
    r.client.connack()
    time.sleep(0.02)
    assert r.acks() == [] and r.collector.dropped == 1


def test_stop_commits_and_acks_what_is_held_before_disconnecting(rig: Any) -> None:
    r = rig(flush_delay=60.0)
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    r.client.deliver(2)
    r.collector.stop()
    assert r.kinds()[-5:] == ["accept", "ack", "ack", "disconnect", "loop_stop"]
    assert not r.collector.connected


def test_callbacks_never_raise(rig: Any) -> None:
    r = rig()
    r.collector.start()
    r.client.connack()
    r.client.on_message(r.client, None, BadTopicMessage("", b"{}", 5))
    wait_until(lambda: r.acks() == [5])
    assert r.collector.malformed == 1
    r.collector.mapper.map = None  # a bug in mapping
    r.client.deliver(6)
    wait_until(lambda: r.acks() == [5, 6])
    assert r.collector.callback_errors == 1


def test_stop_is_prompt_while_backing_off_after_a_refusal(rig: Any) -> None:
    r = rig(fail=1, config=site(reconnect_min=30, reconnect_max=60))
    r.collector.start()
    r.client.connack()
    r.client.deliver(1)
    wait_until(lambda: "loop_stop" in r.kinds())
    started = time.monotonic()
    r.collector.stop()
    assert time.monotonic() - started < 1.0
    assert r.kinds().count("loop_start") == 1  # did not reconnect after stop


def test_start_and_stop_from_threads_are_safe_and_idempotent(rig: Any) -> None:
    r = rig()
    threads = [threading.Thread(target=r.collector.start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(r.clients) == 1
    r.collector.stop()
    r.collector.stop()
    r.collector.start()
    assert len(r.clients) == 2


def test_a_site_without_a_broker_is_refused() -> None:
    config = SiteConfig.model_validate({"site": {"id": "s1"}, "buildings": [{"id": "b1"}]})
    with pytest.raises(ValueError, match="mqtt"):
        MqttCollector(config, RecordingSink([]), ManualClock())
