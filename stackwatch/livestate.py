"""The latest reading of every point, in memory: what the dashboard and rules ask for first."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .readings import Reading


class LiveState:
    """The newest reading per point; an older one (a late or replayed message) never overwrites a newer one."""

    def __init__(self) -> None:
        self._latest: dict[str, Reading] = {}
        self._lock = threading.Lock()

    def __call__(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            latest = self._latest
            for reading in readings:
                current = latest.get(reading.point)
                if current is None or reading.ts_ns >= current.ts_ns:
                    latest[reading.point] = reading

    def get(self, point: str) -> Reading | None:
        with self._lock:
            return self._latest.get(point)

    def snapshot(self) -> dict[str, Reading]:
        with self._lock:
            return dict(self._latest)

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)
