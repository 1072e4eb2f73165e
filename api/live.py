"""Live updates for the dashboard as server-sent events: readings and alarm transitions.

Readings can arrive at tens of thousands a second; a browser needs the latest
value of each point about once a second. The feed keeps the newest reading per
point with a sequence number, and each client asks "what changed since my last
sequence?" once a second. Alarm events are rare and urgent: they wake every
client at once.

Publishers call from the collectors' and the engine's threads; clients are
asyncio tasks: `_wake` is set through the loop, never from another thread
directly.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from alarms.model import AlarmEvent, AlarmStatus
from stackwatch.readings import Reading

KEEP_EVENTS = 1000
READINGS_EVERY = 1.0  # seconds between reading batches to one client
HEARTBEAT = 15.0  # a comment line so proxies and the browser know the stream is alive


@dataclass(frozen=True, slots=True)
class FeedPosition:
    readings: int = 0
    events: int = 0


class LiveFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._latest: dict[str, tuple[int, Reading]] = {}
        self._events: deque[tuple[int, AlarmEvent]] = deque(maxlen=KEEP_EVENTS)
        self._event_seq = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # --- publishers (any thread) --------------------------------------------------------------------------------

    def readings(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            for reading in readings:
                self._seq += 1
                self._latest[reading.point] = (self._seq, reading)

    def alarm_events(self, events: Sequence[AlarmEvent], _statuses: Sequence[AlarmStatus] = ()) -> None:
        with self._lock:
            for event in events:
                self._event_seq += 1
                self._events.append((self._event_seq, event))
            waiters = list(self._waiters)
        for loop, wake in waiters:
            loop.call_soon_threadsafe(wake.set)

    # --- clients ------------------------------------------------------------------------------------------------

    @property
    def clients(self) -> int:
        """Streams open now (the standalone API polls InfluxDB for readings only while someone listens)."""
        with self._lock:
            return len(self._waiters)

    def position(self) -> FeedPosition:
        with self._lock:
            return FeedPosition(self._seq, self._event_seq)

    def readings_since(self, seq: int) -> tuple[int, list[Reading]]:
        with self._lock:
            changed = [reading for at, reading in self._latest.values() if at > seq]
            return self._seq, changed

    def events_since(self, seq: int) -> tuple[int, list[AlarmEvent]]:
        with self._lock:
            return self._event_seq, [event for at, event in self._events if at > seq]

    async def stream(self, *, readings: bool = True, max_seconds: float | None = None) -> AsyncIterator[str]:
        """The text of an event stream; ends after `max_seconds` (tests) or when the client goes."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        waiter = (loop, wake)
        with self._lock:
            self._waiters.add(waiter)
        try:
            position = self.position()
            yield "retry: 3000\n\n"
            elapsed = 0.0
            since_beat = 0.0
            while max_seconds is None or elapsed < max_seconds:
                woke = await _wait(wake, READINGS_EVERY)
                elapsed += READINGS_EVERY if not woke else 0.05
                since_beat += READINGS_EVERY if not woke else 0.05
                events_seq, events = self.events_since(position.events)
                for event in events:
                    yield _sse("alarm", alarm_event_json(event))
                position = FeedPosition(position.readings, events_seq)
                if readings and not woke:
                    readings_seq, changed = self.readings_since(position.readings)
                    if changed:
                        yield _sse("readings", [reading_json(r) for r in changed])
                    position = FeedPosition(readings_seq, position.events)
                if since_beat >= HEARTBEAT:
                    since_beat = 0.0
                    yield ": ping\n\n"
        finally:
            with self._lock:
                self._waiters.discard(waiter)


async def _wait(wake: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(wake.wait(), timeout)
    except TimeoutError:
        return False
    wake.clear()
    return True


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def reading_json(reading: Reading) -> dict[str, Any]:
    return {"point": reading.point, "ts": reading.ts_ns / 1e9, "value": reading.value,
            "quality": reading.quality.value, **({"detail": reading.detail} if reading.detail else {})}


def alarm_event_json(event: AlarmEvent) -> dict[str, Any]:
    return {"seq": event.seq, "ts": event.ts, "alarm": event.alarm, "ticket": event.occurrence,
            "kind": event.kind.value, "state": event.state.value, "previous": event.previous.value,
            "priority": event.priority.value, "cause": event.cause, "room": event.room, "building": event.building,
            "source": event.source, "value": event.value, "limit": event.limit, "message": event.message,
            "actor": event.actor, "comment": event.comment, "until": event.until}
