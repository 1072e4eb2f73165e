"""Gateways and devices: how stackwatch reaches each sensor."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import Duration, Identifier, StrictModel
from .control import Actuator
from .points import ModbusPoint, MqttPoint


class PollingOptions(StrictModel):
    """What a gateway tolerates; the defaults suit a typical RS-485 gateway."""

    timeout: Duration = Field(1.0, description="Response timeout per request.")
    retries: int = Field(
        1, ge=0, le=5, description="Retries of a request that timed out, before the device counts as failed."
    )
    busy_retries: int = Field(3, ge=0, le=10, description="Retries after exception 06 (slave device busy).")
    busy_backoff: Duration = Field(0.2, description="Wait before retrying a busy device.")
    pause: Duration = Field(0.0, description="Silence between two requests (slow gateways).")
    close_after_cycle: bool = Field(
        False, description="Close the connection after each poll cycle (gateways that accept one master)."
    )
    max_registers: int = Field(125, ge=1, le=125, description="Registers per read request at most.")
    max_bits: int = Field(2000, ge=1, le=2000, description="Coils/discrete inputs per read request at most.")
    max_gap: int = Field(8, ge=0, le=124, description="Unused registers a request may span to join two neighbours.")
    down_after: int = Field(2, ge=1, description="Failed cycles in a row after which a device is polled less often.")
    down_retry: Duration = Field(30.0, description="While down, how often the device is tried again.")


class ModbusTcpGateway(PollingOptions):
    type: Literal["modbus-tcp"]
    id: Identifier
    host: str
    port: int = Field(502, ge=1, le=65535)
    framer: Literal["socket", "rtu"] = Field("socket", description="`rtu` for serial servers in transparent mode.")


class ModbusRtuGateway(PollingOptions):
    type: Literal["modbus-rtu"]
    id: Identifier
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


Gateway = Annotated[ModbusTcpGateway | ModbusRtuGateway, Field(discriminator="type")]


class DeviceBase(StrictModel):
    id: Identifier = Field(description="Unique device id; the InfluxDB `device` tag.")
    model: str | None = Field(
        None, description="A device from the model library (`stackwatch models`); its points are the default."
    )
    model_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Options of the model, e.g. {zones: 16} for a fire-panel gateway."
    )
    use_points: list[str] | None = Field(
        None, description="Keep only these of the model's points (e.g. the wired inputs of a 16-input module)."
    )
    room: Identifier = Field(description="Room the device's points belong to unless a point says otherwise.")
    calibrated: str | None = Field(None, description="Date of the last calibration (YYYY-MM-DD).")
    calibration_due: str | None = Field(None, description="Date the next calibration is due (YYYY-MM-DD).")

    @field_validator("calibrated", "calibration_due")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date like 2027-03-01") from None
        return value


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    gateway: Identifier = Field(description="Id of a gateway in `gateways`.")
    unit: int = Field(1, ge=0, le=255, description="Modbus device id (slave address).")
    poll_interval: Duration = Field(10.0, description="Time between two polls of this device.")
    addressing: Literal["zero-based", "one-based"] = Field(
        "zero-based",
        description="Point addresses as on the wire (zero-based) or as manuals print them (one-based: 1 = wire 0).",
    )
    points: list[ModbusPoint] = Field(default_factory=list)
    actuators: list[Actuator] = Field(
        default_factory=list, description="Coils and registers the service may write (environmental control)."
    )

    @model_validator(mode="after")
    def _has_points(self) -> ModbusDevice:
        if not self.points:
            raise ValueError("a device needs points, or a `model` that brings them")
        return self

    def wire_address(self, point: ModbusPoint) -> int:
        return point.address - 1 if self.addressing == "one-based" else point.address


class TimestampSpec(StrictModel):
    path: str = Field(description="JSON path of the device's own timestamp.")
    format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"
    naive_zone: str | None = Field(
        None, description="Zone of timestamps that carry none (Tasmota: local time). Default: the site's zone."
    )


class AvailabilitySpec(StrictModel):
    topic: str
    path: str | None = Field(None, description="JSON path of the state, when the payload is JSON.")
    online: list[str] = Field(default_factory=lambda: ["online", "Online"])
    offline: list[str] = Field(default_factory=lambda: ["offline", "Offline"])


class Condition(StrictModel):
    path: str
    equals: Any = True


class MqttDevice(DeviceBase):
    protocol: Literal["mqtt"]
    topic: str | None = Field(None, description="State topic; may hold + and # wildcards. Points may name their own.")
    points: list[MqttPoint] = Field(default_factory=list)
    timestamp: TimestampSpec | None = Field(None, description="Honour the device's own timestamp from the payload.")
    availability: AvailabilitySpec | None = Field(None, description="Online/offline topic (last will).")
    uncertain_when: list[Condition] = Field(
        default_factory=list,
        description="Payload conditions that make the message's readings uncertain (battery_low: true).",
    )
    require_key: str | None = Field(
        None, description="Only payloads with this top-level key (or JSON-RPC method, as `method=NAME`) are readings."
    )

    @model_validator(mode="after")
    def _topics(self) -> MqttDevice:
        if not self.points:
            raise ValueError("a device needs points, or a `model` that brings them")
        for index, point in enumerate(self.points):
            if point.topic is None and self.topic is None:
                raise ValueError(f"points[{index}] ({point.id}) has no topic and the device has none")
        return self


Device = Annotated[ModbusDevice | MqttDevice, Field(discriminator="protocol")]
