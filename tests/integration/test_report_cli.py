"""`stackwatch report compliance` over a real influxd: raw readings in, the service's roll-up, figures out."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from alarms.journal import Journal
from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.notify.model import Delivery, Message, NoticeKind
from alarms.notify.store import NewDelivery, NotifyStore
from api.audit import AuditTrail
from reports.preservation import preservation_index
from stackwatch.catalog import PointCatalog
from stackwatch.cli import main
from stackwatch.config import load_config
from stackwatch.localservers import LocalInfluxd
from stackwatch.readings import Reading
from stackwatch.store.influx import InfluxClient
from stackwatch.store.rollup import Rollup

from .service_harness import EXAMPLE, influx

pytestmark = pytest.mark.integration
START = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00


def test_a_two_day_report_from_raw_minutes(tmp_path: Path, influxd: LocalInfluxd, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STACKWATCH_INFLUX_PORT", str(influxd.port))
    monkeypatch.setenv("STACKWATCH_STATE_DIR", str(tmp_path / "state"))
    config = load_config(EXAMPLE)
    catalog = PointCatalog.from_config(config)
    client = influx(influxd)
    client.create_database()
    lines = []
    for minute in range(2 * 24 * 60):
        ts = round((START + minute * 60) * 1e9)
        humid = 10 * 60 <= minute < 13 * 60  # 10:00–13:00 on the first day at 63 %
        lines.append(catalog.encode(Reading("th-101.humidity", ts, 63.0 if humid else 52.0)))
        lines.append(catalog.encode(Reading("th-101.temperature", ts, 19.0)))
    client.write(lines)
    Rollup(client, catalog).backfill(START, START + 2 * 86400)

    code = main(["report", "compliance", "--config", str(EXAMPLE), "--room", "main-1-paper",
                 "--from", "2026-01-01T00:00:00+08:00", "--to", "2026-01-03T00:00:00+08:00"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    [room] = report["rooms"]
    rh = room["humidity"]
    assert rh["time_within"]["outside"] == 3 * 3600 and rh["completeness"]["ratio"] == 1.0
    [excursion] = rh["excursions"]
    assert (excursion["start"], excursion["end"], excursion["peak"]) == (START + 10 * 3600, START + 13 * 3600, 63.0)
    assert room["key_figures"]["humidity_days_within_allowance"] == 0.5  # 63 − 52 = 11 > 10 on day one
    assert room["key_figures"]["temperature_share_within"] == 1.0
    assert report["integrity"]["config_sha256"] and "audit" not in report["integrity"]  # no trail yet

    assert main(["report", "compliance", "--config", str(EXAMPLE), "--from", "now-2d", "--format", "csv",
                 "-o", str(tmp_path / "r.csv")]) == 0
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines.index("") == 1 + len(config.rooms)  # the key figures first, one line a room; sections follow
    assert main(["report", "compliance", "--config", str(EXAMPLE), "--room", "nowhere", "--from", "now-1d"]) == 2


DAY = 86400
HOUR = 3600
# 30 days from 2026-01-01 00:00 (+08:00) at one reading a minute: RH 52 % and 19 °C, except three excursions
# at 63 % (paper: rh_max 60, daily allowance 10 % RH) of 12 + 16 + 8 = 36 hours, and 6 hours with no readings.
EXCURSIONS = [(2 * DAY + 10 * HOUR, 2 * DAY + 22 * HOUR), (9 * DAY, 9 * DAY + 16 * HOUR),
              (19 * DAY + 14 * HOUR, 19 * DAY + 22 * HOUR)]
GAP = (24 * DAY + 6 * HOUR, 24 * DAY + 12 * HOUR)
END = START + 30 * DAY


def seed_thirty_days(client: InfluxClient, catalog: PointCatalog) -> None:
    lines = []
    for second in range(0, 30 * DAY, 60):
        if GAP[0] <= second < GAP[1]:
            continue
        ns = round((START + second) * 1e9)
        humid = any(a <= second < b for a, b in EXCURSIONS)
        lines.append(catalog.encode(Reading("th-101.humidity", ns, 63.0 if humid else 52.0)))
        lines.append(catalog.encode(Reading("th-101.temperature", ns, 19.0)))
    for first in range(0, len(lines), 20_000):
        client.write(lines[first:first + 20_000])
    Rollup(client, catalog).backfill(START, END)


def seed_state(state: Path) -> None:
    """The journal (a humidity alarm over the first excursion, acknowledged after 25 minutes), the notifier's
    store (one SMS) and an audit trail of three rows, as the service would have left them."""
    def event(kind: EventKind, ts: float, state_: AlarmState, actor: str = "system") -> AlarmEvent:
        return AlarmEvent(seq=0, ts=ts, alarm="th-101.humidity:high", occurrence=1, kind=kind, state=state_,
                          previous=AlarmState.NORMAL, priority=Priority.HIGH, cause="humidity_high",
                          room="main-1-paper", building="main", site="district-archive", source="th-101.humidity",
                          value=63.0, limit=60.0, actor=actor)
    raised = START + EXCURSIONS[0][0] + 600
    journal = Journal(state / "alarms.db")
    journal.commit([event(EventKind.RAISED, raised, AlarmState.ACTIVE_UNACK),
                    event(EventKind.ACKNOWLEDGED, raised + 1500, AlarmState.ACTIVE_ACK, "li.wei"),
                    event(EventKind.CLEARED, START + EXCURSIONS[0][1] + 300, AlarmState.NORMAL)], [])
    journal.close()
    store = NotifyStore(state / "notify.db")
    store.dispatch([], [NewDelivery("li.wei", 0, "sms", "+8613800000001", Message(
        NoticeKind.PAGE, Priority.HIGH, "RH high", "RH high", "RH high", tickets=(1,)))], raised + 2)
    [row] = store.due(raised + 2)
    store.record(row, Delivery(True, False, "http 200"), raised + 3, status="sent", next_attempt=None)
    store.close()
    with AuditTrail(state / "audit.db") as trail:
        for n in range(3):
            trail.append("li.wei", "alarm.ack", f"#{n}", reason="seen")


def report_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "compliance", "--config", str(EXAMPLE), "--room", "main-1-paper",
                 "--from", "2026-01-01T00:00:00+08:00", "--to", "2026-01-31T00:00:00+08:00"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def report_csv(tmp_path: Path) -> list[list[str]]:
    out = tmp_path / "report.csv"
    assert main(["report", "compliance", "--config", str(EXAMPLE), "--room", "main-1-paper", "--format", "csv",
                 "--from", "2026-01-01T00:00:00+08:00", "--to", "2026-01-31T00:00:00+08:00", "-o", str(out)]) == 0
    return list(csv.reader(io.StringIO(out.read_text())))


def test_thirty_days_with_36_hours_above_the_limit_and_a_6_hour_gap(
        tmp_path: Path, influxd: LocalInfluxd, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STACKWATCH_INFLUX_PORT", str(influxd.port))
    monkeypatch.setenv("STACKWATCH_STATE_DIR", str(tmp_path / "state"))
    catalog = PointCatalog.from_config(load_config(EXAMPLE))
    client = influx(influxd)
    client.create_database()
    seed_thirty_days(client, catalog)
    seed_state(tmp_path / "state")

    report = report_json(capsys)
    [room] = report["rooms"]
    rh, t = room["humidity"], room["temperature"]
    # time within: the hour before the gap holds for max_gap = 2 h, so 5 of the gap's 6 hours are unknown
    assert rh["time_within"] == {"within": 679 * HOUR, "outside": 36 * HOUR, "unknown": 5 * HOUR,
                                 "share_of_known": 679 / 715, "share_of_period": 679 / 720}
    assert t["time_within"] == {"within": 715 * HOUR, "outside": 0.0, "unknown": 5 * HOUR,
                                "share_of_known": 1.0, "share_of_period": 715 / 720}
    assert [(e["start"], e["end"], e["duration"], e["peak"], e["side"], e["limit"], e["ended_by"])
            for e in rh["excursions"]] == [(START + a, START + b, b - a, 63.0, "high", 60, "return")
                                           for a, b in EXCURSIONS]
    assert sum(e["duration"] for e in rh["excursions"]) == 36 * HOUR and t["excursions"] == []
    assert (rh["min"], rh["max"], t["min"], t["mean"], t["max"]) == (52.0, 63.0, 19.0, 19.0, 19.0)
    # time-weighted hourly means: 713 rows weigh their hour, the one before the gap 2 h, the last nothing
    assert rh["mean"] == pytest.approx((36 * 63 + 678 * 52) / 714)
    for quantity in (rh, t):
        complete = quantity["completeness"]
        assert (complete["expected"], complete["present"], complete["ratio"]) == (720, 714, 714 / 720)
        assert complete["gaps"] == [[START + GAP[0], START + GAP[1]]] and complete["gap_seconds"] == 6 * HOUR
        assert quantity["source"] == "rollup 1h"
    days = rh["daily_fluctuation"]
    assert (days["days_measured"], days["days_within"], days["share"]) == (30, 27, 0.9)
    assert [d["date"] for d in days["days"] if not d["within"]] == ["2026-01-03", "2026-01-10", "2026-01-20"]
    assert t["daily_fluctuation"]["share"] == 1.0
    twpi = 714 / (36 / preservation_index(19, 63) + 678 / preservation_index(19, 52))
    preservation = room["preservation"]
    assert preservation["twpi"] == round(twpi, 1) and preservation["hours_measured"] == 714
    assert preservation["mould_risk_days"] == 0.0  # 19 °C at 63 % is below every mould isopleth
    key = room["key_figures"]
    assert key == {"temperature_share_within": 715 / 720, "humidity_share_within": 679 / 720,
                   "temperature_days_within_allowance": 1.0, "humidity_days_within_allowance": 0.9,
                   "twpi": round(twpi, 1), "mould_risk_days": 0.0, "completeness": 714 / 720, "alarms": 1}
    assert report["key_figures"][0]["resolution"]["humidity_share_within"] == "hourly means (rollup 1h)"
    assert report["key_figures"][0]["humidity_share_within"] == 679 / 720

    [alarm] = report["alarm_history"]["alarms"]
    raised = START + EXCURSIONS[0][0] + 600
    assert (alarm["raised"], alarm["acknowledged"], alarm["acknowledged_by"], alarm["seconds_to_acknowledge"],
            alarm["cleared"]) == (raised, raised + 1500, "li.wei", 1500, START + EXCURSIONS[0][1] + 300)
    assert [(n["at"], n["person"], n["channel"], n["outcome"]) for n in alarm["notifications"]] == [
        (raised + 3, "li.wei", "sms", "http 200")]
    performance = report["alarm_performance"]
    assert performance["activations"] == 1 and performance["avg_per_10min"] == pytest.approx(1 / (30 * 144))
    assert performance["time_to_acknowledge"]["high"]["median_seconds_to_acknowledge"] == 1500
    assert report["integrity"]["audit"]["ok"] is True and report["integrity"]["audit"]["rows"] == 3

    rows = report_csv(tmp_path)
    header, line = rows[0], rows[1]
    figures = dict(zip(header, line, strict=True))
    assert figures["room"] == "main-1-paper" and rows[2] == []
    assert float(figures["humidity_share_within"]) == 679 / 720
    assert float(figures["temperature_share_within"]) == 715 / 720
    assert float(figures["humidity_days_within_allowance"]) == 0.9
    assert float(figures["completeness"]) == 714 / 720 and float(figures["twpi"]) == round(twpi, 1)
    assert (figures["rh_min"], figures["rh_max"], figures["t_mean"]) == ("52.0", "63.0", "19.0")
    assert float(figures["rh_mean"]) == pytest.approx((36 * 63 + 678 * 52) / 714)
    assert (figures["rh_excursions"], figures["t_excursions"], figures["alarms"]) == ("3", "0", "1")
    assert figures["rh_resolution"] == "1h rollup 1h" and figures["mould_risk_days"] == "0.0"
    excursions = [r[1:] for r in rows if r and r[0] == "excursions"]
    assert [(r[1], float(r[3]) - START, float(r[4]) - START, float(r[5]), float(r[6])) for r in excursions] == [
        ("humidity", a, b, b - a, 63.0) for a, b in EXCURSIONS]
    gaps = [r[1:] for r in rows if r and r[0] == "gaps"]
    assert [(r[1], float(r[2]) - START, float(r[4])) for r in gaps] == [
        ("temperature", GAP[0], 6 * HOUR), ("humidity", GAP[0], 6 * HOUR)]
    assert ["integrity", "audit_chain", "intact"] in rows
    assert [r[1:4] for r in rows if r and r[0] == "notifications"] == [["1", str(raised + 3), "li.wei"]]

    # someone with write access edits the second audit row: the report says so, in JSON and CSV
    db = sqlite3.connect(tmp_path / "state" / "audit.db")
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("UPDATE audit SET reason = 'not seen' WHERE seq = 2")
    db.commit()
    db.close()
    audit = report_json(capsys)["integrity"]["audit"]
    assert audit["ok"] is False and audit["first_broken"] == 2
    assert ["integrity", "audit_chain", "BROKEN"] in report_csv(tmp_path)
