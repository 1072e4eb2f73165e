"""The audit trail: append-only and hash-chained, so that an inspector can trust that acknowledgements,
shelving, control commands, logins and user or config changes were not altered or removed afterwards.

Each row carries the SHA-256 of its own content and of the row before it
(`prev`), so editing or deleting any row breaks every link after it. Deleting
rows at the *end* leaves a shorter chain that is still valid, so the newest
row's number and hash are also kept outside the table, in the head anchor
`<database>.head` (`{"hash":"…","seq":N}`), rewritten atomically after each
append; `verify` compares the table's last row with it.

Canonical form (re-verifiable with any tool)
--------------------------------------------
A row's `hash` is the lowercase hex SHA-256 of the UTF-8 bytes of the JSON array

    [seq, ts, actor, remote, action, target, reason, detail, prev]

written with no whitespace (separators `,` and `:`), object keys sorted by code
point at every level, non-ASCII characters as themselves (not `\\uXXXX`),
`"`, `\\` and control characters escaped as JSON requires (`\\n`, `\\u001f`,
lowercase hex), integers as decimal, and floats (`ts` is always one, e.g.
`1700000000.5`, `1700000000.0`) in Python's `repr`: the shortest text that reads
back to the same double. NaN and infinities are refused. `detail` is the JSON
object stored in the `detail` column (stored in this same canonical form, so
the column text can be pasted in as it is); `prev` is the previous row's
`hash`, and for row 1 the genesis value of 64 zeros. This is Python's
`json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`;
it is close to, but not the same as, RFC 8785 (which sorts keys by UTF-16
units and writes floats the ECMAScript way). To re-verify by hand (Python's
own sqlite3 module, as the `sqlite3` shell may print `ts` with too few or
inexact digits):

    python3 -c '
    import hashlib, json, sqlite3, sys
    prev = "0" * 64
    for *row, digest in sqlite3.connect(sys.argv[1]).execute(
            "SELECT seq, ts, actor, remote, action, target, reason, detail, prev, hash FROM audit ORDER BY seq"):
        row[7] = json.loads(row[7])
        text = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        ok = row[8] == prev and hashlib.sha256(text.encode()).hexdigest() == digest
        print(row[0], "ok" if ok else "BROKEN"); prev = digest' audit.db

and compare the last hash with the anchor file and with any head printed earlier.

Limits
------
There is no secret in the chain: someone who can rewrite both the database and
the anchor file can recompute every hash and forge a consistent history. The
defence is an anchor they cannot reach: publish `head()` (sequence number and
hash) regularly, e.g. in the printed or mailed reports, and an inspector
checks that the trail still contains that row with that hash. The triggers
that refuse UPDATE and DELETE stop mistakes, not attackers.

When an append finds the anchor already ahead of or disagreeing with the
table (rows were removed or the newest one rewritten), it chains from the
anchor, so the gap stays visible in the chain for good instead of being
papered over; when it finds the anchor missing or unreadable it first writes a
`system` row `audit.anchor_lost`, since from then on a truncation before that
row can no longer be seen. A trail restored from an older backup therefore
fails `verify` from the gap on: that is the truth, and the way forward is to
keep the broken files for the inspector and start a new trail beside them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

GENESIS = "0" * 64
ANCHOR_SUFFIX = ".head"
ANCHOR_LOST = "audit.anchor_lost"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COLUMNS = ("seq", "ts", "actor", "remote", "action", "target", "reason", "detail", "prev", "hash")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL, remote TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed and stored; see the module docstring for its rules."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_hash(seq: int, ts: float, actor: str, remote: str, action: str, target: str, reason: str,
             detail: Any, prev: str) -> str:
    """Exposed so that tests and inspectors' scripts hash exactly as the trail does."""
    text = canonical_json([seq, ts, actor, remote, action, target, reason, detail, prev])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def anchor_path(path: str | Path) -> Path:
    return Path(f"{path}{ANCHOR_SUFFIX}")


def read_head_anchor(path: Path) -> tuple[int, str]:
    """The anchor's (seq, hash). FileNotFoundError when it is absent, ValueError when it is not an anchor:
    callers tell the two apart because a missing anchor on a fresh trail is normal and a garbled one never is."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq, digest = data["seq"], data["hash"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a head anchor: {error}") from None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"not a head anchor: seq {seq!r}")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError(f"not a head anchor: hash {digest!r}")
    return seq, digest


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    ts: float
    actor: str
    remote: str
    action: str
    target: str
    reason: str
    detail: dict[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """`first_broken` is the first row that is altered or missing (None when the fault is not one row's,
    e.g. a lost anchor); `reason` says what is wrong, or, when ok, anything an inspector should still know."""

    ok: bool
    rows: int
    first_broken: int | None
    reason: str


def _decode_detail(text: Any) -> dict[str, Any]:
    """Listing a tampered row must not fail: its detail is shown raw rather than hidden."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"_undecodable": text}
    return value if isinstance(value, dict) else {"_value": value}


def _intact(raw: tuple[Any, ...]) -> bool:
    """The row's stored hash matches its content, and its detail is stored in canonical form (so that even a
    change that leaves the decoded detail equal, like added spaces, counts as an edit)."""
    seq, ts, actor, remote, action, target, reason, detail_text, prev, digest = raw
    try:
        detail = json.loads(detail_text)
        if canonical_json(detail) != detail_text:
            return False
        return bool(row_hash(seq, ts, actor, remote, action, target, reason, detail, prev) == digest)
    except (TypeError, ValueError):
        return False


def _fsync_dir(folder: Path) -> None:
    """A rename survives power loss only once the folder is synced; not possible (nor needed) on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AuditTrail:
    """Thread-safe: one connection behind a lock, and each append one IMMEDIATE transaction, so appends from
    threads (and from other processes on the same file) keep the chain linear."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.anchor_path = anchor_path(self.path)
        self._clock = clock
        self._readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no audit trail at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                       isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # few rows, and each must survive a power cut
            self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------------------------------

    def append(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "", ts: float | None = None) -> int:
        """Record one action; returns its sequence number. A detail that JSON cannot carry, or a NaN time, is
        refused before anything is written."""
        if self._readonly:
            raise PermissionError(f"the audit trail {self.path} is open read-only")
        # Stored and hashed as it reads back, so verification recomputes exactly this value.
        detail_text = canonical_json({} if detail is None else detail)
        detail_value = json.loads(detail_text)
        with self._lock:
            when = float(self._clock() if ts is None else ts)  # under the lock: seq order is time order
            if not math.isfinite(when):
                raise ValueError(f"audit time {when!r} is not a finite number")
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                last = cursor.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
                try:
                    anchor: tuple[int, str] | None = read_head_anchor(self.anchor_path)
                except FileNotFoundError:
                    anchor, problem = None, "missing"
                except (OSError, ValueError) as error:
                    anchor, problem = None, f"unreadable ({error})"
                if anchor is None and seq > 0:
                    seq, prev = self._insert(
                        cursor, seq + 1, prev, when, "system", "", ANCHOR_LOST, "",
                        f"the head anchor was {problem}: a deletion of rows before this one can no longer be seen",
                        {"anchor": self.anchor_path.name, "problem": problem, "table_seq": seq, "table_hash": prev})
                elif anchor is not None and anchor[0] >= seq and anchor != (seq, prev):
                    seq, prev = anchor  # rows are gone or the newest was rewritten: keep the gap in the chain
                seq, digest = self._insert(cursor, seq + 1, prev, when, actor, remote, action, target, reason,
                                           detail_value)
                cursor.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    cursor.execute("ROLLBACK")
                raise
            self._write_anchor(seq, digest)
        return seq

    @staticmethod
    def _insert(cursor: sqlite3.Cursor, seq: int, prev: str, ts: float, actor: str, remote: str, action: str,
                target: str, reason: str, detail: Any) -> tuple[int, str]:
        digest = row_hash(seq, ts, actor, remote, action, target, reason, detail, prev)
        cursor.execute(f"INSERT INTO audit ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                       (seq, ts, actor, remote, action, target, reason, canonical_json(detail), prev, digest))
        return seq, digest

    def _write_anchor(self, seq: int, digest: str) -> None:
        """After the commit, so a crash in between leaves the anchor one row behind (harmless, repaired by the
        next append) and never ahead (which would read as deleted rows). Never moves backwards: another
        process may have anchored a later row meanwhile. A failure is logged, not raised: the row is
        committed, and the action it records must not be reported as unrecorded."""
        try:
            try:
                if read_head_anchor(self.anchor_path)[0] > seq:
                    return
            except (OSError, ValueError):
                pass
            temp = self.anchor_path.with_name(f"{self.anchor_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(temp, "w", encoding="utf-8") as file:
                file.write(canonical_json({"seq": seq, "hash": digest}) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.anchor_path)
            _fsync_dir(self.anchor_path.parent)
        except OSError as error:
            log.error("audit head anchor %s not updated to row %d: %s", self.anchor_path, seq, error)

    # --- reading ------------------------------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """The newest row's sequence number and hash, to publish outside the reach of whoever can write the
        database (reports, print-outs): the only defence against a rewrite of both database and anchor."""
        with self._lock:
            last = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(last[0]), str(last[1])) if last else (0, GENESIS)

    def rows(self, *, since: float | None = None, until: float | None = None, actor: str | None = None,
             action: str | None = None, target: str | None = None, after_seq: int = 0,
             limit: int = 1000) -> list[AuditRow]:
        """Oldest first, `since <= ts < until`; page on with `after_seq` = the last row's seq."""
        clauses: list[str] = ["seq > ?"]
        params: list[Any] = [after_seq]
        for clause, value in (("ts >= ?", since), ("ts < ?", until), ("actor = ?", actor),
                              ("action = ?", action), ("target = ?", target)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        sql = f"SELECT {','.join(_COLUMNS)} FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        with self._lock:
            found = self._db.execute(sql, (*params, limit)).fetchall()
        return [AuditRow(seq=r[0], ts=r[1], actor=r[2], remote=r[3], action=r[4], target=r[5], reason=r[6],
                         detail=_decode_detail(r[7]), prev=r[8], hash=r[9]) for r in found]

    def verify(self) -> AuditVerification:
        """Walk the chain oldest first and name the first broken link, then hold the newest row against the
        head anchor. A database that cannot be read at all is reported, not raised: that too is a finding."""
        with self._lock:
            # The anchor first: it is written after each commit, so read before the table it can lag a
            # concurrent writer in another process, but never run ahead of what the table then shows.
            try:
                anchor: tuple[int, str] | None = read_head_anchor(self.anchor_path)
                anchor_problem = ""
            except FileNotFoundError:
                anchor, anchor_problem = None, "missing"
            except (OSError, ValueError) as error:
                anchor, anchor_problem = None, f"unreadable ({error})"
            cursor = self._db.cursor()
            try:
                cursor.execute("BEGIN")  # one snapshot for the count and the walk
                try:
                    return self._walk(cursor, anchor, anchor_problem)
                finally:
                    if self._db.in_transaction:
                        cursor.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                return AuditVerification(False, 0, None, f"the audit database cannot be read: {error}")

    def _walk(self, cursor: sqlite3.Cursor, anchor: tuple[int, str] | None, anchor_problem: str,
              ) -> AuditVerification:
        total = int(cursor.execute("SELECT COUNT(*) FROM audit").fetchone()[0])

        def broken(seq: int | None, reason: str) -> AuditVerification:
            return AuditVerification(False, total, seq, reason)

        expected_seq, expected_prev = 1, GENESIS
        anchored_hash: str | None = None
        anchor_losses: list[int] = []
        for raw in cursor.execute(f"SELECT {','.join(_COLUMNS)} FROM audit ORDER BY seq"):
            seq = int(raw[0])
            if seq > expected_seq:
                return broken(expected_seq, f"row {expected_seq} is missing" if seq == expected_seq + 1
                              else f"rows {expected_seq}–{seq - 1} are missing")
            if seq < expected_seq:
                return broken(seq, f"row {seq} is out of sequence (row {expected_seq} was expected)")
            if not _intact(raw):
                return broken(seq, f"row {seq} was altered")
            if raw[8] != expected_prev:
                return broken(seq, f"row {seq} does not follow row {seq - 1}" if seq > 1
                              else "row 1 does not start from the genesis value")
            if anchor is not None and seq == anchor[0]:
                anchored_hash = raw[9]
            if raw[2] == "system" and raw[4] == ANCHOR_LOST:
                anchor_losses.append(seq)
            expected_seq, expected_prev = seq + 1, raw[9]
        last = expected_seq - 1
        name = self.anchor_path.name

        if anchor is None:
            if anchor_problem == "missing" and last == 0:
                return AuditVerification(True, 0, None, "")
            return broken(None, f"the head anchor {name} is {anchor_problem}: rows deleted after row {last} "
                          "could not be seen")
        anchor_seq, anchor_hash = anchor
        if anchor_seq > last:
            gone = f"rows after {last} are" if last else "all rows are"
            return broken(last + 1, f"{gone} missing (the head anchor says {anchor_seq})")
        if anchored_hash != anchor_hash:
            return broken(anchor_seq, f"row {anchor_seq} was altered (it does not match the head anchor)")
        notes = []
        if anchor_seq < last:
            notes.append(f"the head anchor lags at row {anchor_seq} (an append was interrupted or is under way)")
        if anchor_losses:
            notes.append("the head anchor was lost before row " + ", ".join(map(str, anchor_losses))
                         + f" ({ANCHOR_LOST}): rows deleted before then could not be seen")
        return AuditVerification(True, total, None, "; ".join(notes))
