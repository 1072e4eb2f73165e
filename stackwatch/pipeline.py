"""The one interface every source writes to.

`accept` returns only once the readings are durable (in the spool): an MQTT
message is acknowledged to the broker after `accept` returns, never before.
It is called from the asyncio loop (Modbus) and from paho's network thread
(MQTT), so implementations must be thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from .readings import Reading


class ReadingSink(Protocol):
    def accept(self, readings: Sequence[Reading]) -> None: ...


Listener = Callable[[Sequence[Reading]], None]


class ReadingHub:
    """Durable sink first, then the in-memory listeners (live state, alarms, control)."""

    def __init__(self, durable: ReadingSink) -> None:
        self._durable = durable
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.accepted = 0

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def accept(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        self._durable.accept(readings)
        with self._lock:
            self.accepted += len(readings)
        for listener in self._listeners:
            listener(readings)


class ListSink:
    """A sink that keeps what it gets: for tests and the simulators' self-checks."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self._lock = threading.Lock()

    def accept(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            self.readings.extend(readings)


class TimestampAllocator:
    """Receive-time stamps strictly increasing per point, so two readings never share an InfluxDB point."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def stamp(self, point: str, now_ns: int) -> int:
        with self._lock:
            last = self._last.get(point, 0)
            ts = now_ns if now_ns > last else last + 1
            self._last[point] = ts
            return ts
