"""Points: one measured or observed quantity of one device, and how to read it off the wire."""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import Field, ValidatorFunctionWrapHandler, model_validator

from .base import Identifier, StrictModel

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "float64", "bool"]
Table = Literal["holding", "input", "coil", "discrete"]
Order = Literal["big", "little"]

REGISTER_WIDTH: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "float64": 4,
    "bool": 1,
}


# While a site file is parsed: validated points by their input, so identical ones are one object (see _share).
SHARED_POINTS: ContextVar[dict[tuple[type, str], Any] | None] = ContextVar("shared_points", default=None)


class PointBase(StrictModel):
    id: Identifier = Field(description="Unique within its device; the InfluxDB `point` tag.")
    quantity: Identifier | None = Field(
        None, description="What is measured (temperature, humidity, fire, door_open...). Defaults to the id."
    )
    unit: str = Field("", description="Unit of the decoded value, for display.")
    room: Identifier | None = Field(None, description="Room of this point when it differs from its device's.")
    scale: float = Field(1.0, description="Value = raw × scale + offset.")
    offset: float = 0.0
    invert: bool = Field(
        False, description="For states: store the opposite (a contact's closed=true as door_open=false)."
    )
    valid_min: float | None = Field(None, description="Below this the sensor is out of its range: quality uncertain.")
    valid_max: float | None = Field(None, description="Above this the sensor is out of its range: quality uncertain.")
    expected_interval: float | None = Field(
        None, description="Seconds within which a new reading is expected; later means stale."
    )

    @property
    def quantity_name(self) -> str:
        return self.quantity or self.id

    @model_validator(mode="wrap")
    @classmethod
    def _share(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One object for identical points while a site file is parsed.

        A site has hundreds of devices of one model, whose points differ only in
        the device they sit on; points are frozen, so they can be shared. With
        1,667 Zigbee sensors that is 10,002 point models fewer (about 9 MB of a
        10,000-point service's memory, bench/ingest.py). Input that fails is
        never cached: each occurrence gets its own error with its own path.
        """
        shared = SHARED_POINTS.get()
        if shared is None or not isinstance(data, dict):
            return handler(data)
        try:
            key = (cls, json.dumps(data, sort_keys=True))
        except (TypeError, ValueError):
            return handler(data)
        point = shared.get(key)
        if point is None:
            point = shared[key] = handler(data)
        return point


class ModbusPoint(PointBase):
    table: Table = Field(description="holding (FC03), input (FC04), coil (FC01), discrete (FC02).")
    address: int = Field(ge=0, le=65535, description="Register or bit address, in the device's `addressing`.")
    type: RegisterType = Field("uint16", description="Wire type; `bool` for coils and discrete inputs.")
    byte_order: Order = Field("big", description="Byte order within each 16-bit register.")
    word_order: Order = Field("big", description="Order of registers in 32/64-bit values; `little` = low word first.")
    bit: int | None = Field(None, ge=0, le=15, description="Take one bit of the register as a state.")
    mask: int | None = Field(None, ge=0, le=0xFFFF, description="With `equals`: state = (raw & mask) == equals.")
    equals: int | None = Field(None, ge=0, le=0xFFFF)
    negative_above: int | None = Field(
        None, ge=1, le=0xFFFF, description="Sign-magnitude clones: raw ≥ this means −(raw − this)."
    )
    sentinels: list[int] = Field(
        default_factory=list, description="Raw integer values that mean 'no valid reading' (e.g. 0x7FFF, 0x8000)."
    )
    nan_is_bad: bool = Field(True, description="A NaN or infinite float is a sensor fault, not a value.")

    @model_validator(mode="before")
    @classmethod
    def _bit_tables_are_bool(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("table") in ("coil", "discrete") and "type" not in data:
            data = {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        bit_table = self.table in ("coil", "discrete")
        if bit_table and self.type != "bool":
            raise ValueError(f"a {self.table} is a single bit: type must be bool, not {self.type}")
        if not bit_table and self.type == "bool":
            raise ValueError("type bool is only for coils and discrete inputs; use `bit` for a register bit")
        if (self.mask is None) != (self.equals is None):
            raise ValueError("`mask` and `equals` go together")
        if self.bit is not None and self.mask is not None:
            raise ValueError("use either `bit` or `mask`/`equals`, not both")
        if (self.bit is not None or self.mask is not None) and REGISTER_WIDTH[self.type] != 1:
            raise ValueError("`bit` and `mask` apply to 16-bit registers (int16/uint16)")
        if self.address + self.width - 1 > 65535:
            raise ValueError("the value runs past the last address 65535")
        return self

    @property
    def width(self) -> int:
        """Registers (or bits) this point occupies."""
        return REGISTER_WIDTH[self.type]

    @property
    def is_state(self) -> bool:
        return self.type == "bool" or self.bit is not None or self.mask is not None


class MqttPoint(PointBase):
    path: str | None = Field(
        None,
        description="Where the value is in a JSON payload: dotted keys and [n] indexes, e.g. "
        '`AM2301.Temperature` or `params."temperature:0".tC`. Unset: the whole payload is the value.',
    )
    topic: str | None = Field(None, description="Topic of this point when it differs from the device's.")
    type: Literal["number", "bool", "text"] = Field("number", description="How to read the value.")
    states: dict[str, bool | float] = Field(
        default_factory=dict, description="Map of text payload values to states, e.g. {ON: true, OFF: false}."
    )

    @property
    def is_state(self) -> bool:
        return self.type == "bool"
