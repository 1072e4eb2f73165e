"""Alarm events out: InfluxDB `events` lines through the spool, and alarm states over MQTT.

The journal (SQLite) is the record of truth and is written before these
outputs are called; they exist for charts, Grafana annotations and other
systems. So they may lag or, in the MQTT event stream's case, drop under
pressure, but they must never block or crash the engine, and what they say
must converge to the journal:

* InfluxDB: `EventSpoolOutput` puts the lines into the same durable spool as
  the readings, so the writer's retry, outage and rejection handling applies
  unchanged. Re-sending a line rewrites the identical point (the timestamp is
  derived from the event, not from the moment of writing).
* MQTT, retained state per alarm at `<prefix>/<site>/alarms/<room or _site>/<key>`:
  the last word on a topic must be the alarm's latest state, even across
  broker outages. `MqttAlarmPublisher` holds the latest payload per topic and
  hands paho at most one message per topic at a time, so paho's resending
  after a reconnect can never put an older state after a newer one; changes
  that arrive meanwhile collapse into the latest, which goes out next. A
  return to normal is published like any other state (never an empty retained
  payload), so a subscriber that connects later sees the alarm is normal
  rather than nothing at all.
* MQTT, every event non-retained at `<prefix>/<site>/alarms/events`: a stream
  for bridges and chat bots. paho queues it while the broker is away (up to
  `max_queued`); beyond that the oldest news is the least useful and events
  are dropped and counted. Events carry `seq`, the journal order, because the
  order across a reconnect is not guaranteed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from paho.mqtt.enums import MQTTErrorCode

from collector.mqtt.client import BrokerSettable, apply_broker, new_paho
from stackwatch.config.services import MqttBroker
from stackwatch.store.lineprotocol import encode_line
from stackwatch.store.spool import Spool

from .model import AlarmDefinition, AlarmEvent, AlarmStatus, EventKind

log = logging.getLogger(__name__)

MEASUREMENT = "events"
# Journal seq modulo this is added to an event's timestamp in nanoseconds; see `event_ts_ns`.
SEQ_SPREAD_NS = 1_000_000
SITE_LEVEL = "_site"  # topic level for alarms without a room; room ids cannot start with "_"
DEFAULT_MAX_QUEUED = 10_000
_MAX_QUEUED_LIMIT = 60_000  # paho's message ids wrap at 65535: more in flight would reuse an id still pending
_REFUSED_RETRY = 0.5  # seconds before a state paho refused (queue full) is offered again, unless an ack frees room

Field = float | int | bool | str


# -- InfluxDB ---------------------------------------------------------------------------------------


def event_ts_ns(event: AlarmEvent) -> int:
    """The event's time in ns plus `seq % 1e6` ns.

    Two events of one series (same alarm, cause, kind, ...) can carry the same
    clock time: an operator unshelving twice within a tick, a burst replayed with
    a coarse clock. InfluxDB keeps one point per series and timestamp, so the
    second would silently overwrite the first. The journal's seq is unique and
    fixed once journaled, so adding it (below 1 ms, invisible on a chart)
    separates them and keeps a re-sent line identical, hence idempotent.

    Whole seconds and the fraction are scaled apart: `ts * 1e9` in floats is
    off by up to 128 ns at today's epoch, enough to blur the seq offset.
    """
    whole = math.floor(event.ts)
    return whole * 1_000_000_000 + round((event.ts - whole) * 1e9) + event.seq % SEQ_SPREAD_NS


def event_title(event: AlarmEvent) -> str:
    """One line a person reads on a Grafana annotation or in a chat: what happened, to what, where, by whom."""
    where = event.room or event.building or event.site
    text = f"{event.kind.value.upper()} {event.cause} {where}: {event.message or event.alarm}"
    if event.actor and event.actor != "system":
        text += f" (by {event.actor})"
    if event.comment:
        text += f": {event.comment}"
    if event.kind is EventKind.SHELVED and event.until is not None and math.isfinite(event.until):
        text += f", until {datetime.fromtimestamp(event.until, UTC):%Y-%m-%d %H:%M} UTC"
    return text


def event_line(event: AlarmEvent, measurement: str = MEASUREMENT) -> str:
    """One line of the `events` measurement.

    Tags are what a dashboard filters or groups by (few values each); the free
    text stays in fields, where it does not create series. Numbers are written
    as floats whatever Python type they arrive as, since InfluxDB fixes a
    field's type at its first write; non-finite numbers are left out, as line
    protocol cannot carry them. Raises ValueError for what InfluxDB cannot
    store (a tag value ending in a backslash, a non-finite timestamp).
    """
    tags = {
        "site": event.site, "building": event.building or "", "room": event.room or "", "alarm": event.alarm,
        "cause": event.cause, "priority": event.priority.value, "kind": event.kind.value,
    }
    fields: dict[str, Field] = {
        "state": event.state.value, "previous": event.previous.value, "occurrence": int(event.occurrence),
        "seq": int(event.seq), "message": event.message,
    }
    for name, number in (("value", event.value), ("limit", event.limit)):
        if number is not None and math.isfinite(number):
            fields[name] = float(number)
    if event.actor:
        fields["actor"] = event.actor
    if event.comment:
        fields["comment"] = event.comment
    if event.until is not None and math.isfinite(event.until):
        fields["until"] = float(event.until)
    fields["title"] = event_title(event)
    try:
        ts_ns = event_ts_ns(event)
    except OverflowError as error:  # floor(inf); floor(nan) raises ValueError itself
        raise ValueError(f"event time {event.ts!r} is not a time") from error
    return encode_line(measurement, tags, fields, ts_ns)


class EventSpoolOutput:
    """Events into the durable spool; the service's InfluxWriter ships them with the readings.

    One append per call, so the events of one engine step commit together. A
    spool failure (disk full) is raised: the engine decides what that means.
    An event that cannot be encoded is logged and skipped, not raised: the
    journal already holds it, and one odd key must not keep the rest off the chart.
    """

    def __init__(self, spool: Spool, *, measurement: str = MEASUREMENT,
                 on_append: Callable[[], None] | None = None) -> None:
        self.spool = spool
        self.measurement = measurement
        self.on_append = on_append  # InfluxWriter.notify, as SpoolSink takes it
        self.lines_appended = 0
        self.unencodable = 0

    def __call__(self, events: Sequence[AlarmEvent]) -> None:
        lines: list[str] = []
        for event in events:
            try:
                lines.append(event_line(event, self.measurement))
            except (ValueError, TypeError) as error:
                self.unencodable += 1
                log.error("alarm event %s (seq %s) not written to InfluxDB: %s", event.alarm, event.seq, error)
        if not lines:
            return
        self.spool.append(lines)
        self.lines_appended += len(lines)
        if self.on_append is not None:
            self.on_append()


# -- MQTT payloads and topics -----------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity; json.dumps would write them anyway and break strict parsers."""
    return float(value) if value is not None and math.isfinite(value) else None


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def alarm_state(status: AlarmStatus, definition: AlarmDefinition, event: AlarmEvent | None = None, *,
                updated: float | None = None) -> dict[str, Any]:
    """An alarm's current state as a JSON-ready dict.

    The status says what holds now, the definition what the alarm is, and the
    event (the one that produced this status, when there is one) why it holds:
    its message, its time and its kind. Without an event (republishing at
    start) `updated` says when the state was last known; the message is then empty.
    """
    if status.key != definition.key or (event is not None and event.alarm != definition.key):
        raise ValueError(f"status {status.key!r}, definition {definition.key!r} and event "
                         f"{event.alarm if event else None!r} are not of one alarm")
    value = status.value if status.value is not None else (event.value if event is not None else None)
    limit = event.limit if event is not None and event.limit is not None else definition.limit
    return {
        "key": definition.key,
        "state": status.state.value,
        "priority": status.priority.value,
        "cause": definition.cause,
        "room": definition.room,
        "building": definition.building,
        "site": definition.site,
        "source": definition.source,
        "description": definition.description,
        "occurrence": status.occurrence,
        "active_since": _number(status.active_since),
        "condition": status.condition,
        "value": _number(value),
        "limit": _number(limit),
        "unit": definition.unit,
        "message": event.message if event is not None else "",
        "acked_by": status.acked_by,
        "acked_at": _number(status.acked_at),
        "ack_comment": status.ack_comment,
        "shelved_until": _number(status.shelved_until),
        "shelved_by": status.shelved_by,
        "shelve_reason": status.shelve_reason,
        "suppressed_by": status.suppressed_by,
        "out_of_service": status.out_of_service,
        "oos_reason": status.oos_reason,
        "event": event.kind.value if event is not None else None,
        "seq": event.seq if event is not None else None,
        "updated": _number(updated if updated is not None else (event.ts if event is not None else None)),
    }


def alarm_state_payload(status: AlarmStatus, definition: AlarmDefinition, event: AlarmEvent | None = None, *,
                        updated: float | None = None) -> bytes:
    """`alarm_state` as compact UTF-8 JSON: the retained payload of the alarm's state topic."""
    return _json(alarm_state(status, definition, event, updated=updated))


def event_payload(event: AlarmEvent) -> bytes:
    """One event as UTF-8 JSON for the non-retained events topic (all of `AlarmEvent`, plus its title)."""
    return _json({
        "seq": event.seq, "ts": _number(event.ts), "alarm": event.alarm, "occurrence": event.occurrence,
        "kind": event.kind.value, "state": event.state.value, "previous": event.previous.value,
        "priority": event.priority.value, "cause": event.cause, "room": event.room, "building": event.building,
        "site": event.site, "source": event.source, "value": _number(event.value), "limit": _number(event.limit),
        "message": event.message, "actor": event.actor, "comment": event.comment, "until": _number(event.until),
        "extra": dict(event.extra), "title": event_title(event),
    })


# `/` would split a level, `+` and `#` are wildcards paho refuses in a published topic, NUL is forbidden by MQTT.
# Percent-escaping (with `%` itself) rather than one replacement character keeps distinct keys on distinct topics.
_TOPIC_LEVEL = str.maketrans({"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\0": "%00"})


def topic_level(text: str) -> str:
    return text.translate(_TOPIC_LEVEL)


def _checked_prefix(prefix: str) -> str:
    """The prefix may have levels of its own ("org/stackwatch") but no wildcards."""
    prefix = prefix.strip("/")
    if not prefix or any(char in prefix for char in "+#\0") or "//" in prefix:
        raise ValueError(f"MQTT prefix {prefix!r} must be non-empty topic levels without + # or NUL")
    return prefix


def state_topic(prefix: str, site: str, room: str | None, key: str) -> str:
    return f"{_checked_prefix(prefix)}/{topic_level(site)}/alarms/{topic_level(room) if room else SITE_LEVEL}/" \
           f"{topic_level(key)}"


def events_topic(prefix: str, site: str) -> str:
    """One level shorter than every state topic, so `alarms/+/+` never matches it."""
    return f"{_checked_prefix(prefix)}/{topic_level(site)}/alarms/events"


# -- MQTT publisher ---------------------------------------------------------------------------------


class PublishInfo(Protocol):
    @property
    def mid(self) -> int: ...

    @property
    def rc(self) -> int: ...


class PublishClient(BrokerSettable, Protocol):
    """The part of a paho client the publisher uses, so a test can hand it a fake."""

    on_connect: Any
    on_connect_fail: Any
    on_disconnect: Any
    on_publish: Any

    def max_queued_messages_set(self, queue_size: int) -> object: ...

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None: ...

    def loop_start(self) -> object: ...

    def loop_stop(self) -> object: ...

    def disconnect(self) -> object: ...

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> PublishInfo: ...


PublishClientFactory = Callable[[str], PublishClient]


def paho_publish_client(client_id: str) -> PublishClient:
    """Clean session: the publisher has no subscriptions to keep, and its unsent states live in memory, not at
    the broker."""
    return cast(PublishClient, new_paho(client_id, clean_session=True))


class MqttAlarmPublisher:
    """Alarm states (retained) and events on the site's broker, from a client and a thread of its own.

    `publish` only builds payloads and files them in memory; a worker thread
    hands them to paho, whose network thread talks to the broker. Locks here
    are never held while calling paho (paho calls `on_publish` holding its own
    lock), so neither thread can block the other, and the engine never waits
    on the network. The outage is logged once when it starts and once when it ends.
    """

    def __init__(self, broker: MqttBroker, site: str, prefix: str = "stackwatch", client_id: str | None = None,
                 *, max_queued: int = DEFAULT_MAX_QUEUED,
                 client_factory: PublishClientFactory = paho_publish_client) -> None:
        if not 1 <= max_queued <= _MAX_QUEUED_LIMIT:
            raise ValueError(f"max_queued must be 1..{_MAX_QUEUED_LIMIT}")
        self.broker = broker
        self.site = site
        self.prefix = _checked_prefix(prefix)
        self.client_id = client_id or f"stackwatch-{site}-alarms"
        self.events_topic = events_topic(self.prefix, site)
        self.max_queued = max_queued
        self._factory = client_factory
        self._lifecycle = threading.Lock()
        self._cond = threading.Condition()
        # All below under _cond.
        self._events: deque[bytes] = deque()  # built, not yet handed to paho
        self._states: dict[str, bytes] = {}  # topic → latest state payload, until the broker acknowledged it
        self._dirty: dict[str, None] = {}  # topics whose latest payload has not been handed to paho (ordered set)
        self._inflight: set[str] = set()  # topics with a message in paho not yet acknowledged: at most one each
        self._mids: dict[int, str | None] = {}  # paho message id → state topic, or None for an event
        self._early: set[int] = set()  # acknowledged before the worker had recorded the id
        self._retry_at = 0.0
        self._stopping = False
        self._outage_since: float | None = None
        self._dropped_in_outage = 0
        self._client: PublishClient | None = None
        self._worker: threading.Thread | None = None
        # Stats for /metrics (written under _cond).
        self.connected = False
        self.connects = 0
        self.events_published = 0  # handed to paho
        self.events_dropped = 0
        self.states_published = 0
        self.publish_errors = 0  # payloads that could not be built or topics paho refused outright

    # -- engine side -------------------------------------------------------------------------------

    def state_topic(self, room: str | None, key: str) -> str:
        return state_topic(self.prefix, self.site, room, key)

    def publish(self, events: Sequence[AlarmEvent], statuses: Iterable[tuple[AlarmStatus, AlarmDefinition]] = ()
                ) -> None:
        """Queue the events and the current states of the alarms they changed; returns at once, never raises.

        Each status is serialised now, so the engine may go on mutating it. Its
        payload takes message and time from the last of `events` for that alarm.
        Statuses without events (republishing every state at start) are fine too.
        """
        latest: dict[str, AlarmEvent] = {}
        event_payloads: list[bytes] = []
        states: list[tuple[str, bytes]] = []
        errors = 0
        for event in events:
            latest[event.alarm] = event
            try:
                event_payloads.append(event_payload(event))
            except Exception:
                errors += 1
                log.exception("alarm event %s (seq %s) not published to MQTT", event.alarm, event.seq)
        for status, definition in statuses:
            try:
                states.append((self.state_topic(definition.room, definition.key),
                               alarm_state_payload(status, definition, latest.get(definition.key))))
            except Exception:
                errors += 1
                log.exception("state of alarm %s not published to MQTT", definition.key)
        with self._cond:
            self.publish_errors += errors
            self._events.extend(event_payloads)
            while len(self._events) > self.max_queued:  # only if the worker cannot keep up: keep the newest
                self._events.popleft()
                self._drop_event()
            for topic, payload in states:
                self._states[topic] = payload
                self._dirty[topic] = None
            self._cond.notify_all()

    def stats(self) -> dict[str, int | bool]:
        with self._cond:
            return {"connected": self.connected, "connects": self.connects,
                    "events_published": self.events_published, "events_dropped": self.events_dropped,
                    "states_published": self.states_published, "states_pending": len(self._dirty),
                    "states_held": len(self._states),
                    "unacknowledged": len(self._mids), "publish_errors": self.publish_errors}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; returns at once, also when the broker is down (paho keeps retrying)."""
        with self._lifecycle:
            if self._client is not None:
                return
            client = self._build_client()
            with self._cond:
                self._stopping = False
                self._retry_at = 0.0
            self._client = client
            self._worker = threading.Thread(target=self._run, args=(client,), name="alarm-mqtt", daemon=True)
            self._worker.start()
            client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive)
            client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Give a connected broker up to `timeout` seconds to take what is queued, then disconnect.

        What it did not take stays in memory (states) for a later `start`; paho's
        queue of events is dropped with the client.
        """
        with self._lifecycle:
            client, worker = self._client, self._worker
            if client is None:
                return
            with self._cond:
                self._cond.wait_for(lambda: not self.connected or self._idle(), timeout)
                self._stopping = True
                self._cond.notify_all()
            if worker is not None:
                worker.join(timeout)
            client.disconnect()
            client.loop_stop()
            with self._cond:
                for topic in self._inflight:  # maybe never delivered: offer again on the next start
                    self._dirty[topic] = None
                self._inflight.clear()
                self._mids.clear()
                self._early.clear()
                self.connected = False
            self._client = self._worker = None

    def _build_client(self) -> PublishClient:
        broker = self.broker
        client = self._factory(self.client_id)
        apply_broker(client, broker)
        client.max_queued_messages_set(self.max_queued)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # -- worker ------------------------------------------------------------------------------------

    def _idle(self) -> bool:
        return not self._events and not self._dirty and not self._mids

    def _sendable(self) -> list[str]:
        """States that may go to paho now (caller holds _cond): only while connected, so an outage collapses
        each alarm's changes into its latest state; never a second message for a topic paho still holds."""
        if not self.connected or time.monotonic() < self._retry_at:
            return []
        return [topic for topic in self._dirty if topic not in self._inflight]

    def _run(self, client: PublishClient) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    sendable = self._sendable()
                    if self._events or sendable:
                        break
                    # Acknowledgements and connects notify; the timeout only ends a queue-full pause.
                    now = time.monotonic()
                    self._cond.wait(self._retry_at - now if self._dirty and self._retry_at > now else None)
                events = list(self._events)
                self._events.clear()
                states = [(topic, self._states[topic]) for topic in sendable]
                for topic in sendable:
                    del self._dirty[topic]
                    self._inflight.add(topic)
            for payload in events:
                self._hand(client, self.events_topic, payload, None)
            for topic, payload in states:
                self._hand(client, topic, payload, topic)

    def _hand(self, client: PublishClient, topic: str, payload: bytes, state: str | None) -> None:
        """Give paho one message (outside our lock) and record its id for the acknowledgement."""
        try:
            info = client.publish(topic, payload, qos=1, retain=state is not None)
            mid, rc = info.mid, info.rc
        except Exception:  # a topic paho refuses (too long): retrying cannot help
            with self._cond:
                self.publish_errors += 1
                if state is not None:
                    self._inflight.discard(state)
            log.exception("MQTT publish to %r failed", topic)
            return
        with self._cond:
            if rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:  # paho's queue is full (long outage, busy stream)
                if state is None:
                    self._drop_event()
                else:
                    self._inflight.discard(state)
                    self._dirty.setdefault(state, None)
                    self._retry_at = time.monotonic() + _REFUSED_RETRY
                return
            # Any other code, NO_CONN included, means paho holds the message and sends it when it can.
            if state is None:
                self.events_published += 1
            else:
                self.states_published += 1
            if mid in self._early:
                self._early.discard(mid)
                self._acknowledged(state)
            else:
                self._mids[mid] = state

    def _drop_event(self) -> None:
        """Caller holds _cond."""
        self.events_dropped += 1
        self._dropped_in_outage += 1
        if self._dropped_in_outage == 1:
            log.warning("MQTT alarm event queue full (%d messages): dropping events until the broker takes them; "
                        "alarm states are kept and published when it does", self.max_queued)

    def _acknowledged(self, state: str | None) -> None:
        """Caller holds _cond."""
        if state is not None:
            self._inflight.discard(state)
            if state not in self._dirty:  # the broker holds it now (retained): no need to keep the bytes
                self._states.pop(state, None)
        self._retry_at = 0.0  # paho's queue has room again
        self._cond.notify_all()

    # -- paho callbacks (VERSION2 signatures; paho's thread; they must never raise) ---------------

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _properties: Any) -> None:
        try:
            with self._cond:
                if mid in self._mids:
                    self._acknowledged(self._mids.pop(mid))
                else:
                    self._early.add(mid)
        except Exception:
            log.exception("MQTT on_publish failed")

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        try:
            if getattr(reason_code, "is_failure", False):
                self._outage(f"refused the connection: {reason_code}")
                return
            with self._cond:
                self.connected = True
                self.connects += 1
                since, self._outage_since = self._outage_since, None
                dropped, self._dropped_in_outage = self._dropped_in_outage, 0
                pending = len(self._dirty)
                self._cond.notify_all()
            if since is not None:
                log.info("MQTT broker %s:%s back for alarm states after %.0f s (%d states to publish, "
                         "%d events dropped)", self.broker.host, self.broker.port, time.monotonic() - since,
                         pending, dropped)
            elif self.connects == 1:
                log.info("MQTT alarm publisher connected to %s:%s as %s", self.broker.host, self.broker.port,
                         self.client_id)
        except Exception:
            log.exception("MQTT on_connect failed")

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        try:
            self._outage("is unreachable")
        except Exception:
            log.exception("MQTT on_connect_fail failed")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        try:
            with self._cond:
                self.connected = False
                stopping = self._stopping
            if not stopping:
                self._outage(f"dropped the connection ({reason_code})")
        except Exception:
            log.exception("MQTT on_disconnect failed")

    def _outage(self, what: str) -> None:
        with self._cond:
            self.connected = False
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
        log.warning("MQTT broker %s:%s %s; alarm states are kept and published when it is back, events are queued "
                    "(up to %d)", self.broker.host, self.broker.port, what, self.max_queued)
