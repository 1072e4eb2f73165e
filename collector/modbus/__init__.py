"""Modbus polling: register maps compiled into read plans, decoding, per-gateway scheduling."""

from .client import ClientFactory, ModbusClient, PymodbusClient, pymodbus_client
from .decode import Codec, Decoded, compile_codec, decode_bit, decode_point, decode_registers
from .errors import ExceptionReply, LinkError, ModbusError, NoResponse, UnexpectedReply
from .plan import DevicePlan, Limits, ReadRequest, Slot, compile_plan, minimum_requests, plan_for
from .poller import ModbusCollector
from .stats import DeviceStats, GatewayStats

__all__ = [
    "ClientFactory", "Codec", "Decoded", "DevicePlan", "DeviceStats", "ExceptionReply", "GatewayStats", "Limits",
    "LinkError", "ModbusClient", "ModbusCollector", "ModbusError", "NoResponse", "PymodbusClient", "ReadRequest",
    "Slot", "UnexpectedReply", "compile_codec", "compile_plan", "decode_bit", "decode_point", "decode_registers",
    "minimum_requests", "plan_for", "pymodbus_client",
]
