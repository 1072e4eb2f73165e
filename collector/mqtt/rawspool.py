"""The raw-message spool: what the MQTT receiver process commits before it acknowledges.

With `mqtt.receiver: process` the broker session runs in a process of its
own (`collector.mqtt.receiver`) that does no mapping: each batch of messages
(receive time, retain flag, topic and payload bytes, exactly as received) is
one row of this SQLite file, committed together with the messages' ledger keys
before the acknowledgements are sent. The service's process maps the rows into
readings and commits them to the reading spool together with the id of the
last raw row they came from (`Spool.append(mark=...)`): a raw row is mapped
into the reading spool exactly once, whatever is killed when.

The file has one writer, the receiver process. It deletes rows the service
says it has mapped (`release`) in its own next commit, so the two processes
never wait for each other's write lock. A random `epoch` names the file: a
mark recorded against a raw file that has since been replaced does not apply
to the new one (whose row ids start again at 1).
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from stackwatch.store.spool import MessageLedger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS raw (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    n INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS message_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    keys BLOB NOT NULL
);
"""
_HEADER = struct.Struct("<qBHI")  # receive time (ns), retain, topic length, payload length


class RawMessage(NamedTuple):
    recv_ns: int  # receive time, strictly increasing per receiver: the readings' timestamps derive from it
    retain: bool
    topic: bytes
    payload: bytes


class CorruptRow(ValueError):
    """A raw row whose body cannot be split into messages (never written so: a damaged file)."""


def pack(messages: Iterable[RawMessage]) -> bytes:
    parts: list[bytes] = []
    header = _HEADER.pack
    for recv_ns, retain, topic, payload in messages:
        parts += (header(recv_ns, 1 if retain else 0, len(topic), len(payload)), topic, payload)
    return b"".join(parts)


def unpack(body: bytes) -> list[RawMessage]:
    messages: list[RawMessage] = []
    offset, end, size = 0, len(body), _HEADER.size
    unpack_from = _HEADER.unpack_from
    try:
        while offset < end:
            recv_ns, retain, topic_len, payload_len = unpack_from(body, offset)
            offset += size
            topic = body[offset:offset + topic_len]
            payload = body[offset + topic_len:offset + topic_len + payload_len]
            offset += topic_len + payload_len
            if offset > end:
                raise CorruptRow(f"message runs {offset - end} bytes past the row")
            messages.append(RawMessage(recv_ns, bool(retain), topic, payload))
    except struct.error as error:
        raise CorruptRow(str(error)) from None
    return messages


class RawSpool:
    """One connection behind a lock. The receiver appends and releases; the service only reads (`RawReader`)."""

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (uuid.uuid4().hex,))
        self.epoch: str = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
        self._ledger = MessageLedger(self._db)
        self._released = 0

    def append(self, messages: Sequence[RawMessage], message_keys: Sequence[bytes] = (), release: int = 0) -> int:
        """Commit the messages as one row with their keys (and drop rows up to `release`); returns the row id."""
        body = pack(messages)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row_id = self._db.execute("INSERT INTO raw (n, body) VALUES (?, ?)", (len(messages), body)).lastrowid
                keys_row = self._ledger.insert(message_keys) if message_keys else None
                if release > self._released:
                    self._db.execute("DELETE FROM raw WHERE id <= ?", (release,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if release > self._released:
                self._released = release
            if keys_row is not None:
                self._ledger.remember(keys_row, message_keys)
        assert row_id is not None
        return row_id

    def seen(self, message_keys: Iterable[bytes]) -> set[bytes]:
        with self._lock:
            return self._ledger.seen(message_keys)

    def preload_keys(self, keys: Iterable[bytes]) -> None:
        with self._lock:
            self._ledger.preload(keys)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RawSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RawReader:
    """The service's read-only view of a raw spool (WAL: reading never blocks the receiver's commits)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(Path(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row is None:
            raise ValueError(f"{path} is not a raw MQTT spool (no epoch)")
        self.epoch: str = row[0]

    def read_after(self, after: int, max_rows: int, max_messages: int | None = None) -> list[tuple[int, bytes]]:
        """Rows with id > `after`, oldest first, as (id, packed body); at least one row, and no more rows once
        they hold `max_messages` (a receiver that fell behind writes rows of thousands of messages)."""
        rows: list[tuple[int, bytes]] = []
        messages = 0
        cursor = self._db.execute("SELECT id, n, body FROM raw WHERE id > ? ORDER BY id LIMIT ?", (after, max_rows))
        try:
            for row_id, count, body in cursor:
                rows.append((int(row_id), bytes(body)))
                messages += int(count)
                if max_messages is not None and messages >= max_messages:
                    break
        finally:
            cursor.close()  # an unfinished statement would hold a read transaction open
        return rows

    def waiting(self, after: int) -> int:
        """Messages committed by the receiver and not yet mapped."""
        return int(self._db.execute("SELECT COALESCE(SUM(n), 0) FROM raw WHERE id > ?", (after,)).fetchone()[0])

    def close(self) -> None:
        self._db.close()
