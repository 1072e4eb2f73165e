"""Control routes: who may read and act, what is refused and why, and the audit trail of every action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes_control import build_control_router
from control.runtime import ControlRuntime
from stackwatch.clock import ManualClock
from stackwatch.readings import Quality, Reading

from .control_site import plan
from .test_compliance_report import header_auth
from .test_control_runtime import T0, FakeUnits


class Trail:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def append(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "", ts: float | None = None) -> int:
        self.rows.append((actor, action, target, reason))
        return len(self.rows)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, ControlRuntime, Trail]:
    runtime = ControlRuntime(plan(), FakeUnits(), ManualClock(T0), tmp_path / "control.db")
    runtime([Reading("th1.humidity", round(T0 * 1e9), 54.0, Quality.GOOD, "")])
    trail = Trail()
    app = FastAPI()
    app.include_router(build_control_router(runtime, header_auth, trail))
    return TestClient(app), runtime, trail


def as_(role: str) -> dict[str, str]:
    return {"x-role": role}


@pytest.mark.parametrize(("role", "read", "act"), [(None, 401, 401), ("viewer", 200, 403), ("inspector", 200, 403),
                                                   ("operator", 200, 200), ("admin", 200, 200)])
def test_everyone_logged_in_reads_operators_and_admins_act(setup: Any, role: str | None, read: int, act: int) -> None:
    client, _, _ = setup
    headers = as_(role) if role else {}
    assert client.get("/api/v1/control", headers=headers).status_code == read
    body = {"value": 0, "reason": "servicing", "minutes": 30}
    assert client.put("/api/v1/control/overrides/io1.dh", json=body, headers=headers).status_code == act


def test_an_override_is_audited_shown_and_ended(setup: Any) -> None:
    client, _, trail = setup
    answer = client.put("/api/v1/control/overrides/io1.dh", json={"value": 0, "reason": "filter", "minutes": 30},
                        headers=as_("operator"))
    assert answer.status_code == 200 and answer.json()["override"]["who"] == "operator-user"
    room = client.get("/api/v1/control", headers=as_("viewer")).json()["rooms"][0]
    dh = next(a for a in room["actuators"] if a["id"] == "io1.dh")
    assert dh["override"]["reason"] == "filter" and dh["role"] == "dehumidifier"
    assert client.delete("/api/v1/control/overrides/io1.dh", headers=as_("operator")).status_code == 200
    assert client.delete("/api/v1/control/overrides/io1.dh", headers=as_("operator")).status_code == 409
    assert [row[1] for row in trail.rows] == ["control.override", "control.override_end"]
    log = client.get("/api/v1/control/log", params={"target": "io1.dh"}, headers=as_("viewer")).json()
    assert [row["kind"] for row in log] == ["override", "override_end"]


@pytest.mark.parametrize(("target", "body", "status", "says"), [
    ("io1.dh", {"value": 2, "reason": "x", "minutes": 5}, 409, "switch: 0 or 1"),
    ("crac1.setpoint", {"value": 99, "reason": "x", "minutes": 5}, 409, "above its allowed maximum"),
    ("crac1.setpoint", {"reason": "x", "minutes": 5}, 409, "give the value"),
    ("r1/humidity", {"value": 1, "reason": "x", "minutes": 5}, 409, "no value"),
    ("io1.dh", {"value": 0, "reason": "", "minutes": 5}, 422, ""),
    ("io1.dh", {"value": 0, "reason": "x", "minutes": 0}, 422, ""),
    ("io1.dh", {"value": 0, "reason": "x", "minutes": 10_081}, 422, ""),
    ("io1.dh", {"value": 0, "reason": "x", "minutes": 5, "force": True}, 422, ""),
    ("io9.nope", {"value": 0, "reason": "x", "minutes": 5}, 404, "no actuator or loop"),
    ("../../etc/passwd", {"value": 0, "reason": "x", "minutes": 5}, 404, ""),
    ("io1.dh%00", {"value": 0, "reason": "x", "minutes": 5}, 404, "no actuator or loop"),
])
def test_hostile_or_wrong_overrides_are_refused_clearly(setup: Any, target: str, body: dict[str, Any], status: int,
                                                        says: str) -> None:
    client, runtime, trail = setup
    answer = client.put(f"/api/v1/control/overrides/{target}", json=body, headers=as_("operator"))
    assert answer.status_code == status, answer.text
    assert says in answer.text and not runtime.overrides and not trail.rows


def test_non_finite_values_are_refused_not_crashed_on(setup: Any) -> None:
    client, runtime, _ = setup
    for text in ('{"value": NaN, "reason": "x", "minutes": 5}', '{"value": Infinity, "reason": "x", "minutes": 5}'):
        answer = client.put("/api/v1/control/overrides/crac1.setpoint", content=text,
                            headers={**as_("operator"), "content-type": "application/json"})
        assert answer.status_code in (409, 422), answer.text
    assert not runtime.overrides


def test_a_reset_without_a_latch_is_refused_and_an_unknown_room_is_404(setup: Any) -> None:
    client, _, trail = setup
    answer = client.post("/api/v1/control/rooms/r1/reset", json={"reason": "x"}, headers=as_("operator"))
    assert answer.status_code == 409 and "nothing to reset" in answer.json()["detail"]
    assert client.post("/api/v1/control/rooms/r9/reset", json={}, headers=as_("operator")).status_code == 404
    assert not trail.rows


def test_a_site_without_control_says_so() -> None:
    app = FastAPI()
    app.include_router(build_control_router(None, header_auth, None))
    client = TestClient(app)
    state = client.get("/api/v1/control", headers=as_("viewer")).json()
    assert state["enabled"] is False and state["rooms"] == []
    assert client.get("/api/v1/control/log", headers=as_("viewer")).status_code == 404
