"""The `alarms:` section: mistakes named by path, tuning layered room → defaults → built-in; the CLI."""

from __future__ import annotations

import json

import pytest

from stackwatch.cli import main
from stackwatch.config import ConfigError, parse_config

SITE = """
site: {id: s, timezone: Asia/Shanghai}
buildings: [{id: a}]
rooms:
  - {id: r1, building: a, profile: paper}
  - {id: r2, building: a, profile: film-master}
gateways:
  - {type: modbus-tcp, id: g1, host: 127.0.0.1}
devices:
  - {id: d1, protocol: modbus, gateway: g1, room: r1, calibration_due: "2027-02-30",
     points: [{id: t, quantity: temperature, table: input, address: 1}]}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml")
    return caught.value.problems


def test_a_bad_calibration_date_is_named_by_its_path() -> None:
    [problem] = problems(SITE)
    assert problem.startswith("devices[0].calibration_due (line 10)") and "2027-02-30" in problem


@pytest.mark.parametrize(("section", "expected"), [
    ("alarms: {rooms: {r9: {limit_on_delay: 5m}}}", "alarms.rooms.r9 (line 12): unknown room 'r9'"),
    ("alarms: {opening_hours: {weekly: {mon: ['18:00-08:00']}}}", "alarms.opening_hours.weekly"),
    ("alarms: {opening_hours: {weekly: {monday: ['08:00-18:00']}}}", "unknown weekday 'monday'"),
    ("alarms: {opening_hours: {closed_dates: ['2027-13-01']}}", "alarms.opening_hours.closed_dates"),
    ("alarms: {defaults: {rh_deadband: 40}}", "alarms.defaults.rh_deadband"),
    ("alarms: {cause_priority: {fire: urgent}}", "alarms.cause_priority.fire"),
    ("alarms: {defaults: {limit_on_delay: soon}}", "alarms.defaults.limit_on_delay"),
])
def test_alarm_section_mistakes_are_named_by_path(section: str, expected: str) -> None:
    text = SITE.replace('"2027-02-30"', '"2027-02-28"') + section + "\n"
    found = problems(text)
    assert any(expected in problem for problem in found), found


def test_tuning_layers_room_over_defaults_over_built_in() -> None:
    text = SITE.replace('"2027-02-30"', '"2027-02-28"') + (
        "alarms: {defaults: {limit_on_delay: 20m}, rooms: {r2: {limit_on_delay: 2m, rh_deadband: 1}}}\n")
    alarms = parse_config(text, "site.yaml").alarms
    assert alarms.tuning("r1").limit_on_delay == 1200.0 and alarms.tuning("r1").rh_deadband == 2.0
    assert alarms.tuning("r2").limit_on_delay == 120.0 and alarms.tuning("r2").rh_deadband == 1.0
    assert alarms.tuning("r2").mould_after == 48 * 3600.0
    assert alarms.priorities["critical"].realarm == 300.0


def test_profiles_command_lists_every_profile_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in listed["profiles"]}
    assert {"paper", "special", "film", "film-master", "magnetic", "optical", "photo", "mixed"} <= set(names)
    assert names["film-master"]["rh_max"] == 45 and "JGJ 25-2010" in names["film-master"]["source"]
    assert main(["profiles"]) == 0
    assert "5.2.3" in capsys.readouterr().out
