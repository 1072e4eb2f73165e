"""Control as deployed: `stackwatch run` drives the simulated basement stack's CRAC and relay module.

Real processes: the service, the simulators (closed-loop physics for the controlled room), influxd and
mosquitto. A fire in the room stops air handling within a second of the poll that saw it, the room stays
latched after the fire clears, and an operator's reset over the HTTP API restarts it; every step is in the
control journal, the audit trail and the API's view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from control.journal import ControlJournal, LogRow

from .service_harness import Archive, influx, start_archive, stop_archive, wait_for

pytestmark = pytest.mark.integration
ROOM = "main-b1-paper"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    running = start_archive(tmp_path_factory.mktemp("control"), control_interval="3s")
    try:
        wait_for(lambda: "API listening" in running.service.output(), 30, "the API")
        yield running
    finally:
        stop_archive(running)


def rows(archive: Archive, **query: object) -> list[LogRow]:
    path = archive.folder / "state" / "control.db"
    if not path.exists():
        return []
    journal = ControlJournal(path, readonly=True)
    try:
        return journal.rows(limit=100_000, **query)  # type: ignore[arg-type]
    finally:
        journal.close()


@contextmanager
def api(archive: Archive) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{archive.env['STACKWATCH_API_PORT']}", timeout=10) as client:
        password = (archive.folder / "state" / "admin-password").read_text().strip()
        answer = client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        assert answer.status_code == 200, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
        yield client


def test_the_loops_run_the_units_and_every_write_is_read_back(archive: Archive) -> None:
    try:
        verified = wait_for(lambda: {r.target for r in rows(archive, kinds=("verified",))} >= {
            "crac-b1.run", "crac-b1.setpoint", "relay-b1.relay0"}, 40, "verified commands")
    except AssertionError:
        raise AssertionError(archive.diagnostics()) from None
    assert verified
    with api(archive) as client:
        state = client.get("/api/v1/control").json()
        room = next(r for r in state["rooms"] if r["room"] == ROOM)
        assert room["loops"]["humidity"]["mode"] == "auto" and room["loops"]["humidity"]["band"] == [45, 55]
        run = next(a for a in room["actuators"] if a["id"] == "crac-b1.run")
        assert run["commanded"] == 1 and run["state"] == "verified" and run["source"] == "auto"
        assert client.get("/api/v1/control/log", params={"target": "crac-b1.run"}).json()[0]["kind"] == "command"
    # The same rows are annotations in InfluxDB's `events`, through the spool like the readings.
    def annotations() -> int:
        found = influx(archive.influxd).query(
            "SELECT count(\"message\") FROM events WHERE \"cause\" = 'control' AND \"alarm\" = 'crac-b1.run'")
        return int(found[0].values[0][1]) if found else 0

    wait_for(lambda: annotations() >= 2, 20, "the command and its verification as events in InfluxDB")


def test_fire_stops_air_handling_within_a_second_and_an_operator_resets_over_the_api(archive: Archive) -> None:
    wait_for(lambda: any(r.target == "crac-b1.run" for r in rows(archive, kinds=("verified",))), 40, "the CRAC on")
    archive.control(scenario="fire-in-room", room=ROOM)
    try:
        stop = wait_for(lambda: [r for r in rows(archive, target="crac-b1.run", kinds=("command",))
                                 if r.source == "interlock" and r.value == 0], 20, "the interlock's command")[0]
        first_seen = wait_for(lambda: influx(archive.influxd).query(
            "SELECT first(\"value\") FROM state WHERE device = 'fire-main' AND point = 'zone1_fire' "
            "AND \"value\" = true"), 10, "the fire reading in InfluxDB")
        seen_at = first_seen[0].values[0][0] / 1e9
        assert 0 <= stop.ts - seen_at <= 1.0, (stop.ts, seen_at)
        damper = [r for r in rows(archive, target="relay-b1.relay2", kinds=("command",)) if r.source == "interlock"]
        assert damper and damper[0].value == 0 and damper[0].ts - seen_at <= 1.0
        # The unit proves it stopped: its `running` status bit is read back.
        wait_for(lambda: [r for r in rows(archive, target="crac-b1.run", kinds=("verified",)) if r.value == 0],
                 40, "the CRAC's read-back")
    finally:
        archive.control(scenario="fire-in-room", room=ROOM, on=False)
    cleared = wait_for(lambda: [r for r in rows(archive, room=ROOM, kinds=("interlock",))
                                if "operator resets" in r.reason], 20, "the fire cleared")[0]
    time.sleep(8)  # several control cycles: the room stays latched
    assert not [r for r in rows(archive, target="crac-b1.run", kinds=("command",))
                if r.ts > cleared.ts and r.value == 1]
    with api(archive) as client:
        room = next(r for r in client.get("/api/v1/control").json()["rooms"] if r["room"] == ROOM)
        assert room["interlock"]["awaiting_reset"] and room["loops"]["humidity"]["mode"] == "interlock"
        # The interlock is an alarm of its own (a key with a slash), acknowledged like any other.
        alarm = f"control/{ROOM}:interlock"
        detail = client.get(f"/api/v1/alarms/{alarm}")
        assert detail.status_code == 200 and detail.json()["state"] != "normal", detail.text
        ack = client.post(f"/api/v1/alarms/{alarm}/acknowledge", json={"comment": "fire brigade on site"})
        assert ack.status_code == 200, ack.text
        answer = client.post(f"/api/v1/control/rooms/{ROOM}/reset", json={"reason": "room inspected, no damage"})
        assert answer.status_code == 200, answer.text
        again = client.post(f"/api/v1/control/rooms/{ROOM}/reset", json={"reason": "twice"})
        assert again.status_code == 409 and "nothing to reset" in again.json()["detail"]
        audit = client.get("/api/v1/audit", params={"action": "control.reset"}).json()
        rows_ = audit["rows"] if isinstance(audit, dict) else audit
        assert any(row["target"] == ROOM and row["actor"] == "admin" for row in rows_)
    wait_for(lambda: [r for r in rows(archive, target="crac-b1.run", kinds=("verified",))
                      if r.ts > cleared.ts and r.value == 1], 40, "air handling back after the reset")
    assert [r.who for r in rows(archive, room=ROOM, kinds=("reset",))] == ["admin"]


def test_an_operator_override_expires_back_to_automatic(archive: Archive) -> None:
    with api(archive) as client:
        refused = client.put("/api/v1/control/overrides/crac-b1.setpoint",
                             json={"value": 35, "reason": "too warm", "minutes": 1})
        assert refused.status_code == 409 and "maximum 30" in refused.json()["detail"]
        answer = client.put("/api/v1/control/overrides/relay-b1.relay1",
                            json={"value": 0, "reason": "humidifier tank empty", "minutes": 0.1})
        assert answer.status_code == 200, answer.text
        assert client.put("/api/v1/control/overrides/relay-b1.nope",
                          json={"value": 0, "reason": "x", "minutes": 1}).status_code == 404
    ended = wait_for(lambda: rows(archive, target="relay-b1.relay1", kinds=("override_end",)), 30,
                     "the override's expiry")
    assert ended[-1].who == "system" and "expired" in ended[-1].reason
