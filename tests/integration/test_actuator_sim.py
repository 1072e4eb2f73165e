"""Actuators over real Modbus TCP: the project's client writes a coil or register to the simulators, reads it
back, and the room's physics answers on a ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from collector.modbus import PymodbusClient
from collector.modbus.errors import ExceptionReply
from simulators.climate import ClimatePhysics
from simulators.modbus_sim import ModbusGatewaySim, make_device
from simulators.room import RoomModel
from stackwatch.clock import ManualClock
from stackwatch.config.devices import ModbusTcpGateway

pytestmark = pytest.mark.integration

TIMEOUT = 0.5
RELAYS, CRAC = 1, 2


class Rig:
    def __init__(self, clock: ManualClock, room: RoomModel, gateway: ModbusGatewaySim, client: PymodbusClient):
        self.clock, self.room, self.gateway, self.client = clock, room, gateway, client

    async def read(self, function_code: int, unit: int, address: int, count: int) -> list[int]:
        return [int(v) for v in await self.client.read(function_code, unit, address, count, TIMEOUT)]

    async def write(self, function_code: int, unit: int, address: int, value: int) -> None:
        await self.client.write(function_code, unit, address, value, TIMEOUT)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    physics = ClimatePhysics("stack", temperature=19.0, humidity=52.0, weather="humid-week", start=clock.now())
    room = RoomModel("stack", t_set=19.0, rh_set=52.0, physics=physics)
    gateway = ModbusGatewaySim([
        make_device("adam-6060", RELAYS, room, clock.now, {"relay0": "dehumidifier", "relay1": "air_handling"}),
        make_device("hvac-controller", CRAC, room, clock.now),
    ], missing_unit="exception")
    port = await gateway.start_tcp("127.0.0.1", 0)
    client = PymodbusClient(ModbusTcpGateway(type="modbus-tcp", id="gw", host="127.0.0.1", port=port,
                                             timeout=TIMEOUT))
    try:
        yield Rig(clock, room, gateway, client)
    finally:
        client.close()
        await gateway.stop()


async def test_a_relay_written_reads_back_its_contact_closes_and_the_room_dries(rig: Rig) -> None:
    await rig.write(5, RELAYS, 17, 1)  # air handling on, so the CRAC acts
    before = rig.room.state(rig.clock.now()).humidity
    await rig.write(5, RELAYS, 16, 1)
    assert await rig.read(1, RELAYS, 16, 6) == [1, 1, 0, 0, 0, 0]
    assert await rig.read(2, RELAYS, 0, 6) == [0] * 6  # the running contact follows after 2 s
    await rig.clock.advance(2.0)
    assert await rig.read(2, RELAYS, 0, 6) == [1, 1, 0, 0, 0, 0]
    await rig.clock.advance(3 * 3600.0)
    assert rig.room.state(rig.clock.now()).humidity < before - 1.5  # against a humid week's damp
    await rig.write(5, RELAYS, 16, 0)
    await rig.clock.advance(2.0)
    assert await rig.read(2, RELAYS, 0, 2) == [0, 1]


async def test_a_relay_module_that_ignores_its_commands(rig: Rig) -> None:
    rig.gateway.set_fault(RELAYS, "ignore-commands")
    await rig.write(5, RELAYS, 16, 1)
    await rig.clock.advance(10.0)
    assert await rig.read(1, RELAYS, 16, 1) == [1]  # the write took
    assert await rig.read(2, RELAYS, 0, 1) == [0]  # the unit does not run: that is what the control side sees
    assert rig.room.physics is not None and rig.room.physics.running("dehumidifier") == 0


async def test_hvac_setpoint_written_read_back_refused_out_of_range_and_followed(rig: Rig) -> None:
    await rig.write(5, RELAYS, 17, 1)
    await rig.write(6, CRAC, 1, 210)  # 21.0 °C
    assert await rig.read(3, CRAC, 0, 2) == [1, 210]
    assert (await rig.read(4, CRAC, 3, 1)) == [210]
    with pytest.raises(ExceptionReply) as refused:
        await rig.write(6, CRAC, 1, 305)  # 30.5 °C
    assert refused.value.code == 0x03
    assert await rig.read(3, CRAC, 1, 1) == [210]
    await rig.clock.advance(3 * 3600.0)
    supply, return_, status, active = await rig.read(4, CRAC, 0, 4)
    assert active == 210 and status & 1
    assert return_ == pytest.approx(210, abs=4)  # the room reached 21 °C
    assert supply <= return_  # holding it against the humid week's warmth
    await rig.write(5, RELAYS, 17, 0)  # air handling off: the CRAC no longer moves the room
    await rig.write(6, CRAC, 1, 150)
    await rig.clock.advance(3600.0)
    assert rig.room.state(rig.clock.now()).temperature > 20.5


async def test_hvac_ignoring_its_commands_over_the_wire(rig: Rig) -> None:
    rig.gateway.set_fault(CRAC, "ignore-commands")
    await rig.write(6, CRAC, 0, 0)
    assert await rig.read(3, CRAC, 0, 1) == [0]  # the command reads back
    status = (await rig.read(4, CRAC, 2, 1))[0]
    assert status & 1  # but the unit still runs
    rig.gateway.set_fault(CRAC, "tripped")
    assert (await rig.read(4, CRAC, 2, 1))[0] == 0b100
