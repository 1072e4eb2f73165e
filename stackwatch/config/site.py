"""Site, buildings and rooms: where readings come from, as inspectors name places."""

from __future__ import annotations

from typing import Literal
from zoneinfo import available_timezones

from pydantic import Field, field_validator, model_validator

from .base import Identifier, StrictModel

ProfileName = Literal["paper", "special", "film", "film-master", "magnetic", "optical", "photo", "mixed", "office"]


class SiteInfo(StrictModel):
    id: Identifier = Field(title="Site id", description="Short id, used as the InfluxDB `site` tag.")
    name: str = Field("", title="Display name")
    timezone: str = Field(
        "UTC", title="Time zone", description="IANA zone for calendar days, shifts and reports, e.g. Asia/Shanghai."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'")
        return value


class Building(StrictModel):
    id: Identifier
    name: str = ""
    floors: list[str] = Field(default_factory=list, description="Floor labels, top to bottom order not implied.")


class Limits(StrictModel):
    """Per-room overrides of the profile's limits; unset fields keep the profile's value."""

    t_min: float | None = Field(None, ge=-40, le=60, description="Lowest allowed temperature, °C.")
    t_max: float | None = Field(None, ge=-40, le=60, description="Highest allowed temperature, °C.")
    rh_min: float | None = Field(None, ge=0, le=100, description="Lowest allowed relative humidity, %.")
    rh_max: float | None = Field(None, ge=0, le=100, description="Highest allowed relative humidity, %.")
    t_daily_range: float | None = Field(None, gt=0, le=20, description="Allowed max−min temperature per day, K.")
    rh_daily_range: float | None = Field(None, gt=0, le=50, description="Allowed max−min RH per day, %.")

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.t_min is not None and self.t_max is not None and self.t_min >= self.t_max:
            raise ValueError(f"t_min ({self.t_min}) must be below t_max ({self.t_max})")
        if self.rh_min is not None and self.rh_max is not None and self.rh_min >= self.rh_max:
            raise ValueError(f"rh_min ({self.rh_min}) must be below rh_max ({self.rh_max})")
        return self


class Room(StrictModel):
    id: Identifier
    name: str = ""
    building: Identifier = Field(description="Id of a building in `buildings`.")
    floor: str | None = None
    profile: ProfileName = Field(description="Storage class whose standard limits apply (see `stackwatch profiles`).")
    limits: Limits = Field(default_factory=Limits)
