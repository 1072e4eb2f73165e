"""The report's alarm sections from a real journal and notifier store written in a temp folder, with known
answers: acknowledgement delays, a shelf begun before the period, an out-of-service period, a fire in the fire
log, the messages sent per alarm, ISA-18.2 figures; and an altered audit row reported as a broken chain."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alarms.journal import Journal
from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.notify.model import Delivery, Message, NoticeKind
from alarms.notify.store import NewDelivery, NotifyStore
from alarms.performance import AlarmPerformance
from api.app import create_app
from api.audit import AuditTrail
from api.services import ApiServices
from reports.alarm_report import nearest_rank
from reports.cli import render
from reports.gather import Sources, gather
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from tests.unit.test_api_routes import SITE
from tests.unit.test_compliance_report import START, Hourly, header_auth

HOUR = 3600.0
END = START + 48 * HOUR
A, U, N, R = AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK, AlarmState.NORMAL, AlarmState.RETURNED_UNACK
CAUSES = {"th1.rh:high": ("humidity_high", Priority.HIGH), "th1.t:high": ("temperature_high", Priority.HIGH),
          "th1.t:low": ("temperature_low", Priority.HIGH), "th1.rh:mould": ("mould_risk", Priority.HIGH),
          "panel.z1:fire": ("fire", Priority.CRITICAL), "door1.open:forced": ("door_forced", Priority.CRITICAL),
          "gw:comm_loss": ("gateway_comm_loss", Priority.HIGH), "th2.rh:high": ("humidity_high", Priority.HIGH)}


def ev(alarm: str, kind: EventKind, ts: float, ticket: int, state: AlarmState, actor: str = "system",
       comment: str = "", until: float | None = None) -> AlarmEvent:
    cause, priority = CAUSES[alarm]
    room = None if alarm.startswith("gw") else "r2" if alarm.startswith("th2") else "r1"
    return AlarmEvent(seq=0, ts=ts, alarm=alarm, occurrence=ticket, kind=kind, state=state, previous=N,
                      priority=priority, cause=cause, room=room, building="main", site="archive", source=alarm,
                      actor=actor, comment=comment, until=until)


JOURNAL = [
    # before the period: a shelf (lifted inside it) and a mould alarm still unacknowledged at the start
    ev("th1.t:low", EventKind.SHELVED, START - 2 * HOUR, 0, N, "zhang", "sensor swap", until=START + 6 * HOUR),
    ev("th1.rh:mould", EventKind.RAISED, START - 30 * HOUR, 1, A),
    ev("th1.t:low", EventKind.UNSHELVED, START + 3 * HOUR, 0, N, "zhang"),
    ev("th1.rh:mould", EventKind.ACKNOWLEDGED, START + 1 * HOUR, 1, U, "li.wei", "known, drying"),
    ev("door1.open:forced", EventKind.RAISED, START + 2 * HOUR, 6, A),  # 02:00 local: after hours, never acked
    ev("th1.rh:high", EventKind.RAISED, START + 14 * HOUR, 2, A),
    ev("th1.rh:high", EventKind.ACKNOWLEDGED, START + 14 * HOUR + 600, 2, U, "li.wei", "dehumidifier on"),
    ev("th1.rh:high", EventKind.CLEARED, START + 18 * HOUR, 2, N),
    ev("th1.t:high", EventKind.RAISED, START + 20 * HOUR, 3, A),
    ev("th1.t:high", EventKind.ACKNOWLEDGED, START + 20 * HOUR + 1800, 3, U, "wang"),
    ev("th1.t:high", EventKind.CLEARED, START + 21 * HOUR, 3, N),
    ev("panel.z1:fire", EventKind.RAISED, START + 30 * HOUR, 4, A),
    ev("panel.z1:fire", EventKind.RETURNED, START + 30 * HOUR + 60, 4, R),
    ev("panel.z1:fire", EventKind.ACKNOWLEDGED, START + 30 * HOUR + 120, 4, N, "duty", "dust from works"),
    ev("panel.z1:fire", EventKind.OUT_OF_SERVICE, START + 31 * HOUR, 4, N, "admin", "panel maintenance"),
    ev("panel.z1:fire", EventKind.IN_SERVICE, START + 33 * HOUR, 4, N, "admin"),
    ev("th1.rh:high", EventKind.RAISED, START + 40 * HOUR, 5, A),
    ev("th1.rh:high", EventKind.ACKNOWLEDGED, START + 40 * HOUR + 3600, 5, U, "li.wei"),
    ev("gw:comm_loss", EventKind.RAISED, START + 41 * HOUR, 7, A),  # no room: only in a whole-site report
    ev("th2.rh:high", EventKind.RAISED, START + 42 * HOUR, 8, A),  # room r2
    ev("th1.t:high", EventKind.RAISED, END + 60, 9, A),  # after the period
]


def message(ticket: int) -> Message:
    return Message(kind=NoticeKind.PAGE, priority=Priority.CRITICAL, subject="fire", text="fire", sms="fire",
                   tickets=(ticket,))


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Sources]:
    journal = Journal(tmp_path / "alarms.db")
    journal.commit(sorted(JOURNAL, key=lambda e: e.ts), [])
    journal.close()
    store = NotifyStore(tmp_path / "notify.db")
    raised = START + 30 * HOUR
    store.dispatch([], [NewDelivery("li.wei", 0, "sms", "+8613800000001", message(4)),
                        NewDelivery("wang", 0, "email", "wang@archive.example", message(4))], raised + 1)
    [sms, _email] = store.due(raised + 1)
    store.record(sms, Delivery(False, True, "http 500"), raised + 5, status="pending", next_attempt=raised + 30)
    store.record(sms, Delivery(True, False, "http 200"), raised + 35, status="sent", next_attempt=None)
    store.close()
    with AuditTrail(tmp_path / "audit.db", clock=lambda: START) as trail:
        for n in range(3):
            trail.append(f"user{n}", "alarm.ack", f"#{n}", reason=f"reason {n}")
    opened = Sources(history=Hourly(), journal=Journal(tmp_path / "alarms.db", readonly=True),
                     notify=NotifyStore(tmp_path / "notify.db", readonly=True),
                     audit=AuditTrail(tmp_path / "audit.db", readonly=True), config_digest="abc")
    yield opened
    for part in (opened.journal, opened.notify, opened.audit):
        assert part is not None
        part.close()


def whole_site(sources: Sources) -> dict[str, Any]:
    return gather(SITE, sources, START, END, generated=END)


def by_ticket(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {o["ticket"]: o for o in report["alarm_history"]["alarms"]}


def test_every_alarm_of_the_period_with_who_responded(sources: Sources) -> None:
    alarms = by_ticket(whole_site(sources))
    assert sorted(alarms) == [1, 2, 3, 4, 5, 6, 7, 8]  # 9 is after the period; 1 carried in from before it
    assert alarms[1]["carried_in"] and alarms[1]["raised"] == START - 30 * HOUR
    assert (alarms[1]["acknowledged_by"], alarms[1]["comment"]) == ("li.wei", "known, drying")
    two = alarms[2]
    assert (two["raised"], two["acknowledged"], two["acknowledged_by"], two["comment"], two["cleared"]) == (
        START + 14 * HOUR, START + 14 * HOUR + 600, "li.wei", "dehumidifier on", START + 18 * HOUR)
    assert two["seconds_to_acknowledge"] == 600 and not two["carried_in"]
    fire = alarms[4]
    assert (fire["returned"], fire["cleared"], fire["seconds_to_acknowledge"]) == (
        START + 30 * HOUR + 60, START + 30 * HOUR + 120, 120)
    assert alarms[6]["acknowledged"] is None and alarms[6]["cleared"] is None


def test_time_to_acknowledge_by_priority_is_exact(sources: Sources) -> None:
    report = whole_site(sources)
    high = report["alarm_history"]["time_to_acknowledge"]["high"]
    # raised in the period: tickets 2, 3, 5 (600, 1800, 3600 s), 7 and 8 not acknowledged; 1 carried in
    assert (high["alarms"], high["acknowledged"], high["unacknowledged"]) == (5, 3, 2)
    assert high["median_seconds_to_acknowledge"] == 1800
    assert high["p90_seconds_to_acknowledge"] == 3600 and high["max_seconds_to_acknowledge"] == 3600
    critical = report["alarm_history"]["time_to_acknowledge"]["critical"]
    assert (critical["alarms"], critical["acknowledged"], critical["median_seconds_to_acknowledge"]) == (2, 1, 120)
    assert report["alarm_performance"]["time_to_acknowledge"] == report["alarm_history"]["time_to_acknowledge"]
    assert report["alarm_history"]["time_to_acknowledge"]["low"]["median_seconds_to_acknowledge"] is None


def test_nearest_rank_percentile() -> None:
    assert nearest_rank(list(range(1, 11)), 0.9) == 9
    assert nearest_rank([5.0], 0.9) == 5.0 and nearest_rank([], 0.9) is None


def test_notifications_listed_per_alarm(sources: Sources) -> None:
    report = whole_site(sources)
    fire = by_ticket(report)[4]
    raised = START + 30 * HOUR
    sent = [(n["at"], n["person"], n["channel"], n["address"], n["outcome"], n["ok"]) for n in fire["notifications"]]
    assert sent == [
        (raised + 1, "wang", "email", "wang@archive.example", "pending", False),  # never attempted
        (raised + 5, "li.wei", "sms", "+8613800000001", "http 500", False),
        (raised + 35, "li.wei", "sms", "+8613800000001", "http 200", True)]
    assert all(not o["notifications"] for t, o in by_ticket(report).items() if t != 4)
    summary = report["alarm_history"]["notifications"]
    assert (summary["messages"], summary["delivered"], summary["failed"], summary["people"]) == (
        3, 1, 2, ["li.wei", "wang"])


def test_shelved_and_out_of_service_periods_listed(sources: Sources) -> None:
    hidden = whole_site(sources)["alarm_history"]["shelved_or_out_of_service"]
    shelf, oos = hidden
    assert (shelf["alarm"], shelf["kind"], shelf["by"], shelf["reason"], shelf["expires"], shelf["ended"],
            shelf["ended_by"], shelf["started_before_period"], shelf["seconds_hidden_in_period"]) == (
        "th1.t:low", "shelved", "zhang", "sensor swap", START + 6 * HOUR, START + 3 * HOUR, "zhang", True, 3 * HOUR)
    assert (oos["alarm"], oos["kind"], oos["by"], oos["reason"], oos["from"], oos["ended"],
            oos["seconds_hidden_in_period"], oos["started_before_period"]) == (
        "panel.z1:fire", "out_of_service", "admin", "panel maintenance", START + 31 * HOUR, START + 33 * HOUR,
        2 * HOUR, False)


def test_fire_and_security_log(sources: Sources) -> None:
    log = whole_site(sources)["fire_and_security"]["events"]
    assert [(e["at"], e["category"], e["cause"], e["ticket"]) for e in log] == [
        (START + 2 * HOUR, "security", "door_forced", 6), (START + 30 * HOUR, "fire", "fire", 4)]
    fire = log[1]
    assert (fire["acknowledged_by"], fire["comment"], fire["notified"], fire["priority"]) == (
        "duty", "dust from works", ["li.wei"], "critical")
    assert "after-hours" in log[0]["event"]


def test_alarm_performance_figures(sources: Sources) -> None:
    perf = whole_site(sources)["alarm_performance"]
    assert perf["activations"] == 7  # RAISED in the period: tickets 2–8
    assert perf["avg_per_10min"] == pytest.approx(7 / (48 * 6))
    assert perf["peak_10min"] == 1 and perf["floods"] == 0 and perf["flood_share"] == 0.0
    assert perf["chattering_alarms"] == [] and perf["chattering_episodes"] == 0
    assert perf["priority_distribution"]["critical"] == {"count": 2, "share": pytest.approx(2 / 7)}
    assert perf["priority_distribution"]["high"]["count"] == 5
    # Active more than 24 h at the end: the mould alarm (raised 78 h before) and the door (46 h)
    assert [(s["alarm"], s["active_since"]) for s in perf["stale_at_end"]] == [
        ("th1.rh:mould", START - 30 * HOUR), ("door1.open:forced", START + 2 * HOUR)]
    assert perf["reference"]["acceptable_per_10min"] == 1.0


def test_chattering_and_flood_from_a_burst(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "alarms.db")
    burst = []
    for n in range(12):  # 12 activations of one alarm 5 s apart: flood above 10, chattering at 3 in 60 s
        ts = START + HOUR + 5 * n
        burst += [ev("th1.rh:high", EventKind.RAISED, ts, 10 + n, A), ev("th1.rh:high", EventKind.CLEARED, ts + 1,
                                                                           10 + n, N)]
    journal.commit(burst, [])
    perf = gather(SITE, Sources(history=Hourly(), journal=journal), START, END)["alarm_performance"]
    assert perf["activations"] == 12 and perf["peak_10min"] == 12 and perf["floods"] == 1
    assert perf["chattering_alarms"] == [{"alarm": "th1.rh:high", "episodes": 1}]
    # the flood starts at the 11th activation (55 s) and ends when the 8th leaves the window (35 s + 600 s)
    assert perf["flood_seconds"] == pytest.approx(600 + 35 - 50)
    journal.close()


def test_rooms_scope_the_alarm_sections(sources: Sources) -> None:
    report = gather(SITE, sources, START, END, rooms=["r2"])
    assert [o["ticket"] for o in report["alarm_history"]["alarms"]] == [8]
    assert report["alarm_performance"]["activations"] == 1 and report["scope"] == ["r2"]
    assert report["rooms"][0]["key_figures"]["alarms"] == 1
    r1 = gather(SITE, sources, START, END, rooms=["r1"])
    assert 7 not in by_ticket(r1) and sorted(by_ticket(r1)) == [1, 2, 3, 4, 5, 6]


def test_key_figures_first_with_their_resolution(sources: Sources) -> None:
    report = whole_site(sources)
    assert list(report)[:5] == ["site", "period", "generated", "scope", "key_figures"]
    first = report["key_figures"][0]
    assert first["room"] == "r1" and first["completeness"] == pytest.approx(42 / 48)
    assert first["resolution"]["humidity_share_within"] == "hourly means (rollup 1h)"
    assert first["resolution"]["alarms"].startswith("alarm journal")


def test_csv_carries_every_section(sources: Sources) -> None:
    rows = list(csv.reader(io.StringIO(render(whole_site(sources), "csv"))))
    sections: dict[str, list[list[str]]] = {}
    for row in rows:
        if row and row[0] in ("excursions", "gaps", "alarm_performance", "time_to_acknowledge", "alarms",
                              "notifications", "shelved_or_out_of_service", "fire_and_security", "integrity"):
            sections.setdefault(row[0], []).append(row[1:])
    ttas = {line[0]: line for line in sections["time_to_acknowledge"]}
    assert ttas["high"][1:] == ["5", "3", "2", "1800.0", "3600.0", "3600.0"]
    assert [line[0] for line in sections["alarms"]] == ["1", "6", "2", "3", "4", "5", "7", "8"]
    assert [(line[0], line[2], line[6]) for line in sections["notifications"]] == [
        ("4", "wang", "pending"), ("4", "li.wei", "http 500"), ("4", "li.wei", "http 200")]
    assert [(line[0], line[2], line[4]) for line in sections["shelved_or_out_of_service"]] == [
        ("th1.t:low", "shelved", "zhang"), ("panel.z1:fire", "out_of_service", "admin")]
    assert [(line[1], line[5]) for line in sections["fire_and_security"]] == [("security", "6"), ("fire", "4")]
    perf = dict(sections["alarm_performance"])
    assert perf["activations"] == "7" and perf["priority_critical_count"] == "2"
    assert dict(sections["integrity"])["audit_chain"] == "intact"
    [gap] = [line for line in sections["gaps"] if line[1] == "humidity" and line[0] == "r1"]
    assert float(gap[4]) == 6 * HOUR


def test_an_altered_audit_row_makes_the_report_say_the_chain_is_broken(sources: Sources, tmp_path: Path) -> None:
    assert whole_site(sources)["integrity"]["audit"]["ok"] is True
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("UPDATE audit SET reason = 'nothing happened' WHERE seq = 2")
    db.commit()
    db.close()
    report = whole_site(sources)
    audit = report["integrity"]["audit"]
    assert audit["ok"] is False and audit["first_broken"] == 2
    rows = list(csv.reader(io.StringIO(render(report, "csv"))))
    assert ["integrity", "audit_chain", "BROKEN"] in rows


def test_the_api_gathers_the_same_report(sources: Sources) -> None:
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(), now=lambda: END,
                           alarms=SimpleNamespace(journal=sources.journal, performance=AlarmPerformance("archive")),
                           # a stand-in runtime: the report reads only its journal
                           acknowledger=SimpleNamespace(store=sources.notify), history=Hourly(), audit=sources.audit,
                           config_digest="abc")  # type: ignore[arg-type]
    client = TestClient(create_app(ApiConfig(), services, header_auth))
    answer = client.get("/api/v1/reports/compliance?from=2026-01-01T00:00:00%2B08:00", headers={"x-role": "inspector"})
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(whole_site(sources)))
    assert client.get("/api/v1/reports/compliance?from=now-2d", headers={"x-role": "operator"}).status_code == 403
