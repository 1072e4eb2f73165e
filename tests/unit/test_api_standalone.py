"""The standalone API's adapters: latest state from InfluxDB's last values, alarms from the journal, actions as
journal commands that a service (here a thread running a real engine) applies, live events from polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.ruleset import build_ruleset
from api.app import create_app
from api.live import LiveFeed
from api.services import ApiServices
from api.standalone import Follower, InfluxLatest, JournalAlarms
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.readings import Quality, Reading
from stackwatch.store.influx import InfluxUnavailable, Series
from tests.unit.test_api_routes import NOW, SITE, header_auth

CATALOG = PointCatalog.from_config(SITE)
ALARM = "th1.rh:high"
NS = 1_000_000_000


class Influx:
    """InfluxDB's answer to the latest-state statements: the newest row per (device, point), as it sends it."""

    database = "stackwatch"
    retention_policy = None

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], list[Any]] = {}
        self.queries: list[str] = []
        self.down = False

    def put(self, measurement: str, point: str, ts: float, quality: str, value: Any, detail: Any = None) -> None:
        device, name = point.split(".")
        self.rows[(measurement, device, name)] = [round(ts * NS), quality, value, detail]

    def query(self, q: str, *, epoch: str | None = "ns", **_: Any) -> list[Series]:
        self.queries.append(q)
        if self.down:
            raise InfluxUnavailable("connection refused")
        return [Series(m, ["time", "last", "value", "detail"], [row], {"device": d, "point": p})
                for (m, d, p), row in self.rows.items() if f'FROM "{m}"' in q]


@pytest.fixture
def influx() -> Influx:
    store = Influx()
    store.put("temperature", "th1.t", NOW + 50, "good", 19)  # JSON has no 19.0
    store.put("humidity", "th1.rh", NOW + 50, "good", 58.0)
    store.put("state", "panel.z1", NOW + 55, "comm_failure", None, "no response within 0.5 s")
    return store


class Service:
    """`stackwatch run`'s side of the journal: a real engine applying the command table every 50 ms."""

    def __init__(self, path: Path) -> None:
        self.journal = Journal(path)
        self.engine = AlarmEngine(build_ruleset(SITE, CATALOG, NOW), self.journal, SITE.alarms, NOW)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            commands = self.journal.commands.take_pending()
            if commands:
                self.engine.run_commands(commands, NOW + 70)

    def start(self) -> Service:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "alarms.db")
    running.engine.process([Reading("th1.rh", round((NOW + 50) * NS), 58.0)], NOW + 50)
    yield running
    running.stop()


def alarms_of(service: Service, wait: float = 2.0) -> JournalAlarms:
    definitions = build_ruleset(SITE, CATALOG, NOW).definitions
    return JournalAlarms(Journal(service.journal.path), definitions, "archive", lambda: NOW + 60, wait=wait)


def client_for(influx: Influx, alarms: JournalAlarms) -> TestClient:
    services = ApiServices(config=SITE, catalog=CATALOG, live=InfluxLatest(influx, CATALOG, lambda: NOW + 60),  # type: ignore[arg-type]
                           now=lambda: NOW + 60, alarms=alarms, alarm_service=alarms)
    return TestClient(create_app(ApiConfig(), services, header_auth), raise_server_exceptions=False)


VIEWER, OPERATOR = {"x-role": "viewer"}, {"x-role": "operator"}


def test_latest_state_is_each_points_newest_reading_with_its_own_quality_and_time(influx: Influx) -> None:
    latest = InfluxLatest(influx, CATALOG, lambda: NOW + 60)  # type: ignore[arg-type]
    assert latest.snapshot() == {
        "th1.t": Reading("th1.t", round((NOW + 50) * NS), 19.0),
        "th1.rh": Reading("th1.rh", round((NOW + 50) * NS), 58.0),
        "panel.z1": Reading("panel.z1", round((NOW + 55) * NS), None, Quality.COMM_FAILURE, "no response within 0.5 s"),
    }
    statements = influx.queries[0].split("; ")
    assert len(influx.queries) == 1 and len(statements) == 3  # one request, one statement per measurement
    assert all(s.startswith('SELECT last("quality"), "value", "detail" FROM') for s in statements)
    assert f"time > {round((NOW + 60 - 86400) * NS)}" in statements[0]


def test_one_request_serves_every_caller_for_a_second_and_the_last_answer_outlives_an_outage(influx: Influx) -> None:
    latest = InfluxLatest(influx, CATALOG, lambda: NOW + 60, ttl=0.2)  # type: ignore[arg-type]
    for _ in range(50):
        latest.get("th1.t")
    assert len(influx.queries) == 1
    influx.down = True
    time.sleep(0.25)
    assert latest.get("th1.rh") is not None and latest.last_error == "connection refused"


def test_routes_answer_from_influxdb_and_the_journal(influx: Influx, service: Service) -> None:
    client = client_for(influx, alarms_of(service))
    room = client.get("/api/v1/rooms/r1", headers=VIEWER).json()
    assert (room["temperature"], room["humidity"], room["status"]) == (19.0, 58.0, "alarm")
    assert room["states"] == {"fire": None}  # the panel does not answer: unknown, not "no fire"
    point = client.get("/api/v1/points/panel.z1", headers=VIEWER).json()
    assert point["quality"] == "comm_failure" and point["age"] == 5.0 and point["value"] is None
    alarms = client.get("/api/v1/alarms", headers=VIEWER).json()
    assert [a["key"] for a in alarms] == [ALARM] and alarms[0]["state"] == "active_unacknowledged"
    ticket = alarms[0]["ticket"]
    detail = client.get(f"/api/v1/alarms/{ticket}", headers=VIEWER).json()
    assert detail["key"] == ALARM and [e["kind"] for e in detail["journal"]] == ["raised"]
    assert client.get("/api/v1/alarm-performance", headers=VIEWER).json()["activations"] == 1


def test_no_reading_before_influxdb_first_answers_is_a_503_not_an_empty_site(influx: Influx, service: Service) -> None:
    influx.down = True
    answer = client_for(influx, alarms_of(service)).get("/api/v1/rooms", headers=VIEWER)
    assert answer.status_code == 503 and "InfluxDB" in answer.json()["detail"]


def test_an_acknowledgement_is_a_journal_command_the_service_applies(influx: Influx, service: Service) -> None:
    service.start()
    client = client_for(influx, alarms_of(service))
    done = client.post(f"/api/v1/alarms/{ALARM}/acknowledge", json={"comment": "dehumidifier on"}, headers=OPERATOR)
    assert done.status_code == 200, done.text
    assert [(e["kind"], e["actor"], e["comment"]) for e in done.json()["events"]] == [
        ("acknowledged", "operator-user", "dehumidifier on")]
    assert service.engine.status[ALARM].acked_by == "operator-user"
    assert client.get(f"/api/v1/alarms/{ALARM}", headers=VIEWER).json()["state"] == "active_acknowledged"
    again = client.post(f"/api/v1/alarms/{ALARM}/acknowledge", json={}, headers=OPERATOR)
    assert again.status_code == 409 and "nothing to acknowledge" in again.json()["detail"]
    shelved = client.post(f"/api/v1/alarms/{ALARM}/shelve", json={"reason": "sensor swap", "minutes": 30},
                          headers=OPERATOR).json()["events"]
    assert shelved[0]["kind"] == "shelved" and shelved[0]["until"] == NOW + 70 + 1800
    assert client.post("/api/v1/alarms/nothing/unshelve", headers=OPERATOR).status_code == 404


def test_without_a_running_service_an_action_is_withdrawn_and_answered_503(influx: Influx, service: Service) -> None:
    alarms = alarms_of(service, wait=0.3)
    answer = client_for(influx, alarms).post(f"/api/v1/alarms/{ALARM}/acknowledge", json={}, headers=OPERATOR)
    assert answer.status_code == 503 and "withdrawn" in answer.json()["detail"]
    assert service.journal.commands.take_pending() == []  # a service starting later does not act on it by surprise
    assert service.engine.status[ALARM].acked_by == ""


def test_the_follower_streams_alarm_transitions_and_changed_readings(influx: Influx, service: Service) -> None:
    alarms, feed = alarms_of(service), LiveFeed()
    follower = Follower(feed, alarms, InfluxLatest(influx, CATALOG, lambda: NOW + 60, ttl=0))  # type: ignore[arg-type]
    follower.step(readings=True)
    seq, readings = feed.readings_since(0)
    assert {r.point for r in readings} == {"th1.t", "th1.rh", "panel.z1"}
    assert feed.events_since(0)[1] == []  # what was journaled before the API started is history, not news
    influx.put("humidity", "th1.rh", NOW + 60, "good", 52.0)
    service.engine.process([Reading("th1.rh", round((NOW + 60) * NS), 52.0)], NOW + 60)
    follower.step(readings=True)
    assert [r.value for r in feed.readings_since(seq)[1]] == [52.0]
    assert [e.kind.value for e in feed.events_since(0)[1]] == ["returned"]


def test_while_one_request_asks_influxdb_the_others_get_the_previous_answer(influx: Influx) -> None:
    latest = InfluxLatest(influx, CATALOG, lambda: NOW + 60, ttl=0.05)  # type: ignore[arg-type]
    latest.refresh()
    asked = threading.Event()
    slow_query = influx.query

    def slow(q: str, **kwargs: Any) -> list[Series]:
        asked.set()
        time.sleep(0.5)
        return slow_query(q, **kwargs)

    influx.query = slow  # type: ignore[method-assign]
    time.sleep(0.06)
    refreshing = threading.Thread(target=latest.refresh)
    refreshing.start()
    asked.wait(2)
    started = time.monotonic()
    assert latest.get("th1.rh") is not None and time.monotonic() - started < 0.1
    refreshing.join()
    assert latest.query_seconds >= 0.5  # and so the next one waits at least a second (twice the query)
