"""The control journal (SQLite, WAL): every command with its reason and outcome, and the state a restart needs.

A command is written before it goes on the wire, and its outcome (verified,
mismatch, write error, failed) when known, so an inspector can replay what the
service did to a room and why. Overrides, interlock latches, the units' last
switching times (compressor protection) and the set-point walk survive a
restart: a fire latch must not be forgotten by a reboot.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwatch.command_queue import CommandQueue, create_schema

from .controller import Override

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    room TEXT NOT NULL,
    target TEXT NOT NULL,
    value REAL,
    source TEXT NOT NULL,
    who TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_by_ts ON log (ts);
CREATE INDEX IF NOT EXISTS log_by_target ON log (target, id);
CREATE TABLE IF NOT EXISTS overrides (
    target TEXT PRIMARY KEY, value REAL, who TEXT NOT NULL, reason TEXT NOT NULL, since REAL NOT NULL,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS room_state (room TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL, data TEXT NOT NULL);
"""

# What a log row records.
KINDS = ("command", "verified", "mismatch", "write_error", "failed", "recovered", "override", "override_end",
         "interlock", "reset", "input")


@dataclass(frozen=True, slots=True)
class LogRow:
    id: int
    ts: float
    kind: str
    room: str
    target: str
    value: float | None
    source: str
    who: str
    reason: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "kind": self.kind, "room": self.room, "target": self.target,
                "value": self.value, "source": self.source, "who": self.who, "reason": self.reason,
                "detail": self.detail}


class ControlJournal:
    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10)
        self._lock = threading.Lock()
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            create_schema(self._db)
        self.commands = CommandQueue(self._db, self._lock)  # operators' actions through `stackwatch api`

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def log(self, ts: float, kind: str, room: str, target: str, value: float | None = None, source: str = "",
            who: str = "", reason: str = "", detail: dict[str, Any] | None = None) -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown control log kind {kind!r}")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO log (ts, kind, room, target, value, source, who, reason, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ts, kind, room, target, value, source, who, reason, json.dumps(detail or {}, sort_keys=True)))
            return int(cursor.lastrowid or 0)

    def rows(self, since: float | None = None, until: float | None = None, room: str | None = None,
             target: str | None = None, kinds: Sequence[str] = (), limit: int = 1000) -> list[LogRow]:
        """Newest last; `limit` keeps the newest rows."""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (("ts >= ?", since), ("ts < ?", until), ("room = ?", room), ("target = ?", target)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if kinds:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args.extend(kinds)
        sql = "SELECT id, ts, kind, room, target, value, source, who, reason, detail FROM log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            found = self._db.execute(sql, args).fetchall()
        return [LogRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9])) for r in reversed(found)]

    # --- overrides ------------------------------------------------------------------------------------------

    def save_override(self, override: Override) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?, ?)",
                             (override.target, override.value, override.who, override.reason, override.since,
                              override.until))

    def drop_override(self, target: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM overrides WHERE target = ?", (target,))

    def overrides(self) -> dict[str, Override]:
        with self._lock:
            found = self._db.execute("SELECT target, value, who, reason, since, until FROM overrides").fetchall()
        return {row[0]: Override(*row) for row in found}

    # --- room state -----------------------------------------------------------------------------------------

    def save_room(self, room: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO room_state VALUES (?, ?)", (room, json.dumps(data)))

    def rooms(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            found = self._db.execute("SELECT room, data FROM room_state").fetchall()
        return {room: json.loads(data) for room, data in found}

    # --- what the service last saw, for `stackwatch api` -----------------------------------------------------

    def save_snapshot(self, at: float, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?)", (at, json.dumps(data)))

    def snapshot(self) -> tuple[float, dict[str, Any]] | None:
        with self._lock:
            found = self._db.execute("SELECT at, data FROM snapshot WHERE id = 1").fetchone()
        return None if found is None else (float(found[0]), json.loads(found[1]))
