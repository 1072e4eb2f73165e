"""Every route and role: 401/403 where due, the action where allowed, values checked, bad input refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.performance import AlarmPerformance
from alarms.ruleset import build_ruleset
from api.app import create_app
from api.history import Series
from api.model import Principal, Role
from api.services import ApiServices
from stackwatch.catalog import PointCatalog
from stackwatch.config import SiteConfig
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from stackwatch.readings import Quality, Reading

NOW = 1_767_254_400.0  # 2026-01-01T08:00:00Z
SITE = SiteConfig.model_validate({
    "site": {"id": "archive", "name": "District Archive", "timezone": "Asia/Shanghai"},
    "buildings": [{"id": "main", "floors": ["1"]}],
    "rooms": [{"id": "r1", "name": "Stack 101", "building": "main", "floor": "1", "profile": "paper",
               "limits": {"rh_max": 55}},
              {"id": "r2", "building": "main", "floor": "1", "profile": "film"}],
    "gateways": [{"type": "modbus-tcp", "id": "gw", "host": "127.0.0.1"}],
    "devices": [
        {"id": "th1", "protocol": "modbus", "gateway": "gw", "unit": 1, "room": "r1", "poll_interval": 10,
         "points": [{"id": "t", "quantity": "temperature", "unit": "°C", "table": "input", "address": 1},
                    {"id": "rh", "quantity": "humidity", "unit": "%", "table": "input", "address": 2}]},
        {"id": "panel", "protocol": "modbus", "gateway": "gw", "unit": 2, "room": "r1", "poll_interval": 1,
         "points": [{"id": "z1", "quantity": "fire", "table": "holding", "address": 0, "bit": 11}]},
    ],
    "alarms": {"defaults": {"limit_on_delay": 0, "limit_off_delay": 0}},
})


class Runtime:
    """The alarm runtime's surface, running actions inline on a real engine."""

    def __init__(self, folder: Path) -> None:
        self.journal = Journal(folder / "alarms.db")
        self.performance = AlarmPerformance("archive")
        catalog = PointCatalog.from_config(SITE)
        self.engine = AlarmEngine(build_ruleset(SITE, catalog, NOW), self.journal, SITE.alarms, NOW,
                                  [lambda events, _s: [self.performance.observe(e) for e in events]])

    def call(self, action: Callable[[AlarmEngine, float], Any], timeout: float = 10.0) -> Any:
        return action(self.engine, NOW + 60)


class History:
    """The history service's answers (`api.history.Series`), one bucket each, without InfluxDB."""

    def point(self, point_key: str, start: float, end: float, agg: str) -> Series:
        if agg == "raw" and end - start > 86400 * 31:
            raise ValueError("too many raw rows; ask for an aggregate")
        quantity = "humidity" if point_key.endswith("rh") else "temperature"
        if agg == "raw":
            return Series(point_key, quantity, "%", agg, "raw", [(start, 50.0, 50.0, 50.0, 1)], ["good"])
        return Series(point_key, quantity, "%", agg, "rollup 1h", [(start, 50.0, 49.0, 51.0, 60)])

    def room(self, room_id: str, quantity: str, start: float, end: float, agg: str) -> list[Series]:
        return [self.point(f"th1.{'rh' if quantity == 'humidity' else 't'}", start, end, agg)]


class Audit:
    def __init__(self) -> None:
        self.appended: list[tuple[str, str, str, str]] = []

    def append(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "", ts: float | None = None) -> int:
        self.appended.append((actor, action, target, reason))
        return len(self.appended)


def header_auth(permission: str) -> Callable[..., Principal]:
    """Stand-in for the real token check: the role comes in a header; none → 401, too little → 403."""
    def dependency(x_role: str | None = Header(default=None)) -> Principal:
        if x_role is None:
            raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
        principal = Principal(f"{x_role}-user", Role(x_role))
        if not principal.may(permission):
            raise HTTPException(403, f"{x_role} may not {permission}")
        return principal
    return dependency


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, Runtime, Audit, LiveState]:
    runtime, audit, live = Runtime(tmp_path), Audit(), LiveState()
    live([Reading("th1.t", round((NOW + 50) * 1e9), 19.5), Reading("th1.rh", round((NOW + 50) * 1e9), 58.0),
          Reading("panel.z1", round((NOW + 55) * 1e9), False)])
    runtime.engine.process([Reading("th1.rh", round((NOW + 50) * 1e9), 58.0)], NOW + 50)
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=live, now=lambda: NOW + 60,
                           alarms=runtime, history=History(), audit=audit)
    client = TestClient(create_app(ApiConfig(), services, header_auth), raise_server_exceptions=False)
    return client, runtime, audit, live


READS = ["/api/v1/site", "/api/v1/rooms", "/api/v1/rooms/r1", "/api/v1/devices", "/api/v1/devices/th1",
         "/api/v1/points/th1.rh", "/api/v1/points/th1.rh/history", "/api/v1/rooms/r1/history", "/api/v1/alarms",
         "/api/v1/alarms/th1.rh:high", "/api/v1/alarm-performance"]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 200), ("operator", 200), ("inspector", 200),
                                              ("admin", 200)])
def test_every_read_route_needs_a_login_and_any_role_may_read(app: Any, path: str, role: str | None,
                                                              status: int) -> None:
    client = app[0]
    headers = {"x-role": role} if role else {}
    assert client.get(path, headers=headers).status_code == status


ACTIONS = [("/api/v1/alarms/th1.rh:high/acknowledge", {"comment": "dehumidifier on"}),
           ("/api/v1/alarms/th1.rh:high/shelve", {"reason": "sensor swap", "minutes": 30}),
           ("/api/v1/alarms/th1.rh:high/out-of-service", {"reason": "sensor removed"})]


@pytest.mark.parametrize(("path", "body"), ACTIONS)
@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403), ("inspector", 403), ("operator", 200),
                                              ("admin", 200)])
def test_actions_need_the_operator_or_admin_role(app: Any, path: str, body: dict[str, Any], role: str | None,
                                                 status: int) -> None:
    client, _, audit, _ = app
    headers = {"x-role": role} if role else {}
    assert client.post(path, json=body, headers=headers).status_code == status
    assert bool(audit.appended) is (status == 200)


def test_room_view_shows_values_limits_with_sources_and_alarm_status(app: Any) -> None:
    client = app[0]
    room = client.get("/api/v1/rooms/r1", headers={"x-role": "viewer"}).json()
    assert (room["temperature"], room["humidity"]) == (19.5, 58.0)
    assert room["dew_point"] == pytest.approx(11.1, abs=0.1)
    assert room["limits"]["rh_max"] == {"value": 55, "source": "site configuration (rooms: r1.limits.rh_max)"}
    assert "JGJ 25-2010" in room["limits"]["t_max"]["source"]
    assert room["status"] == "alarm" and room["alarms"]["worst"] == "high" and room["states"] == {"fire": False}
    quiet = client.get("/api/v1/rooms/r2", headers={"x-role": "viewer"}).json()
    assert quiet["status"] == "normal" and quiet["temperature"] is None


def test_acknowledging_runs_the_lifecycle_and_is_audited_with_who_and_why(app: Any) -> None:
    client, runtime, audit, _ = app
    ticket = runtime.engine.status["th1.rh:high"].occurrence
    done = client.post(f"/api/v1/alarms/{ticket}/acknowledge", json={"comment": "on it"},
                       headers={"x-role": "operator"})
    assert done.status_code == 200 and done.json()["events"][0]["state"] == "active_acknowledged"
    assert audit.appended == [("operator-user", "alarm.acknowledge", "th1.rh:high", "on it")]
    again = client.post(f"/api/v1/alarms/{ticket}/acknowledge", json={}, headers={"x-role": "operator"})
    assert again.status_code == 409 and "nothing to acknowledge" in again.json()["detail"]
    journal = client.get("/api/v1/alarms/th1.rh:high", headers={"x-role": "viewer"}).json()["journal"]
    assert [e["kind"] for e in journal] == ["raised", "acknowledged"] and journal[1]["actor"] == "operator-user"


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/v1/rooms/nowhere", 404), ("/api/v1/devices/none", 404), ("/api/v1/points/th1.nope", 404),
    ("/api/v1/alarms/no-such-alarm", 404), ("/api/v1/points/th1.rh/history?agg=5m", 422),
    ("/api/v1/points/th1.rh/history?from=2026-01-01T00:00:00", 422),  # no zone
    ("/api/v1/points/th1.rh/history?from=yesterday", 422),
    ("/api/v1/points/th1.rh/history?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 422),
    ("/api/v1/points/th1.rh/history?agg=raw&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 422),
    ("/api/v1/alarms?priority=urgent", 422), ("/api/v1/alarms?limit=0", 422),
])
def test_bad_input_gets_a_clear_error_and_never_a_stack_trace(app: Any, path: str, expected: int) -> None:
    answer = app[0].get(path, headers={"x-role": "viewer"})
    assert answer.status_code == expected, answer.text
    assert "Traceback" not in answer.text and answer.json()["detail"]


@pytest.mark.parametrize("body", [{"reason": "", "minutes": 30}, {"reason": "x", "minutes": 0},
                                  {"reason": "x", "minutes": 99999}, {"reason": "x", "minutes": 30, "extra": 1}])
def test_shelving_without_a_reason_or_with_a_silly_duration_is_refused(app: Any, body: dict[str, Any]) -> None:
    answer = app[0].post("/api/v1/alarms/th1.rh:high/shelve", json=body, headers={"x-role": "operator"})
    assert answer.status_code == 422


def test_history_answers_with_the_values_of_the_store(app: Any) -> None:
    answer = app[0].get("/api/v1/rooms/r1/history?quantity=humidity&from=2026-01-01T00:00:00%2B08:00"
                        "&to=2026-01-02T00:00:00%2B08:00&agg=1h", headers={"x-role": "viewer"}).json()
    assert answer["from"] == 1_767_196_800.0 and answer["agg"] == "1h"
    assert answer["series"][0]["rows"][0][1:4] == [50.0, 49.0, 51.0] and answer["limits"]["rh_max"]["value"] == 55


def test_oversized_bodies_are_refused(app: Any) -> None:
    answer = app[0].post("/api/v1/alarms/th1.rh:high/acknowledge", content=b"{" + b" " * 70_000 + b"}",
                         headers={"x-role": "operator", "content-type": "application/json"})
    assert answer.status_code == 413


def test_health_and_metrics_need_no_login(app: Any) -> None:
    client = app[0]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "checks": {}}
    assert client.get("/metrics").status_code == 200


def test_stale_readings_are_shown_with_their_age_not_as_fresh(app: Any) -> None:
    client, _, _, live = app
    live([Reading("th1.t", round((NOW - 3600) * 1e9), 30.0, Quality.GOOD)])
    point = client.get("/api/v1/points/th1.t", headers={"x-role": "viewer"}).json()
    assert point["fresh"] is True  # the newer reading wins over the late one
    live([Reading("panel.z1", round((NOW - 3600) * 1e9), True)])
    assert client.get("/api/v1/points/panel.z1", headers={"x-role": "viewer"}).json()["value"] is False
