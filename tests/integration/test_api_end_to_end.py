"""The API as deployed: `stackwatch run` with the simulators, real influxd and mosquitto, a real HTTP client.

First start writes a generated admin password (no default password); the admin logs in, makes a viewer, reads
rooms whose values match InfluxDB, follows the live stream while a fire starts, acknowledges over HTTP, and
finds it all in an audit trail whose hash chain verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .service_harness import ROOT, Archive, influx, start_archive, stop_archive, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    running = start_archive(tmp_path_factory.mktemp("api"))
    try:
        wait_for(lambda: "API listening" in running.service.output(), 30, "the API")
        time.sleep(3)
        yield running
    finally:
        stop_archive(running)


def base(archive: Archive) -> str:
    return f"http://127.0.0.1:{archive.env['STACKWATCH_API_PORT']}"


def login(archive: Archive, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base(archive), timeout=10)
    answer = client.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return client


@pytest.fixture(scope="module")
def admin(archive: Archive) -> httpx.Client:
    password = (archive.folder / "state" / "admin-password").read_text().strip()
    return login(archive, "admin", password)


def test_no_login_no_data_and_a_wrong_password_is_refused(archive: Archive) -> None:
    with httpx.Client(base_url=base(archive), timeout=10) as anonymous:
        assert anonymous.get("/api/v1/rooms").status_code == 401
        assert anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": "x" * 12}) \
            .status_code == 401
        assert anonymous.get("/healthz").json() == {"status": "ok"}


def test_rooms_show_the_values_influxdb_holds(archive: Archive, admin: httpx.Client) -> None:
    rooms = {room["id"]: room for room in admin.get("/api/v1/rooms").json()}
    assert len(rooms) == 8
    stored = influx(archive.influxd).query(
        'SELECT last("value") FROM "temperature" WHERE room = \'main-1-paper\' GROUP BY "device"')
    assert rooms["main-1-paper"]["temperature"] == pytest.approx(stored[0].values[0][1], abs=0.2)
    assert rooms["main-1-paper"]["limits"]["rh_max"]["value"] == 60
    point = admin.get("/api/v1/points/th-101.humidity").json()
    assert point["quality"] == "good" and point["fresh"]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    history = admin.get("/api/v1/points/th-101.humidity/history", params={"from": start, "agg": "raw"}).json()
    raw = influx(archive.influxd).query(
        f"SELECT \"value\" FROM humidity WHERE device = 'th-101' AND time >= '{start}'")[0].values
    assert [round(row[1], 3) for row in history["rows"]][:len(raw) - 2] == [round(v, 3) for _, v in raw][:len(raw) - 2]


def test_the_live_stream_carries_readings_and_a_fire_alarm(archive: Archive, admin: httpx.Client) -> None:
    got: dict[str, list[Any]] = {"readings": [], "alarm": []}
    with httpx.Client(base_url=base(archive), timeout=30, headers=admin.headers) as client, \
            client.stream("GET", "/api/v1/stream") as stream:
        kind = ""
        fired = False
        deadline = time.monotonic() + 25
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in got:
                got[kind].append(json.loads(line[6:]))
            if got["readings"] and not fired:
                archive.control(scenario="fire-in-room", room="main-1-special")
                fired = True
            if any(e["kind"] == "raised" and e["cause"] == "fire" for e in got["alarm"]) or time.monotonic() > deadline:
                break
    assert got["readings"] and {"point", "value", "quality", "ts"} <= set(got["readings"][0][0])
    fire = [e for e in got["alarm"] if e["cause"] == "fire" and e["kind"] == "raised"]
    assert fire and fire[0]["room"] == "main-1-special" and fire[0]["priority"] == "critical"


def test_roles_an_acknowledgement_and_the_audit_trail(archive: Archive, admin: httpx.Client) -> None:
    made = admin.post("/api/v1/users", json={"name": "guard", "role": "viewer", "password": "a-long-passphrase"})
    assert made.status_code in (200, 201), made.text
    viewer = login(archive, "guard", "a-long-passphrase")
    alarm = "fire-main.zone3_fire:fire"  # main-1-special, set by the previous test (or set now)
    archive.control(scenario="fire-in-room", room="main-1-special")
    wait_for(lambda: admin.get(f"/api/v1/alarms/{alarm}").json().get("state") == "active_unacknowledged", 20,
             "the fire alarm")
    assert viewer.post(f"/api/v1/alarms/{alarm}/acknowledge", json={"comment": "x"}).status_code == 403
    done = admin.post(f"/api/v1/alarms/{alarm}/acknowledge", json={"comment": "brigade called"})
    assert done.status_code == 200 and done.json()["events"][0]["state"] == "active_acknowledged"
    archive.control(scenario="fire-in-room", room="main-1-special", on=False)

    assert viewer.get("/api/v1/audit").status_code == 403
    audit = admin.get("/api/v1/audit").json()
    assert audit["verification"]["ok"], audit["verification"]
    actions = [(row["actor"], row["action"]) for row in audit["rows"]]
    assert ("admin", "login.success") in actions and ("admin", "alarm.acknowledge") in actions
    assert ("admin", "user.add") in actions and ("system", "service.start") in actions
    verified = subprocess.run([sys.executable, "-m", "stackwatch", "audit", "verify", "--config", str(archive.config)],
                              env=archive.env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr


def test_readiness_and_metrics(archive: Archive) -> None:
    with httpx.Client(base_url=base(archive), timeout=10) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert {"influxdb", "broker", "spool", "alarm_engine", "gateway:bus-main"} <= set(ready.json()["checks"])
        text = client.get("/metrics").text
    accepted = next(line for line in text.splitlines() if line.startswith("stackwatch_readings_accepted_total "))
    assert float(accepted.split()[1]) > 0
    assert 'stackwatch_poll_cycle_seconds{gateway="gw-main"}' in text
    queued = next(line for line in text.splitlines() if line.startswith("stackwatch_alarm_queue_readings "))
    assert 0 <= float(queued.split()[1]) <= 20_000 + 10_000  # bounded hand-over (one batch may go past the bound)
    assert "stackwatch_alarm_queue_waits_total " in text
