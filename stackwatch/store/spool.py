"""The durable queue between accepting a reading and InfluxDB acknowledging it.

One SQLite row per `append` call (a whole batch, newline-joined), so a poll
cycle or an MQTT message costs one INSERT and one commit. WAL with
`synchronous=NORMAL` survives a killed process (a committed row is in the WAL
before `append` returns); `FULL` (config `fsync`) also survives power loss.

Rows leave only through `delete` (InfluxDB acknowledged them) or `reject`
(InfluxDB refused some lines for good; those move to the `rejected` table, where
inspectors can list them). Line protocol allows a raw newline inside a quoted
string field, so a batch whose lines contain one is stored as a JSON list
instead: line boundaries are never guessed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..clock import Clock, SystemClock
from ..config.services import SpoolConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    n INTEGER NOT NULL,
    framing INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS message_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    keys BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    upto INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    line TEXT NOT NULL
);
"""
_NEWLINES = 0  # body is the lines joined by "\n"
_JSON = 1  # body is a JSON list (some line holds a raw newline)
_DELETE_CHUNK = 500
LEDGER_KEEP = 100_000  # message keys remembered: far more than a broker keeps in flight for one client
KEY_SIZE = 16


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    id: int
    lines: list[str]


@dataclass(frozen=True, slots=True)
class RejectedLine:
    id: int
    batch_id: int
    at: float
    reason: str
    line: str


def _frame(lines: Sequence[str]) -> tuple[int, str]:
    body = "\n".join(lines)
    if body.count("\n") == len(lines) - 1:
        return _NEWLINES, body
    return _JSON, json.dumps(list(lines), ensure_ascii=False)


def _unframe(framing: int, body: str) -> list[str]:
    if framing == _NEWLINES:
        return body.split("\n")
    lines = json.loads(body)
    assert isinstance(lines, list)
    return [str(line) for line in lines]


class MessageLedger:
    """The newest LEDGER_KEEP message keys of a SQLite file's `message_keys` table, looked up in memory.

    Appended as one row of concatenated keys per commit (sequential pages, cheap); a UNIQUE index of random
    keys cost 300 µs per commit. Not locked: the owner calls it under its own lock, inside its transaction.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._keys: set[bytes] = set()
        self._rows: deque[tuple[int, tuple[bytes, ...]]] = deque()  # (row id, its keys), oldest first
        self._size = 0
        for row_id, blob in db.execute("SELECT id, keys FROM message_keys ORDER BY id"):
            self._remember(row_id, [bytes(blob[i:i + KEY_SIZE]) for i in range(0, len(blob), KEY_SIZE)])

    def insert(self, message_keys: Sequence[bytes]) -> int:
        """Write the keys' row (the caller's transaction commits it, then calls `remember`)."""
        if any(len(key) != KEY_SIZE for key in message_keys):
            raise ValueError(f"message keys are {KEY_SIZE} bytes")
        row_id = self._db.execute("INSERT INTO message_keys (keys) VALUES (?)", (b"".join(message_keys),)).lastrowid
        assert row_id is not None
        return row_id

    def remember(self, row_id: int, keys: Sequence[bytes]) -> None:
        self._remember(row_id, keys)

    def preload(self, keys: Iterable[bytes]) -> None:
        """Keys committed elsewhere (the other MQTT mode's file), known but never written or expired here."""
        self._keys.update(keys)

    def seen(self, message_keys: Iterable[bytes]) -> set[bytes]:
        return {key for key in message_keys if key in self._keys}

    def _remember(self, row_id: int, keys: Sequence[bytes]) -> None:
        """Add a committed row of keys; forget the oldest rows beyond LEDGER_KEEP."""
        self._keys.update(keys)
        self._rows.append((row_id, tuple(keys)))
        self._size += len(keys)
        dropped = None
        while self._size - len(self._rows[0][1]) >= LEDGER_KEEP:
            dropped, old = self._rows.popleft()
            self._keys.difference_update(old)
            self._size -= len(old)
        if dropped is not None:
            self._db.execute("DELETE FROM message_keys WHERE id <= ?", (dropped,))


def ledger_keys(path: str | Path) -> list[bytes]:
    """The message keys in another SQLite file's ledger, read-only; [] when it has none (or does not exist).

    The MQTT modes keep their ledgers in different files (`thread`: the reading
    spool, `process`: the raw spool): after a switch, the new mode loads the old
    one's keys, so a redelivery of a message committed under the old mode is
    still recognised.
    """
    if not Path(path).exists():
        return []
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT keys FROM message_keys ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no such table
        return []
    finally:
        db.close()
    return [bytes(blob[i:i + KEY_SIZE]) for (blob,) in rows for i in range(0, len(blob), KEY_SIZE)]


class Spool:
    """Thread-safe: one connection behind a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: str | Path, *, fsync: bool = False, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        # The only full scans: once at open, so that depth() is a counter afterwards.
        self._depth = int(self._db.execute("SELECT COALESCE(SUM(n), 0) FROM spool").fetchone()[0])
        self._rejected = int(self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])
        self._ledger = MessageLedger(self._db)  # only the newest LEDGER_KEEP keys, on disk and in memory

    @classmethod
    def from_config(cls, config: SpoolConfig, state_dir: str | Path, clock: Clock | None = None) -> Spool:
        path = Path(config.path)
        return cls(path if path.is_absolute() else Path(state_dir) / path, fsync=config.fsync, clock=clock)

    def append(self, lines: Sequence[str], message_keys: Sequence[bytes] = (),
               mark: tuple[str, int] | None = None) -> int | None:
        """Commit the batch as one row; returns its id once committed (None when there are no lines).

        `message_keys` (one per MQTT message the lines came from) are recorded in
        the same transaction, so that a message the broker redelivers after a crash
        is known to be in the spool already (`seen`): exactly once, not at least once.
        `mark` (name, position) is set in the same transaction too: the MQTT receiver
        process's raw messages up to that position have become these lines (`mark`).
        """
        if not lines and not message_keys and mark is None:
            return None
        framing, body = _frame(lines) if lines else (_NEWLINES, "")
        row_id: int | None = None
        keys_row: int | None = None
        atomic = bool(message_keys) or mark is not None
        with self._lock:
            if atomic:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                if lines:
                    cursor = self._db.execute("INSERT INTO spool (at, n, framing, body) VALUES (?, ?, ?, ?)",
                                              (self._clock.now(), len(lines), framing, body))
                    row_id = cursor.lastrowid
                if message_keys:
                    keys_row = self._ledger.insert(message_keys)
                if mark is not None:
                    self._db.execute("INSERT INTO marks (name, upto) VALUES (?, ?) "
                                     "ON CONFLICT (name) DO UPDATE SET upto = excluded.upto", mark)
                if atomic:
                    self._db.execute("COMMIT")
            except BaseException:
                if atomic:
                    self._db.execute("ROLLBACK")
                raise
            self._depth += len(lines)
            if keys_row is not None:
                self._ledger.remember(keys_row, message_keys)
        return row_id

    def mark(self, name: str) -> int:
        """The position last committed with `append(..., mark=(name, position))`; 0 if never."""
        with self._lock:
            row = self._db.execute("SELECT upto FROM marks WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def seen(self, message_keys: Iterable[bytes]) -> set[bytes]:
        """The keys among these whose messages are already in the spool (or were written from it)."""
        with self._lock:
            return self._ledger.seen(message_keys)

    def preload_keys(self, keys: Iterable[bytes]) -> None:
        """Also count these as seen (keys from another ledger, see `ledger_keys`)."""
        with self._lock:
            self._ledger.preload(keys)

    def peek(self, max_lines: int) -> list[SpoolBatch]:
        """Oldest rows first, as many as fit in `max_lines` but always at least one (the caller may split it)."""
        batches: list[SpoolBatch] = []
        total = 0
        with self._lock:
            cursor = self._db.execute("SELECT id, n, framing, body FROM spool ORDER BY id")
            try:
                for row_id, n, framing, body in cursor:
                    if batches and total + n > max_lines:
                        break
                    batches.append(SpoolBatch(row_id, _unframe(framing, body)))
                    total += n
                    if total >= max_lines:
                        break
            finally:
                cursor.close()
        return batches

    def delete(self, ids: Iterable[int]) -> int:
        """Drop acknowledged rows; returns how many lines left the spool. Unknown ids are ignored."""
        id_list = list(ids)
        if not id_list:
            return 0
        removed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(id_list), _DELETE_CHUNK):
                    chunk = id_list[start:start + _DELETE_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"DELETE FROM spool WHERE id IN ({marks}) RETURNING n", chunk).fetchall()
                    removed += sum(n for (n,) in rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth -= removed
        return removed

    def reject(self, id: int, lines: Sequence[str], reason: str) -> None:
        """Move `lines` of row `id` to `rejected`, in one transaction, so a crash never re-sends or loses them."""
        if not lines:
            return
        now = self._clock.now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._remove_lines(id, lines)
                self._db.executemany("INSERT INTO rejected (batch_id, at, reason, line) VALUES (?, ?, ?, ?)",
                                     [(id, now, reason, line) for line in lines])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth -= removed
            self._rejected += len(lines)

    def _remove_lines(self, row_id: int, lines: Sequence[str]) -> int:
        row = self._db.execute("SELECT framing, body FROM spool WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            return 0
        remaining: list[str] = []
        to_remove = Counter(lines)
        stored = _unframe(row[0], row[1])
        for line in stored:
            if to_remove[line] > 0:
                to_remove[line] -= 1
            else:
                remaining.append(line)
        if not remaining:
            self._db.execute("DELETE FROM spool WHERE id = ?", (row_id,))
        else:
            framing, body = _frame(remaining)
            self._db.execute("UPDATE spool SET n = ?, framing = ?, body = ? WHERE id = ?",
                             (len(remaining), framing, body, row_id))
        return len(stored) - len(remaining)

    def depth(self) -> int:
        """Lines waiting for InfluxDB."""
        return self._depth

    def oldest_age(self) -> float:
        """Seconds the oldest waiting row has waited (0 when empty): the backlog's age, for /readyz."""
        with self._lock:
            row = self._db.execute("SELECT at FROM spool ORDER BY id LIMIT 1").fetchone()
        return 0.0 if row is None else max(0.0, self._clock.now() - float(row[0]))

    def rejected_count(self) -> int:
        return self._rejected

    def rejected(self, limit: int = 100, after_id: int = 0) -> list[RejectedLine]:
        """Rejected lines in order, for inspectors: page with `after_id` = the last id seen."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, batch_id, at, reason, line FROM rejected WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit)).fetchall()
        return [RejectedLine(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
