"""Counts of messages that did not become readings, per kind and per topic, with rate-limited logging.

A device that sends junk every second must show up in /metrics and the log,
but must not flood the log or grow memory with every random topic it invents.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MALFORMED = "malformed"  # not JSON when JSON is needed, wrong type for a point, unreadable timestamp
OVERSIZED = "oversized"  # larger than max_payload_bytes
UNEXPECTED = "unexpected"  # no device for the topic, or no configured point in the payload
IGNORED = "ignored"  # a payload the device config says is not a reading (require_key); not a fault

KINDS = (MALFORMED, OVERSIZED, UNEXPECTED, IGNORED)
OTHER_TOPICS = "(other topics)"


class ProblemCounter:
    def __init__(self, logger: logging.Logger, log_interval: float = 60.0, max_topics: int = 1000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.by_topic: dict[tuple[str, str], int] = {}
        self._logger = logger
        self._interval = log_interval
        self._max_topics = max_topics
        self._monotonic = monotonic
        self._next_log: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def report(self, kind: str, topic: str, detail: str) -> None:
        self.counts[kind] += 1
        key = (kind, topic)
        if key not in self.by_topic and len(self.by_topic) >= self._max_topics:
            key = (kind, OTHER_TOPICS)
        self.by_topic[key] = self.by_topic.get(key, 0) + 1
        if kind == IGNORED:
            return
        now = self._monotonic()
        if now < self._next_log.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._next_log[key] = now + self._interval
        more = self._suppressed.pop(key, 0)
        also = f" (and {more} more since the last report)" if more else ""
        self._logger.warning("MQTT %s message on %s: %s%s", kind, topic, detail, also)
