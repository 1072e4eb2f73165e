"""Modbus device simulators: the public entry point (implementation in `simulators.modbus`).

    room = RoomModel("stack-1")
    gateway = ModbusGatewaySim([make_device("xy-md02", 1, room, clock.now),
                                make_device("moxa-e1210", 2, room, clock.now)])
    port = await gateway.start_tcp("127.0.0.1", 0)      # or: await gateway.start_rtu(pty_path, 9600)
    gateway.set_fault(1, "exception:0x0B")              # none, timeout, slow, exception:<code>, sentinel, garbage
    gateway[1].requests                                 # requests the device was sent
    await gateway.stop()

Actuators (`adam-6060` relays, `hvac-controller`) drive the climate of a room
that has physics (simulators/climate.py), and have two more faults,
`ignore-commands[:relay]` and `tripped`:

    room = RoomModel("stack-2", physics=ClimatePhysics("stack-2", start=clock.now()))
    relays = make_device("adam-6060", 3, room, clock.now, {"relay0": "dehumidifier"})

Never imports service code: the simulators are hardware stand-ins written from
shared/domain/devices.md, so the collector is tested against the manuals, not
against itself.
"""

from simulators.modbus import (
    ACTUATOR_MODELS,
    DEFAULT_SLOW_DELAY,
    KINDS,
    MODELS,
    VENDOR_EXCEPTION,
    Adam6060,
    CometT3510,
    Fault,
    HvacController,
    ModbusGatewaySim,
    MoxaE1210,
    NotifierFireGateway,
    RleSeahawk,
    SimulatedDevice,
    VaisalaHmp110,
    XyMd02,
    make_device,
)
from simulators.serial_pair import SerialPair

__all__ = [
    "ACTUATOR_MODELS", "DEFAULT_SLOW_DELAY", "KINDS", "MODELS", "VENDOR_EXCEPTION", "Adam6060", "CometT3510", "Fault",
    "HvacController", "ModbusGatewaySim", "MoxaE1210", "NotifierFireGateway", "RleSeahawk", "SerialPair",
    "SimulatedDevice", "VaisalaHmp110", "XyMd02", "make_device",
]
