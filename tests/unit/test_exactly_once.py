"""A QoS-1 message redelivered after a crash is acknowledged but not stored twice.

The broker redelivers (DUP set, same packet id) every message the collector had
not acknowledged; those already committed to the spool must not come back with a
second receive time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.mqtt.acks import AckBatcher, message_key
from stackwatch.catalog import PointCatalog
from stackwatch.config import parse_config
from stackwatch.pipeline import ReadingHub
from stackwatch.readings import Reading
from stackwatch.store.sink import SpoolSink
from stackwatch.store.spool import LEDGER_KEEP, Spool

SITE = """
site: {id: s}
buildings: [{id: a}]
rooms: [{id: r, building: a, profile: paper}]
mqtt: {}
devices:
  - {id: d, protocol: mqtt, room: r, topic: t, points: [{id: v}]}
"""


K1, K2, K3 = (bytes([n]) * 16 for n in (1, 2, 3))


def reading(n: int) -> Reading:
    return Reading("d.v", 1_000 + n, float(n))


def test_spool_records_message_keys_in_the_same_commit(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        spool.append(["m v=1 1"], [K1, K2])
        assert spool.seen([K1, K2, K3]) == {K1, K2}
    with Spool(tmp_path / "spool.db") as reopened:  # survives a restart
        assert reopened.seen([K2]) == {K2}
        assert reopened.depth() == 1


def test_message_keys_have_one_size(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool, pytest.raises(ValueError, match="16 bytes"):
        spool.append(["m v=1 1"], [b"short"])


def test_ledger_keeps_the_newest_keys(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        keys = [n.to_bytes(16, "big") for n in range(LEDGER_KEEP + 20_000)]
        for start in range(0, len(keys), 5_000):
            spool.append(["m v=1 1"], keys[start:start + 5_000])
        assert spool.seen([keys[0]]) == set()
        assert spool.seen([keys[-1], keys[-LEDGER_KEEP + 1]]) == {keys[-1], keys[-LEDGER_KEEP + 1]}
    with Spool(tmp_path / "spool.db") as reopened:  # the same window after a restart
        assert reopened.seen([keys[0], keys[-1]]) == {keys[-1]}


def test_message_key_depends_on_topic_payload_and_packet_id() -> None:
    base = message_key(b"t", b"21.5", 7)
    assert base == message_key(b"t", b"21.5", 7)
    assert len({base, message_key(b"u", b"21.5", 7), message_key(b"t", b"21.6", 7), message_key(b"t", b"21.5", 8),
                message_key(b"t2", b"1.5", 7)}) == 5


def test_redelivered_message_already_spooled_is_acked_not_stored(tmp_path: Path) -> None:
    config = parse_config(SITE)
    spool = Spool(tmp_path / "spool.db")
    hub = ReadingHub(SpoolSink(spool, PointCatalog.from_config(config)))
    acked: list[int] = []
    batcher = AckBatcher(hub, lambda mid, qos: acked.append(mid), batch_size=10, delay=0.001,
                         on_failure=lambda error: None)
    batcher.start()
    batcher.open_session()
    first = message_key(b"t", b"1", 1)
    assert batcher.add(1, 1, [reading(1)], first)
    batcher.stop()
    assert acked == [1] and spool.depth() == 1

    # The service died after the commit and before the broker saw the ack: it comes again, DUP set,
    # next to a message that is new.
    acked.clear()
    batcher = AckBatcher(hub, lambda mid, qos: acked.append(mid), batch_size=10, delay=0.001,
                         on_failure=lambda error: None)
    batcher.start()
    batcher.open_session()
    assert batcher.add(1, 1, [Reading("d.v", 9_999, 1.0)], first, dup=True)
    assert batcher.add(2, 1, [reading(2)], message_key(b"t", b"2", 2), dup=True)  # DUP but never spooled
    batcher.stop()
    assert sorted(acked) == [1, 2]
    assert batcher.redelivered_skipped == 1
    assert spool.depth() == 2  # the first message once, the second once
    lines = [line for batch in spool.peek(10) for line in batch.lines]
    assert not any(line.endswith(" 9999") for line in lines)
    spool.close()
