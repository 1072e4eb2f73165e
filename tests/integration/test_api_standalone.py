"""`stackwatch api` as deployed beside `stackwatch run`: two processes, real influxd, mosquitto and simulators,
real HTTP. The standalone API shows the state the service shows, acts through the service's journal, streams
the service's alarm transitions, and shares its users and audit trail without breaking the hash chain."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alarms.model import AlarmState
from stackwatch.localservers import free_port

from .service_harness import Archive, Process, start_archive, stop_archive, wait_for

pytestmark = pytest.mark.integration
FIRE = "fire-main.zone3_fire:fire"  # room main-1-special


class Pair:
    def __init__(self, archive: Archive, standalone: Process, port: int) -> None:
        self.archive, self.standalone, self.port = archive, standalone, port
        password = (archive.folder / "state" / "admin-password").read_text().strip()
        self.service = _login(f"http://127.0.0.1:{archive.env['STACKWATCH_API_PORT']}", password)
        self.api = _login(f"http://127.0.0.1:{port}", password)

    def diagnostics(self) -> str:
        return f"{self.archive.diagnostics()}\n--- standalone\n{self.standalone.output()}"


def _login(base: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=15)
    answer = client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert answer.status_code == 200, answer.text
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return client


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    archive = start_archive(tmp_path_factory.mktemp("standalone"))
    port = free_port()
    standalone = Process([sys.executable, "-m", "stackwatch", "api", "--config", str(archive.config),
                          "--port", str(port)], archive.env, archive.folder / "standalone.log")
    try:
        wait_for(lambda: "API listening" in archive.service.output(), 30, "the service's API")
        standalone.start()
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30, "the standalone API")
        time.sleep(3)  # a few poll cycles into InfluxDB
        running = Pair(archive, standalone, port)
        yield running
    finally:
        standalone.stop()
        stop_archive(archive)


def test_the_standalone_api_shows_the_state_the_service_shows(pair: Pair) -> None:
    def rooms(client: httpx.Client) -> dict[str, dict[str, Any]]:
        answer = client.get("/api/v1/rooms")
        assert answer.status_code == 200, answer.text
        return {room["id"]: room for room in answer.json()}

    service, standalone = rooms(pair.service), rooms(pair.api)
    assert service.keys() == standalone.keys() and len(service) == 8
    for room_id, room in service.items():
        other = standalone[room_id]
        assert other["limits"] == room["limits"] and other["profile"] == room["profile"]
        for quantity in ("temperature", "humidity"):  # the rooms drift slowly; InfluxDB trails by a write batch
            assert (other[quantity] is None) == (room[quantity] is None), (room_id, quantity)
            if room[quantity] is not None:
                assert other[quantity] == pytest.approx(room[quantity], abs=1.0), (room_id, quantity)
    point = pair.api.get("/api/v1/points/th-101.humidity").json()
    live = pair.service.get("/api/v1/points/th-101.humidity").json()
    assert point["quality"] == "good" and point["fresh"] and point["age"] < 15
    assert point["ts"] <= live["ts"] + 0.001 and live["ts"] - point["ts"] < 15
    def alarms(client: httpx.Client) -> list[tuple[str, str, int]]:  # equal priority and start: any order
        return sorted((a["key"], a["state"], a["ticket"]) for a in client.get("/api/v1/alarms").json())

    wait_for(lambda: alarms(pair.api) == alarms(pair.service), 10, "the same alarms in both")


def test_readiness_says_what_the_standalone_api_checks(pair: Pair) -> None:
    ready = httpx.get(f"http://127.0.0.1:{pair.port}/readyz", timeout=10)
    body = ready.json()
    assert ready.status_code == 200, body
    assert set(body["checks"]) == {"influxdb", "readings", "alarm_journal", "users"}
    assert all(check["what"] for check in body["checks"].values())
    assert "stackwatch run" in body["scope"] and body["checks"]["readings"]["newest_age_seconds"] < 60


def test_the_stream_carries_an_alarm_the_service_raised_and_readings(pair: Pair) -> None:
    got: dict[str, list[Any]] = {"readings": [], "alarm": []}
    with httpx.Client(base_url=f"http://127.0.0.1:{pair.port}", timeout=30, headers=pair.api.headers) as client, \
            client.stream("GET", "/api/v1/stream") as stream:
        kind, fired, deadline = "", False, time.monotonic() + 30
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in got:
                got[kind].append(json.loads(line[6:]))
            if got["readings"] and not fired:
                pair.archive.control(scenario="fire-in-room", room="main-1-special")
                fired = True
            if any(e["alarm"] == FIRE and e["kind"] == "raised" for e in got["alarm"]) or time.monotonic() > deadline:
                break
    assert got["readings"] and {"point", "value", "quality", "ts"} <= set(got["readings"][0][0]), pair.diagnostics()
    raised = [e for e in got["alarm"] if e["alarm"] == FIRE and e["kind"] == "raised"]
    assert raised and raised[0]["priority"] == "critical", (got["alarm"], pair.diagnostics())


def test_an_acknowledgement_through_the_standalone_api_takes_effect_in_the_service(pair: Pair) -> None:
    pair.archive.control(scenario="fire-in-room", room="main-1-special")
    wait_for(lambda: pair.archive.state(FIRE) is AlarmState.ACTIVE_UNACK, 30, "the fire alarm")
    done = pair.api.post(f"/api/v1/alarms/{FIRE}/acknowledge", json={"comment": "brigade called"})
    assert done.status_code == 200, (done.text, pair.diagnostics())
    assert [(e["kind"], e["actor"]) for e in done.json()["events"]] == [("acknowledged", "admin")]
    assert pair.archive.state(FIRE) is AlarmState.ACTIVE_ACK  # in the service's journal
    seen = pair.service.get(f"/api/v1/alarms/{FIRE}").json()
    assert seen["state"] == "active_acknowledged" and seen["acknowledged_by"] == "admin"
    assert seen["ack_comment"] == "brigade called"
    again = pair.api.post(f"/api/v1/alarms/{FIRE}/acknowledge", json={})
    assert again.status_code == 409, again.text
    pair.archive.control(scenario="fire-in-room", room="main-1-special", on=False)


def test_users_and_the_audit_trail_are_shared_and_the_chain_holds(pair: Pair) -> None:
    made = pair.api.post("/api/v1/users", json={"name": "night-guard", "role": "viewer",
                                                 "password": "a-long-passphrase"})
    assert made.status_code == 201, made.text
    assert pair.service.get("/api/v1/users/night-guard").json()["role"] == "viewer"  # made in one, seen in the other
    password = (pair.archive.folder / "state" / "admin-password").read_text().strip()
    for _ in range(3):  # both processes append to one chain, in turn
        _login(str(pair.api.base_url).rstrip("/"), password)
        _login(str(pair.service.base_url).rstrip("/"), password)
    audit = pair.service.get("/api/v1/audit").json()
    assert audit["verification"]["ok"], audit["verification"]
    actions = [(row["actor"], row["action"]) for row in audit["rows"]]
    assert ("admin", "alarm.acknowledge") in actions and ("admin", "user.add") in actions
    verified = pair.archive.cli("audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr


def test_the_standalone_api_shows_control_and_an_override_through_it_reaches_the_service(pair: Pair) -> None:
    def room(client: httpx.Client) -> dict[str, Any]:
        state = client.get("/api/v1/control").json()
        assert state["enabled"], state
        return next(r for r in state["rooms"] if r["room"] == "main-b1-paper")

    wait_for(lambda: room(pair.api)["loops"]["humidity"]["mode"] == "auto", 40, "the service's control snapshot")
    answer = pair.api.put("/api/v1/control/overrides/relay-b1.relay1",
                          json={"value": 0, "reason": "humidifier tank refilled", "minutes": 10})
    assert answer.status_code == 200, answer.text + pair.diagnostics()
    in_service = next(a for a in room(pair.service)["actuators"] if a["id"] == "relay-b1.relay1")
    assert in_service["override"]["who"] == "admin" and in_service["override"]["value"] == 0
    refused = pair.api.put("/api/v1/control/overrides/crac-b1.setpoint",
                           json={"value": 99, "reason": "x", "minutes": 5})
    assert refused.status_code == 409 and "maximum" in refused.json()["detail"]
    back = pair.api.delete("/api/v1/control/overrides/relay-b1.relay1", params={"reason": "done"})
    assert back.status_code == 200, back.text
    assert next(a for a in room(pair.api)["actuators"] if a["id"] == "relay-b1.relay1")["override"] is None
    log = pair.service.get("/api/v1/control/log", params={"target": "relay-b1.relay1"}).json()
    assert [row["kind"] for row in log if row["kind"].startswith("override")][-2:] == ["override", "override_end"]
