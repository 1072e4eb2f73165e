"""A double-ended queue of (time, value) pairs kept in two flat arrays, with the window moves the rules need.

Why not `deque[tuple[float, float]]`: each pair there is a tuple and two
float objects, about 110 bytes, and an empty deque already holds a 64-slot
block (about 600 bytes). With 10,000 points, the rate and 24-hour fluctuation
windows of every temperature and humidity point held 20-100 MB that way after
a day of noisy readings; as arrays a pair is 16 bytes and an empty queue about
200. Each move is one method (one call per reading and window: the engine
evaluates about a million rules a second and attribute look-ups would show).
A head index makes dropping the oldest pair O(1); the consumed front is cut
away in bulk.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

# Consumed pairs at the front are cut away once there are this many and they are a quarter of the arrays: at
# most a quarter of the memory is dead, and each pair is moved at most a few times (amortised O(1)).
_COMPACT_AFTER = 8


class PairQueue:
    __slots__ = ("_head", "_times", "_values")

    def __init__(self, pairs: Iterable[tuple[float, float]] = ()) -> None:
        self._times = array("d")
        self._values = array("d")
        self._head = 0
        for ts, value in pairs:
            self._times.append(ts)
            self._values.append(value)

    def __len__(self) -> int:
        return len(self._times) - self._head

    def __iter__(self) -> Iterator[tuple[float, float]]:
        for index in range(self._head, len(self._times)):
            yield self._times[index], self._values[index]

    def push_highest(self, ts: float, value: float) -> None:
        """Add a value to a queue of decreasing values (a window maximum): smaller ones before it can never
        be the maximum again. A value for the newest time slot updates that slot's pair."""
        times, values, head = self._times, self._values, self._head
        while len(values) > head and values[-1] <= value:
            times.pop()
            values.pop()
        if len(times) == head or times[-1] != ts:
            times.append(ts)
            values.append(value)

    def push_lowest(self, ts: float, value: float) -> None:
        """The mirror of `push_highest`: a queue of increasing values (a window minimum)."""
        times, values, head = self._times, self._values, self._head
        while len(values) > head and values[-1] >= value:
            times.pop()
            values.pop()
        if len(times) == head or times[-1] != ts:
            times.append(ts)
            values.append(value)

    def append_spaced(self, ts: float, value: float, step: float) -> None:
        """Add the pair only if the newest is at least `step` older: a thinned series."""
        times = self._times
        if len(times) == self._head or ts - times[-1] >= step:
            times.append(ts)
            self._values.append(value)

    def expire(self, horizon: float) -> tuple[float, float]:
        """Drop pairs at or before `horizon`, keeping the newest one, and return the oldest that remains."""
        times = self._times
        head = self._head
        last = len(times) - 1
        while head < last and times[head] <= horizon:
            head += 1
        if head >= _COMPACT_AFTER and 4 * head >= len(times):
            del times[:head]
            del self._values[:head]
            head = 0
        self._head = head
        return times[head], self._values[head]
