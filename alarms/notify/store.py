"""The notifier's journal: open pages, the outbox, deliveries and every attempt (SQLite, WAL).

A page's progress and the notices it produced are written in one transaction,
and notices become deliveries in another, so a restart finds each page either
not yet sent or queued for sending: never lost, never sent twice. A delivery
that was being sent when the process died is sent again: the one case where a
person may get a message twice, which beats a page nobody got.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..model import AlarmEvent, AlarmState, EventKind, Priority
from .model import Delivery, Message, NoticeKind
from .planner import Notice, Page

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, due REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    person TEXT NOT NULL,
    kind TEXT NOT NULL,
    tickets TEXT NOT NULL,
    contact INTEGER NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    message TEXT NOT NULL,
    last_status TEXT NOT NULL DEFAULT '',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (status, next_attempt);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery INTEGER NOT NULL,
    ts REAL NOT NULL,
    person TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    tickets TEXT NOT NULL,
    ok INTEGER NOT NULL,
    status TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_ts ON attempts (ts);
CREATE TABLE IF NOT EXISTS replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    via TEXT NOT NULL,
    sender TEXT NOT NULL,
    person TEXT NOT NULL,
    ticket INTEGER,
    outcome TEXT NOT NULL,
    text TEXT NOT NULL
);
"""
OPEN = ("pending", "sending")


def event_to_dict(event: AlarmEvent) -> dict[str, Any]:
    return asdict(event)


def event_from_dict(data: dict[str, Any]) -> AlarmEvent:
    data = dict(data)
    data["kind"] = EventKind(data["kind"])
    data["state"] = AlarmState(data["state"])
    data["previous"] = AlarmState(data["previous"])
    data["priority"] = Priority(data["priority"])
    return AlarmEvent(**data)


def page_to_json(page: Page) -> str:
    data = asdict(page)
    data["event"] = event_to_dict(page.event) if page.event else None
    return json.dumps(data, separators=(",", ":"))


def page_from_json(text: str) -> Page:
    data = json.loads(text)
    event = data.pop("event")
    return Page(**data, event=event_from_dict(event) if event else None)


def notice_to_json(notice: Notice) -> str:
    return json.dumps({"kind": notice.kind.value, "people": list(notice.people),
                       "events": [event_to_dict(e) for e in notice.events], "route": notice.route,
                       "group": notice.group, "level": notice.level}, separators=(",", ":"))


def notice_from_json(text: str) -> Notice:
    data = json.loads(text)
    return Notice(NoticeKind(data["kind"]), tuple(data["people"]), tuple(event_from_dict(e) for e in data["events"]),
                  data["route"], data["group"], int(data["level"]))


def message_to_json(message: Message) -> str:
    data = asdict(message)
    data["kind"] = message.kind.value
    data["priority"] = message.priority.value
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def message_from_json(text: str) -> Message:
    data = json.loads(text)
    data["kind"] = NoticeKind(data["kind"])
    data["priority"] = Priority(data["priority"])
    data["tickets"] = tuple(data["tickets"])
    return Message(**data)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    person: str
    kind: str
    tickets: str
    contact: int
    channel: str
    address: str
    status: str
    attempts: int
    next_attempt: float
    message: Message


@dataclass(frozen=True, slots=True)
class NewDelivery:
    person: str
    contact: int
    channel: str
    address: str
    message: Message


class NotifyStore:
    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """`readonly`: for reports and the CLI, beside a running notifier (the file must exist)."""
        self.path = Path(path)
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=5000")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def _transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        ids = []
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    cursor.execute(sql, params)
                    ids.append(int(cursor.lastrowid or 0))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return ids

    # --- pages and the outbox -----------------------------------------------------------------------------------

    def save(self, pages: Iterable[Page], removed: Iterable[str], notices: Iterable[tuple[float, Notice]]) -> None:
        """The planner's step: pages changed or ended and the notices it produced, in one commit."""
        statements: list[tuple[str, Sequence[Any]]] = [
            ("INSERT OR REPLACE INTO pages (key, data) VALUES (?, ?)", (p.key, page_to_json(p))) for p in pages]
        statements += [("DELETE FROM pages WHERE key = ?", (key,)) for key in removed]
        statements += [("INSERT INTO outbox (due, data) VALUES (?, ?)", (due, notice_to_json(n)))
                       for due, n in notices]
        if statements:
            self._transaction(statements)

    def pages(self) -> list[Page]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM pages").fetchall()
        return [page_from_json(row["data"]) for row in rows]

    def postpone(self, outbox_id: int, due: float) -> None:
        self._transaction([("UPDATE outbox SET due = ? WHERE id = ?", (due, outbox_id))])

    def outbox(self) -> list[tuple[int, float, Notice]]:
        with self._lock:
            rows = self._db.execute("SELECT id, due, data FROM outbox ORDER BY id").fetchall()
        return [(row["id"], row["due"], notice_from_json(row["data"])) for row in rows]

    def dispatch(self, outbox_ids: Sequence[int], deliveries: Sequence[NewDelivery], now: float) -> list[int]:
        """Notices leave the outbox as deliveries, in one commit."""
        statements: list[tuple[str, Sequence[Any]]] = [
            ("INSERT INTO deliveries (created, person, kind, tickets, contact, channel, address, status, "
             "next_attempt, message) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
             (now, d.person, d.message.kind.value, ",".join(map(str, d.message.tickets)), d.contact, d.channel,
              d.address, now, message_to_json(d.message))) for d in deliveries]
        statements += [("DELETE FROM outbox WHERE id = ?", (i,)) for i in outbox_ids]
        ids = self._transaction(statements)
        return ids[:len(deliveries)]

    # --- deliveries ---------------------------------------------------------------------------------------------

    def due(self, now: float, limit: int = 100) -> list[DeliveryRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt "
                "LIMIT ?", (now, limit)).fetchall()
        return [self._row(row) for row in rows]

    def next_attempt(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT min(next_attempt) FROM deliveries WHERE status = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sending(self, delivery_id: int) -> None:
        self._transaction([("UPDATE deliveries SET status = 'sending' WHERE id = ?", (delivery_id,))])

    def record(self, row: DeliveryRow, outcome: Delivery, now: float, *, status: str, next_attempt: float | None,
               contact: tuple[int, str, str] | None = None) -> None:
        """One attempt and where the delivery goes next (sent, retry later, next contact, gave up)."""
        statements: list[tuple[str, Sequence[Any]]] = [(
            "INSERT INTO attempts (delivery, ts, person, channel, address, tickets, ok, status, response) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, now, row.person, row.channel, row.address, row.tickets, int(outcome.ok), outcome.status,
             outcome.response[:500]))]
        if contact is not None:
            statements.append(("UPDATE deliveries SET contact = ?, channel = ?, address = ?, attempts = 0 "
                               "WHERE id = ?", (*contact, row.id)))
        done = now if status in ("sent", "failed") else None
        statements.append(("UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt = ?, "
                           "last_status = ?, done_at = ? WHERE id = ?",
                           (status, 0 if contact else 1, next_attempt if next_attempt is not None else now,
                            outcome.status, done, row.id)))
        self._transaction(statements)

    def resume(self) -> int:
        """At start: a delivery caught mid-send is sent again (at least once beats never)."""
        with self._lock:
            cursor = self._db.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'sending'")
            return cursor.rowcount

    def attempts(self, *, since: float = 0.0, limit: int = 10_000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM attempts WHERE ts >= ? ORDER BY id LIMIT ?",
                                    (since, limit)).fetchall()
        return [dict(row) for row in rows]

    def deliveries(self, *, limit: int = 10_000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, created, person, kind, tickets, channel, address, status, attempts, "
                                    "last_status, done_at FROM deliveries ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [dict(row) for row in rows]

    # --- replies ------------------------------------------------------------------------------------------------

    def reply(self, now: float, via: str, sender: str, person: str, ticket: int | None, outcome: str,
              text: str) -> None:
        self._transaction([("INSERT INTO replies (ts, via, sender, person, ticket, outcome, text) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?)", (now, via, sender, person, ticket, outcome, text[:500]))])

    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute("SELECT * FROM replies ORDER BY id").fetchall()]

    def _row(self, row: sqlite3.Row) -> DeliveryRow:
        return DeliveryRow(row["id"], row["person"], row["kind"], row["tickets"], row["contact"], row["channel"],
                           row["address"], row["status"], row["attempts"], row["next_attempt"],
                           message_from_json(row["message"]))

    def close(self) -> None:
        with self._lock:
            self._db.close()
