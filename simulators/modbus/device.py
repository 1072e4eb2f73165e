"""What every simulated Modbus device shares: its address map, faults and counters.

A model says which address blocks exist per function code and what they hold
for a room state; this base class answers requests from that, applies the
switched-in fault, and counts what it served (the benchmark counts requests).
Reads outside the blocks give exception 02 and unsupported function codes 01,
as real devices do, so a wrong map in the config shows up as bad readings.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from simulators.room import RoomModel, RoomState

from .faults import NO_FAULT, Fault

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
READ_TABLE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 1, 15: 1, 6: 3, 16: 3}  # function code → the table it touches

Now = Callable[[], float]
Block = tuple[int, int]  # [start, end) addresses


class Silent(Exception):
    """The device does not answer this request at all."""


class Refused(Exception):
    """The device answers with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exception 0x{code:02X}")
        self.code = code


class SimulatedDevice:
    model: ClassVar[str] = ""
    OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        if not 0 <= unit <= 247:
            raise ValueError(f"unit {unit} is not 0..247")
        unknown = set(options or {}) - self.OPTIONS
        if unknown:
            raise ValueError(f"{self.model}: unknown option(s) {sorted(unknown)}; known: {sorted(self.OPTIONS)}")
        self.unit = unit
        self.room = room
        self.rooms: dict[str, RoomModel] = {room.room_id: room, **(rooms or {})}  # for devices spanning rooms
        self.now = now
        self.options: dict[str, Any] = dict(options or {})
        self.fault: Fault = NO_FAULT
        self.requests = 0  # requests addressed to this device, answered or not
        self.answered = 0  # answers sent, exception replies included
        self.writes = 0
        self._random = random.Random(f"{self.model}:{unit}")  # garbage is deterministic per device
        self.blocks: dict[int, list[Block]] = {}
        self.holding: dict[int, int] = {}  # writable registers (FC06/FC16)
        self.coils: dict[int, bool] = {}  # writable coils (FC05/FC15)

    def set_fault(self, spec: str | Fault, delay: float | None = None) -> None:
        self.fault = Fault.parse(spec, delay)
        self.fault_changed()

    def fault_changed(self) -> None:
        """After `set_fault`: an actuator whose unit stops or resumes following its commands acts on it."""

    def state(self) -> RoomState:
        return self.room.state(self.now())

    # ---- what a model provides ----

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        """Every defined address of `table` (1 coils, 2 inputs, 3 holding, 4 input registers) now."""
        raise NotImplementedError

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        """The table as a device with a failed sensor sends it; models without sentinels send it unchanged."""
        return self.table(table, state)

    # ---- serving requests ----

    def _check(self, table: int, address: int, count: int) -> None:
        blocks = self.blocks.get(table)
        if not blocks:
            raise Refused(ILLEGAL_FUNCTION)
        if not any(start <= address and address + count <= end for start, end in blocks):
            raise Refused(ILLEGAL_ADDRESS)

    async def _apply_fault(self) -> Fault:
        self.requests += 1
        fault = self.fault
        if fault.kind == "timeout":
            raise Silent
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        self.answered += 1
        if fault.kind == "exception":
            raise Refused(fault.code)
        return fault

    async def read(self, function_code: int, address: int, count: int) -> list[int]:
        """Values for FC01–04 (bits as 0/1), after the fault has had its say."""
        fault = await self._apply_fault()
        table = READ_TABLE.get(function_code, 0)
        if function_code not in (1, 2, 3, 4):
            raise Refused(ILLEGAL_FUNCTION)
        self._check(table, address, count)
        if fault.kind == "garbage":
            top = 1 if table in (1, 2) else 0xFFFF
            return [self._random.randint(0, top) for _ in range(count)]
        state = self.state()
        values = self.sentinel_table(table, state) if fault.kind == "sentinel" else self.table(table, state)
        return [values.get(a, 0) for a in range(address, address + count)]

    def peek(self, function_code: int, address: int, count: int) -> list[int]:
        """Current values without faults or counting: the read-back a write response echoes."""
        table = READ_TABLE.get(function_code, 0)
        values = self.table(table, self.state())
        return [values.get(a, 0) for a in range(address, address + count)]

    async def write(self, function_code: int, address: int, values: list[int]) -> None:
        await self._apply_fault()
        table = READ_TABLE.get(function_code, 0)
        store: dict[int, Any] = self.holding if table == 3 else self.coils if table == 1 else {}
        if function_code not in (5, 6, 15, 16) or not store:
            raise Refused(ILLEGAL_FUNCTION)
        if any(a not in store for a in range(address, address + len(values))):
            raise Refused(ILLEGAL_ADDRESS)
        self.check_write(table, address, values)
        for offset, value in enumerate(values):
            store[address + offset] = bool(value) if table == 1 else int(value) & 0xFFFF
        self.writes += 1
        self.written(table, address, len(values))

    def check_write(self, table: int, address: int, values: list[int]) -> None:
        """Refuse a write the device would refuse (raise `Refused`), before anything is stored."""

    def written(self, table: int, address: int, count: int) -> None:
        """After a write was stored: an actuator acts on it."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model} unit={self.unit} room={self.room.room_id} fault={self.fault}>"


def int16(value: float) -> int:
    """Two's complement register of a rounded value, saturated at the int16 range."""
    raw = max(-0x8000, min(0x7FFF, round(value)))
    return raw & 0xFFFF
