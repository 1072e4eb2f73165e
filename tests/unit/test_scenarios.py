"""Scenarios on the simulators' clock: switched by control commands or a script, no servers needed."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulators.main import SimulatedSite, main
from simulators.mqtt_sim import MqttDeviceSim
from simulators.room import RoomModel
from simulators.scenarios import (
    ScriptPlayer,
    Step,
    load_script,
    parse_command,
    parse_script,
    run_script,
    switch_room_scenario,
)
from simulators.site import SimDeviceSpec, SimGatewaySpec, SimSite

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0


class Clock:
    """The injected sim clock, moved by the test."""

    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


def small_site(clock: Clock) -> SimulatedSite:
    """Two rooms, a fire panel on gateway gw-a watching both, sensors on gw-a and gw-b; nothing is opened."""
    rooms = {name: RoomModel(name, t_set=19.0, rh_set=52.0) for name in ("stack-1", "stack-2")}
    gateways = [SimGatewaySpec("gw-a", "modbus-tcp", port=0), SimGatewaySpec("gw-b", "modbus-tcp", port=0),
                SimGatewaySpec("gw-empty", "modbus-tcp", port=0)]
    devices = [
        SimDeviceSpec("fire", "notifier-fire-gateway", "modbus", "stack-1", gateway="gw-a", unit=1,
                      options={"zones": 2, "zone_rooms": "stack-1,stack-2"}),
        SimDeviceSpec("th-1", "xy-md02", "modbus", "stack-1", gateway="gw-a", unit=2),
        SimDeviceSpec("th-2", "xy-md02", "modbus", "stack-2", gateway="gw-b", unit=1),
        SimDeviceSpec("leak-2", "rle-seahawk", "modbus", "stack-2", gateway="gw-b", unit=3),
    ]
    site = SimulatedSite(SimSite("test-site", rooms, gateways, devices), clock)
    site.prepare()
    return site


def baseline(room_id: str, at: float) -> tuple[float, float]:
    """The room as it is with no scenario: the reference a scenario's drift is measured from."""
    state = RoomModel(room_id, t_set=19.0, rh_set=52.0).state(at)
    return state.temperature, state.humidity


def drift(site: SimulatedSite, room_id: str, at: float) -> tuple[float, float]:
    state = site.site.rooms[room_id].state(at)
    t, rh = baseline(room_id, at)
    return round(state.temperature - t, 3), round(state.humidity - rh, 3)


def test_simulators_still_do_not_import_service_code() -> None:
    code = ("import sys, simulators.main, simulators.scenarios; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('stackwatch', 'collector', 'alarms', 'api')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- hvac-failure ----


def test_hvac_failure_rises_at_the_rate_and_caps_at_the_peak() -> None:
    clock = Clock()
    site = small_site(clock)
    site.control({"scenario": "hvac-failure", "room": "stack-1", "on": True})
    assert drift(site, "stack-1", T0) == pytest.approx((0.0, 0.0), abs=0.002)
    assert drift(site, "stack-1", T0 + 0.5 * HOUR) == pytest.approx((1.0, 10.0), abs=0.002)
    assert drift(site, "stack-1", T0 + HOUR) == pytest.approx((2.0, 20.0), abs=0.002)
    assert drift(site, "stack-1", T0 + 1.25 * HOUR) == pytest.approx((2.5, 25.0), abs=0.002)  # RH at its cap
    assert drift(site, "stack-1", T0 + 2.5 * HOUR) == pytest.approx((5.0, 25.0), abs=0.002)  # T at its cap
    assert drift(site, "stack-1", T0 + 10 * HOUR) == pytest.approx((5.0, 25.0), abs=0.002)
    assert drift(site, "stack-2", T0 + HOUR) == (0.0, 0.0)  # only the named room


def test_hvac_failure_parameters_are_overridable() -> None:
    clock = Clock()
    site = small_site(clock)
    site.control({"scenario": "hvac-failure", "room": "stack-1", "rh_rate": 6, "rh_peak": 9, "t_rate": 1,
                  "t_peak": 1.5})
    assert drift(site, "stack-1", T0 + HOUR) == pytest.approx((1.0, 6.0), abs=0.002)
    assert drift(site, "stack-1", T0 + 3 * HOUR) == pytest.approx((1.5, 9.0), abs=0.002)


def test_hvac_recovery_ramps_back_from_where_the_room_got_to() -> None:
    clock = Clock()
    site = small_site(clock)
    site.control({"scenario": "hvac-failure", "room": "stack-1", "on": True})
    clock.advance(HOUR)  # T +2, RH +20
    half_way = site.site.rooms["stack-1"].state(clock.at - 0.5 * HOUR)
    site.control({"scenario": "hvac-failure", "room": "stack-1", "on": False})
    assert site.site.rooms["stack-1"].state(clock.at - 0.5 * HOUR) == half_way  # the past is not rewritten
    assert drift(site, "stack-1", clock.at) == pytest.approx((2.0, 20.0), abs=0.002)  # no jump when switched off
    assert drift(site, "stack-1", clock.at + 0.5 * HOUR) == pytest.approx((1.0, 10.0), abs=0.002)
    assert drift(site, "stack-1", clock.at + HOUR) == pytest.approx((0.0, 0.0), abs=0.002)
    assert drift(site, "stack-1", clock.at + 5 * HOUR) == pytest.approx((0.0, 0.0), abs=0.002)  # and stays normal
    clock.advance(0.5 * HOUR)  # failing again half way back: it climbs from +10 %, not from 0
    site.control({"scenario": "hvac-failure", "room": "stack-1", "on": True})
    assert drift(site, "stack-1", clock.at + 0.25 * HOUR) == pytest.approx((1.5, 15.0), abs=0.002)


def test_hvac_off_without_a_failure_changes_nothing() -> None:
    site = small_site(Clock())
    assert "nothing to recover" in site.control({"scenario": "hvac-failure", "room": "stack-1", "on": False})
    assert site.site.rooms["stack-1"].effects == {}  # no scenario timeline at all


def test_a_room_is_a_function_of_the_clock_and_the_switching_times() -> None:
    def run() -> list[tuple[float, float]]:
        clock = Clock()
        site = small_site(clock)
        clock.advance(120)
        site.control({"scenario": "hvac-failure", "room": "stack-1"})
        clock.advance(2000)
        site.control({"scenario": "hvac-failure", "room": "stack-1", "on": False})
        room = site.site.rooms["stack-1"]
        return [(s.temperature, s.humidity) for s in (room.state(T0 + k * 300.0) for k in range(40))]

    first = run()
    assert first == run()
    assert first[0] == baseline("stack-1", T0)  # before it was switched on, the room was normal


def test_devices_in_the_room_see_the_failure() -> None:
    clock = Clock()
    site = small_site(clock)
    sensor = site.gateways["gw-a"][2]
    before = sensor.state().humidity
    site.control({"scenario": "hvac-failure", "room": "stack-1"})
    clock.advance(2 * HOUR)
    assert sensor.state().humidity == pytest.approx(min(100.0, before + 25.0), abs=4.0)  # plus the daily cycle


# ---- flapping-humidity ----


@pytest.mark.parametrize(("around", "amplitude", "period"), [(60.0, 1.0, 20.0), (45.0, 2.5, 90.0)])
def test_flapping_humidity_crosses_the_level_both_ways_every_period(around: float, amplitude: float,
                                                                      period: float) -> None:
    clock = Clock(T0 + 123.4)
    site = small_site(clock)
    site.control({"scenario": "flapping-humidity", "room": "stack-2", "around": around, "amplitude": amplitude,
                  "period": period, "on": True})
    room = site.site.rooms["stack-2"]
    noise = 0.1
    for n in range(10):  # each period from a crest to the next, so no crossing falls on a window's edge
        start = clock.at + (n + 0.25) * period
        values = [room.state(start + k * period / 40).humidity for k in range(41)]
        assert all(around - amplitude - noise - 0.001 <= v <= around + amplitude + noise + 0.001 for v in values)
        pairs = list(itertools.pairwise(values))
        assert any(a < around <= b for a, b in pairs), f"no upward crossing in period {n}"
        assert any(a >= around > b for a, b in pairs), f"no downward crossing in period {n}"
    assert max(values) > around + amplitude - noise and min(values) < around - amplitude + noise


def test_flapping_humidity_off_returns_to_normal() -> None:
    clock = Clock()
    site = small_site(clock)
    site.control({"scenario": "flapping-humidity", "room": "stack-2", "around": 70.0})
    clock.advance(300)
    assert abs(site.site.rooms["stack-2"].state(clock.at).humidity - 70.0) <= 1.1
    site.control({"scenario": "flapping-humidity", "room": "stack-2", "on": False})
    assert site.site.rooms["stack-2"].state(clock.at).humidity == baseline("stack-2", clock.at)[1]


def test_flapping_holds_the_level_even_during_an_hvac_failure() -> None:
    """A test aims at a limit: the held RH is what the sensor shows; the temperature still drifts."""
    clock = Clock()
    site = small_site(clock)
    site.control({"scenario": "hvac-failure", "room": "stack-1"})
    site.control({"scenario": "flapping-humidity", "room": "stack-1", "around": 60.0, "noise": 0})
    state = site.site.rooms["stack-1"].state(clock.at + HOUR)  # a whole number of periods: exactly `around`
    assert state.humidity == 60.0
    assert state.temperature == pytest.approx(baseline("stack-1", clock.at + HOUR)[0] + 2.0, abs=0.002)


# ---- events and gateways ----


def test_fire_in_room_sets_the_fire_panel_zone_and_the_smoke_detector() -> None:
    site = small_site(Clock())
    panel = site.gateways["gw-a"][1]
    smoke = MqttDeviceSim("z2m-aqara-smoke", "smoke-2", site.site.rooms["stack-2"], site.now)

    def zones() -> list[int]:
        words = panel.table(3, panel.state())
        return [words[0], words[1]]

    quiet = zones()
    site.control({"scenario": "fire-in-room", "room": "stack-2", "on": True})
    assert site.site.rooms["stack-2"].state(T0).fire
    assert zones()[0] == quiet[0] and zones()[1] & 0x0810 == 0x0810  # zone 2 (stack-2): ACTIVE | FIRE
    assert json.loads(smoke.messages()[0].payload)["smoke"] is True
    site.control({"scenario": "fire-in-room", "room": "stack-2", "on": False})
    assert zones() == quiet
    assert json.loads(smoke.messages()[0].payload)["smoke"] is False


@pytest.mark.parametrize(("scenario", "event"), [("water-leak", "water_leak"), ("door-forced", "door_open"),
                                                 ("fire-in-room", "fire")])
def test_event_scenarios_set_and_clear_the_room_event(scenario: str, event: str) -> None:
    site = small_site(Clock())
    site.control({"scenario": scenario, "room": "stack-1", "on": True})
    assert getattr(site.site.rooms["stack-1"].state(T0), event) is True
    assert getattr(site.site.rooms["stack-2"].state(T0), event) is False
    site.control({"scenario": scenario, "room": "stack-1", "on": False})
    assert getattr(site.site.rooms["stack-1"].state(T0), event) is False


def test_gateway_down_times_out_every_unit_of_that_gateway_only() -> None:
    site = small_site(Clock())

    def faults() -> dict[str, list[str]]:
        return {gw: [str(d.fault) for _, d in sorted(sim.devices.items())] for gw, sim in site.gateways.items()}

    site.control({"scenario": "gateway-down", "gateway": "gw-b", "on": True})
    assert faults() == {"gw-a": ["none", "none"], "gw-b": ["timeout", "timeout"]}
    site.control({"scenario": "gateway-down", "gateway": "gw-b", "on": False})
    assert faults() == {"gw-a": ["none", "none"], "gw-b": ["none", "none"]}


@pytest.mark.parametrize(("command", "message"), [
    ({"scenario": "meteor-strike", "room": "stack-1"}, "unknown scenario 'meteor-strike'; known: hvac-failure"),
    ({"scenario": "hvac-failure", "room": "stack-9"}, "no room 'stack-9' in site test-site; rooms: stack-1, stack-2"),
    ({"scenario": "hvac-failure"}, "scenario hvac-failure needs a 'room' id"),
    ({"scenario": "gateway-down", "room": "stack-1"}, "scenario gateway-down needs a 'gateway' id"),
    ({"scenario": "gateway-down", "gateway": "gw-z"}, "no gateway 'gw-z' in site test-site"),
    ({"scenario": "gateway-down", "gateway": "gw-empty"}, "gateway 'gw-empty' has no simulated devices"),
    ({"scenario": "hvac-failure", "room": "stack-1", "rh_rat": 5},
     "scenario hvac-failure: unknown key(s) rh_rat; parameters: rh_rate, rh_peak, t_rate, t_peak"),
    ({"scenario": "hvac-failure", "room": "stack-1", "rh_rate": "fast"},
     "scenario hvac-failure: rh_rate is a number, not 'fast'"),
    ({"scenario": "hvac-failure", "room": "stack-1", "t_rate": 0}, "hvac-failure: t_rate and rh_rate are positive"),
    ({"scenario": "water-leak", "room": "stack-1", "on": "false"}, "`on` is true or false, not 'false'"),
    ({"scenario": "flapping-humidity", "room": "stack-1"}, "scenario flapping-humidity needs around"),
    ({"scenario": "flapping-humidity", "room": "stack-1", "around": 60, "period": 0},
     "flapping-humidity: period is positive"),
    ({"room": "stack-9", "event": "fire"}, "no room 'stack-9'"),
    ({"room": "stack-1", "event": "fire", "t_offset": "warm"}, "t_offset is a number, not 'warm'"),
    ({"room": "stack-1", "event": "flood", "rh_offset": 5}, "unknown room event 'flood'"),
    ({"fault": "timeout"}, "a command names a `scenario`, a `device` or a `room`"),
])
def test_bad_commands_are_refused_with_a_reason_and_change_nothing(command: dict[str, Any], message: str) -> None:
    site = small_site(Clock())
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        site.control(command)
    assert all(not room.effects and not any(room.events.values()) and room.t_offset == room.rh_offset == 0
               for room in site.site.rooms.values())
    assert all(str(d.fault) == "none" for sim in site.gateways.values() for d in sim.devices.values())
    assert site.control_logged(command).startswith("refused: ")  # what the control topic does with it


def test_a_command_parsed_once_can_be_replayed_on_a_bare_room() -> None:
    room = RoomModel("bare")
    command = parse_command({"scenario": "hvac-failure", "room": "bare", "rh_peak": 10})
    assert "RH +0.00 → +10 %" in switch_room_scenario(room, command, T0)
    assert room.state(T0 + 2 * HOUR).humidity == pytest.approx(RoomModel("bare").state(T0 + 2 * HOUR).humidity + 10)


# ---- scripts ----

SCRIPT = [
    {"at": 0, "scenario": "hvac-failure", "room": "stack-1"},
    {"at": 600, "scenario": "gateway-down", "gateway": "gw-b"},
    {"at": 600, "device": "th-1", "fault": "slow"},
    {"at": 1800, "scenario": "water-leak", "room": "stack-2"},
    {"at": 3600, "scenario": "hvac-failure", "room": "stack-1", "on": False},
]


def test_a_script_applies_each_command_when_the_clock_reaches_it() -> None:
    clock = Clock()
    site = small_site(clock)
    player = ScriptPlayer(parse_script(SCRIPT), site.control, start=clock.at)
    assert [d.split(":")[0] for d in player.play(clock.at)] == ["room stack-1"]
    clock.advance(599.9)
    assert player.play(clock.at) == []
    assert str(site.gateways["gw-b"][1].fault) == "none"
    clock.advance(0.1)
    assert len(player.play(clock.at)) == 2  # both steps at 600, in the script's order
    assert str(site.gateways["gw-b"][1].fault) == "timeout" and str(site.gateways["gw-a"][2].fault).startswith("slow")
    clock.advance(1200)  # 1800
    assert len(player.play(clock.at)) == 1 and site.site.rooms["stack-2"].state(clock.at).water_leak
    clock.advance(1800)  # 3600
    assert len(player.play(clock.at)) == 1 and player.finished and player.next_due() is None
    assert drift(site, "stack-1", T0 + 3600) == pytest.approx((2.0, 20.0), abs=0.002)  # the level when switched off
    assert drift(site, "stack-1", T0 + 7200) == pytest.approx((0.0, 0.0), abs=0.002)


def test_a_late_poll_applies_every_overdue_step_in_order() -> None:
    """A step is applied when `play` sees it due; the real runner sleeps until then, a test may poll late."""
    clock = Clock()
    site = small_site(clock)
    player = ScriptPlayer(parse_script(SCRIPT), site.control, start=clock.at)
    clock.advance(HOUR)
    done = player.play(clock.at)
    assert [line.split(":")[0] for line in done] == ["room stack-1", "gateway gw-b", "th-1", "room stack-2",
                                                     "room stack-1"]


async def test_run_script_waits_on_the_sim_clock() -> None:
    clock = Clock()
    site = small_site(clock)
    applied_at: list[float] = []
    waits: list[float] = []

    def control(command: dict[str, Any]) -> str:
        applied_at.append(clock.at - T0)
        return site.control(command)

    async def sleep(real_seconds: float) -> None:  # a sped-up clock: 60 sim seconds per real second
        waits.append(real_seconds)
        clock.advance(real_seconds * 60)

    done = await run_script(parse_script(list(reversed(SCRIPT))), control, clock, speed=60, sleep=sleep)
    assert applied_at == [0, 600, 600, 1800, 3600] and len(done) == 5
    assert waits == pytest.approx([10, 20, 30])  # real seconds between the steps at --speed 60


def test_scripts_are_checked_before_they_run(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text("- {at: 0, scenario: hvac-failure, room: stack-1}\n"
                    "- {at: 90, scenario: flapping-humidity, room: stack-1, around: 60, amplitude: 1, period: 20}\n")
    assert load_script(path) == [
        Step(0.0, {"scenario": "hvac-failure", "room": "stack-1"}),
        Step(90.0, {"scenario": "flapping-humidity", "room": "stack-1", "around": 60, "amplitude": 1, "period": 20}),
    ]
    (tmp_path / "script.json").write_text(json.dumps(SCRIPT))
    assert len(load_script(tmp_path / "script.json")) == 5
    for bad, message in [({"at": 0}, "a script is a list of steps"),
                         ([{"scenario": "fire-in-room"}], "step 1: a mapping"),
                         ([{"at": -5, "room": "r", "event": "fire"}], "step 1: `at` is sim seconds"),
                         ([{"at": 0, "room": "r", "event": "fire"}, {"at": 1, "scenario": "flood", "room": "r"}],
                          "step 2: unknown scenario 'flood'"),
                         ([{"at": 0, "fault": "timeout"}], "step 1: the command names")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_script(bad)


SITE_YAML = """
site: {id: cli-site}
rooms: [{id: stack-1, profile: paper}]
gateways: [{type: modbus-tcp, id: gw-a, port: 1502}]
devices: [{id: th-1, model: xy-md02, gateway: gw-a, unit: 1, room: stack-1}]
"""


def test_cli_lists_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for name in ("hvac-failure", "flapping-humidity", "fire-in-room", "water-leak", "door-forced", "gateway-down",
                 "--script", "rh_rate (default 20)"):
        assert name in help_text


@pytest.mark.parametrize(("script", "message"), [
    ("- {at: 0, scenario: flood, room: stack-1}\n", "step 1: unknown scenario 'flood'"),
    ("- {at: 0, scenario: water-leak, room: stack-1}\n- {at: 60, scenario: water-leak, room: stack-9, on: false}\n",
     "at 60: no simulated room 'stack-9' in site cli-site"),
    ("- {at: 5, scenario: gateway-down, gateway: gw-b}\n", "at 5: no simulated gateway 'gw-b'"),
    ("- {at: 5, device: th-9, fault: timeout}\n", "at 5: no simulated device 'th-9'"),
])
def test_cli_refuses_a_bad_script_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str], script: str,
                                                  message: str) -> None:
    (tmp_path / "site.yaml").write_text(SITE_YAML)
    (tmp_path / "script.yaml").write_text(script)
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(tmp_path / "site.yaml"), "--script", str(tmp_path / "script.yaml")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_script_yaml_reads_on_as_a_key_not_as_true(tmp_path: Path) -> None:
    """YAML 1.1 would read `on: false` as {True: False}; a script says `on:` all the time."""
    (tmp_path / "script.yaml").write_text("- {at: 0, scenario: water-leak, room: r, on: false}\n"
                                          "- {at: 1, room: r, event: fire, on: true, note: yes}\n")
    first, second = load_script(tmp_path / "script.yaml")
    assert first.command == {"scenario": "water-leak", "room": "r", "on": False}
    assert second.command == {"room": "r", "event": "fire", "on": True, "note": "yes"}
