"""The MQTT session both collector modes share: persistent QoS 1, messages acknowledged only once committed.

paho runs the network on its own thread (`loop_start`), reconnects with
back-off by itself and calls `on_connect` after every (re)connection, which is
where the subscriptions are made so they survive a broker that lost them.
With a fixed client id and `clean_session=False` the broker keeps the session
while the collector is away and delivers what was published meanwhile.

When the spool refuses a batch, its messages stay unacknowledged. The broker
re-sends unacknowledged messages only on a new connection, so the collector
drops the connection and reconnects after a back-off: nothing is lost, and a
spool that keeps failing is retried ever more slowly rather than in a loop.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Generic, TypeVar

from stackwatch.config.services import MqttBroker

from .acks import AckBatcher, ItemSink
from .client import ClientFactory, MqttClient, apply_broker, paho_client

log = logging.getLogger("collector.mqtt")

DEFAULT_FLUSH_DELAY = 0.005  # seconds a partial batch waits for company before it is committed
T = TypeVar("T")


class MqttSession(Generic[T]):
    """The paho session and its acknowledgement batcher; a subclass turns each message into items to commit.

    `MqttCollector` maps messages to readings on paho's thread; the receiver
    process (`collector.mqtt.receiver`) commits them raw and leaves mapping to
    the service's process.
    """

    def __init__(self, broker: MqttBroker, client_id: str, subscriptions: list[str], sink: ItemSink[T],
                 client_factory: ClientFactory = paho_client, *, flush_delay: float = DEFAULT_FLUSH_DELAY) -> None:
        self._broker = broker
        self._factory = client_factory
        self.client_id = client_id
        self.subscriptions: list[str] = subscriptions
        self._batcher: AckBatcher[T] = AckBatcher(sink, self._ack, batch_size=broker.ack_batch, delay=flush_delay,
                                                  on_failure=self._accept_failed)
        self._client: MqttClient | None = None
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._failure_streak = 0
        self._batches_at_failure = 0
        self._lost_logged = False
        # Stats for /metrics and the benchmark (plain attributes, written by one thread each).
        self.messages_received = 0
        self.readings_produced = 0
        self.connected = False
        self.connects = 0
        self.reconnects = 0  # successful connections after the first
        self.session_restarts = 0  # connections dropped on purpose after the spool refused a batch
        self.callback_errors = 0

    @property
    def acked(self) -> int:
        return self._batcher.acked

    @property
    def accept_failures(self) -> int:
        return self._batcher.failures

    @property
    def dropped(self) -> int:
        """Messages received but left unacknowledged (session ended, spool failed): the broker re-sends them."""
        return self._batcher.dropped

    def session_stats(self) -> dict[str, int | bool]:
        return {
            "connected": self.connected, "connects": self.connects, "reconnects": self.reconnects,
            "messages_received": self.messages_received, "acked": self.acked,
            "accept_failures": self.accept_failures, "dropped": self.dropped,
            "session_restarts": self.session_restarts, "callback_errors": self.callback_errors,
            "redelivered_skipped": self._batcher.redelivered_skipped,
        }

    def start(self) -> None:
        """Connect in the background (paho's thread); returns at once, also when the broker is down."""
        with self._lifecycle:
            if self._client is not None:
                return
            self._stopping.clear()
            self._client = self._build_client()
            self._batcher.start()
            self._connect(self._client)

    def stop(self) -> None:
        """Commit and acknowledge what is held, then disconnect; the broker keeps the session for next time."""
        self._stopping.set()
        with self._lifecycle:
            client = self._client
            if client is None:
                return
            self._batcher.stop()
            client.disconnect()
            client.loop_stop()
            self._batcher.close_session()
            self._client = None
            self.connected = False

    def _build_client(self) -> MqttClient:
        broker = self._broker
        client = self._factory(self.client_id, clean_session=False, manual_ack=True)
        apply_broker(client, broker)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self, client: MqttClient) -> None:
        client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive)
        client.loop_start()

    def _ack(self, mid: int, qos: int) -> None:
        client = self._client
        if client is not None:
            client.ack(mid, qos)

    # paho callbacks (VERSION2 signatures). They run on paho's thread and must never raise.

    def _on_connect(self, client: Any, _userdata: Any, flags: Any, reason_code: Any, _properties: Any) -> None:
        try:
            if getattr(reason_code, "is_failure", False):
                self.connected = False
                if not self._lost_logged:
                    log.warning("MQTT broker %s:%s refused the connection: %s",
                                self._broker.host, self._broker.port, reason_code)
                    self._lost_logged = True
                return
            self._batcher.open_session()
            self.connects += 1
            if self.connects > 1:
                self.reconnects += 1
            if self.subscriptions:
                client.subscribe([(topic, self._broker.qos) for topic in self.subscriptions])
            self.connected = True
            if self._lost_logged or self.connects == 1:
                log.info("MQTT connected to %s:%s as %s (session present: %s, %d subscriptions)",
                         self._broker.host, self._broker.port, self.client_id,
                         getattr(flags, "session_present", "?"), len(self.subscriptions))
            self._lost_logged = False
        except Exception:
            self.callback_errors += 1
            log.exception("MQTT on_connect failed")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        try:
            self._batcher.close_session()
            was_connected, self.connected = self.connected, False
            if was_connected and not self._stopping.is_set() and not self._lost_logged:
                log.warning("MQTT connection to %s:%s lost (%s); reconnecting",
                            self._broker.host, self._broker.port, reason_code)
                self._lost_logged = True
        except Exception:
            self.callback_errors += 1
            log.exception("MQTT on_disconnect failed")

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        raise NotImplementedError

    # Spool failure: leave the batch unacknowledged and make the broker send it again.

    def _accept_failed(self, error: Exception) -> None:
        if self._batcher.batches != self._batches_at_failure:
            self._failure_streak = 0
        self._failure_streak += 1
        self._batches_at_failure = self._batcher.batches
        delay = min(self._broker.reconnect_min * 2 ** (self._failure_streak - 1), self._broker.reconnect_max)
        log.error("spool refused MQTT readings (%s: %s); messages not acknowledged, reconnecting in %.1fs "
                  "so the broker delivers them again", type(error).__name__, error, delay)
        self._restart_session(delay)

    def _restart_session(self, delay: float) -> None:
        """Drop and re-open the connection; the lifecycle lock is never held while waiting, so stop() is prompt."""
        if not self._lock_unless_stopping():
            return
        try:
            client = self._client
            if client is None:
                return
            self.session_restarts += 1
            client.disconnect()
            client.loop_stop()
            self.connected = False
        finally:
            self._lifecycle.release()
        if self._stopping.wait(delay) or not self._lock_unless_stopping():
            return
        try:
            if self._client is client:
                self._connect(client)
        finally:
            self._lifecycle.release()

    def _lock_unless_stopping(self) -> bool:
        while not self._stopping.is_set():
            if self._lifecycle.acquire(timeout=0.05):
                if self._stopping.is_set():
                    self._lifecycle.release()
                    return False
                return True
        return False
