"""Closed loop over real Modbus TCP on an injected clock: the simulators' room physics answers the loops.

The simulated devices (an XY-MD02 sensor, an ADAM-6060 relay module with the
dehumidifier and humidifier, a CRAC controller) serve a pymodbus server; the
service's own Modbus collector polls them and the control runtime writes to
them, exactly as in production. Time is a ManualClock stepped by the test, so
a humid week runs in well under a minute and the result is deterministic.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

from collector.modbus.poller import ModbusCollector
from control.modbus_io import ModbusActuatorIO
from control.plan import ControlPlan
from control.runtime import ControlRuntime
from simulators.climate import ClimatePhysics
from simulators.modbus.models import Adam6060, HvacController, NotifierFireGateway, XyMd02
from simulators.modbus.server import ModbusGatewaySim
from simulators.room import RoomModel
from stackwatch.catalog import PointCatalog
from stackwatch.clock import ManualClock
from stackwatch.config import parse_config
from stackwatch.readings import Quality, Reading

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 6, 15, 0, 0, tzinfo=dt.UTC).timestamp()  # plum-rain season
STEP = 120.0  # s of simulated time per poll and control step
SITE = """
site: {{id: s, timezone: UTC}}
buildings: [{{id: a}}]
rooms: [{{id: r1, building: a, profile: paper}}]
gateways:
  - {{type: modbus-tcp, id: g1, host: 127.0.0.1, port: {port}, timeout: 1.0, retries: 0}}
devices:
  - {{id: th1, protocol: modbus, model: xy-md02, gateway: g1, unit: 1, room: r1}}
  - {{id: fire1, protocol: modbus, model: notifier-fire-gateway, gateway: g1, unit: 5, room: r1,
      model_options: {{zones: 1}}}}
  - id: relay1
    protocol: modbus
    model: adam-6060
    gateway: g1
    unit: 2
    room: r1
    model_options: {{relay0: dehumidifier, relay1: humidifier, relay2: damper}}
    use_points: [di0, di1, di2]
  - {{id: crac1, protocol: modbus, model: hvac-controller, gateway: g1, unit: 3, room: r1,
      use_points: [running, setpoint_active]}}
control:
  interval: 2m
  rooms:
    - room: r1
      humidity: {{target: 50, band: 5, hysteresis: 3, dehumidifiers: [relay1.relay0], humidifiers: [relay1.relay1],
                 min_on: 10m, min_off: 10m}}
      temperature: {{target: 18, setpoint: crac1.setpoint, run: crac1.run, max_step: 0.5, step_interval: 15m}}
      interlocks: {{air_handling: [crac1.run], dampers: [relay1.relay2]}}
"""


@dataclass
class Recorder:
    """The hub: readings to the control runtime, and the room's RH as the sensor reported it."""

    runtime: ControlRuntime | None = None
    humidity: list[tuple[float, float]] = field(default_factory=list)

    def accept(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            if reading.point == "th1.humidity" and reading.quality is Quality.GOOD:
                self.humidity.append((reading.ts_ns / 1e9, float(reading.value)))  # type: ignore[arg-type]
        if self.runtime is not None:
            self.runtime(readings)


@dataclass
class Loop:
    clock: ManualClock
    room: RoomModel
    sim: ModbusGatewaySim
    collector: ModbusCollector
    runtime: ControlRuntime
    recorder: Recorder
    alarms: list[tuple[str, bool]]

    async def run(self, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            await self.clock.advance(STEP)
            await self.collector.run_cycle_once()
            await self.runtime.step()


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    clock = ManualClock(START)
    room = RoomModel("r1", t_set=18.0, rh_set=50.0)
    room.physics = ClimatePhysics("r1", temperature=18.0, humidity=50.0, weather="humid-week", start=START)
    devices = [XyMd02(1, room, clock.now), NotifierFireGateway(5, room, clock.now, {"zones": 1}),
               Adam6060(2, room, clock.now, {"relay0": "dehumidifier", "relay1": "humidifier", "relay2": "damper"}),
               HvacController(3, room, clock.now)]
    sim = ModbusGatewaySim(devices)
    port = await sim.start_tcp()
    config = parse_config(SITE.format(port=port), "site.yaml")
    recorder = Recorder()
    collector = ModbusCollector(config, recorder, clock)
    alarms: list[tuple[str, bool]] = []
    runtime = ControlRuntime(ControlPlan.from_config(config, PointCatalog.from_config(config)),
                             ModbusActuatorIO(collector), clock, tmp_path / "control.db", interval=STEP,
                             alarms=lambda key, active: alarms.append((key, active)))
    recorder.runtime = runtime
    try:
        yield Loop(clock, room, sim, collector, runtime, recorder, alarms)
    finally:
        await runtime.stop()
        await collector.stop()
        await sim.stop()


def switching(runtime: ControlRuntime, actuator: str) -> list[tuple[float, float]]:
    """(time, value) of each command that changed the unit's state."""
    changes: list[tuple[float, float]] = []
    for row in runtime.journal.rows(target=actuator, kinds=("command",), limit=100_000):
        if row.value is not None and (not changes or changes[-1][1] != row.value):
            changes.append((row.ts, row.value))
    return changes


async def test_a_humid_week_stays_in_band_within_the_daily_allowance_and_spares_the_compressor(loop: Loop) -> None:
    await loop.run(7 * 86400)
    samples = [(ts, rh) for ts, rh in loop.recorder.humidity if ts >= START + 6 * 3600]  # after the first pull-down
    assert len(samples) > 4500
    in_band = sum(45.0 <= rh <= 55.0 for _, rh in samples) / len(samples)
    assert in_band >= 0.99, f"in band {in_band:.2%}"
    days: dict[int, list[float]] = defaultdict(list)
    for ts, rh in samples:
        days[int((ts - START) // 86400)].append(rh)
    assert max(max(v) - min(v) for v in days.values()) <= 10.0  # paper: RH daily range ≤ 10 % (JGJ 25 §5.2.3)
    dehumidifier = switching(loop.runtime, "relay1.relay0")
    assert len(dehumidifier) >= 8, "the humid week needs the dehumidifier, repeatedly"
    for (t_a, on_a), (t_b, _) in pairwise(dehumidifier):
        assert t_b - t_a >= 600, f"switched after {t_b - t_a:.0f} s ({'on' if on_a else 'off'} time too short)"
    assert not [a for a in loop.alarms if a[1]], loop.alarms  # every write read back and agreed
    uncontrolled = ClimatePhysics("r1", temperature=18.0, humidity=50.0, weather="humid-week", start=START)
    uncontrolled.advance(START + 7 * 86400)
    assert uncontrolled.humidity > 60.0  # the week would have ruined the band without control


async def test_a_unit_that_ignores_its_command_raises_a_control_alarm(loop: Loop) -> None:
    loop.sim.set_fault(2, "ignore-commands:0")  # the dehumidifier's relay reads back, its unit does not run
    loop.room.physics = ClimatePhysics("r1", temperature=18.0, humidity=57.0, weather="humid-week", start=START)
    await loop.run(3600)
    assert ("control/relay1.relay0:command_failed", True) in loop.alarms
    track = loop.runtime.tracks["relay1.relay0"]
    assert track.state == "failed" and "read-back 0" in track.detail
    loop.sim.set_fault(2, "none")
    await loop.run(600)
    assert loop.alarms[-1] == ("control/relay1.relay0:command_failed", False)


async def test_fire_stops_air_handling_on_the_poll_that_sees_it_and_an_expired_override_returns(loop: Loop) -> None:
    await loop.run(1800)
    assert loop.sim[3].holding[HvacController.RUN] == 1
    loop.runtime.set_override("relay1.relay1", 0, "op", "refilling the humidifier", 1800)
    loop.room.set_event("fire", True)
    await loop.clock.advance(STEP)
    await loop.collector.run_cycle_once()  # the fire zone bit is polled: the runtime wakes on it
    await loop.runtime.step()
    assert loop.sim[3].holding[HvacController.RUN] == 0
    assert loop.runtime.tracks["relay1.relay2"].commanded == 0
    assert loop.runtime.tracks["crac1.run"].source == "interlock"
    loop.room.set_event("fire", False)
    await loop.run(1800)
    assert loop.sim[3].holding[HvacController.RUN] == 0  # latched: a person decides when air handling resumes
    assert "relay1.relay1" not in loop.runtime.overrides  # the override expired meanwhile
    loop.runtime.reset("r1", "op", "room inspected")
    await loop.run(STEP)
    assert loop.sim[3].holding[HvacController.RUN] == 1
    ended = loop.runtime.journal.rows(target="relay1.relay1", kinds=("override_end",))
    assert ended and "expired" in ended[-1].reason
