"""Loops and interlocks as pure functions: hysteresis, minimum times, set-point walk, latching."""

from __future__ import annotations

import datetime as dt

import pytest

from control import interlocks
from control.controller import ClimateInput, Override, RoomController
from control.loops import SetpointState, UnitState, humidity_demand, next_setpoint, period_at, thermostat_demand
from stackwatch.config.control import TargetPeriod

from .control_site import plan

T0 = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC).timestamp()


def test_humidity_demand_has_hysteresis_and_never_runs_both() -> None:
    assert humidity_demand(53.0, 50, 3, False, False) == (True, False)
    assert humidity_demand(52.9, 50, 3, False, False) == (False, False)
    assert humidity_demand(49.0, 50, 3, True, False) == (True, False)  # keeps drying past the target
    assert humidity_demand(48.5, 50, 3, True, False) == (False, False)
    assert humidity_demand(47.0, 50, 3, False, False) == (False, True)
    assert humidity_demand(51.4, 50, 3, False, True) == (False, True)
    assert humidity_demand(51.5, 50, 3, False, True) == (False, False)
    assert thermostat_demand(50.1, 50) == (True, False)


def test_a_unit_keeps_its_minimum_run_and_rest_times() -> None:
    unit = UnitState()
    assert unit.may_switch(True, T0, 600, 600)
    unit.switch(True, T0)
    assert not unit.may_switch(False, T0 + 599, 600, 600)
    assert unit.may_switch(False, T0 + 600, 600, 600)
    unit.switch(False, T0 + 600)
    assert not unit.may_switch(True, T0 + 1000, 600, 600) and unit.may_switch(True, T0 + 1200, 600, 600)
    assert unit.starts == 1


def test_the_setpoint_walks_at_most_max_step_per_interval() -> None:
    state = SetpointState()
    kwargs = {"max_step": 0.5, "step_interval": 900.0, "trim_limit": 0.0, "low": 14.0, "high": 24.0}
    assert next_setpoint(state, 18.0, 18.0, T0, **kwargs) == 18.0
    state.value = 18.0
    assert next_setpoint(state, 16.0, 18.0, T0 + 100, **kwargs) is None  # not time yet
    assert next_setpoint(state, 16.0, 18.0, T0 + 900, **kwargs) == 17.5
    state.value = 17.5
    assert next_setpoint(state, 16.0, 17.5, T0 + 1800, **kwargs) == 17.0


def test_the_setpoint_leans_against_a_room_that_stays_warm_but_only_so_far() -> None:
    state = SetpointState(value=18.0, stepped_at=T0)
    kwargs = {"max_step": 0.5, "step_interval": 900.0, "trim_limit": 1.0, "low": 14.0, "high": 24.0}
    values = []
    for n in range(1, 8):
        value = next_setpoint(state, 18.0, 19.0, T0 + 900 * n, **kwargs)
        if value is not None:
            state.value = value
        values.append(state.value)
    assert values[0] == 17.5 and min(values) == 17.0  # trim reaches −1 K and stops there


def test_periods_apply_in_the_site_zone_and_over_midnight() -> None:
    night = TargetPeriod.model_validate({"name": "night", "from": "20:00", "to": "06:00", "target": 17})
    summer = TargetPeriod.model_validate({"name": "summer", "months": [6, 7, 8], "target": 20})
    shanghai_22h = dt.datetime(2026, 1, 5, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    assert period_at([night], shanghai_22h, "Asia/Shanghai") is night
    assert period_at([night], shanghai_22h, "UTC") is None  # 14:00 UTC
    assert period_at([night, summer], T0, "UTC") is summer


def test_fire_latches_until_an_operator_resets_after_it_clears() -> None:
    state = interlocks.InterlockState()
    assert interlocks.update(state, ["f.zone1"], [], T0) and state.latched
    assert interlocks.reset(state) is not None  # still burning
    interlocks.update(state, [], [], T0 + 60)
    assert state.latched and state.awaiting_reset
    assert interlocks.reset(state) is None and not state.latched and state.restore
    assert interlocks.reset(state) is not None  # nothing left to reset


def good(value: float) -> ClimateInput:
    return ClimateInput(value)


def controller() -> RoomController:
    resolved = plan()
    return RoomController(resolved.rooms["r1"], resolved.actuators, resolved.timezone)


def values(out: list) -> dict[str, tuple[float, str]]:  # type: ignore[type-arg]
    return {d.actuator: (d.value, d.source) for d in out}


def test_a_humid_room_starts_its_dehumidifier_and_keeps_it_its_minimum_time() -> None:
    room = controller()
    out = values(room.step(good(18), good(54), {}, T0))
    assert out["io1.dh"] == (1.0, "auto") and out["io1.hum"] == (0.0, "auto") and out["crac1.run"] == (1, "auto")
    assert out["crac1.setpoint"] == (18.0, "auto")
    out = values(room.step(good(18), good(47), {}, T0 + 300))  # dry already, but minimum run time
    assert out["io1.dh"] == (1.0, "auto")
    out = values(room.step(good(18), good(47), {}, T0 + 600))
    assert out["io1.dh"] == (0.0, "auto")


def test_fire_turns_air_handling_and_units_off_and_loops_stay_off_until_reset() -> None:
    room = controller()
    room.step(good(18), good(54), {}, T0)
    room.observe_safety(["fire1.zone1"], [], T0 + 10)
    out = values(room.step(good(18), good(54), {}, T0 + 10))
    for name in ("crac1.run", "io1.damper", "io1.dh", "io1.hum"):
        assert out[name] == (0, "interlock"), name
    assert "crac1.setpoint" not in out and room.loops["humidity"].mode == "interlock"
    room.observe_safety([], [], T0 + 100)
    out = values(room.step(good(18), good(54), {}, T0 + 100))
    assert out["io1.dh"] == (0, "interlock")  # cleared, but latched
    assert interlocks.reset(room.interlock) is None
    out = values(room.step(good(18), good(54), {}, T0 + 200))
    assert out["io1.damper"] == (1, "auto") and out["crac1.run"] == (1, "auto")
    assert out["io1.dh"] == (0.0, "auto")  # stopped by the interlock at T0 + 10: rests its 10 minutes first
    assert values(room.step(good(18), good(54), {}, T0 + 610))["io1.dh"] == (1.0, "auto")


def test_an_interlock_beats_a_manual_override() -> None:
    room = controller()
    override = Override("crac1.run", 1, "op", "testing", T0, T0 + 3600)
    room.observe_safety(["fire1.zone1"], [], T0)
    assert values(room.step(good(18), good(50), {"crac1.run": override}, T0))["crac1.run"] == (0, "interlock")


def test_a_leak_closes_the_valve_and_stops_humidifying() -> None:
    room = controller()
    room.observe_safety([], ["fire1.leak1"], T0)
    out = values(room.step(good(18), good(40), {}, T0))
    assert out["io1.valve"] == (0, "interlock") and out["io1.hum"] == (0, "interlock")
    assert "crac1.run" in out and out["crac1.run"][1] == "auto"  # air handling goes on


def test_bad_input_holds_the_units_as_they_are() -> None:
    room = controller()
    room.step(good(18), good(54), {}, T0)
    out = values(room.step(good(18), ClimateInput(None, "th1.humidity: bad (sentinel)"), {}, T0 + 900))
    assert "io1.dh" not in out and room.loops["humidity"].mode == "hold"
    assert "sentinel" in room.loops["humidity"].problem


def test_manual_overrides_an_actuator_or_holds_a_loop() -> None:
    room = controller()
    room.step(good(18), good(54), {}, T0)
    manual = {"io1.dh": Override("io1.dh", 0, "op", "servicing", T0, T0 + 3600)}
    assert values(room.step(good(18), good(56), manual, T0 + 60))["io1.dh"] == (0, "manual")
    hold = {"r1/humidity": Override("r1/humidity", None, "op", "trial", T0, T0 + 3600)}
    out = values(room.step(good(18), good(56), hold, T0 + 120))
    assert "io1.dh" not in out and room.loops["humidity"].mode == "manual"


@pytest.mark.parametrize("hour", [21, 3])
def test_the_night_target_applies(hour: int) -> None:
    room = controller()
    at = dt.datetime(2026, 7, 1, hour, 0, tzinfo=dt.UTC).timestamp()
    room.step(good(17), good(50), {}, at)
    assert room.loops["temperature"].target == 17 and room.loops["temperature"].period == "night"
