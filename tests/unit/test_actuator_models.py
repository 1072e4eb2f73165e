"""Actuator devices: the library entries (adam-6060, hvac-controller) and their simulators agree, and the
simulated units drive a room's physics the way the control side expects, faults included. No network."""

from __future__ import annotations

from typing import Any

import pytest

from collector.models import MODELS
from simulators.climate import ClimatePhysics
from simulators.main import SimulatedSite
from simulators.modbus.device import Refused, Silent, SimulatedDevice
from simulators.modbus.models import Adam6060, HvacController, make_device
from simulators.room import RoomModel
from simulators.site import SimDeviceSpec, SimGatewaySpec, SimSite
from stackwatch.config import ConfigError, parse_config
from stackwatch.config.devices import ModbusDevice

T0 = 1_767_225_600.0
TABLES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
SITE = """
site: {id: s}
buildings: [{id: a}]
rooms: [{id: r1, building: a, profile: paper}]
gateways: [{type: modbus-tcp, id: g1, host: 127.0.0.1}]
devices:
"""


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> float:
        return self.at


def load(line: str) -> ModbusDevice:
    device = parse_config(SITE + line).devices[0]
    assert isinstance(device, ModbusDevice)
    return device


def physics_room(held: float | None = 19.0) -> RoomModel:
    return RoomModel("r1", t_set=19.0, rh_set=52.0,
                     physics=ClimatePhysics("r1", temperature=19.0, humidity=52.0, weather="humid-week", start=T0,
                                            held_temperature=held))


def adam(clock: Clock, room: RoomModel | None = None, **options: Any) -> Adam6060:
    device = make_device("adam-6060", 1, room or physics_room(), clock,
                         {"relay0": "dehumidifier", "relay1": "humidifier", **options})
    assert isinstance(device, Adam6060)
    return device


def hvac(clock: Clock, room: RoomModel | None = None) -> HvacController:
    device = make_device("hvac-controller", 2, room or physics_room(held=None), clock)
    assert isinstance(device, HvacController)
    return device


# ---- the library ----


def test_adam_6060_points_and_actuators() -> None:
    device = load("  - {id: io, model: adam-6060, gateway: g1, room: r1, "
                  "model_options: {relay0: dehumidifier, relay2: air_handling, feedback4: 2}}\n")
    points = {p.id: p for p in device.points}
    assert [(points[f"di{n}"].table, points[f"di{n}"].address) for n in range(6)] == [("discrete", n) for n in range(6)]
    assert [(points[f"relay{n}"].table, points[f"relay{n}"].address) for n in range(6)] == [
        ("coil", 16 + n) for n in range(6)]
    assert {points["di0"].quantity, points["relay0"].quantity} == {"digital_input", "relay"}
    actuators = {a.id: a for a in device.actuators}
    assert (actuators["relay0"].kind, actuators["relay0"].table, actuators["relay0"].address) == ("switch", "coil", 16)
    assert actuators["relay0"].readback == "di0" and actuators["relay0"].settle == 5.0
    assert actuators["relay2"].readback == "di2"  # DI2 and DI4 both see it: the first
    assert actuators["relay1"].readback is None  # nothing wired: the coil itself is read back


def test_hvac_controller_points_and_actuators() -> None:
    device = load("  - {id: crac, model: hvac-controller, gateway: g1, unit: 3, room: r1}\n")
    points = {p.id: p for p in device.points}
    assert (points["run"].table, points["run"].address) == ("holding", 0)
    assert (points["setpoint"].table, points["setpoint"].address, points["setpoint"].scale) == ("holding", 1, 0.1)
    assert points["setpoint"].type == "int16"
    assert [(points[p].address, points[p].type) for p in ("supply_temperature", "return_temperature")] == [
        (0, "int16"), (1, "int16")]
    assert (points["running"].bit, points["compressor"].bit, points["fault"].bit) == (0, 1, 2)
    assert points["setpoint_active"].address == 3 and points["setpoint_active"].scale == 0.1
    assert "temperature" not in {p.quantity for p in device.points}  # duct air raises no room climate alarms
    actuators = {a.id: a for a in device.actuators}
    assert (actuators["setpoint"].min, actuators["setpoint"].max, actuators["setpoint"].readback) == (
        10.0, 30.0, "setpoint_active")
    assert actuators["run"].readback == "running"
    assert "(unconfirmed)" in MODELS["hvac-controller"].title


@pytest.mark.parametrize(("options", "message"), [
    ("{relay0: fan}", "'fan' is not a load"),
    ("{feedback0: 6}", "feedbackN name a relay 0..5"),
    ("{relay6: heater}", "has no option 'relay6'"),
])
def test_adam_option_errors_are_named(options: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(f"  - {{id: io, model: adam-6060, gateway: g1, room: r1, model_options: {options}}}\n")
    assert message in caught.value.problems[0]


@pytest.mark.parametrize("model", ["adam-6060", "hvac-controller"])
def test_every_library_point_is_served_by_the_simulator(model: str) -> None:
    device = load(f"  - {{id: d, model: {model}, gateway: g1, room: r1}}\n")
    sim = make_device(model, 1, physics_room(), Clock())
    for point in device.points:
        table = TABLES[point.table]
        assert any(start <= point.address < end for start, end in sim.blocks[table]), point.id
    for actuator in device.actuators:
        store = sim.coils if actuator.table == "coil" else sim.holding
        assert actuator.address in store, actuator.id


# ---- adam-6060 simulator ----


async def test_a_relay_runs_its_load_and_the_di_follows_after_the_delay() -> None:
    clock = Clock()
    device = adam(clock)
    physics = device.room.physics
    assert physics is not None
    await device.write(5, 16, [1])
    assert await device.read(1, 16, 6) == [1, 0, 0, 0, 0, 0]
    assert physics.running("dehumidifier") == 1
    assert await device.read(2, 0, 6) == [0] * 6  # the running contact closes after feedback_delay
    clock.at += 2.0
    assert await device.read(2, 0, 6) == [1, 0, 0, 0, 0, 0]
    assert await device.read(1, 0, 6) == [1, 0, 0, 0, 0, 0]  # FC01 reads the inputs too
    await device.write(15, 16, [0, 1])  # FC15: relay0 off, relay1 on
    clock.at += 0.5
    assert await device.read(2, 0, 2) == [1, 0]  # not yet
    clock.at += 2.0
    assert await device.read(2, 0, 2) == [0, 1]
    assert (physics.running("dehumidifier"), physics.running("humidifier")) == (0, 1)


async def test_a_relay_module_drives_the_rooms_humidity() -> None:
    clock = Clock()
    device = adam(clock)
    before = device.state().humidity
    await device.write(5, 16, [1])
    clock.at += 3 * 3600.0
    assert device.state().humidity < before - 2.0


async def test_feedback_wiring_and_delay_options() -> None:
    clock = Clock()
    device = adam(clock, feedback5=0, feedback_delay=0)
    await device.write(5, 16, [1])
    assert await device.read(2, 0, 6) == [1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("fault", ["ignore-commands", "ignore-commands:0", "tripped"])
async def test_a_unit_that_ignores_its_command_reads_back_the_coil_but_does_not_run(fault: str) -> None:
    clock = Clock()
    device = adam(clock)
    physics = device.room.physics
    assert physics is not None
    device.set_fault(fault)
    await device.write(5, 16, [1])
    await device.write(5, 17, [1])
    clock.at += 10.0
    assert await device.read(1, 16, 2) == [1, 1]  # the write was accepted
    di = await device.read(2, 0, 2)
    assert di[0] == 0 and physics.running("dehumidifier") == 0
    assert di[1] == (1 if fault == "ignore-commands:0" else 0)  # only relay 0's unit ignores it
    device.set_fault("none")  # repaired: the units follow their relays again
    clock.at += 2.0
    assert await device.read(2, 0, 2) == [1, 1] and physics.running("dehumidifier") == 1


async def test_communication_faults_still_apply() -> None:
    device = adam(Clock())
    device.set_fault("exception:0x06")
    with pytest.raises(Refused):
        await device.write(5, 16, [1])
    device.set_fault("timeout")
    with pytest.raises(Silent):
        await device.read(1, 16, 1)
    device.set_fault("none")
    assert device.coils[16] is False  # a refused or unanswered write changed nothing


async def test_inputs_cannot_be_written_and_unknown_loads_are_refused() -> None:
    device = adam(Clock())
    with pytest.raises(Refused) as caught:
        await device.write(5, 0, [1])
    assert caught.value.code == 0x02
    with pytest.raises(ValueError, match="not a load"):
        make_device("adam-6060", 1, physics_room(), Clock(), {"relay0": "fan"})


async def test_a_relay_module_without_physics_still_switches() -> None:
    clock = Clock()
    device = make_device("adam-6060", 1, RoomModel("plain"), clock, {"relay3": "valve", "feedback_delay": 0})
    await device.write(5, 19, [1])
    assert await device.read(2, 0, 6) == [0, 0, 0, 1, 0, 0]


# ---- hvac-controller simulator ----


def registers(device: SimulatedDevice) -> dict[str, float]:
    values = device.table(4, device.state())

    def signed(raw: int) -> float:
        return (raw - 0x10000 if raw & 0x8000 else raw) / 10.0

    return {"supply": signed(values[0]), "return": signed(values[1]), "status": values[2],
            "setpoint_active": signed(values[3])}


async def test_hvac_runs_at_the_rooms_setpoint_and_follows_a_new_one() -> None:
    clock = Clock()
    device = hvac(clock)
    assert device.holding == {0: 1, 1: 190}
    assert registers(device)["setpoint_active"] == 19.0 and registers(device)["status"] & 1
    await device.write(6, 1, [220])
    clock.at += 4 * 3600.0
    now = registers(device)
    assert now["setpoint_active"] == 22.0 and now["return"] == pytest.approx(22.0, abs=0.4)


async def test_hvac_cooling_blows_colder_air_and_runs_the_compressor() -> None:
    clock = Clock()
    room = physics_room(held=None)
    assert room.physics is not None
    room.physics.set_weather("humid-week", T0)
    device = hvac(clock, room)
    await device.write(6, 1, [150])  # 15 °C: far below the room
    clock.at += 600.0
    now = registers(device)
    assert now["status"] & 0b011 == 0b011 and now["supply"] < now["return"] - 5.0
    await device.write(6, 0, [0])
    clock.at += 60.0
    stopped = registers(device)
    assert stopped["status"] & 0b011 == 0 and stopped["supply"] == stopped["return"]


@pytest.mark.parametrize("raw", [99, 301, 0xFF9C])  # 9.9 °C, 30.1 °C, −10.0 °C
async def test_hvac_refuses_a_setpoint_out_of_range_with_exception_03(raw: int) -> None:
    device = hvac(Clock())
    with pytest.raises(Refused) as caught:
        await device.write(6, 1, [raw])
    assert caught.value.code == 0x03 and device.holding[1] == 190


async def test_hvac_ignoring_commands_reads_back_the_write_but_keeps_its_state() -> None:
    clock = Clock()
    device = hvac(clock)
    device.set_fault("ignore-commands")
    await device.write(6, 1, [240])
    await device.write(6, 0, [0])
    assert device.peek(3, 0, 2) == [0, 240]
    now = registers(device)
    assert now["setpoint_active"] == 19.0 and now["status"] & 1  # still running at 19.0
    device.set_fault("none")
    now = registers(device)
    assert now["setpoint_active"] == 24.0 and not now["status"] & 1


async def test_hvac_tripped_stops_and_sets_its_fault_bit() -> None:
    clock = Clock()
    device = hvac(clock)
    physics = device.room.physics
    assert physics is not None
    device.set_fault("tripped")
    clock.at += 60.0
    assert registers(device)["status"] == 0b100 and physics.hvac_rates.get(device.source, 0.0) == 0.0


# ---- wiring and scenarios ----


def small_site(clock: Clock) -> SimulatedSite:
    rooms = {name: RoomModel(name, t_set=19.0, rh_set=52.0) for name in ("stack-1", "stack-2", "stack-3")}
    devices = [
        SimDeviceSpec("io-1", "adam-6060", "modbus", "stack-1", gateway="gw", unit=1,
                      options={"relay0": "dehumidifier"}),
        SimDeviceSpec("crac-2", "hvac-controller", "modbus", "stack-2", gateway="gw", unit=2),
        SimDeviceSpec("th-3", "xy-md02", "modbus", "stack-3", gateway="gw", unit=3),
    ]
    site = SimulatedSite(SimSite("s", rooms, [SimGatewaySpec("gw", "modbus-tcp", port=0)], devices), clock)
    site.prepare()
    return site


def test_rooms_with_actuators_get_physics_and_the_others_do_not() -> None:
    site = small_site(Clock())
    rooms = site.site.rooms
    physics_1, physics_2 = rooms["stack-1"].physics, rooms["stack-2"].physics
    assert physics_1 is not None and physics_1.held_temperature == 19.0  # the building holds it
    assert physics_2 is not None and physics_2.held_temperature is None and physics_2.has_hvac()
    assert rooms["stack-3"].physics is None


def test_humid_week_scenario_and_a_unit_fault_by_control_command() -> None:
    clock = Clock()
    site = small_site(clock)
    room = site.site.rooms["stack-1"]
    assert "weather humid-week" in site.control({"scenario": "humid-week", "room": "stack-1"})
    clock.at += 24 * 3600.0
    assert room.state(clock.at).humidity > 58.0
    assert site.control({"device": "io-1", "fault": "ignore-commands:0"}) == "io-1: fault ignore-commands:0"
    with pytest.raises(ValueError, match="stack-3 has no physics"):
        site.control({"scenario": "humid-week", "room": "stack-3"})
    site.control({"scenario": "humid-week", "room": "stack-1", "on": False})
    assert room.physics is not None and room.physics.weather.name == "temperate"


def test_scenarios_still_act_on_a_physics_room() -> None:
    clock = Clock()
    site = small_site(clock)
    room = site.site.rooms["stack-1"]
    base = room.state(clock.at)
    site.control({"scenario": "hvac-failure", "room": "stack-1"})
    clock.at += 3600.0
    assert room.state(clock.at).temperature > base.temperature + 1.5
    site.control({"scenario": "door-forced", "room": "stack-1"})
    assert room.state(clock.at).door_open and room.physics is not None and room.physics.door_open
