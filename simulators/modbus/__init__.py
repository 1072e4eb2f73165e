"""Simulated Modbus devices and gateways from shared/domain/devices.md. Never imports service code."""

from .device import Refused, Silent, SimulatedDevice
from .faults import DEFAULT_SLOW_DELAY, KINDS, VENDOR_EXCEPTION, Fault
from .models import (
    ACTUATOR_MODELS,
    MODELS,
    Adam6060,
    CometT3510,
    HvacController,
    MoxaE1210,
    NotifierFireGateway,
    RleSeahawk,
    VaisalaHmp110,
    XyMd02,
    make_device,
)
from .server import ModbusGatewaySim

__all__ = [
    "ACTUATOR_MODELS",
    "DEFAULT_SLOW_DELAY",
    "KINDS",
    "MODELS",
    "VENDOR_EXCEPTION",
    "Adam6060",
    "CometT3510",
    "Fault",
    "HvacController",
    "ModbusGatewaySim",
    "MoxaE1210",
    "NotifierFireGateway",
    "Refused",
    "RleSeahawk",
    "Silent",
    "SimulatedDevice",
    "VaisalaHmp110",
    "XyMd02",
    "make_device",
]
