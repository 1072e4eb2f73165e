"""The alarm runtime's hand-over from the reading hub: bounded, so a burst cannot fill the memory."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from alarms.engine import AlarmEngine
from alarms.runtime import AlarmRuntime
from stackwatch.catalog import PointCatalog
from stackwatch.clock import ManualClock
from stackwatch.readings import Quality, Reading
from tests.unit.test_alarm_engine import T0, site


def reading(n: int) -> Reading:
    return Reading("th1.t", int((T0 + n) * 1e9), 20.0, Quality.GOOD)


def runtime(folder: Path, max_queued: int) -> AlarmRuntime:
    config = site()
    return AlarmRuntime(config, PointCatalog.from_config(config), folder, ManualClock(T0), max_queued=max_queued)


def hold_engine(alarms: AlarmRuntime) -> threading.Event:
    """Keep the engine's thread busy in an operator action until the returned event is set."""
    release = threading.Event()
    threading.Thread(target=alarms.call, args=(lambda _engine, _now: release.wait(10),), daemon=True).start()
    time.sleep(0.2)
    return release


def test_a_collector_thread_waits_while_the_engine_is_behind_and_nothing_is_lost(tmp_path: Path) -> None:
    alarms = runtime(tmp_path, max_queued=10)
    seen: list[int] = []
    process = alarms.engine.process

    def counting(readings: list[Reading], now: float) -> object:
        seen.append(len(readings))
        return process(readings, now)

    alarms.engine.process = counting  # type: ignore[method-assign]
    alarms.start()
    try:
        release = hold_engine(alarms)
        handed: list[int] = []

        def collector() -> None:
            for n in range(4):
                alarms([reading(5 * n + i) for i in range(5)])
                handed.append(n)

        thread = threading.Thread(target=collector, daemon=True)
        thread.start()
        time.sleep(0.5)
        assert handed == [0, 1] and alarms.queued == 10 and alarms.waits == 1  # the third batch waits
        release.set()
        thread.join(5)
        assert handed == [0, 1, 2, 3]
        deadline = time.monotonic() + 5
        while alarms.queued and time.monotonic() < deadline:
            time.sleep(0.01)
        assert alarms.queued == 0 and sum(seen) == 20 and alarms.most_queued <= 15
    finally:
        alarms.stop()


def test_the_event_loop_never_waits_for_the_engine(tmp_path: Path) -> None:
    alarms = runtime(tmp_path, max_queued=5)
    alarms.start()
    try:
        release = hold_engine(alarms)

        async def poll() -> None:  # a Modbus poll: it serves the API on the same loop
            for n in range(3):
                alarms([reading(3 * n + i) for i in range(3)])

        started = time.monotonic()
        asyncio.run(poll())
        assert time.monotonic() - started < 0.4 and alarms.queued == 9
        release.set()
    finally:
        alarms.stop()


def test_without_its_thread_the_runtime_never_blocks_a_caller(tmp_path: Path) -> None:
    alarms = runtime(tmp_path, max_queued=2)  # `stackwatch api` and tests build it without starting it
    alarms([reading(i) for i in range(5)])
    alarms([reading(5 + i) for i in range(5)])
    assert alarms.queued == 10
    alarms.stop()


def test_an_engine_that_fails_on_a_batch_still_frees_its_room(tmp_path: Path) -> None:
    alarms = runtime(tmp_path, max_queued=3)

    def broken(readings: list[Reading], now: float) -> list[object]:
        raise RuntimeError("journal on a full disk")

    alarms.engine.process = broken  # type: ignore[method-assign,assignment]
    assert isinstance(alarms.engine, AlarmEngine)
    alarms.start()
    try:
        for n in range(5):
            alarms([reading(3 * n + i) for i in range(3)])
        deadline = time.monotonic() + 5
        while alarms.queued and time.monotonic() < deadline:
            time.sleep(0.01)
        assert alarms.queued == 0
    finally:
        alarms.stop()
