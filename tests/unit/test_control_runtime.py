"""The control runtime on a manual clock with a fake bus: read-back, retries, control alarms, overrides, restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.plan import ActuatorPlan
from control.runtime import ControlRefused, ControlRuntime
from stackwatch.clock import ManualClock
from stackwatch.readings import Quality, Reading

from .control_site import plan

T0 = 1_782_900_000.0  # 2026-07-01T10:00:00Z


class FakeUnits:
    """Units that follow their commands unless told to ignore them; writes can be made to fail."""

    def __init__(self) -> None:
        self.state: dict[str, int] = {}
        self.ignoring: set[str] = set()
        self.failing: set[str] = set()
        self.writes: list[tuple[str, int]] = []

    async def write(self, actuator: ActuatorPlan, raw: int) -> None:
        if actuator.name in self.failing:
            raise OSError("no answer")
        self.writes.append((actuator.name, raw))
        if actuator.name not in self.ignoring:
            self.state[actuator.name] = raw

    async def read_back(self, actuator: ActuatorPlan) -> float:
        return actuator.decode(self.state.get(actuator.name, 0))


def climate(clock: ManualClock, t: float, rh: float, quality: Quality = Quality.GOOD) -> list[Reading]:
    ns = clock.now_ns()
    return [Reading("th1.temperature", ns, t, quality, ""), Reading("th1.humidity", ns, rh, quality, "")]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ControlRuntime, FakeUnits, ManualClock, list[tuple[str, bool]]]:
    clock = ManualClock(T0)
    units = FakeUnits()
    alarms: list[tuple[str, bool]] = []
    runtime = ControlRuntime(plan(), units, clock, tmp_path / "control.db",
                             alarms=lambda key, active: alarms.append((key, active)))
    return runtime, units, clock, alarms


async def test_commands_are_written_read_back_and_journaled_with_their_reason(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, _ = setup
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    assert units.state["io1.dh"] == 1 and units.state["crac1.setpoint"] == 180 and units.state["crac1.run"] == 1
    assert runtime.tracks["io1.dh"].state == "pending"
    await clock.advance(10)
    await runtime.step()
    assert runtime.tracks["io1.dh"].state == "verified"
    rows = runtime.journal.rows(target="io1.dh")
    assert [r.kind for r in rows] == ["command", "verified"]
    assert "RH 54.0 %" in rows[0].reason and rows[0].source == "auto"


async def test_a_unit_that_ignores_its_command_raises_a_control_alarm_after_its_retries(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, alarms = setup
    units.ignoring.add("io1.dh")
    runtime(climate(clock, 18.0, 54.0))
    for _ in range(4):  # command, then 2 retries after mismatching read-backs
        await runtime.step()
        await clock.advance(6)
    await runtime.step()
    assert runtime.tracks["io1.dh"].state == "failed"
    assert ("control/io1.dh:command_failed", True) in alarms
    kinds = [r.kind for r in runtime.journal.rows(target="io1.dh")]
    assert kinds.count("command") == 3 and kinds.count("mismatch") == 3 and kinds[-1] == "failed"
    units.ignoring.clear()  # repaired: the periodic retry proves it and clears the alarm
    await clock.advance(61)
    await runtime.step()
    await clock.advance(6)
    await runtime.step()
    assert runtime.tracks["io1.dh"].state == "verified" and alarms[-1] == ("control/io1.dh:command_failed", False)


async def test_a_failing_write_is_retried_then_alarmed(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, alarms = setup
    units.failing.add("crac1.run")
    runtime(climate(clock, 18.0, 50.0))
    for _ in range(4):
        await runtime.step()
        await clock.advance(31)
    assert runtime.tracks["crac1.run"].state == "failed" and ("control/crac1.run:command_failed", True) in alarms
    assert "write failed: no answer" in runtime.tracks["crac1.run"].detail


async def test_a_fire_reading_wakes_the_interlock_and_a_reset_resumes(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, alarms = setup
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    runtime([Reading("fire1.zone1", clock.now_ns(), True, Quality.GOOD, "")])
    await runtime.step()
    assert units.state["crac1.run"] == 0 and units.state["io1.damper"] == 0 and units.state["io1.dh"] == 0
    assert runtime.tracks["crac1.run"].source == "interlock"
    assert ("control/r1:interlock", True) in alarms
    with pytest.raises(ControlRefused, match="still active"):
        runtime.reset("r1", "op", "")
    runtime([Reading("fire1.zone1", clock.now_ns() + 1, False, Quality.GOOD, "")])
    await clock.advance(30)
    await runtime.step()
    assert units.state["crac1.run"] == 0  # latched until a person resets
    assert "reset" in runtime.reset("r1", "op", "checked the room")
    await clock.advance(30)
    await runtime.step()
    assert units.state["crac1.run"] == 1 and units.state["io1.damper"] == 1
    assert alarms[-1] == ("control/r1:interlock", False)
    kinds = [r.kind for r in runtime.journal.rows(room="r1", kinds=("interlock", "reset"))]
    assert kinds == ["interlock", "interlock", "reset"]


async def test_a_comm_failure_of_the_fire_panel_is_not_a_fire(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, _ = setup
    runtime(climate(clock, 18.0, 50.0))
    runtime([Reading("fire1.zone1", clock.now_ns(), None, Quality.COMM_FAILURE, "timeout")])
    await runtime.step()
    assert units.state["crac1.run"] == 1


async def test_an_override_holds_and_expires_back_to_automatic(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, _ = setup
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    with pytest.raises(ControlRefused, match="reason"):
        runtime.set_override("io1.dh", 0, "op", " ", 600)
    with pytest.raises(ControlRefused, match="above its allowed maximum"):
        runtime.set_override("crac1.setpoint", 40, "op", "test", 600)
    with pytest.raises(KeyError):
        runtime.set_override("io1.nope", 0, "op", "test", 600)
    runtime.set_override("io1.dh", 0, "op", "filter change", 600)
    await clock.advance(30)
    await runtime.step()
    assert units.state["io1.dh"] == 0 and runtime.tracks["io1.dh"].source == "manual"
    await clock.advance(600)
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    assert "io1.dh" not in runtime.overrides and units.state["io1.dh"] == 1
    ended = runtime.journal.rows(target="io1.dh", kinds=("override_end",))
    assert ended[-1].who == "system" and "expired" in ended[-1].reason


async def test_bad_humidity_holds_the_loop_and_raises_its_alarm(setup) -> None:  # type: ignore[no-untyped-def]
    runtime, units, clock, alarms = setup
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    writes = len(units.writes)
    await clock.advance(700)
    runtime(climate(clock, 18.0, 40.0, Quality.BAD))
    await runtime.step()
    assert ("io1.dh", 0) not in units.writes[writes:]  # held at once, not switched on bad data
    assert runtime.status()["rooms"][0]["loops"]["humidity"]["mode"] == "hold"
    assert ("control/r1.humidity:input_bad", True) not in alarms  # one bad poll is no fault yet
    await clock.advance(300)
    runtime(climate(clock, 18.0, 40.0, Quality.BAD))
    await runtime.step()
    assert ("control/r1.humidity:input_bad", True) in alarms
    await clock.advance(30)
    runtime(climate(clock, 18.0, 50.0))
    await runtime.step()
    assert alarms[-2:] == [("control/r1.humidity:input_bad", False), ("control/r1.temperature:input_bad", False)]


async def test_a_restart_keeps_the_fire_latch_overrides_and_minimum_times(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    units = FakeUnits()
    runtime = ControlRuntime(plan(), units, clock, tmp_path / "control.db")
    runtime(climate(clock, 18.0, 54.0))
    await runtime.step()
    runtime.set_override("io1.hum", 0, "op", "tank empty", 3600)
    runtime([Reading("fire1.zone1", clock.now_ns(), True, Quality.GOOD, "")])
    await runtime.step()
    runtime([Reading("fire1.zone1", clock.now_ns() + 1, False, Quality.GOOD, "")])
    await runtime.step()
    await runtime.stop()
    again = ControlRuntime(plan(), units, clock, tmp_path / "control.db")
    assert again.rooms["r1"].interlock.latched and "io1.hum" in again.overrides
    assert again.rooms["r1"].units["io1.dh"].on is False and again.rooms["r1"].units["io1.dh"].since == T0
    await again.stop()
