"""The spool keeps every committed batch, through threads, rejections, reopening and SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.clock import ManualClock
from stackwatch.config.services import SpoolConfig
from stackwatch.readings import Quality, Reading
from stackwatch.store.lineprotocol import series_key
from stackwatch.store.sink import SpoolSink
from stackwatch.store.spool import Spool


def lines(tag: str, n: int) -> list[str]:
    return [f"m,b={tag} v={i}i {i}" for i in range(n)]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.db")


def test_append_peek_delete_in_order(spool: Spool) -> None:
    first = spool.append(lines("a", 3))
    second = spool.append(lines("b", 2))
    assert first is not None and second is not None
    assert spool.append([]) is None
    assert spool.depth() == 5
    batches = spool.peek(100)
    assert [(b.id, b.lines) for b in batches] == [(first, lines("a", 3)), (second, lines("b", 2))]
    assert spool.delete([first]) == 3
    assert spool.depth() == 2
    assert [b.id for b in spool.peek(100)] == [second]
    assert spool.delete([second, 999]) == 2
    assert spool.depth() == 0 and spool.peek(100) == []


def test_one_row_per_append(spool: Spool) -> None:
    spool.append(lines("a", 1000))
    rows = sqlite3.connect(spool.path).execute("SELECT COUNT(*), SUM(n) FROM spool").fetchone()
    assert rows == (1, 1000)


def test_peek_fills_up_to_max_lines_but_always_returns_a_row(spool: Spool) -> None:
    ids = [spool.append(lines(str(i), 4)) for i in range(5)]
    assert [b.id for b in spool.peek(8)] == ids[:2]
    assert [b.id for b in spool.peek(11)] == ids[:2]
    assert [b.id for b in spool.peek(12)] == ids[:3]
    big = Spool(spool.path.with_name("big.db"))
    big_id = big.append(lines("x", 50))
    big.append(lines("y", 1))
    assert [(b.id, len(b.lines)) for b in big.peek(10)] == [(big_id, 50)]


def test_wal_and_synchronous_modes(tmp_path: Path) -> None:
    normal = Spool(tmp_path / "normal.db")
    durable = Spool(tmp_path / "durable.db", fsync=True)
    assert sqlite3.connect(normal.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: ask the spool's own (1 = NORMAL, 2 = FULL)
    assert normal._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert durable._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_depth_is_restored_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        keep = spool.append(lines("a", 7))
        gone = spool.append(lines("b", 3))
        assert gone is not None
        spool.delete([gone])
    with Spool(path) as spool:
        assert spool.depth() == 7
        assert [(b.id, b.lines) for b in spool.peek(100)] == [(keep, lines("a", 7))]


def test_ids_are_never_reused(tmp_path: Path) -> None:
    """A rejected line names its batch; a later batch must not take that id."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        first = spool.append(lines("a", 1))
        assert first is not None
        spool.delete([first])
    with Spool(path) as spool:
        again = spool.append(lines("a", 1))
        assert again is not None and again > first


def test_lines_with_raw_newlines_keep_their_boundaries(spool: Spool) -> None:
    """Line protocol allows a raw newline in a quoted string field (InfluxDB 1.x stores it as is)."""
    batch = ['m detail="first\nsecond",v=1 1', 'm v=2 2', 'm detail="\n" 3']
    batch_id = spool.append(batch)
    assert spool.depth() == 3
    assert spool.peek(10)[0].lines == batch
    assert batch_id is not None
    spool.reject(batch_id, ["m v=2 2"], "test")
    assert spool.peek(10)[0].lines == [batch[0], batch[2]]


def test_reject_moves_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "spool.db"
    spool = Spool(path, clock=clock)
    batch = ["good 1", "bad 2", "good 3", "bad 2"]
    batch_id = spool.append(batch)
    assert batch_id is not None
    spool.reject(batch_id, ["bad 2"], "unable to parse")
    assert spool.depth() == 3
    assert spool.peek(10)[0].lines == ["good 1", "good 3", "bad 2"]  # one occurrence moved per line given
    spool.reject(batch_id, ["bad 2"], "unable to parse")
    assert spool.rejected_count() == 2
    rejected = spool.rejected()
    assert [(r.batch_id, r.line, r.reason, r.at) for r in rejected] == [
        (batch_id, "bad 2", "unable to parse", clock.now())] * 2
    assert spool.rejected(after_id=rejected[0].id) == rejected[1:]
    spool.close()
    with Spool(path) as reopened:
        assert reopened.rejected_count() == 2
        assert reopened.depth() == 2


def test_rejecting_every_line_removes_the_row(spool: Spool) -> None:
    batch_id = spool.append(["a 1", "b 2"])
    assert batch_id is not None
    spool.reject(batch_id, ["a 1", "b 2"], "beyond retention policy")
    assert spool.depth() == 0 and spool.peek(10) == []
    assert spool.rejected_count() == 2


def test_oldest_age_follows_the_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    spool = Spool(tmp_path / "spool.db", clock=clock)
    assert spool.oldest_age() == 0.0
    spool.append(["a 1"])
    clock._now += 90  # no sleepers involved: move the clock directly
    spool.append(["b 2"])
    assert spool.oldest_age() == pytest.approx(90.0)


def test_from_config_puts_relative_paths_under_the_state_dir(tmp_path: Path) -> None:
    spool = Spool.from_config(SpoolConfig(path="sub/spool.db", fsync=True), tmp_path)
    assert spool.path == tmp_path / "sub" / "spool.db"
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_threads_append_while_a_consumer_deletes(spool: Spool) -> None:
    per_thread, threads = 200, 4
    done = threading.Event()
    consumed: list[str] = []

    def producer(name: str) -> None:
        for i in range(per_thread):
            spool.append([f"m,t={name} v={i}i {i}", f"m,t={name} w={i}i {i}"])

    def consumer() -> None:
        while not done.is_set() or spool.depth():
            batches = spool.peek(50)
            for batch in batches:
                consumed.extend(batch.lines)
            spool.delete([b.id for b in batches])

    workers = [threading.Thread(target=producer, args=(f"p{k}",)) for k in range(threads)]
    reader = threading.Thread(target=consumer)
    reader.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    reader.join(30)
    assert spool.depth() == 0
    assert len(consumed) == len(set(consumed)) == per_thread * threads * 2
    for k in range(threads):  # each producer's batches come out in the order it committed them
        mine = [line for line in consumed if line.startswith(f"m,t=p{k} v=")]
        assert mine == [f"m,t=p{k} v={i}i {i}" for i in range(per_thread)]


def test_append_is_one_commit_per_batch_and_fast(spool: Spool) -> None:
    batch = lines("a", 50)
    started = time.perf_counter()
    for _ in range(500):
        spool.append(batch)
    elapsed = time.perf_counter() - started
    assert spool.depth() == 25_000
    assert elapsed < 5.0, f"500 appends of 50 lines took {elapsed:.2f}s"


# -- SIGKILL ------------------------------------------------------------------

CHILD = """
import sys
from stackwatch.store.spool import Spool
spool = Spool(sys.argv[1], fsync=sys.argv[2] == "1")
i = 0
while True:
    spool.append([f"m,batch={i} v={j}i {i * 1000 + j}" for j in range(i % 17 + 1)])
    print(i, flush=True)
    i += 1
"""


def expected_batch(i: int) -> list[str]:
    return [f"m,batch={i} v={j}i {i * 1000 + j}" for j in range(i % 17 + 1)]


@pytest.mark.parametrize("fsync", [False, True])
def test_sigkill_while_appending_loses_no_committed_batch(tmp_path: Path, fsync: bool) -> None:
    """A child appends in a loop and reports each batch after `append` returned; it is killed at a random moment.

    Every reported batch must be in the reopened file, complete, with nothing after a gap (appends
    are sequential, so the file holds a prefix of them), and SQLite must find the file intact.
    """
    path = tmp_path / "spool.db"
    rng = random.Random(1)
    reported = -1
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "1" if fsync else "0"],
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert child.stdout is not None
        first = child.stdout.readline()  # the child is appending from here on
        assert first.strip().isdigit()
        time.sleep(rng.uniform(0.02, 0.25))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
        reported = max(int(x) for x in [first, *rest.split()])
        with Spool(path) as spool:
            assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {int(b.lines[0].split(",batch=")[1].split(" ")[0]): b.lines for b in spool.peek(10**9)}
            assert all(i in stored for i in range(reported + 1)), "a committed batch is missing"
            assert sorted(stored) == list(range(len(stored))), "batches are not a prefix of the appends"
            assert all(batch == expected_batch(i) for i, batch in stored.items())
            assert spool.depth() == sum(len(batch) for batch in stored.values())
            spool.delete(range(1, 10**6))  # the next round starts from an empty spool, with its WAL
    assert reported > 0


# -- SpoolSink ------------------------------------------------------------------


def make_catalog() -> PointCatalog:
    tags = {"site": "s", "building": "b", "room": "r1", "device": "d1"}
    return PointCatalog("s", [
        PointInfo(key="d1.t", device="d1", point="t", quantity="temperature", unit="°C", room="r1", building="b",
                  is_state=False, expected_interval=10.0, series=series_key("temperature", {**tags, "point": "t"})),
        PointInfo(key="d1.door", device="d1", point="door", quantity="door", unit="", room="r1", building="b",
                  is_state=True, expected_interval=10.0,
                  series=series_key("state", {**tags, "point": "door", "quantity": "door"})),
    ])


def test_sink_appends_one_batch_then_notifies(spool: Spool) -> None:
    catalog = make_catalog()
    calls: list[int] = []
    sink = SpoolSink(spool, catalog, on_append=lambda: calls.append(spool.depth()))
    readings = [Reading("d1.t", 1, 20.5), Reading("d1.door", 2, True), Reading("d1.t", 3, None, Quality.COMM_FAILURE)]
    sink.accept(readings)
    assert calls == [3]  # notified after the commit
    (batch,) = spool.peek(10)
    assert batch.lines == [catalog.encode(r) for r in readings]
    assert sink.lines_appended == 3


def test_sink_skips_and_counts_unknown_points(spool: Spool) -> None:
    calls: list[int] = []
    sink = SpoolSink(spool, make_catalog(), on_append=lambda: calls.append(1))
    sink.accept([Reading("nope.x", 1, 1.0), Reading("d1.t", 2, 21.0), Reading("nope.y", 3, 1.0)])
    assert sink.unknown_points == 2 and spool.depth() == 1
    sink.accept([Reading("nope.x", 4, 1.0)])
    assert sink.unknown_points == 3 and spool.depth() == 1 and calls == [1]  # nothing appended: no wake-up


def test_sink_stores_an_unencodable_value_as_bad(spool: Spool) -> None:
    catalog = make_catalog()
    sink = SpoolSink(spool, catalog)
    sink.accept([Reading("d1.t", 5, 10**400), Reading("d1.t", 6, [1, 2])])  # type: ignore[arg-type]
    assert sink.unencodable == 2
    first, second = spool.peek(10)[0].lines
    assert first.startswith(catalog["d1.t"].series + ' quality="bad",detail="unencodable value ')
    assert first.endswith(" 5") and second.endswith(" 6")


def test_sink_raises_when_the_spool_cannot_commit(tmp_path: Path) -> None:
    """The caller (MQTT) must not acknowledge what was not stored."""
    spool = Spool(tmp_path / "spool.db")
    sink = SpoolSink(spool, make_catalog())
    spool.close()
    with pytest.raises(sqlite3.ProgrammingError):
        sink.accept([Reading("d1.t", 1, 20.0)])
