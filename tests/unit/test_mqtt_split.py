"""`mqtt.receiver: process`: raw messages spooled by the receiver, mapped exactly once by the service.

The receiver's session rules are `MqttSession`'s (tested in test_mqtt_subscriber);
here: what it commits before it acknowledges, the raw spool, and the mapping side
(exactly once across a SIGKILL between the two commits, identical timestamps when a
row is mapped again, malformed and damaged rows counted and never fatal).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.mqtt.acks import message_key
from collector.mqtt.rawspool import CorruptRow, RawMessage, RawReader, RawSpool, pack, unpack
from collector.mqtt.receiver import SPACING_NS, RawReceiver, RawSink
from collector.mqtt.split import SplitMqttCollector
from stackwatch.catalog import PointCatalog
from stackwatch.clock import ManualClock
from stackwatch.config import parse_config
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import ReadingHub
from stackwatch.service import Service
from stackwatch.store.sink import SpoolSink
from stackwatch.store.spool import Spool, ledger_keys

ROOT = Path(__file__).resolve().parents[2]
SITE = """
site: {id: s}
buildings: [{id: a}]
rooms: [{id: r, building: a, profile: paper}]
mqtt: {receiver: process}
devices:
  - {id: th, protocol: mqtt, room: r, topic: z/th, points: [{id: t, path: temperature}, {id: h, path: humidity}]}
  - {id: c, protocol: mqtt, room: r, topic: z/c, points: [{id: n}]}
"""
T0 = 1_767_225_600_000_000_000


def config() -> SiteConfig:
    return parse_config(SITE)


def th(n: int) -> bytes:
    return json.dumps({"temperature": 20 + n / 100, "humidity": 40 + n / 100}).encode()


def rows_of(n_rows: int, per_row: int = 4) -> list[list[RawMessage]]:
    """Messages as the receiver commits them: own receive times, SPACING_NS apart at least."""
    rows, n = [], 0
    for _ in range(n_rows):
        row = []
        for _ in range(per_row):
            row.append(RawMessage(T0 + n * SPACING_NS, False, b"z/th", th(n)))
            n += 1
        rows.append(row)
    return rows


def fill(raw_path: Path, rows: list[list[RawMessage]]) -> None:
    with RawSpool(raw_path) as spool:
        for row in rows:
            spool.append(row)


def spool_lines(path: Path) -> list[str]:
    with Spool(path) as spool:
        return [line for batch in spool.peek(1_000_000) for line in batch.lines]


def drain(tmp_path: Path, cfg: SiteConfig | None = None) -> SplitMqttCollector:
    """Map what the raw spool holds into the reading spool, as the service does, with no receiver."""
    cfg = cfg or config()
    spool = Spool(tmp_path / "spool.db")
    try:
        collector = SplitMqttCollector(cfg, ReadingHub(SpoolSink(spool, PointCatalog.from_config(cfg))),
                                       ManualClock(), tmp_path / "raw.db", spawn=False)
        collector.start()
        collector.stop()
    finally:
        spool.close()
    return collector


# -- the raw spool ------------------------------------------------------------------------------

def test_pack_and_unpack_keep_every_byte() -> None:
    messages = [RawMessage(T0, True, b"a/b", b""), RawMessage(T0 + 1, False, b"\xff\xfe", b"\x00\xff{"),
                RawMessage(-1, False, b"t" * 300, b"x" * 70_000)]
    assert unpack(pack(messages)) == messages
    with pytest.raises(CorruptRow):
        unpack(pack(messages)[:-1])
    with pytest.raises(CorruptRow):
        unpack(b"\x01\x02")


def test_raw_rows_keys_and_release_survive_a_reopen(tmp_path: Path) -> None:
    keys = [bytes([n]) * 16 for n in range(3)]
    with RawSpool(tmp_path / "raw.db") as spool:
        epoch = spool.epoch
        first = spool.append(rows_of(1)[0], keys[:2])
        second = spool.append(rows_of(1)[0], keys[2:])
    reader = RawReader(tmp_path / "raw.db")
    assert reader.epoch == epoch and [row for row, _ in reader.read_after(0, 10)] == [first, second]
    assert reader.waiting(first) == 4
    with RawSpool(tmp_path / "raw.db") as spool:
        assert spool.epoch == epoch and spool.seen(keys) == set(keys)
        spool.append(rows_of(1)[0], release=second)  # the service mapped both: they go with this commit
    assert [row for row, _ in reader.read_after(0, 10)] == [second + 1]
    reader.close()


def test_a_read_stops_at_the_message_bound_but_always_takes_a_row(tmp_path: Path) -> None:
    """After a backlog the receiver writes big rows; the mapper takes a bounded number of messages at a time."""
    with RawSpool(tmp_path / "raw.db") as spool:
        ids = [spool.append(rows_of(1, per_row=per_row)[0]) for per_row in (3, 3, 500, 2)]
    reader = RawReader(tmp_path / "raw.db")
    assert [row for row, _ in reader.read_after(0, 10, max_messages=5)] == ids[:2]
    assert [row for row, _ in reader.read_after(ids[1], 10, max_messages=5)] == [ids[2]]  # one row, however big
    assert [row for row, _ in reader.read_after(0, 10)] == ids
    db = sqlite3.connect(tmp_path / "raw.db")  # no read left open by the stopped read: a checkpoint is not busy
    assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    db.close()
    reader.close()


# -- the receiver: committed raw before acknowledged --------------------------------------------

@dataclass
class Message:
    _topic: bytes
    payload: bytes
    mid: int
    qos: int = 1
    retain: bool = False
    dup: bool = False


class FakeClient:
    def __init__(self, events: list[tuple[str, Any]]) -> None:
        self.events = events
        self.on_connect: Any = None
        self.on_disconnect: Any = None
        self.on_message: Any = None

    def username_pw_set(self, username: str | None, password: str | None = None) -> None: ...

    def tls_set(self, ca_certs: str | None = None) -> None: ...

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None: ...

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        self.on_connect(self, None, None, None, None)

    def loop_start(self) -> None: ...

    def loop_stop(self) -> None: ...

    def disconnect(self) -> None: ...

    def subscribe(self, topics: list[tuple[str, int]]) -> None: ...

    def ack(self, mid: int, qos: int) -> None:
        self.events.append(("ack", mid))


def receiver(tmp_path: Path, events: list[tuple[str, Any]], now: Callable[[], int]) -> tuple[RawReceiver, RawSpool]:
    spool = RawSpool(tmp_path / "raw.db")
    sink = RawSink(spool, lambda row: events.append(("commit", row)))
    cfg = config()
    assert cfg.mqtt is not None
    made = RawReceiver(cfg.mqtt, "c", ["z/#"], sink, lambda *_a, **_k: FakeClient(events), flush_delay=0.001,
                       time_ns=now)
    made.start()
    return made, spool


def test_receiver_commits_raw_messages_before_acknowledging_them(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    made, spool = receiver(tmp_path, events, lambda: T0)  # a clock that stands still
    client = made._client
    assert client is not None
    for mid in (1, 2, 3):
        client.on_message(client, None, Message(b"z/th", th(mid), mid))
    made.stop()
    spool.close()
    assert [kind for kind, _ in events][:1] == ["commit"] and sorted(m for k, m in events if k == "ack") == [1, 2, 3]
    reader = RawReader(tmp_path / "raw.db")
    messages = [m for _, body in reader.read_after(0, 10) for m in unpack(body)]
    assert [m.payload for m in messages] == [th(1), th(2), th(3)]
    # Each message its own receive time even when the clock does not move: its readings' stamps derive from it.
    assert [m.recv_ns for m in messages] == [T0, T0 + SPACING_NS, T0 + 2 * SPACING_NS]
    reader.close()


def test_receiver_acknowledges_a_redelivery_of_a_committed_message_without_storing_it(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    made, spool = receiver(tmp_path, events, time.time_ns)
    assert made._client is not None
    made._client.on_message(made._client, None, Message(b"z/th", th(1), 7))
    made.stop()
    spool.close()
    events.clear()
    # Killed after the commit, before the broker saw the ack: the broker sends it again with DUP set.
    made, spool = receiver(tmp_path, events, time.time_ns)
    assert made._client is not None
    made._client.on_message(made._client, None, Message(b"z/th", th(1), 7, dup=True))
    made._client.on_message(made._client, None, Message(b"z/th", th(2), 8, dup=True))  # DUP, never committed
    made.stop()
    spool.close()
    assert sorted(m for k, m in events if k == "ack") == [7, 8]
    assert made.session_stats()["redelivered_skipped"] == 1
    reader = RawReader(tmp_path / "raw.db")
    assert [m.payload for _, body in reader.read_after(0, 10) for m in unpack(body)] == [th(1), th(2)]
    reader.close()
    assert message_key(b"z/th", th(1), 7) != message_key(b"z/th", th(1), 8)


# -- mapping: exactly once, deterministic, never fatal ------------------------------------------

def test_raw_rows_are_mapped_once_with_timestamps_from_their_receive_time(tmp_path: Path) -> None:
    fill(tmp_path / "raw.db", rows_of(5))
    collector = drain(tmp_path)
    lines = spool_lines(tmp_path / "spool.db")
    assert len(lines) == 5 * 4 * 2 and collector.messages_received == 20
    assert {int(line.rsplit(" ", 1)[1]) for line in lines} == {T0 + n * SPACING_NS for n in range(20)}
    drain(tmp_path)  # started again: nothing new to map
    assert len(spool_lines(tmp_path / "spool.db")) == 40
    fill(tmp_path / "raw.db", rows_of(1))  # only what came after the mark
    drain(tmp_path)
    assert len(spool_lines(tmp_path / "spool.db")) == 48


def test_malformed_messages_and_a_damaged_row_are_counted_not_fatal(tmp_path: Path) -> None:
    messages = [RawMessage(T0, False, b"z/th", b'{"temperature": 2'),  # truncated JSON
                RawMessage(T0 + 1000, False, b"\xff/th", th(1)),  # topic not UTF-8
                RawMessage(T0 + 2000, False, b"z/th", b"\xff\xfe\x00"),  # binary junk
                RawMessage(T0 + 3000, False, b"z/other", th(1)),  # no such device
                RawMessage(T0 + 4000, False, b"z/th", b"x" * 70_000),  # oversized
                RawMessage(T0 + 5000, False, b"z/th", th(5))]
    with RawSpool(tmp_path / "raw.db") as spool:
        spool.append(messages[:3])
    db = sqlite3.connect(tmp_path / "raw.db")
    db.execute("INSERT INTO raw (n, body) VALUES (1, ?)", (b"\x00\x01\x02",))  # damaged, as no receiver writes
    db.commit()
    db.close()
    with RawSpool(tmp_path / "raw.db") as spool:
        spool.append(messages[3:])
    collector = drain(tmp_path)
    assert (collector.malformed, collector.unexpected, collector.oversized) == (4, 1, 1)
    assert collector.mapping_errors == 0
    lines = spool_lines(tmp_path / "spool.db")
    assert sorted(int(line.rsplit(" ", 1)[1]) for line in lines) == [T0 + 5000] * 2  # the good message, both points
    assert drain(tmp_path).malformed == 0  # the mark moved past them all: nothing is mapped twice


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from collector.mqtt.split import SplitMqttCollector
    from stackwatch.catalog import PointCatalog
    from stackwatch.clock import ManualClock
    from stackwatch.config import parse_config
    from stackwatch.pipeline import ReadingHub
    from stackwatch.store.sink import SpoolSink
    from stackwatch.store.spool import Spool

    site, folder, kill_at, when = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    cfg = parse_config(Path(site).read_text())
    spool = Spool(folder / "spool.db")
    sink = SpoolSink(spool, PointCatalog.from_config(cfg))
    calls = 0

    class Dying(ReadingHub):
        def accept_marked(self, readings, mark):
            global calls
            calls += 1
            if calls == kill_at and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            super().accept_marked(readings, mark)
            if calls == kill_at and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)

    collector = SplitMqttCollector(cfg, Dying(sink), ManualClock(), folder / "raw.db", spawn=False)
    collector.start()
    collector.stop()
""")


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_between_raw_spool_and_reading_spool_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, when: str) -> None:
    """SIGKILL just before / just after a reading-spool commit; the restart maps the rest, each message once."""
    reference = tmp_path / "reference"
    reference.mkdir()
    rows = rows_of(200)  # 200 rows: several spool commits (split.MAX_ROWS rows each)
    fill(reference / "raw.db", rows)
    drain(reference)
    expected = sorted(spool_lines(reference / "spool.db"))
    assert len(expected) == 200 * 4 * 2

    killed = tmp_path / "killed"
    killed.mkdir()
    fill(killed / "raw.db", rows)
    (tmp_path / "site.yaml").write_text(SITE)
    result = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "site.yaml"), str(killed), "2", when],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    partial = spool_lines(killed / "spool.db")
    assert 0 < len(partial) < len(expected)
    drain(killed)  # the service restarted
    assert sorted(spool_lines(killed / "spool.db")) == expected  # the same points, same timestamps, once each


def test_a_mark_from_another_raw_file_does_not_apply(tmp_path: Path) -> None:
    fill(tmp_path / "raw.db", rows_of(3))
    drain(tmp_path)
    os.remove(tmp_path / "raw.db")  # an operator deleted the raw file: a new one starts at row 1 again
    for suffix in ("-wal", "-shm"):
        if (tmp_path / f"raw.db{suffix}").exists():
            os.remove(tmp_path / f"raw.db{suffix}")
    later = [[RawMessage(m.recv_ns + 10**12, m.retain, m.topic, m.payload) for m in row] for row in rows_of(2)]
    fill(tmp_path / "raw.db", later)
    drain(tmp_path)
    assert len(spool_lines(tmp_path / "spool.db")) == (3 + 2) * 4 * 2


def test_a_spool_that_refuses_keeps_the_raw_rows_for_later(tmp_path: Path) -> None:
    fill(tmp_path / "raw.db", rows_of(2))
    cfg = config()
    spool = Spool(tmp_path / "spool.db")
    refusals = []

    class Full(ReadingHub):
        def accept_marked(self, readings: Any, mark: tuple[str, int]) -> None:
            refusals.append(mark)
            raise sqlite3.OperationalError("database or disk is full")

    collector = SplitMqttCollector(cfg, Full(SpoolSink(spool, PointCatalog.from_config(cfg))), ManualClock(),
                                   tmp_path / "raw.db", spawn=False)
    collector.start()
    collector.stop()  # stopping while refused: gives up, the raw rows stay
    spool.close()
    assert refusals and collector.commit_failures >= 1
    assert spool_lines(tmp_path / "spool.db") == []
    drain(tmp_path)
    assert len(spool_lines(tmp_path / "spool.db")) == 2 * 4 * 2


# -- switching mqtt.receiver after a crash ------------------------------------------------------

def test_ledger_keys_of_the_other_mode_are_known(tmp_path: Path) -> None:
    keys = [bytes([n]) * 16 for n in range(4)]
    with Spool(tmp_path / "spool.db") as spool:
        spool.append(["m v=1 1"], keys[:2])
    with RawSpool(tmp_path / "raw.db") as raw:
        raw.append(rows_of(1)[0], keys[2:])
    assert ledger_keys(tmp_path / "spool.db") == keys[:2] and ledger_keys(tmp_path / "raw.db") == keys[2:]
    assert ledger_keys(tmp_path / "none.db") == []
    with RawSpool(tmp_path / "raw.db") as raw:
        raw.preload_keys(ledger_keys(tmp_path / "spool.db"))
        assert raw.seen(keys) == set(keys)


def test_thread_mode_after_process_mode_maps_what_the_receiver_left(tmp_path: Path) -> None:
    """Killed in `process` mode with raw rows not yet mapped, started again in `thread` mode: they are mapped."""
    site = SITE.replace("receiver: process", "receiver: thread") + f"state_dir: {tmp_path}\n"
    cfg = parse_config(site)
    (tmp_path / "site.yaml").write_text(site)
    service = Service(cfg, tmp_path / "site.yaml")
    key = bytes([9]) * 16
    with RawSpool(service.mqtt_raw_path) as raw:
        raw.append(rows_of(2)[1], [key])
    service._adopt_raw_spool()
    assert service.spool.seen([key]) == {key}
    lines = [line for batch in service.spool.peek(100) for line in batch.lines]
    assert len(lines) == 4 * 2
    service._adopt_raw_spool()  # once only
    assert service.spool.depth() == 8
    service.spool.close()
