"""The one interface every source writes to.

`accept` returns only once the readings are durable (in the spool): an MQTT
message is acknowledged to the broker after `accept` returns, never before.
It is called from the asyncio loop (Modbus) and from the MQTT collector's
acknowledgement thread, so implementations must be thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from .readings import Reading


class ReadingSink(Protocol):
    def accept(self, readings: Sequence[Reading]) -> None: ...


@runtime_checkable
class MessageSink(Protocol):
    """A sink that also remembers which broker messages it holds, for exactly-once MQTT delivery.

    A QoS-1 message spooled but not yet acknowledged when the service dies is
    delivered again (DUP flag set) after the restart; `seen` tells that it is
    already in the spool, so its readings are not stored twice under a new
    receive time.
    """

    def accept(self, readings: Sequence[Reading]) -> None: ...

    def accept_messages(self, readings: Sequence[Reading], message_keys: Sequence[bytes]) -> None: ...

    def seen(self, message_keys: Sequence[bytes]) -> set[bytes]: ...


@runtime_checkable
class MarkedSink(Protocol):
    """A sink that commits a position with the readings, for the MQTT receiver process's raw spool.

    `accept_marked(readings, (name, upto))` commits the readings and `upto` under
    `name` in one transaction; `mark(name)` reads it back after a restart, so raw
    messages up to there are never mapped a second time.
    """

    def accept_marked(self, readings: Sequence[Reading], mark: tuple[str, int]) -> None: ...

    def mark(self, name: str) -> int: ...


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

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def accept(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        self._durable.accept(readings)
        self._after(readings)

    def accept_messages(self, readings: Sequence[Reading], message_keys: Sequence[bytes]) -> None:
        if isinstance(self._durable, MessageSink):
            self._durable.accept_messages(readings, message_keys)
        elif readings:
            self._durable.accept(readings)
        self._after(readings)

    def seen(self, message_keys: Sequence[bytes]) -> set[bytes]:
        return self._durable.seen(message_keys) if isinstance(self._durable, MessageSink) else set()

    def accept_marked(self, readings: Sequence[Reading], mark: tuple[str, int]) -> None:
        if not isinstance(self._durable, MarkedSink):
            raise TypeError("the MQTT receiver process needs a durable sink that keeps marks (the spool)")
        self._durable.accept_marked(readings, mark)
        self._after(readings)

    def mark(self, name: str) -> int:
        if not isinstance(self._durable, MarkedSink):
            raise TypeError("the MQTT receiver process needs a durable sink that keeps marks (the spool)")
        return self._durable.mark(name)

    def _after(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
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
    """Receive-time stamps strictly increasing per point, so two readings never share an InfluxDB point.

    Not locked: each source owns one and stamps from one thread (the MQTT mapper
    on paho's thread, the Modbus collector on the event loop); a lock per point
    cost 6 % of the MQTT path's CPU (bench/ingest.py).
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def stamp(self, point: str, now_ns: int) -> int:
        last = self._last.get(point, 0)
        ts = now_ns if now_ns > last else last + 1
        self._last[point] = ts
        return ts
