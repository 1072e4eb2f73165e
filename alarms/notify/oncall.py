"""Who is on call at a moment: the rotation's turn, unless an override (holiday, swap) says otherwise.

Shifts change at the handover time on the site's wall clock, so a shift that
contains a DST change is an hour shorter or longer, never shifted: people
hand over at 08:30 local time all year. Each handover instant is computed from
its date (the first of two 02:30s when the clock falls back; a 02:30 lost
when it springs forward reads as 03:30, PEP 495), so the turn never runs backwards.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from stackwatch.config.notify import Override, Rotation

_SHIFT_DAYS = {"daily": 1, "weekly": 7}


def who_is_on_call(rotation: Rotation, timezone: str, ts: float) -> str | None:
    """The person to page at `ts`; None before the rotation's first shift (and no override covers it)."""
    zone = ZoneInfo(timezone)
    override = _covering_override(rotation.overrides, zone, ts)
    if override is not None:
        return override.person
    shift = _shift_number(rotation, zone, ts)
    if shift is None:
        return None
    return rotation.members[shift % len(rotation.members)]


def next_handover(rotation: Rotation, timezone: str, ts: float) -> float:
    """The next instant after `ts` at which the person on call may change: when the notifier must look again.

    That is the rotation's next handover or an override's start or end,
    whichever comes first.
    """
    zone = ZoneInfo(timezone)
    shift = _shift_number(rotation, zone, ts)
    following = 0 if shift is None else shift + 1
    first_day = rotation.start + timedelta(days=following * _SHIFT_DAYS[rotation.shift])
    candidates = [_handover_instant(first_day, rotation.handover, zone)]
    for override in rotation.overrides:
        candidates.extend(edge for edge in _override_span(override, zone) if edge > ts)
    return min(candidates)


def _shift_number(rotation: Rotation, zone: ZoneInfo, ts: float) -> int | None:
    """0 for the first member's first shift; None before it."""
    shift_day = _shift_day(rotation.handover, zone, ts)
    days = (shift_day - rotation.start).days
    if days < 0:
        return None
    return days // _SHIFT_DAYS[rotation.shift]


def _shift_day(handover: str, zone: ZoneInfo, ts: float) -> date:
    """The date whose handover began the day-shift holding `ts`: before today's handover it is yesterday's."""
    today = datetime.fromtimestamp(ts, zone).date()
    if ts >= _handover_instant(today, handover, zone):
        return today
    return today - timedelta(days=1)


def _handover_instant(day: date, handover: str, zone: ZoneInfo) -> float:
    hour, minute = (int(part) for part in handover.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=zone).timestamp()


def _override_span(override: Override, zone: ZoneInfo) -> tuple[float, float]:
    """A naive override is on the site's wall clock, like everything else in the site file."""
    return _instant(override.start, zone), _instant(override.end, zone)


def _instant(moment: datetime, zone: ZoneInfo) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).timestamp()


def _covering_override(overrides: list[Override], zone: ZoneInfo, ts: float) -> Override | None:
    """The latest-starting one wins: a swap inside a holiday cover is the more specific arrangement.

    Of two starting together, the one listed last wins, as a later edit of the file would.
    """
    chosen: Override | None = None
    chosen_start = float("-inf")
    for override in overrides:
        start, end = _override_span(override, zone)
        if start <= ts < end and start >= chosen_start:
            chosen, chosen_start = override, start
    return chosen
