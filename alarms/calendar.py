"""Opening hours in the site's time zone: outside them, a door or motion in the stacks is intrusion."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from stackwatch.config.alarms import WEEKDAYS, OpeningHours

Span = tuple[int, int]  # minutes from local midnight, end exclusive


def _spans(texts: list[str]) -> list[Span]:
    spans = []
    for text in texts:
        start, end = text.split("-")
        spans.append((int(start[:2]) * 60 + int(start[3:]), int(end[:2]) * 60 + int(end[3:])))
    return spans


class OpeningCalendar:
    """`is_open(ts)`: a dated exception first (holiday closed, working Saturday open), then the weekly plan."""

    def __init__(self, hours: OpeningHours, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.weekly = {WEEKDAYS.index(day): _spans(spans) for day, spans in hours.weekly.items()}
        self.closed = {date.fromisoformat(text) for text in hours.closed_dates}
        self.special = {date.fromisoformat(day): _spans(spans) for day, spans in hours.open_dates.items()}

    def is_open(self, ts: float) -> bool:
        local = datetime.fromtimestamp(ts, self.zone)
        day = local.date()
        if day in self.special:
            spans = self.special[day]
        elif day in self.closed:
            return False
        else:
            spans = self.weekly.get(local.weekday(), [])
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in spans)

    def is_closed(self, ts: float) -> bool:
        return not self.is_open(ts)
