"""The alarm journal: SQLite (WAL), the record of truth for every alarm change.

Events, the resulting alarm states and the rules' timer snapshots are written
in one transaction *before* the change takes effect in memory, so a restart
(even after SIGKILL) resumes exactly: active alarms with their original start
times, acknowledgements, shelves, and half-run on-delays and 48-hour
conditions.

The `commands` table (`stackwatch.command_queue`) is how `stackwatch alarms
ack/shelve` and `stackwatch api` reach the running service without a network
API: they insert a command, the engine applies it on its next tick and writes
the outcome; they wait for that outcome.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stackwatch.command_queue import CommandQueue, create_schema

from .model import AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    alarm TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    previous TEXT NOT NULL,
    priority TEXT NOT NULL,
    cause TEXT NOT NULL,
    room TEXT,
    building TEXT,
    site TEXT NOT NULL,
    source TEXT NOT NULL,
    value REAL,
    limit_value REAL,
    message TEXT NOT NULL,
    actor TEXT NOT NULL,
    comment TEXT NOT NULL,
    until REAL
);
CREATE INDEX IF NOT EXISTS events_by_alarm ON events (alarm, seq);
CREATE INDEX IF NOT EXISTS events_by_occurrence ON events (occurrence);
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rule_state (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_EVENT_COLUMNS = ("ts", "alarm", "occurrence", "kind", "state", "previous", "priority", "cause", "room", "building",
                  "site", "source", "value", "limit_value", "message", "actor", "comment", "until")


def status_to_json(status: AlarmStatus) -> str:
    return json.dumps(asdict(status), separators=(",", ":"))


def status_from_json(text: str) -> AlarmStatus:
    data = json.loads(text)
    known = {name: data[name] for name in AlarmStatus.__dataclass_fields__ if name in data}
    status = AlarmStatus(**known)
    status.state = AlarmState(status.state)
    status.priority = Priority(status.priority)
    return status


def _event_row(event: AlarmEvent) -> tuple[Any, ...]:
    return (event.ts, event.alarm, event.occurrence, event.kind.value, event.state.value, event.previous.value,
            event.priority.value, event.cause, event.room, event.building, event.site, event.source, event.value,
            event.limit, event.message, event.actor, event.comment, event.until)


def _event_from_row(row: sqlite3.Row) -> AlarmEvent:
    return AlarmEvent(
        seq=row["seq"], ts=row["ts"], alarm=row["alarm"], occurrence=row["occurrence"], kind=EventKind(row["kind"]),
        state=AlarmState(row["state"]), previous=AlarmState(row["previous"]), priority=Priority(row["priority"]),
        cause=row["cause"], room=row["room"], building=row["building"], site=row["site"], source=row["source"],
        value=row["value"], limit=row["limit_value"], message=row["message"], actor=row["actor"],
        comment=row["comment"], until=row["until"],
    )


class Journal:
    """Thread-safe: the engine writes from its thread, the API and CLI read from theirs."""

    def __init__(self, path: str | Path, *, fsync: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            create_schema(self._db)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self.commands = CommandQueue(self._db, self._lock)  # `stackwatch alarms ack/shelve`, `stackwatch api`

    # --- the engine's writes ------------------------------------------------------------------------------------

    def commit(self, events: Sequence[AlarmEvent], statuses: Iterable[AlarmStatus],
               rule_states: Iterable[tuple[str, dict[str, Any] | None]] = (), next_occurrence: int | None = None,
               ) -> list[AlarmEvent]:
        """Write events, the states they lead to and timer snapshots in one transaction; events get their `seq`."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                numbered = []
                placeholders = ",".join("?" * len(_EVENT_COLUMNS))
                for event in events:
                    cursor.execute(f"INSERT INTO events ({','.join(_EVENT_COLUMNS)}) VALUES ({placeholders})",
                                   _event_row(event))
                    numbered.append(replace(event, seq=int(cursor.lastrowid or 0)))
                cursor.executemany("INSERT OR REPLACE INTO status (key, data) VALUES (?, ?)",
                                   [(s.key, status_to_json(s)) for s in statuses])
                for key, snapshot in rule_states:
                    if snapshot is None:
                        cursor.execute("DELETE FROM rule_state WHERE key = ?", (key,))
                    else:
                        cursor.execute("INSERT OR REPLACE INTO rule_state (key, data) VALUES (?, ?)",
                                       (key, json.dumps(snapshot, separators=(",", ":"))))
                if next_occurrence is not None:
                    cursor.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('next_occurrence', ?)",
                                   (str(next_occurrence),))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return numbered

    # --- reads --------------------------------------------------------------------------------------------------

    def statuses(self) -> dict[str, AlarmStatus]:
        with self._lock:
            rows = self._db.execute("SELECT key, data FROM status").fetchall()
        return {row["key"]: status_from_json(row["data"]) for row in rows}

    def rule_states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT key, data FROM rule_state").fetchall()
        return {row["key"]: json.loads(row["data"]) for row in rows}

    def next_occurrence(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'next_occurrence'").fetchone()
            top = self._db.execute("SELECT max(occurrence) FROM events").fetchone()[0]
        return max(int(row["value"]) if row else 1, (top or 0) + 1)

    def events(self, *, alarm: str | None = None, occurrence: int | None = None, since: float | None = None,
               until: float | None = None, after_seq: int = 0, limit: int = 1000,
               kinds: Sequence[EventKind] | None = None) -> list[AlarmEvent]:
        clauses: list[str] = ["seq > ?"]
        params: list[object] = [after_seq]
        for column, value, op in (("alarm", alarm, "="), ("occurrence", occurrence, "="), ("ts", since, ">="),
                                  ("ts", until, "<")):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if kinds is not None:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += [kind.value for kind in kinds]
        sql = f"SELECT * FROM events WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [_event_from_row(row) for row in rows]

    def latest_before(self, ts: float, kinds: Sequence[EventKind] | None = None) -> list[AlarmEvent]:
        """Each alarm's last event (of `kinds`, default any) before `ts`: how things stood when a period began."""
        where = "ts < ?"
        params: list[object] = [ts]
        if kinds is not None:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += [kind.value for kind in kinds]
        sql = (f"SELECT * FROM events WHERE seq IN (SELECT max(seq) FROM events WHERE {where} GROUP BY alarm) "
               "ORDER BY seq")
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_event_from_row(row) for row in rows]

    def count_events(self, kind: EventKind | None = None) -> int:
        with self._lock:
            if kind is None:
                return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM events WHERE kind = ?", (kind.value,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
