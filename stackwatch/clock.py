"""Injected time, so that a simulated day can run in seconds.

Everything that needs "now" or needs to wait takes a `Clock`. Production uses
`SystemClock`; tests and simulations use `ManualClock`, advanced explicitly, or
`ScaledClock`, which runs faster than real time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    def now_ns(self) -> int:
        """Nanoseconds since the epoch (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Wall time sped up by `factor` from `start` (epoch seconds): a day in 86400/factor seconds."""

    def __init__(self, factor: float, start: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor = factor
        self._origin_real = time.monotonic()
        self._origin_sim = time.time() if start is None else start

    def now(self) -> float:
        return self._origin_sim + (time.monotonic() - self._origin_real) * self.factor

    def now_ns(self) -> int:
        return int(self.now() * 1e9)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)


class ManualClock:
    """Time that moves only when told; sleepers wake when `advance` passes their deadline."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def now_ns(self) -> int:
        return round(self._now * 1e9)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move time forward, waking sleepers in deadline order and letting them run."""
        target = self._now + seconds
        while True:
            due = [d for d, f in self._sleepers if not f.done() and d <= target]
            next_time = min(due) if due else target
            if step is not None:
                next_time = min(next_time, self._now + step)
            self._now = max(self._now, next_time)
            woke = False
            for deadline, future in list(self._sleepers):
                if deadline <= self._now and not future.done():
                    future.set_result(None)
                    woke = True
            self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
            for _ in range(5):
                await asyncio.sleep(0)
            if self._now >= target and not woke:
                return
            if self._now >= target and not any(d <= target for d, _ in self._sleepers):
                return
