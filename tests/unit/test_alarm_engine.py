"""The engine over a small site on plain float time: suppression, quality, restarts, commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alarms.engine import AlarmEngine
from alarms.journal import Journal
from alarms.lifecycle import ActionRefused
from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.ruleset import build_ruleset
from stackwatch.catalog import PointCatalog
from stackwatch.config import SiteConfig
from stackwatch.readings import Quality, Reading

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday: 08:00 in Shanghai


def site(**alarms: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "test-site", "timezone": "Asia/Shanghai"},
        "buildings": [{"id": "main"}],
        "rooms": [{"id": "paper-1", "building": "main", "profile": "paper"},
                  {"id": "film-1", "building": "main", "profile": "film"}],
        "gateways": [{"type": "modbus-tcp", "id": "gw", "host": "127.0.0.1"}],
        "devices": [
            {"id": "th1", "protocol": "modbus", "gateway": "gw", "unit": 1, "room": "paper-1", "poll_interval": 10,
             "calibration_due": "2026-03-01",
             "points": [{"id": "t", "quantity": "temperature", "table": "input", "address": 1},
                        {"id": "rh", "quantity": "humidity", "table": "input", "address": 2}]},
            {"id": "th2", "protocol": "modbus", "gateway": "gw", "unit": 2, "room": "film-1", "poll_interval": 10,
             "points": [{"id": "t", "quantity": "temperature", "table": "input", "address": 1},
                        {"id": "rh", "quantity": "humidity", "table": "input", "address": 2}]},
            {"id": "panel", "protocol": "modbus", "gateway": "gw", "unit": 3, "room": "paper-1", "poll_interval": 1,
             "points": [{"id": "z1", "quantity": "fire", "table": "holding", "address": 0, "bit": 11},
                        {"id": "door", "quantity": "door_open", "table": "discrete", "address": 0}]},
        ],
        "alarms": {"defaults": {"limit_on_delay": "60s", "limit_off_delay": "10s"}, **alarms},
    })


class Harness:
    def __init__(self, path: Path, config: SiteConfig | None = None, now: float = T0) -> None:
        self.config = config or site()
        self.path = path
        self.now = now
        self.published: list[AlarmEvent] = []
        self.open()

    def open(self) -> None:
        self.journal = Journal(self.path)
        catalog = PointCatalog.from_config(self.config)
        self.engine = AlarmEngine(build_ruleset(self.config, catalog, self.now), self.journal, self.config.alarms,
                                  self.now, [lambda events, _statuses: self.published.extend(events)])

    def restart(self) -> None:
        self.journal.close()
        self.open()

    def feed(self, point: str, value: Any, quality: Quality = Quality.GOOD) -> list[AlarmEvent]:
        return self.engine.process([Reading(point, round(self.now * 1e9), value, quality)], self.now)

    def advance(self, seconds: float, step: float = 1.0, feed: dict[str, Any] | None = None) -> list[AlarmEvent]:
        events = []
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for point, value in (feed or {}).items():
                events += self.feed(point, value)
            events += self.engine.tick(self.now)
        return events

    def state(self, key: str) -> AlarmState:
        return self.engine.status[key].state


QUIET = {"th1.t": 19.0, "th1.rh": 52.0, "th2.t": 19.0, "th2.rh": 50.0, "panel.z1": False, "panel.door": False}


def test_rh_high_raises_after_its_on_delay_and_not_before(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(30, feed=QUIET)
    h.advance(59, feed={**QUIET, "th1.rh": 63.0})
    assert h.state("th1.rh:high") is AlarmState.NORMAL
    events = h.advance(2, feed={**QUIET, "th1.rh": 63.0})
    raised = [e for e in events if e.kind is EventKind.RAISED]
    assert [e.alarm for e in raised] == ["th1.rh:high"]
    assert raised[0].priority is Priority.HIGH and raised[0].value == 63.0 and raised[0].limit == 60.0
    assert "JGJ 25-2010" in raised[0].message


def test_bad_and_nan_readings_neither_raise_nor_clear_a_limit_alarm(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(70, feed={**QUIET, "th1.rh": 70.0})
    assert h.state("th1.rh:high") is AlarmState.ACTIVE_UNACK
    for _ in range(40):  # a sentinel and NaN for 40 s: the alarm stays, the sensor fault comes
        h.now += 1
        h.feed("th1.rh", None, Quality.BAD)
        h.feed("th1.rh", float("nan"))
        h.engine.tick(h.now)
    assert h.state("th1.rh:high") is AlarmState.ACTIVE_UNACK
    assert h.state("th1.rh:sensor_fault") is AlarmState.ACTIVE_UNACK
    fresh = Harness(tmp_path / "k.db")
    for _ in range(120):
        fresh.now += 1
        fresh.feed("th1.rh", 1e9, Quality.BAD)
        fresh.engine.tick(fresh.now)
    assert fresh.state("th1.rh:high") is AlarmState.NORMAL


def test_device_comm_loss_hides_its_points_no_data_and_gateway_down_hides_the_devices(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(20, feed=QUIET)
    down = {key: None for key in QUIET}
    events: list[AlarmEvent] = []
    for _ in range(200):
        h.now += 1
        for point in down:
            events += h.feed(point, None, Quality.COMM_FAILURE)
        events += h.engine.tick(h.now)
    raised = {e.alarm for e in events if e.kind is EventKind.RAISED and e.cause != "calibration_due"}
    assert raised == {"gateway/gw:comm_loss"}, raised  # one alarm says it all
    assert h.engine.status["th1:comm_loss"].suppressed_by == "gateway/gw:comm_loss"
    assert h.engine.status["th1.rh:no_data"].condition  # tracked, hidden
    assert h.engine.status["th1.rh:no_data"].state is AlarmState.NORMAL


def test_one_device_down_raises_its_comm_loss_and_hides_its_no_data(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    events: list[AlarmEvent] = []
    for _ in range(200):
        h.now += 1
        for point, value in QUIET.items():
            if point.startswith("th1."):
                events += h.feed(point, None, Quality.COMM_FAILURE)
            else:
                events += h.feed(point, value)
        events += h.engine.tick(h.now)
    raised = {e.alarm for e in events if e.kind is EventKind.RAISED and e.cause != "calibration_due"}
    assert raised == {"th1:comm_loss"}
    assert h.engine.status["th1.t:no_data"].suppressed_by == "th1:comm_loss"


def test_fire_is_critical_at_once_and_hides_the_rooms_temperature_alarms(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(5, feed=QUIET)
    events = h.feed("panel.z1", True)
    assert [(e.alarm, e.priority) for e in events if e.kind is EventKind.RAISED] == [
        ("panel.z1:fire", Priority.CRITICAL)]
    events = h.advance(120, feed={**QUIET, "panel.z1": True, "th1.t": 40.0})
    assert not [e for e in events if e.kind is EventKind.RAISED and e.alarm.startswith("th1.t:")]
    assert h.engine.status["th1.t:high"].condition and h.engine.status["th1.t:high"].suppressed_by


def test_door_open_outside_opening_hours_is_forced_inside_it_is_only_held_open(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")  # 08:00 Thursday in Shanghai: open
    events = h.advance(700, step=10, feed={**QUIET, "panel.door": True})
    kinds = {e.alarm for e in events if e.kind is EventKind.RAISED and e.alarm.startswith("panel.")}
    assert kinds == {"panel.door:held_open"}
    night = Harness(tmp_path / "n.db", now=T0 + 14 * 3600)  # 22:00 in Shanghai
    events = night.feed("panel.door", True)
    assert {e.alarm for e in events if e.kind is EventKind.RAISED} == {"panel.door:forced"}


def test_restart_keeps_an_acknowledged_alarm_acknowledged_and_raises_nothing_twice(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(70, feed={**QUIET, "th1.rh": 70.0})
    ticket = h.engine.status["th1.rh:high"].occurrence
    since = h.engine.status["th1.rh:high"].active_since
    h.engine.acknowledge(f"#{ticket}", "li.wei", "dehumidifier started", h.now)
    raised_before = h.journal.count_events(EventKind.RAISED)
    h.restart()
    h.advance(120, feed={**QUIET, "th1.rh": 70.0})
    status = h.engine.status["th1.rh:high"]
    assert status.state is AlarmState.ACTIVE_ACK and status.acked_by == "li.wei"
    assert status.occurrence == ticket and status.active_since == since
    assert h.journal.count_events(EventKind.RAISED) == raised_before


def test_a_half_run_on_delay_resumes_after_restart(tmp_path: Path) -> None:
    config = site(defaults={"limit_on_delay": "10m", "limit_off_delay": "10s"})
    h = Harness(tmp_path / "j.db", config)
    h.advance(400, step=10, feed={**QUIET, "th1.rh": 70.0})
    h.restart()
    events = h.advance(210, step=10, feed={**QUIET, "th1.rh": 70.0})
    # The first high reading came at T0+10: ten minutes later, not ten minutes after the restart.
    assert [e.ts - T0 for e in events if e.alarm == "th1.rh:high" and e.kind is EventKind.RAISED] == [610.0]


def test_realarm_repeats_at_the_priority_interval_until_acknowledged(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db", site(priorities={"critical": {"realarm": "5m"}}))
    h.feed("panel.z1", True)
    events = h.advance(11 * 60, step=5, feed={**QUIET, "panel.z1": True})
    assert len([e for e in events if e.kind is EventKind.REALARM and e.alarm == "panel.z1:fire"]) == 2
    h.engine.acknowledge("panel.z1:fire", "on-call", "", h.now)
    events = h.advance(11 * 60, step=5, feed={**QUIET, "panel.z1": True})
    assert not [e for e in events if e.kind is EventKind.REALARM and e.alarm == "panel.z1:fire"]


def test_shelved_alarm_is_not_raised_and_comes_back_when_the_shelf_expires(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    with pytest.raises(ActionRefused):
        h.engine.shelve("th2.rh:high", "op", "  ", h.now + 3600, h.now)
    h.engine.shelve("th2.rh:high", "op", "sensor being replaced", h.now + 3600, h.now)
    events = h.advance(300, step=10, feed={**QUIET, "th2.rh": 75.0})
    assert not [e for e in events if e.kind is EventKind.RAISED and e.alarm == "th2.rh:high"]
    events = h.advance(3400, step=10, feed={**QUIET, "th2.rh": 75.0})
    kinds = [e.kind for e in events if e.alarm == "th2.rh:high"]
    assert kinds == [EventKind.UNSHELVED, EventKind.RAISED]


def test_calibration_due_escalates_from_low_to_high(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")  # due 2026-03-01: 59 days ahead at T0
    h.engine.tick(h.now)
    assert h.engine.status["th1:calibration"].priority is Priority.LOW
    h.now = T0 + 40 * 86400
    events = h.engine.tick(h.now)
    assert [e.kind for e in events if e.alarm == "th1:calibration"] == [EventKind.ESCALATED]
    assert h.engine.status["th1:calibration"].priority is Priority.MEDIUM


def test_commands_from_the_journal_are_applied_and_answered(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(70, feed={**QUIET, "th1.rh": 70.0})
    ticket = h.engine.status["th1.rh:high"].occurrence
    ok = h.journal.commands.submit(h.now, "ack", str(ticket), "zhang.min", {"comment": "checked"})
    bad = h.journal.commands.submit(h.now, "shelve", "th1.rh:high", "zhang.min", {"reason": "", "duration": 60})
    unknown = h.journal.commands.submit(h.now, "ack", "no-such-alarm", "zhang.min", {})
    h.engine.run_commands(h.journal.commands.take_pending(), h.now)
    assert h.journal.commands.outcome(ok)[0] == "done"
    assert h.journal.commands.outcome(bad) == ("refused", "shelving needs a reason (ISA-18.2: every shelved alarm is "
                                              "accounted for)")
    assert h.journal.commands.outcome(unknown)[0] == "refused"
    assert h.engine.status["th1.rh:high"].acked_by == "zhang.min"


def test_events_reach_outputs_only_after_the_journal_has_them(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    seen_in_journal: list[bool] = []
    h.engine.outputs.append(lambda events, _s: seen_in_journal.extend(
        bool(h.journal.events(after_seq=e.seq - 1, limit=1)) for e in events))
    h.feed("panel.z1", True)
    assert seen_in_journal and all(seen_in_journal)
    assert all(e.seq > 0 for e in h.published)


def test_the_24_hour_fluctuation_window_survives_a_kill_once_checkpointed(tmp_path: Path) -> None:
    h = Harness(tmp_path / "j.db")
    h.advance(3600, step=10, feed={**QUIET, "th1.t": 17.0})  # a cool hour...
    h.advance(900, step=1, feed={**QUIET, "th1.t": 19.0})  # ...then 15 min of ticks: every window journaled
    h.restart()  # no orderly stop: what the ticks journaled is all there is
    events = h.advance(10, step=10, feed={**QUIET, "th1.t": 21.5})  # 4.5 K above the cool hour
    assert [e.kind for e in events if e.alarm == "th1.t:fluctuation"] == [EventKind.RAISED]
