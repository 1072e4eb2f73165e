"""The control section: actuators on devices, loops naming them, targets inside the room's limits."""

from __future__ import annotations

import pytest

from stackwatch.config import ConfigError, parse_config

from .control_site import SITE, plan, site


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml")
    return caught.value.problems


def test_the_example_control_section_loads_and_resolves() -> None:
    resolved = plan()
    room = resolved.rooms["r1"]
    assert room.rh_target == 50 and room.t_target == 18
    assert room.humidity_points == ("th1.humidity",) and room.temperature_points == ("th1.temperature",)
    assert room.fire_points == ("fire1.zone1",) and room.leak_points == ("fire1.leak1",)
    assert resolved.watched == {"fire1.zone1", "fire1.leak1"}
    assert set(resolved.actuators) == {"io1.dh", "io1.hum", "io1.damper", "io1.valve", "crac1.setpoint", "crac1.run"}
    assert resolved.actuators["io1.dh"].readback == "io1.di0"


def test_default_targets_are_the_middle_of_the_profile_and_the_band_fits() -> None:
    text = SITE.replace("target: 50, band: 5, ", "").replace("target: 18, ", "")
    room = plan(site(text)).rooms["r1"]
    assert room.rh_target == 52.5 and room.rh_band == 5  # paper: 45–60 %
    assert room.t_target == 19 and room.t_band == 2  # paper: 14–24 °C


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("dehumidifiers: [io1.dh]", "dehumidifiers: [io1.nope]",
     "control.rooms[0].humidity.dehumidifiers[0] (line"),
    ("dehumidifiers: [io1.dh]", "dehumidifiers: [crac1.setpoint]", "is a setpoint; this needs a switch"),
    ("setpoint: crac1.setpoint", "setpoint: io1.dh", "is a switch; this needs a setpoint"),
    ("target: 50, band: 5", "target: 58, band: 5", "control.rooms[0].humidity.target"),
    ("target: 18, setpoint", "target: 23.5, setpoint", "leaves the room's temperature limits 14–24 °C"),
    ("target: 17}]", "target: 12}]", "control.rooms[0].temperature.periods[0].target"),
    ("- room: r1", "- room: r9", "control.rooms[0].room"),
    ("readback: di0}", "readback: di7}", "devices[2].actuators[0].readback"),
    ("min: 14, max: 24,", "", "a set-point needs its allowed range"),
    ('from: "20:00"', 'from: "25:00"', "is not a time like 07:30"),
    ("humidifiers: [io1.hum]", "humidifiers: [io1.dh]", "cannot both dehumidify and humidify"),
    ("target: 50, band: 5", "target: 55, band: 5", "both reach their upper limits"),
])
def test_control_mistakes_are_named_by_path(old: str, new: str, expected: str) -> None:
    assert old in SITE
    text = SITE.replace(old, new, 1)
    if "upper limits" in expected:  # with the temperature band at its upper limit too
        text = text.replace("target: 18, setpoint", "target: 22, setpoint").replace("target: 17}]", "target: 21}]")
    found = problems(text)
    assert any(expected in problem for problem in found), found


def test_actuator_encoding_respects_range_type_and_scale() -> None:
    actuators = plan().actuators
    setpoint = actuators["crac1.setpoint"]
    assert setpoint.encode(18.5) == 185 and setpoint.decode(185) == pytest.approx(18.5)
    with pytest.raises(ValueError, match="above its allowed maximum 24"):
        setpoint.encode(24.5)
    with pytest.raises(ValueError, match="switch: 0 or 1"):
        actuators["io1.dh"].encode(2)
    assert setpoint.agrees(18.5, 18.54) and not setpoint.agrees(18.5, 18.8)
    for hostile in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="is not a value"):
            setpoint.encode(hostile)


def test_a_band_as_wide_as_a_narrow_profile_is_not_at_one_limit() -> None:
    text = (SITE.replace("profile: paper", "profile: film-master")
            .replace("target: 50, band: 5", "target: 40, band: 5")
            .replace("target: 18, setpoint", "target: 14, band: 1, setpoint")
            .replace('{name: night, from: "20:00", to: "06:00", target: 17}', '{name: night, target: 14}'))
    room = plan(site(text)).rooms["r1"]  # film masters: 13–15 °C, 35–45 %: 14 ± 1 and 40 ± 5 lean nowhere
    assert (room.t_target, room.t_band, room.rh_target, room.rh_band) == (14, 1, 40, 5)
