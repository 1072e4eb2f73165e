"""The audit trail: every edit, deletion or truncation is named by row; the canonical form is pinned."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.audit import ANCHOR_LOST, GENESIS, AuditTrail, row_hash
from api.audit_cli import add_commands
from api.model import Audit

SITE = """
site: {id: s, timezone: Asia/Shanghai}
buildings: [{id: a}]
rooms: [{id: r1, building: a, profile: paper}]
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    with AuditTrail(tmp_path / "audit.db", clock=Clock()) as opened:
        for n in range(1, 6):
            opened.append(f"user{n}", "alarm.ack", f"#{n}", detail={"n": n, "nested": {"list": [n, "库房"]}},
                          reason=f"reason {n}", remote="10.0.0.1")
        yield opened


def tamper(path: Path, sql: str, *params: object) -> None:
    """What someone with write access to the file can do: the triggers are a guard against mistakes only."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    db.execute(sql, params)
    db.commit()
    db.close()


def rehash(path: Path, seq: int, **changes: object) -> None:
    """An attacker who edits a row and fixes its own hash so that the row checks out on its own."""
    db = sqlite3.connect(path)
    row = dict(zip(("seq", "ts", "actor", "remote", "action", "target", "reason", "detail", "prev"),
                   db.execute("SELECT seq, ts, actor, remote, action, target, reason, detail, prev FROM audit "
                              "WHERE seq = ?", (seq,)).fetchone(), strict=True))
    db.close()
    row.update(changes)
    digest = row_hash(row["seq"], row["ts"], row["actor"], row["remote"], row["action"], row["target"],
                      row["reason"], json.loads(row["detail"]), row["prev"])
    tamper(path, "UPDATE audit SET reason = ?, hash = ? WHERE seq = ?", row["reason"], digest, seq)


def test_rows_with_chinese_text_and_nested_detail_verify_and_read_back(tmp_path: Path) -> None:
    audit: Audit = AuditTrail(tmp_path / "audit.db", clock=Clock())  # satisfies the protocol the routes use
    assert audit.append("张三", "alarm.shelve", "room:r1/温度", reason="除湿机维修 \"二号库\"\n下午恢复",
                        detail={"duration": 7200.0, "alarm": {"key": "r1.rh_high", "levels": [1, 2.5, None]}},
                        remote="192.168.1.20") == 1
    assert audit.append("admin", "user.create", "李四", detail={"role": "operator"}) == 2
    assert audit.append("李四", "login", remote="10.0.0.9", ts=1_800_000_000) == 3
    trail = audit
    assert isinstance(trail, AuditTrail)
    result = trail.verify()
    assert (result.ok, result.rows, result.first_broken, result.reason) == (True, 3, None, "")
    [first] = trail.rows(actor="张三")
    assert first.target == "room:r1/温度" and first.reason.endswith("下午恢复") and first.prev == GENESIS
    assert first.detail == {"duration": 7200.0, "alarm": {"key": "r1.rh_high", "levels": [1, 2.5, None]}}
    assert [r.seq for r in trail.rows(action="login")] == [3]
    assert trail.rows(action="login")[0].ts == 1_800_000_000.0 and trail.rows(action="login")[0].detail == {}
    assert [r.seq for r in trail.rows(since=1_700_000_002.0, until=1_800_000_000.0)] == [2]
    assert [r.seq for r in trail.rows(after_seq=1, limit=1)] == [2]
    assert [r.seq for r in trail.rows(target="李四")] == [2]
    seq, head = trail.head()
    assert seq == 3 and head == trail.rows()[-1].hash == json.loads((tmp_path / "audit.db.head").read_text())["hash"]
    trail.close()


def test_the_canonical_form_is_pinned_by_a_golden_hash() -> None:
    row = [1, 1700000000.5, "张三", "10.0.0.7", "alarm.ack", "room:r1/温度", "已处理\n\"漏水\"",
           {"z": [1, 2.5, None, True], "a": {"库房": "二号", "n": -0.1}}, "0" * 64]
    text = ('[1,1700000000.5,"张三","10.0.0.7","alarm.ack","room:r1/温度","已处理\\n\\"漏水\\"",'
            '{"a":{"n":-0.1,"库房":"二号"},"z":[1,2.5,null,true]},"' + "0" * 64 + '"]')
    assert json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == text
    golden = "2610be6240051470fbab41548af36046e197add3c76882f0454b454cc37d8940"
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == golden
    assert row_hash(*row) == golden  # type: ignore[arg-type]


def test_a_stored_row_hashes_to_the_canonical_form(tmp_path: Path) -> None:
    with AuditTrail(tmp_path / "audit.db") as trail:
        trail.append("张三", "alarm.ack", "#7", detail={"b": 1, "a": ["库房"]}, reason="已处理", remote="10.0.0.7",
                     ts=1700000000.5)
    db = sqlite3.connect(tmp_path / "audit.db")
    stored = db.execute("SELECT detail, hash FROM audit").fetchone()
    db.close()
    assert stored[0] == '{"a":["库房"],"b":1}'
    text = f'[1,1700000000.5,"张三","10.0.0.7","alarm.ack","#7","已处理",{stored[0]},"{"0" * 64}"]'
    assert stored[1] == hashlib.sha256(text.encode()).hexdigest()


def test_accidental_updates_and_deletes_are_refused(trail: AuditTrail) -> None:
    db = sqlite3.connect(trail.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET reason = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 5")
    db.close()
    assert trail.verify().ok


@pytest.mark.parametrize(("column", "value"), [
    ("reason", "nothing happened"),
    ("detail", '{"n":3,"nested":{"list":[3,"别的库房"]}}'),
    ("detail", '{"n": 3, "nested": {"list": [3, "库房"]}}'),  # same content, not the stored bytes
    ("ts", 1_700_000_100.0),
    ("actor", "someone else"),
    ("prev", GENESIS),
])
def test_an_edited_row_is_named(trail: AuditTrail, column: str, value: object) -> None:
    tamper(trail.path, f"UPDATE audit SET {column} = ? WHERE seq = 3", value)
    result = trail.verify()
    assert (result.ok, result.rows, result.first_broken, result.reason) == (False, 5, 3, "row 3 was altered")


def test_a_deleted_middle_row_is_named(trail: AuditTrail) -> None:
    tamper(trail.path, "DELETE FROM audit WHERE seq = 3")
    result = trail.verify()
    assert (result.ok, result.rows, result.first_broken, result.reason) == (False, 4, 3, "row 3 is missing")
    tamper(trail.path, "DELETE FROM audit WHERE seq = 2")
    assert trail.verify().reason == "rows 2–3 are missing"


def test_a_deleted_tail_is_caught_by_the_head_anchor(trail: AuditTrail) -> None:
    tamper(trail.path, "DELETE FROM audit WHERE seq >= 4")
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 4)
    assert result.reason == "rows after 3 are missing (the head anchor says 5)"


def test_an_emptied_table_is_caught_by_the_head_anchor(trail: AuditTrail) -> None:
    tamper(trail.path, "DELETE FROM audit")
    result = trail.verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 1, "all rows are missing (the head anchor "
                                                                "says 5)")


def test_a_missing_or_garbled_anchor_is_not_ok(trail: AuditTrail) -> None:
    trail.anchor_path.unlink()
    result = trail.verify()
    assert not result.ok and result.first_broken is None and "audit.db.head is missing" in result.reason
    trail.anchor_path.write_text("{}")
    result = trail.verify()
    assert not result.ok and "unreadable" in result.reason


def test_an_empty_trail_without_anchor_is_intact(tmp_path: Path) -> None:
    with AuditTrail(tmp_path / "audit.db") as trail:
        assert trail.verify().ok and trail.head() == (0, GENESIS)


def test_a_row_whose_hash_was_recomputed_breaks_the_next_link(trail: AuditTrail) -> None:
    rehash(trail.path, 3, reason="nothing happened")
    result = trail.verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 4, "row 4 does not follow row 3")


def test_a_rewritten_last_row_is_caught_by_the_head_anchor(trail: AuditTrail) -> None:
    rehash(trail.path, 5, reason="nothing happened")
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 5)
    assert result.reason == "row 5 was altered (it does not match the head anchor)"


def test_an_append_after_a_truncation_keeps_the_gap_visible(trail: AuditTrail) -> None:
    tamper(trail.path, "DELETE FROM audit WHERE seq = 5")
    assert trail.append("admin", "login") == 6
    result = trail.verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 5, "row 5 is missing")


def test_an_append_after_a_rewritten_last_row_keeps_the_break_visible(trail: AuditTrail) -> None:
    rehash(trail.path, 5, reason="nothing happened")
    assert trail.append("admin", "login") == 6
    result = trail.verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 6, "row 6 does not follow row 5")


def test_an_append_after_the_anchor_was_lost_records_the_loss(trail: AuditTrail) -> None:
    trail.anchor_path.unlink()
    assert trail.append("admin", "login") == 7
    [lost] = trail.rows(action=ANCHOR_LOST)
    assert lost.seq == 6 and lost.actor == "system" and lost.detail["table_seq"] == 5
    result = trail.verify()
    assert result.ok and result.rows == 7 and "lost before row 6" in result.reason


def test_an_anchor_one_row_behind_is_an_interrupted_append_not_a_break(trail: AuditTrail) -> None:
    row4 = trail.rows(after_seq=3, limit=1)[0]
    trail.anchor_path.write_text(json.dumps({"seq": 4, "hash": row4.hash}))
    result = trail.verify()
    assert result.ok and "lags at row 4" in result.reason
    trail.anchor_path.write_text(json.dumps({"seq": 4, "hash": "f" * 64}))
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 4)


def test_what_json_cannot_carry_is_refused_before_writing(trail: AuditTrail) -> None:
    with pytest.raises(ValueError):
        trail.append("admin", "x", detail={"value": float("nan")})
    with pytest.raises(TypeError):
        trail.append("admin", "x", detail={"value": object()})
    with pytest.raises(ValueError):
        trail.append("admin", "x", ts=float("inf"))
    assert trail.head()[0] == 5 and trail.verify().ok


def test_concurrent_appends_keep_one_linear_chain(tmp_path: Path) -> None:
    with AuditTrail(tmp_path / "audit.db") as trail:
        seqs: list[int] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            for n in range(100):
                seq = trail.append(f"worker{worker}", "control.command", f"device{n}", detail={"n": n})
                with lock:
                    seqs.append(seq)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(seqs) == list(range(1, 801))
        result = trail.verify()
        assert (result.ok, result.rows, result.reason) == (True, 800, "")
        rows = trail.rows(limit=10_000)
        assert all(a.ts <= b.ts for a, b in itertools.pairwise(rows))
        assert trail.head() == (800, rows[-1].hash)


def test_the_trail_reopens_and_continues_the_chain(trail: AuditTrail) -> None:
    with AuditTrail(trail.path) as again:
        assert again.append("admin", "config.change", "site.yaml") == 6
    with AuditTrail(trail.path, readonly=True) as reader:
        assert reader.verify().ok and reader.head()[0] == 6
        with pytest.raises(PermissionError):
            reader.append("admin", "x")


# --- the CLI ------------------------------------------------------------------------------------------------------


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "site.yaml"
    config.write_text(SITE, encoding="utf-8")
    return config


def test_cli_verify_says_intact_or_names_the_broken_row(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = site.parent / "state" / "audit.db"
    with AuditTrail(path) as trail:
        for n in range(3):
            trail.append("张三", "alarm.ack", f"#{n}", reason="已处理")
        _, head = trail.head()
    assert run("audit", "verify", "--config", str(site)) == 0
    assert capsys.readouterr().out == f"audit trail intact: 3 rows, head {head}\n"
    tamper(path, "UPDATE audit SET reason = 'x' WHERE seq = 2")
    assert run("audit", "verify", "--config", str(site)) == 1
    assert capsys.readouterr().out == "audit trail BROKEN at row 2: row 2 was altered\n"
    path.unlink()
    assert run("audit", "verify", "--config", str(site)) == 1
    assert "BROKEN at row 1: the audit database" in capsys.readouterr().out


def test_cli_list_filters_and_prints_json(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with AuditTrail(site.parent / "state" / "audit.db") as trail:
        trail.append("张三", "alarm.ack", "#1", reason="已处理", ts=1_700_000_000.0)
        trail.append("admin", "login", remote="10.0.0.9", ts=1_750_000_000.0)  # 2025-06-15
    assert run("audit", "list", "--config", str(site), "--action", "alarm.ack", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["seq"], row["actor"], row["reason"]) == (1, "张三", "已处理") and "time" in row
    assert run("audit", "list", "--config", str(site), "--since", "2025-01-01") == 0
    out = capsys.readouterr().out
    assert "login" in out and "10.0.0.9" in out and "alarm.ack" not in out
    assert run("audit", "list", "--config", str(site), "--since", "1d", "--action", "alarm.ack") == 0
    assert capsys.readouterr().out == "no audit rows\n"


def test_cli_without_a_trail_explains_itself(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("audit", "verify", "--config", str(site)) == 2
    assert "no audit trail at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("audit", "list", "--config", str(site), "--since", "last tuesday")
