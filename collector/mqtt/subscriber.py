"""The MQTT collector in `thread` mode: messages mapped to readings on paho's thread, spooled, then acknowledged.

The session itself (persistent, QoS 1, acknowledgement only after the commit,
reconnects) is `session.MqttSession`, shared with the receiver process of
`process` mode, which commits messages raw and leaves the mapping to the
service (`split.py`).
"""

from __future__ import annotations

import logging
from typing import Any

from stackwatch.clock import Clock
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import ReadingSink, TimestampAllocator
from stackwatch.readings import Reading

from .acks import message_key
from .client import ClientFactory, paho_client
from .mapping import MapperCounts, MessageMapper
from .problems import MALFORMED
from .session import DEFAULT_FLUSH_DELAY, MqttSession

log = logging.getLogger("collector.mqtt")


class MqttCollector(MapperCounts, MqttSession[Reading]):
    """Maps each message to readings on paho's thread and commits them to the sink before acknowledging."""

    def __init__(self, config: SiteConfig, sink: ReadingSink, clock: Clock,
                 client_factory: ClientFactory = paho_client, *, allocator: TimestampAllocator | None = None,
                 flush_delay: float = DEFAULT_FLUSH_DELAY) -> None:
        if config.mqtt is None:
            raise ValueError("the site file has no `mqtt` broker section")
        self._clock = clock
        self.mapper = MessageMapper(config, allocator)
        super().__init__(config.mqtt, config.mqtt.client_id or f"stackwatch-{config.site.id}",
                         self.mapper.subscriptions, sink, client_factory, flush_delay=flush_delay)

    def stats(self) -> dict[str, int | bool]:
        return {**self.session_stats(), "readings_produced": self.readings_produced, "malformed": self.malformed,
                "oversized": self.oversized, "unexpected": self.unexpected, "ignored": self.ignored}

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        readings: list[Reading] = []
        try:
            self.messages_received += 1
            try:
                topic: str = message.topic
            except UnicodeDecodeError:
                self.mapper.problems.report(MALFORMED, "(topic not UTF-8)", repr(message._topic[:60]))
            else:
                readings = self.mapper.map(topic, message.payload, message.retain, self._clock.now_ns())
                self.readings_produced += len(readings)
        except Exception:  # a bug in mapping must not stall the session on a message that can never pass
            self.callback_errors += 1
            readings = []
            log.exception("MQTT message mapping failed")
        try:
            topic_bytes = getattr(message, "_topic", b"")
            key = message_key(topic_bytes if isinstance(topic_bytes, bytes) else b"", bytes(message.payload),
                              int(message.mid))
            self._batcher.add(message.mid, message.qos, readings, key, bool(getattr(message, "dup", False)))
        except Exception:
            self.callback_errors += 1
            log.exception("MQTT message could not be held for acknowledgement")
