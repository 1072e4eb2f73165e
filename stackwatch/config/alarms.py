"""The `alarms:` section: delays, deadbands, priorities, the opening-hours calendar.

Everything has a default that suits a stack room (standards.md §6: limit alarms
wait 10–30 minutes, fire and water at once), so a site file needs no `alarms:`
section to get a complete alarm set from its rooms and devices.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Duration, Identifier, StrictModel

PriorityName = Literal["critical", "high", "medium", "low"]
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PrioritySettings(StrictModel):
    realarm: Duration = Field(description="An active alarm nobody acknowledged is announced again after this.")


def _default_priorities() -> dict[PriorityName, PrioritySettings]:
    return {
        "critical": PrioritySettings(realarm=300.0),
        "high": PrioritySettings(realarm=900.0),
        "medium": PrioritySettings(realarm=3600.0),
        "low": PrioritySettings(realarm=14400.0),
    }


class OpeningHours(StrictModel):
    """When people are expected in the stacks; door and motion outside these hours are intrusion."""

    weekly: dict[str, list[str]] = Field(
        default_factory=lambda: {day: ["08:00-18:00"] for day in WEEKDAYS[:5]},
        description="Per weekday (mon..sun), spans 'HH:MM-HH:MM' in the site's time zone. A missing day is closed.",
    )
    closed_dates: list[str] = Field(default_factory=list, description="Holidays (YYYY-MM-DD): closed all day.")
    open_dates: dict[str, list[str]] = Field(
        default_factory=dict, description="Dates with their own spans (a working Saturday): YYYY-MM-DD → spans."
    )

    @field_validator("weekly")
    @classmethod
    def _days(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            _check_spans(spans)
        return value

    @field_validator("open_dates")
    @classmethod
    def _dates(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in value.items():
            _check_date(day)
            _check_spans(spans)
        return value

    @field_validator("closed_dates")
    @classmethod
    def _closed(cls, value: list[str]) -> list[str]:
        for day in value:
            _check_date(day)
        return value


def _check_date(text: str) -> None:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2027-01-01") from None


def _check_spans(spans: list[str]) -> None:
    for span in spans:
        match = _SPAN.match(span)
        if not match:
            raise ValueError(f"{span!r} is not a span like '08:00-18:00'")
        start, end = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
        if end <= start or end > 24 * 60:
            raise ValueError(f"{span!r} ends before it starts")


class AlarmTuning(StrictModel):
    """Delays and thresholds of the generated rules; `alarms.defaults`, or per room in `alarms.rooms`."""

    limit_on_delay: Duration | None = Field(
        None, description="A limit must be exceeded this long before it alarms (default 10m: T and RH drift slowly)."
    )
    limit_off_delay: Duration | None = Field(None, description="It must be back in range this long to clear (1m).")
    t_deadband: float | None = Field(None, ge=0, le=10, description="K inside the limit before a T alarm clears (0.5).")
    rh_deadband: float | None = Field(None, ge=0, le=20, description="% inside the limit before RH clears (2).")
    t_rate_per_hour: float | None = Field(None, gt=0, description="Temperature change per hour that alarms (3 K/h).")
    rh_rate_per_hour: float | None = Field(None, gt=0, description="RH change per hour that alarms (10 %/h).")
    mould_rh: float | None = Field(None, ge=0, le=100, description="RH above which mould risk builds (65 %).")
    mould_after: Duration | None = Field(None, description="How long above `mould_rh` before it alarms (48h).")
    door_held_open: Duration | None = Field(None, description="A door open longer than this alarms (10m).")
    condensation_margin: float | None = Field(
        None, ge=0, le=10, description="K above the dew point at which a surface or supply-air temperature alarms (2)."
    )


TUNING_DEFAULTS = AlarmTuning(
    limit_on_delay=600.0, limit_off_delay=60.0, t_deadband=0.5, rh_deadband=2.0, t_rate_per_hour=3.0,
    rh_rate_per_hour=10.0, mould_rh=65.0, mould_after=48 * 3600.0, door_held_open=600.0, condensation_margin=2.0,
)


class AlarmsConfig(StrictModel):
    journal: str = Field("alarms.db", description="SQLite journal of every alarm change; relative to `state_dir`.")
    defaults: AlarmTuning = Field(default_factory=AlarmTuning, description="Overrides of the built-in tuning.")
    rooms: dict[Identifier, AlarmTuning] = Field(default_factory=dict, description="Tuning for single rooms.")
    priorities: dict[PriorityName, PrioritySettings] = Field(default_factory=_default_priorities)
    cause_priority: dict[str, PriorityName] = Field(
        default_factory=dict, description="Change the priority of a cause, e.g. {humidity_high: high}."
    )
    stale_factor: float = Field(
        3.0, ge=1.0, le=100.0, description="A point with no usable reading for this many expected intervals: no data."
    )
    stale_min: Duration = Field(60.0, description="Shortest no-data delay, whatever the interval.")
    comm_loss_after: Duration = Field(30.0, description="A device answering only with failures this long: comm loss.")
    sensor_fault_after: Duration = Field(30.0, description="A point reading only `bad` this long: sensor fault.")
    tick: Duration = Field(1.0, description="How often time-driven rules (delays, no data, re-alarm) are evaluated.")
    opening_hours: OpeningHours = Field(default_factory=OpeningHours)
    mqtt_prefix: str = Field("stackwatch", description="Alarm states are published retained to PREFIX/<site>/alarms/…")
    publish_mqtt: bool = Field(True, description="Publish alarm states to the site's broker (when it has one).")

    @model_validator(mode="after")
    def _all_priorities(self) -> AlarmsConfig:
        missing = {"critical", "high", "medium", "low"} - set(self.priorities)
        if missing:
            merged = {**_default_priorities(), **self.priorities}
            object.__setattr__(self, "priorities", merged)
        return self

    def tuning(self, room: str | None) -> AlarmTuning:
        """Built-in defaults, then `defaults`, then the room's own: the first value set wins from the most specific."""
        layers = [self.rooms.get(room) if room else None, self.defaults, TUNING_DEFAULTS]
        values: dict[str, object] = {}
        for name in AlarmTuning.model_fields:
            values[name] = next(getattr(layer, name) for layer in layers if layer is not None
                                and getattr(layer, name) is not None)
        return AlarmTuning.model_validate(values)
