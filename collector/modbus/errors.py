"""The few ways a Modbus request fails, each with the quality its readings get.

A device that did not answer is a communication failure; a device that
answered "I cannot" about a register is bad data for that register. Keeping
that distinction lets alarms tell a cut cable from a misconfigured point.
"""

from __future__ import annotations

from stackwatch.readings import Quality

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x07: "negative acknowledge",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
BUSY = 0x06
_UNREACHABLE_CODES = frozenset({0x0A, 0x0B})


class ModbusError(Exception):
    """A request that produced no values.

    `unreachable`: the device, or the path to it, is not answering, so its
    other requests are skipped for this poll instead of costing the bus more
    timeouts.
    """

    def __init__(self, detail: str, quality: Quality = Quality.COMM_FAILURE, unreachable: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.quality = quality
        self.unreachable = unreachable


class NoResponse(ModbusError):
    def __init__(self, timeout: float) -> None:
        super().__init__(f"no response within {timeout:g} s")


class LinkError(ModbusError):
    """The connection to the gateway or serial port is down or was lost."""


class UnexpectedReply(ModbusError):
    """A reply that does not answer the request sent (another unit's, a late one, a truncated one)."""


class ExceptionReply(ModbusError):
    """The device answered with an exception code; 06 (busy) is retried by the poller before it lands here."""

    def __init__(self, code: int) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "vendor-specific")
        unreachable = code in _UNREACHABLE_CODES
        quality = Quality.COMM_FAILURE if unreachable or code == BUSY else Quality.BAD
        super().__init__(f"exception 0x{code:02X} {name}", quality, unreachable)
