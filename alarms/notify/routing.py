"""Which routes page for an alarm, and from when a page may go out.

Routes read like a firewall table: the first that matches decides, so a site
writes its special cases first and a catch-all last; `continue_matching` lets
a route add listeners (a chat room, the building manager) without deciding.

Holding a page back is about people's nights, not the alarm: the alarm shows
on the dashboard at once whatever `held_until` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from stackwatch.config.notify import Match, QuietHours, Route

from ..calendar import OpeningCalendar
from ..model import Priority

OPENING_SEARCH_DAYS = 14  # longer than any holiday a calendar holds (Chinese New Year: 8 days)
_MAX_ROUNDS = 8  # quiet hours and opening hours settle within two rounds; the bound only guards odd configs


def matching_routes(routes: list[Route], priority: Priority | str, building: str | None, room: str | None,
                    cause: str) -> list[Route]:
    chosen: list[Route] = []
    for route in routes:
        if _matches(route.match, str(priority), building, room, cause):
            chosen.append(route)
            if not route.continue_matching:
                break
    return chosen


def _matches(match: Match, priority: str, building: str | None, room: str | None, cause: str) -> bool:
    """A site-wide alarm (no room, no building) matches only routes that do not ask for one."""
    return (_allows(match.priority, priority) and _allows(match.building, building)
            and _allows(match.room, room) and _allows(match.cause, cause))


def _allows(wanted: Sequence[str] | None, value: str | None) -> bool:
    return wanted is None or (value is not None and value in wanted)


def held_until(priority: Priority | str, ts: float, quiet_hours: QuietHours, calendar: OpeningCalendar,
               timezone: str) -> float:
    """The earliest instant ≥ `ts` a page of this priority may go out; `ts` itself when it need not wait.

    Critical pages never wait. A priority listed in `quiet_hours.applies_to`
    waits for the quiet hours to end; low pages then also wait for the
    opening hours, since nobody can act on them before. A calendar with no
    opening within `OPENING_SEARCH_DAYS` does not swallow low pages: they go
    out when the quiet hours allow.
    """
    level = Priority(priority)
    if level is Priority.CRITICAL:
        return ts
    zone = ZoneInfo(timezone)
    release = ts
    for _ in range(_MAX_ROUNDS):
        release = _after_quiet_hours(level, release, quiet_hours, zone)
        if level is not Priority.LOW:
            return release
        opening = next_opening(calendar, release)
        if opening is None or opening == release:
            return release
        release = opening
    return release


def next_opening(calendar: OpeningCalendar, ts: float, days: int = OPENING_SEARCH_DAYS) -> float | None:
    """The first instant ≥ `ts` the calendar is open, or None within `days`.

    Only span starts can begin an open period, so those (of every weekday and
    dated exception) are the candidates; `calendar.is_open` has the last word,
    so holidays and working Saturdays count exactly as the alarm rules see them.
    """
    if calendar.is_open(ts):
        return ts
    first_day = datetime.fromtimestamp(ts, calendar.zone).date()
    horizon = ts + days * 86400.0
    for offset in range(days + 1):
        day = first_day + timedelta(days=offset)
        for minute in _span_starts(calendar):
            candidate = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=calendar.zone).timestamp()
            if ts < candidate <= horizon and calendar.is_open(candidate):
                return candidate
    return None


def _span_starts(calendar: OpeningCalendar) -> list[int]:
    """Minutes after local midnight at which some day opens, earliest first."""
    spans = [span for day_spans in (*calendar.weekly.values(), *calendar.special.values()) for span in day_spans]
    return sorted({start for start, _ in spans if start < 24 * 60})


def in_quiet_hours(ts: float, quiet_hours: QuietHours, zone: ZoneInfo) -> bool:
    """Quiet hours may span midnight (22:00–07:00); equal start and end means there are none."""
    start, end = _seconds_of_day(quiet_hours.start), _seconds_of_day(quiet_hours.end)
    now = _local_seconds(ts, zone)
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def _after_quiet_hours(priority: Priority, ts: float, quiet_hours: QuietHours, zone: ZoneInfo) -> float:
    if priority.value not in quiet_hours.applies_to or not in_quiet_hours(ts, quiet_hours, zone):
        return ts
    end = _seconds_of_day(quiet_hours.end)
    local = datetime.fromtimestamp(ts, zone)
    day = local.date() if _local_seconds(ts, zone) < end else local.date() + timedelta(days=1)
    release = datetime.combine(day, time(end // 3600, end % 3600 // 60), tzinfo=zone).timestamp()
    return max(release, ts)  # a quiet end inside a DST fold: never earlier than asked


def _seconds_of_day(clock: str) -> int:
    hour, minute = clock.split(":")
    return int(hour) * 3600 + int(minute) * 60


def _local_seconds(ts: float, zone: ZoneInfo) -> float:
    local = datetime.fromtimestamp(ts, zone)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
