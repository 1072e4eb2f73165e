"""Commands from another process (the CLI, `stackwatch api`) to the running service, in the service's journal.

The alarm and control journals each carry this table: the other process
inserts a command and polls for its outcome; the service takes the pending
commands, applies them and writes each outcome. Taking marks a command in the
same transaction that reads it, so a caller that gives up and withdraws it
cannot race a service that is applying it: either the service took it (and its
outcome will come) or it is withdrawn (and no service will ever apply it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    actor TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT NOT NULL DEFAULT '',
    done_at REAL
);
"""

TAKEN_WAIT = 30.0  # s a caller waits for the outcome of a command a service took before it calls it lost

WITHDRAWN = "withdrawn"
LOST = "lost"


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    at: float
    action: str
    target: str  # an alarm key or occurrence number; an actuator, loop or room
    actor: str
    args: dict[str, Any]


def create_schema(db: sqlite3.Connection) -> None:
    """Create the table; a control journal made before the table had `done_at` gets the column."""
    db.executescript(SCHEMA)
    if "done_at" not in {row[1] for row in db.execute("PRAGMA table_info(commands)")}:
        db.execute("ALTER TABLE commands ADD COLUMN done_at REAL")


class CommandQueue:
    """Over a journal's connection and lock (the journal owns both)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def submit(self, at: float, action: str, target: str, actor: str, args: dict[str, Any]) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO commands (at, action, target, actor, args) VALUES (?, ?, ?, ?, ?)",
                                      (at, action, target, actor, json.dumps(args)))
            return int(cursor.lastrowid or 0)

    def take_pending(self) -> list[Command]:
        """The commands waiting, each marked taken in the same transaction (a withdrawal then cannot race it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._db.execute("SELECT id, at, action, target, actor, args FROM commands "
                                         "WHERE status = 'pending' ORDER BY id").fetchall()
                self._db.executemany("UPDATE commands SET status = 'taken' WHERE id = ?", [(r[0],) for r in found])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [Command(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in found]

    def finish(self, command_id: int, status: str, result: str, at: float) -> None:
        with self._lock:
            self._db.execute("UPDATE commands SET status = ?, result = ?, done_at = ? "
                             "WHERE id = ? AND status = 'taken'", (status, result, at, command_id))

    def outcome(self, command_id: int) -> tuple[str, str] | None:
        """(status, result) once the service finished it or it was withdrawn; None while pending or taken."""
        with self._lock:
            found = self._db.execute("SELECT status, result FROM commands WHERE id = ?", (command_id,)).fetchone()
        if found is None:
            return LOST, f"no command {command_id}"
        if found[0] in ("pending", "taken"):
            return None
        return str(found[0]), str(found[1])

    def withdraw(self, command_id: int, at: float) -> bool:
        """Withdraw a command no service took; False if one took it meanwhile (its outcome will come)."""
        with self._lock:
            cursor = self._db.execute("UPDATE commands SET status = 'withdrawn', done_at = ? WHERE id = ? AND "
                                      "status = 'pending'", (at, command_id))
            return cursor.rowcount == 1

    def check(self, command_id: int, waited: float, wait: float, at: float) -> tuple[str, str] | None:
        """One look for a caller polling a command it submitted `waited` seconds ago; None: look again.

        The outcome once the service finished it. (WITHDRAWN, "") once `wait`
        seconds passed and no service had taken it. (LOST, ...) when a service
        took it but wrote no outcome within TAKEN_WAIT more seconds: it stopped
        while applying it, so the caller must look at what changed.
        """
        found = self.outcome(command_id)
        if found is not None or waited < wait:
            return found
        if self.withdraw(command_id, at):
            return WITHDRAWN, ""
        if waited >= wait + TAKEN_WAIT:
            return LOST, f"the service took the command but gave no outcome within {wait + TAKEN_WAIT:g} s"
        return None
