"""Environmental control: what the service may drive, how each room's loops run, and what overrides them.

Actuators belong to Modbus devices (next to their points), because an installer
reads one device's manual for both. A room's loops name actuators by
`device.actuator`; the cross-checks (known actuators, targets inside the room's
limits) are in `SiteConfig`, which sees every section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Duration, Identifier, StrictModel, clock_time

FIRE_QUANTITIES = ("fire", "smoke", "suppression_pre_discharge", "suppression_discharge")
LEAK_QUANTITIES = ("water_leak",)


class Actuator(StrictModel):
    """A coil or holding register the service writes, with its allowed range and what proves a write took effect."""

    id: Identifier = Field(description="Unique within its device; loops name it as `<device>.<id>`.")
    kind: Literal["switch", "setpoint", "mode"] = Field(
        description="switch: on/off unit (1 = run, 0 = stop; wire valves and dampers so 0 is the safe state); "
        "setpoint: a value in engineering units; mode: one of named raw values."
    )
    table: Literal["coil", "holding"] = Field(description="coil (FC05 write, FC01 read) or holding (FC06, FC03).")
    address: int = Field(ge=0, le=65535, description="In the device's `addressing`.")
    type: Literal["bool", "int16", "uint16"] = Field("uint16", description="Register type; coils are bool.")
    scale: float = Field(1.0, description="Engineering value = raw × scale + offset (set-point ×10 → 0.1).")
    offset: float = 0.0
    min: float | None = Field(None, description="Lowest value the service may write (set-points).")
    max: float | None = Field(None, description="Highest value the service may write (set-points).")
    modes: dict[str, int] = Field(default_factory=dict, description="Mode names and their raw values (mode).")
    readback: Identifier | None = Field(
        None,
        description="Point id on the same device that proves the command took effect (a running contact, the "
        "set-point in effect). Default: read the written coil or register back.",
    )
    tolerance: float = Field(0.0, ge=0, description="Read-back may differ from the command by this much.")
    settle: Duration = Field(5.0, description="How long the unit may take before its read-back must agree.")
    retries: int = Field(2, ge=0, le=10, description="Writes repeated after a failure or mismatch, then an alarm.")

    @model_validator(mode="before")
    @classmethod
    def _coils_are_bool(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("table") == "coil" and "type" not in data:
            return {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Actuator:
        if (self.table == "coil") != (self.type == "bool"):
            raise ValueError("a coil is type bool, a holding register int16 or uint16")
        if self.kind == "switch" and self.table == "holding" and (self.min, self.max) != (None, None):
            raise ValueError("a switch writes 0 or 1: no min/max")
        if self.kind == "setpoint":
            if self.table == "coil":
                raise ValueError("a set-point is a holding register")
            if self.min is None or self.max is None:
                raise ValueError("a set-point needs its allowed range: min and max")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.kind == "mode" and not self.modes:
            raise ValueError("a mode actuator lists its `modes`")
        if self.scale == 0:
            raise ValueError("scale cannot be 0")
        return self


class TargetPeriod(StrictModel):
    """A target that applies at some times: night set-back, a summer band (first matching period wins)."""

    name: str = Field("", description="Shown on the dashboard: 'night', 'summer'.")
    start: str = Field("00:00", alias="from", description="Local time HH:MM the period starts (site zone).")
    end: str = Field("24:00", alias="to", description="Local time HH:MM it ends; before `from` = over midnight.")
    months: list[int] = Field(default_factory=list, description="Months 1–12 it applies in; empty = all year.")
    target: float = Field(description="The target in this period.")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        return clock_time(value, end_of_day=True)

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        for month in value:
            if not 1 <= month <= 12:
                raise ValueError(f"month {month} is not 1..12")
        return value


class HumidityLoop(StrictModel):
    """On/off dehumidifiers and humidifiers around an RH target, gentle on compressors."""

    target: float | None = Field(None, ge=5, le=95, description="RH target, %. Default: middle of the room's limits.")
    band: float = Field(5.0, gt=0, le=20, description="In band = target ± band; it must lie inside the limits.")
    hysteresis: float = Field(3.0, gt=0, le=15, description="Dehumidify from target + this down to target − this/2.")
    dehumidifiers: list[str] = Field(default_factory=list, description="Switch actuators, `<device>.<actuator>`.")
    humidifiers: list[str] = Field(default_factory=list, description="Switch actuators, `<device>.<actuator>`.")
    min_on: Duration = Field(600.0, description="A unit, once started, runs at least this long (compressors).")
    min_off: Duration = Field(600.0, description="A unit, once stopped, rests at least this long.")
    periods: list[TargetPeriod] = Field(default_factory=list, description="Seasonal or day/night targets.")

    @model_validator(mode="after")
    def _units(self) -> HumidityLoop:
        if not self.dehumidifiers and not self.humidifiers:
            raise ValueError("a humidity loop needs dehumidifiers or humidifiers")
        both = set(self.dehumidifiers) & set(self.humidifiers)
        if both:
            raise ValueError(f"{sorted(both)} cannot both dehumidify and humidify")
        return self


class TemperatureLoop(StrictModel):
    """An HVAC set-point walked slowly toward the target: archives care about fluctuation more than the value."""

    target: float | None = Field(None, ge=0, le=40, description="°C. Default: middle of the room's limits.")
    band: float = Field(2.0, gt=0, le=10, description="In band = target ± band; it must lie inside the limits.")
    setpoint: str = Field(description="Set-point actuator, `<device>.<actuator>`.")
    run: str | None = Field(None, description="The unit's run command (switch); kept on while the loop is automatic.")
    max_step: float = Field(0.5, gt=0, le=5, description="Largest set-point change per `step_interval`, K.")
    step_interval: Duration = Field(900.0, description="Time between two set-point steps.")
    trim: float = Field(1.0, ge=0, le=5, description="How far the set-point may lean from the target to hold it, K.")
    periods: list[TargetPeriod] = Field(default_factory=list, description="Seasonal or day/night targets.")


class Interlocks(StrictModel):
    """Safety first: these override every loop and every manual override."""

    air_handling: list[str] = Field(
        default_factory=list, description="Switches stopped on fire or gas pre-discharge (AHU, fans, CRAC run)."
    )
    dampers: list[str] = Field(default_factory=list, description="Switches opened to 0 = closed on fire.")
    leak_valves: list[str] = Field(default_factory=list, description="Switches set to 0 = closed on a water leak.")
    fire_quantities: list[str] = Field(
        default_factory=lambda: list(FIRE_QUANTITIES), description="States of the room that trip the fire interlock."
    )
    leak_quantities: list[str] = Field(default_factory=lambda: list(LEAK_QUANTITIES))
    reset: Literal["operator", "automatic"] = Field(
        "operator", description="After a fire clears, loops stay off until an operator resets (default)."
    )


class RoomControl(StrictModel):
    room: Identifier
    humidity: HumidityLoop | None = None
    temperature: TemperatureLoop | None = None
    interlocks: Interlocks = Field(default_factory=Interlocks)
    sensors: list[str] = Field(
        default_factory=list,
        description="Point keys (`device.point`) the loops read; default: the room's temperature and humidity "
        "points. Several are averaged over those with good quality.",
    )

    def actuators(self) -> list[str]:
        """Every actuator this room's control touches, loops and interlocks."""
        names: list[str] = []
        if self.humidity is not None:
            names += self.humidity.dehumidifiers + self.humidity.humidifiers
        if self.temperature is not None:
            names += [self.temperature.setpoint] + ([self.temperature.run] if self.temperature.run else [])
        names += self.interlocks.air_handling + self.interlocks.dampers + self.interlocks.leak_valves
        return list(dict.fromkeys(names))


class ControlConfig(StrictModel):
    enabled: bool = Field(True, description="Off: the service watches only and writes nothing.")
    interval: Duration = Field(30.0, description="Loop cycle; interlocks act at once on the reading that trips them.")
    input_max_age: Duration = Field(300.0, description="A room reading older than this is not acted on.")
    max_override: Duration = Field(7 * 86400.0, description="Longest manual override an operator may set.")
    journal: str = Field("control.db", description="Command journal in `state_dir`.")
    rooms: list[RoomControl] = Field(default_factory=list)
