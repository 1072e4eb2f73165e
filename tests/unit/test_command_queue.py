"""The command table the alarm and control journals share: taking, finishing, withdrawing, giving up."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from stackwatch.command_queue import LOST, TAKEN_WAIT, WITHDRAWN, Command, CommandQueue, create_schema


def queue_at(path: Path) -> CommandQueue:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    create_schema(db)
    return CommandQueue(db, threading.Lock())


def test_a_command_is_taken_once_and_its_outcome_read_by_the_caller(tmp_path: Path) -> None:
    queue = queue_at(tmp_path / "j.db")
    command = queue.submit(100.0, "ack", "th1.rh:high", "zhang.min", {"comment": "checked"})
    assert queue.outcome(command) is None
    assert queue.take_pending() == [Command(command, 100.0, "ack", "th1.rh:high", "zhang.min", {"comment": "checked"})]
    assert queue.take_pending() == []
    assert queue.check(command, waited=0.1, wait=5.0, at=101.0) is None
    queue.finish(command, "done", "acknowledged", 101.0)
    assert queue.outcome(command) == ("done", "acknowledged")


def test_a_command_nobody_took_is_withdrawn_and_never_taken_later(tmp_path: Path) -> None:
    queue = queue_at(tmp_path / "j.db")
    command = queue.submit(100.0, "override", "dh1", "li.na", {})
    assert queue.check(command, waited=1.0, wait=5.0, at=101.0) is None
    assert queue.check(command, waited=5.0, wait=5.0, at=105.0) == (WITHDRAWN, "")
    assert queue.take_pending() == []


def test_a_taken_command_is_not_withdrawn_and_is_called_lost_when_no_outcome_comes(tmp_path: Path) -> None:
    queue = queue_at(tmp_path / "j.db")
    command = queue.submit(100.0, "reset", "room1", "li.na", {})
    queue.take_pending()
    assert not queue.withdraw(command, 105.0)
    assert queue.check(command, waited=5.0, wait=5.0, at=105.0) is None  # its outcome will come
    status, result = queue.check(command, waited=5.0 + TAKEN_WAIT, wait=5.0, at=140.0) or ("", "")
    assert status == LOST and "gave no outcome" in result


def test_a_late_outcome_does_not_overwrite_a_withdrawal(tmp_path: Path) -> None:
    queue = queue_at(tmp_path / "j.db")
    command = queue.submit(100.0, "ack", "a", "b", {})
    assert queue.withdraw(command, 105.0)
    queue.finish(command, "done", "too late", 106.0)
    assert queue.outcome(command) == (WITHDRAWN, "")


def test_a_control_journal_made_before_done_at_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "control.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE commands (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL, "
                "target TEXT NOT NULL, actor TEXT NOT NULL, args TEXT NOT NULL, status TEXT NOT NULL DEFAULT "
                "'pending', result TEXT NOT NULL DEFAULT '')")
    old.execute("INSERT INTO commands (at, action, target, actor, args) VALUES (1, 'reset', 'r', 'x', '{}')")
    old.commit()
    old.close()
    queue = queue_at(path)
    assert [command.action for command in queue.take_pending()] == ["reset"]
    queue.finish(1, "done", "{}", 2.0)
    assert queue.outcome(1) == ("done", "{}")
