"""The writer against a fake InfluxDB: batching, outage and back-off, bisecting rejections, stop.

The fake behaves like InfluxDB 1.x where it matters: a 400 still stores the
good lines of the request (partial write), and writing a line again
overwrites the same point, so `stored` is a set.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from stackwatch.clock import ManualClock
from stackwatch.config.services import InfluxConfig
from stackwatch.store.influx import InfluxRefused, InfluxRejected, InfluxUnavailable
from stackwatch.store.spool import Spool, SpoolBatch
from stackwatch.store.writer import InfluxWriter, plan_chunks


class FakeInflux:
    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.requests: list[list[str]] = []
        self.down: InfluxUnavailable | None = None
        self.fail_after: int | None = None  # go down after this many more successful requests
        self.created = 0

    def write(self, lines: Sequence[str]) -> None:
        self.requests.append(list(lines))
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down = InfluxUnavailable("connection refused")
                self.fail_after = None
            else:
                self.fail_after -= 1
        if self.down is not None:
            raise self.down
        old = [line for line in lines if "OLD" in line]
        bad = [line for line in lines if "BAD" in line]
        self.stored.update(line for line in lines if line not in old and line not in bad)
        if bad:
            raise InfluxRejected(f"partial write: unable to parse '{bad[0]}': invalid field format dropped={len(old)}",
                                 400)
        if old:
            raise InfluxRejected(f"partial write: points beyond retention policy dropped={len(old)}", 400)

    def create_database(self) -> None:
        if self.down is not None:
            raise self.down
        self.created += 1


async def inline(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


async def settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def lines(tag: str, n: int) -> list[str]:
    return [f"m,t={tag} v={i} {i}" for i in range(n)]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.db")


def make_writer(spool: Spool, fake: FakeInflux, clock: ManualClock, **config: Any) -> InfluxWriter:
    settings = {"batch_lines": 10, "flush_interval": 1.0, "retry_max": 8.0, "create_database": False, **config}
    return InfluxWriter(spool, fake, InfluxConfig(**settings), clock, run_blocking=inline)


def test_plan_chunks_joins_rows_and_splits_big_ones() -> None:
    batches = [SpoolBatch(1, lines("a", 3)), SpoolBatch(2, lines("b", 12)), SpoolBatch(3, lines("c", 2))]
    chunks = plan_chunks(batches, 5)
    assert [len(c.lines) for c in chunks] == [5, 5, 5, 2]
    assert [c.completes for c in chunks] == [[1], [], [2], [3]]
    assert [line for c in chunks for line in c.lines] == lines("a", 3) + lines("b", 12) + lines("c", 2)
    assert chunks[0].row_of_line == [1, 1, 1, 2, 2]


async def test_drains_backlog_at_start_in_requests_of_batch_lines(spool: Spool) -> None:
    for k in range(7):
        spool.append(lines(f"r{k}", 4))
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock)
    await writer.start()
    await settle()
    assert fake.stored == {line for k in range(7) for line in lines(f"r{k}", 4)}
    assert all(len(request) <= 10 for request in fake.requests)
    assert [len(r) for r in fake.requests] == [8, 8, 8, 4]  # whole rows joined while they fit
    assert spool.depth() == 0 and writer.lines_written == 28 and writer.write_requests == 4
    assert writer.last_write_latency_s > 0
    await writer.stop()


async def test_notify_from_another_thread_wakes_the_writer(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, flush_interval=3600.0)
    await writer.start()
    await settle()

    def producer() -> None:
        for k in range(20):
            spool.append(lines(f"p{k}", 2))
            writer.notify()

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join()
    for _ in range(100):  # no clock movement: only the notifications can wake it
        await settle(5)
        if spool.depth() == 0:
            break
    assert spool.depth() == 0 and len(fake.stored) == 40
    await writer.stop()


async def test_without_notify_the_flush_interval_picks_rows_up(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, flush_interval=2.0)
    await writer.start()
    await settle()
    spool.append(lines("late", 3))
    await clock.advance(1.0)
    await settle()
    assert fake.stored == set()
    await clock.advance(1.0)
    await settle()
    assert fake.stored == set(lines("late", 3))
    await writer.stop()


async def test_outage_backs_off_keeps_data_and_logs_once_each_way(spool: Spool,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stackwatch.store.writer")
    fake, clock = FakeInflux(), ManualClock()
    fake.down = InfluxUnavailable("connection refused")
    writer = make_writer(spool, fake, clock, retry_max=4.0)
    spool.append(lines("a", 5))
    await writer.start()
    await settle()
    attempts = [clock.now()]
    for _ in range(40):  # 20 s of clock in 0.5 s steps, recording when each attempt happens
        before = len(fake.requests)
        await clock.advance(0.5)
        await settle()
        if len(fake.requests) > before:
            attempts.append(clock.now())
        writer.notify()  # new data must not cut the back-off short
        await settle()
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(attempts)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and set(gaps[3:]) == {4.0}
    assert writer.outage and spool.depth() == 5 and fake.stored == set()
    assert writer.write_failures == len(fake.requests) and spool.rejected_count() == 0
    fake.down = None
    spool.append(lines("b", 2))
    await clock.advance(4.0)
    await settle()
    assert not writer.outage and spool.depth() == 0
    assert fake.stored == set(lines("a", 5) + lines("b", 2))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1
    assert sum("available again" in m for m in messages) == 1
    await writer.stop()


async def test_refused_credentials_hold_the_data_instead_of_rejecting_it(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    fake.down = InfluxRefused("authorization failed", 401)
    writer = make_writer(spool, fake, clock)
    spool.append(lines("a", 3))
    await writer.start()
    await settle()
    assert writer.outage and "authorization failed" in writer.last_error
    assert spool.depth() == 3 and spool.rejected_count() == 0
    fake.down = None
    await clock.advance(1.0)
    await settle()
    assert spool.depth() == 0 and fake.stored == set(lines("a", 3))
    await writer.stop()


async def test_a_split_row_is_deleted_only_when_all_its_lines_are_acknowledged(spool: Spool) -> None:
    big = lines("big", 25)
    spool.append(big)
    fake, clock = FakeInflux(), ManualClock()
    fake.fail_after = 1  # the first chunk is acknowledged, the second fails
    writer = make_writer(spool, fake, clock)
    await writer.start()
    await settle()
    assert spool.depth() == 25 and len(fake.stored) == 10  # the row waits whole
    fake.down = None
    await clock.advance(0.5)
    await settle()
    assert spool.depth() == 0 and fake.stored == set(big)
    assert [len(r) for r in fake.requests] == [10, 10, 10, 10, 5]  # the first chunk went twice: harmless
    await writer.stop()


async def test_rejected_lines_are_isolated_and_moved_the_rest_is_written(spool: Spool) -> None:
    good_a, good_b = lines("a", 6), lines("b", 4)
    bad = ["m,t=x v=BAD 1", "m,t=y v=BAD 2"]
    spool.append([*good_a[:3], bad[0], *good_a[3:]])
    spool.append([*good_b[:1], bad[1], *good_b[1:]])
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, batch_lines=100)
    await writer.start()
    await settle()
    assert fake.stored == set(good_a + good_b)
    assert spool.depth() == 0 and not writer.outage
    rejected = spool.rejected()
    assert [r.line for r in rejected] == bad
    assert all("unable to parse" in r.reason for r in rejected)
    assert writer.lines_rejected == 2 and spool.rejected_count() == 2
    await writer.stop()


async def test_a_request_dropped_whole_is_rejected_without_bisecting(spool: Spool) -> None:
    old = [f"m,t=OLD v={i} {i}" for i in range(64)]
    spool.append(old)
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, batch_lines=100)
    await writer.start()
    await settle()
    assert len(fake.requests) == 1 and spool.rejected_count() == 64 and spool.depth() == 0
    assert {r.reason for r in spool.rejected(limit=100)} == {
        "partial write: points beyond retention policy dropped=64"}
    await writer.stop()


async def test_outage_during_bisection_keeps_the_whole_chunk(spool: Spool) -> None:
    spool.append(["m v=1 1", "m v=BAD 2", "m v=3 3", "m v=4 4"])
    fake, clock = FakeInflux(), ManualClock()
    fake.fail_after = 2  # the request and its first half are rejected, then the server goes away
    writer = make_writer(spool, fake, clock)
    await writer.start()
    await settle()
    assert writer.outage and spool.depth() == 4 and spool.rejected_count() == 0
    fake.down = None
    await clock.advance(0.5)
    await settle()
    assert spool.depth() == 0 and [r.line for r in spool.rejected()] == ["m v=BAD 2"]
    assert fake.stored == {"m v=1 1", "m v=3 3", "m v=4 4"}
    await writer.stop()


async def test_prepare_runs_before_the_first_write_and_after_each_outage(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    writer = InfluxWriter(spool, fake, InfluxConfig(create_database=True, batch_lines=10), clock,
                          run_blocking=inline)
    spool.append(lines("a", 1))
    await writer.start()
    await settle()
    assert fake.created == 1 and spool.depth() == 0
    spool.append(lines("b", 1))
    await clock.advance(1.0)  # flush_interval: a small backlog goes out on the timer
    await settle()
    assert fake.created == 1 and spool.depth() == 0  # not per write
    fake.fail_after = 0
    spool.append(lines("c", 1))
    await clock.advance(1.0)
    await settle()
    assert writer.outage
    fake.down = None
    await clock.advance(0.5)
    await settle()
    assert fake.created == 2 and spool.depth() == 0
    await writer.stop()


async def test_notify_wakes_the_writer_only_for_a_full_request(spool: Spool) -> None:
    """Batching by size and time: a steady stream goes out in full requests, the tail on the timer."""
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, flush_interval=60.0)
    await writer.start()
    await settle()
    spool.append(lines("small", 3))
    writer.notify()
    await settle()
    assert fake.requests == [] and spool.depth() == 3  # waits for the timer
    spool.append(lines("more", 7))  # now a full request (batch_lines 10)
    writer.notify()
    await settle()
    assert len(fake.requests) == 1 and spool.depth() == 0
    spool.append(lines("tail", 2))
    await clock.advance(60.0)
    await settle()
    assert spool.depth() == 0
    await writer.stop()


async def test_stop_flushes_what_arrived_last(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock, flush_interval=3600.0)
    await writer.start()
    await settle()
    spool.append(lines("last", 3))  # no notify: only the final flush can send it
    await writer.stop(timeout=5.0)
    assert fake.stored == set(lines("last", 3)) and spool.depth() == 0


async def test_stop_while_down_returns_and_keeps_the_data(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    fake.down = InfluxUnavailable("connection refused")
    writer = make_writer(spool, fake, clock, retry_max=30.0)
    spool.append(lines("a", 3))
    await writer.start()
    await settle()
    await asyncio.wait_for(writer.stop(timeout=5.0), 2.0)  # the back-off sleep does not hold it up
    assert spool.depth() == 3


async def test_stop_gives_up_on_a_hanging_server_after_the_timeout(spool: Spool) -> None:
    release = threading.Event()

    class Hanging(FakeInflux):
        def write(self, lines: Sequence[str]) -> None:
            release.wait(10)
            raise InfluxUnavailable("timed out")

    spool.append(lines("a", 3))
    writer = InfluxWriter(spool, Hanging(), InfluxConfig(create_database=False), ManualClock())  # real threads
    await writer.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.stop(timeout=0.2), 2.0)
    release.set()
    assert spool.depth() == 3


async def test_stats_are_plain_numbers(spool: Spool) -> None:
    fake, clock = FakeInflux(), ManualClock()
    writer = make_writer(spool, fake, clock)
    spool.append([*lines("a", 3), "m v=BAD 9"])
    await writer.start()
    await settle()
    stats = writer.stats()
    assert stats["lines_written"] == 3 and stats["lines_rejected"] == 1 and stats["spool_depth"] == 0
    assert stats["spool_rejected"] == 1 and stats["outage"] is False and stats["write_failures"] == 0
    assert writer.spool_depth == 0
    await writer.stop()


def test_plan_chunks_completes_an_empty_row() -> None:
    (chunk,) = plan_chunks([SpoolBatch(7, [])], 5)
    assert chunk.lines == [] and chunk.completes == [7]
