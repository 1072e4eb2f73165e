"""The `reports:` section: the monthly compliance report e-mailed to a list (issue 7).

On `schedule.day` at `schedule.time` (the site's time zone) the service builds last month's report (the
calendar month in the site's zone) and sends it through an SMTP channel of `notify.channels`, one message per
recipient with the report attached in each of `formats`. No recipients: no monthly report.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import Identifier, StrictModel, clock_time


class ReportSchedule(StrictModel):
    day: int = Field(1, ge=1, le=28, description="Day of the month the last month's report is sent (1–28).")
    time: str = Field("06:00", description="Time of day in the site's time zone, HH:MM.")

    @field_validator("time")
    @classmethod
    def _clock(cls, value: str) -> str:
        return clock_time(value)


ReportFormat = Literal["pdf", "csv", "json"]


def _pdf_only() -> list[ReportFormat]:
    return ["pdf"]


class ReportsConfig(StrictModel):
    schedule: ReportSchedule = Field(default_factory=ReportSchedule, description="When the monthly report goes out.")
    recipients: list[str] = Field(
        default_factory=list, description="E-mail addresses the monthly report is sent to; empty: none is sent.")
    channel: Identifier | None = Field(
        None, description="Id of the SMTP channel in `notify.channels` to send through; default the first one.")
    rooms: list[Identifier] = Field(default_factory=list, description="Rooms in the report; empty: every room.")
    formats: list[ReportFormat] = Field(
        default_factory=_pdf_only, min_length=1, description="Attachments: pdf, csv, json.")
    lang: Literal["zh", "en"] = Field("zh", description="Language of the PDF.")

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value
