"""The compliance report assembled from hourly rows and journal events with known answers; its route's roles."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient

from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from api.app import create_app
from api.model import Principal, Role
from api.services import ApiServices
from reports.cli import render
from reports.environment import compliance_report
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from tests.unit.test_api_routes import SITE, Runtime

START = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00 (site time zone Asia/Shanghai)
HOUR = 3600.0


@dataclass
class Series:
    rows: list[tuple[float, float, float, float, int]] = field(default_factory=list)


class Hourly:
    """Two days of hourly rows for room r1: RH 50 % except a humid afternoon (4 h at 62 % mean, 64 % peak),
    temperature 19 °C; the second day misses 6 hours of data."""

    def room(self, room_id: str, quantity: str, start: float, end: float, agg: str) -> list[Series]:
        assert agg == "1h"
        if room_id != "r1":
            return [Series()]
        rows = []
        for hour in range(48):
            if 30 <= hour < 36:
                continue  # the gap
            ts = START + hour * HOUR
            if quantity == "humidity":
                humid = 14 <= hour < 18
                rows.append((ts, 62.0 if humid else 50.0, 61.0 if humid else 49.5, 64.0 if humid else 50.5, 60))
            else:
                rows.append((ts, 19.0, 18.8, 19.2, 60))
        return [Series(rows)]


def event(kind: EventKind, ts: float, ticket: int = 1, actor: str = "system", comment: str = "",
          state: AlarmState = AlarmState.ACTIVE_UNACK) -> AlarmEvent:
    return AlarmEvent(seq=0, ts=ts, alarm="th1.rh:high", occurrence=ticket, kind=kind, state=state,
                      previous=AlarmState.NORMAL, priority=Priority.HIGH, cause="humidity_high", room="r1",
                      building="main", site="archive", source="th1.rh", value=63.0, limit=55.0, actor=actor,
                      comment=comment)


EVENTS = [event(EventKind.RAISED, START + 14.5 * HOUR),
          event(EventKind.ACKNOWLEDGED, START + 14.5 * HOUR + 600, actor="li.wei", comment="dehumidifier on",
                state=AlarmState.ACTIVE_ACK),
          event(EventKind.CLEARED, START + 18.2 * HOUR, state=AlarmState.NORMAL)]


def report() -> dict[str, Any]:
    return compliance_report(SITE, Hourly(), EVENTS, START, START + 48 * HOUR, rooms=["r1"],
                             integrity={"config_sha256": "abc"})


def test_figures_of_a_humid_afternoon_and_a_gap() -> None:
    room = report()["rooms"][0]
    rh = room["humidity"]
    assert rh["limits"] == {"low": 45, "high": 55, "daily_allowance": 10}  # r1 tightens rh_max to 55
    assert rh["time_within"]["outside"] == 4 * HOUR
    # Rows 30–35 are missing; the 29:00 row holds for its 2 h at most (to 31:00): 5 h unknown.
    assert rh["time_within"]["unknown"] == pytest.approx(5 * HOUR)
    assert rh["time_within"]["share_of_period"] < rh["time_within"]["share_of_known"]
    [excursion] = rh["excursions"]
    assert (excursion["start"], excursion["end"], excursion["peak"], excursion["side"]) == (
        START + 14 * HOUR, START + 18 * HOUR, 64.0, "high")
    assert (rh["min"], rh["max"]) == (49.5, 64.0)
    days = rh["daily_fluctuation"]["days"]
    assert [d["date"] for d in days] == ["2026-01-01", "2026-01-02"]
    assert [d["within"] for d in days] == [False, True]  # 64 − 49.5 = 14.5 > 10 on the first day
    assert rh["completeness"]["present"] == 42 and rh["completeness"]["expected"] == 48
    assert rh["completeness"]["gaps"] == [(START + 30 * HOUR, START + 36 * HOUR)]
    assert rh["completeness"]["gap_seconds"] == 6 * HOUR
    key = room["key_figures"]
    assert key["humidity_days_within_allowance"] == 0.5 and key["completeness"] == pytest.approx(42 / 48)
    assert room["preservation"]["twpi"] is not None and room["preservation"]["hours_measured"] == 42
    assert "JGJ 25-2010" in room["limit_sources"]["t_min"]


def test_alarm_history_names_who_acknowledged_and_how_fast() -> None:
    alarms = report()["rooms"][0]["alarms"]
    [alarm] = alarms["alarms"]
    assert (alarm["acknowledged_by"], alarm["comment"], alarm["cleared"]) == (
        "li.wei", "dehumidifier on", START + 18.2 * HOUR)
    assert alarms["time_to_acknowledge"]["high"]["median_seconds_to_acknowledge"] == 600


def test_csv_has_one_line_per_room_with_the_key_figures() -> None:
    rows = list(csv.reader(io.StringIO(render(report(), "csv"))))
    assert rows[0][:3] == ["room", "name", "profile"] and rows[1][0] == "r1" and rows[2] == []
    assert rows[1][-2:] == ["1h rollup 1h", "1h rollup 1h"]  # which resolution the figures came from


def test_unknown_rooms_and_empty_periods_are_refused() -> None:
    with pytest.raises(KeyError):
        compliance_report(SITE, Hourly(), [], START, START + HOUR, rooms=["nowhere"])
    with pytest.raises(ValueError):
        compliance_report(SITE, Hourly(), [], START, START)


def header_auth(permission: str) -> Any:
    def dependency(x_role: str | None = Header(default=None)) -> Principal:
        if x_role is None:
            raise HTTPException(401, "log in")
        principal = Principal(f"{x_role}-user", Role(x_role))
        if not principal.may(permission):
            raise HTTPException(403, "no")
        return principal
    return dependency


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403), ("operator", 403), ("inspector", 200),
                                              ("admin", 200)])
def test_only_inspectors_and_admins_get_reports(tmp_path: Path, role: str | None, status: int) -> None:
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(),
                           now=lambda: START + 48 * HOUR, alarms=Runtime(tmp_path), history=Hourly())
    client = TestClient(create_app(ApiConfig(), services, header_auth))
    headers = {"x-role": role} if role else {}
    answer = client.get("/api/v1/reports/compliance?from=2026-01-01T00:00:00%2B08:00&room=r1", headers=headers)
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["rooms"][0]["room"] == "r1"
        text = client.get("/api/v1/reports/compliance?from=now-2d&format=csv", headers=headers)
        assert text.status_code == 200 and text.text.startswith("room,name,profile")
