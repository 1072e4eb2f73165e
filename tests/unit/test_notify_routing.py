"""Routes and holding pages back (alarms/notify/routing.py): first match wins, quiet hours, opening hours."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alarms.calendar import OpeningCalendar
from alarms.model import Priority
from alarms.notify.routing import held_until, in_quiet_hours, matching_routes, next_opening
from stackwatch.config.alarms import OpeningHours
from stackwatch.config.notify import QuietHours, Route

SHANGHAI, BERLIN = "Asia/Shanghai", "Europe/Berlin"
QUIET = QuietHours()  # 22:00–07:00 for medium and low
CALENDAR = OpeningCalendar(OpeningHours(), SHANGHAI)  # Monday to Friday 08:00–18:00


def at(zone: str, *fields: int) -> float:
    return datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()  # type: ignore[arg-type,misc]


def local(ts: float, zone: str = SHANGHAI) -> datetime:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).replace(tzinfo=None)


def route(id: str, match: dict[str, list[str]] | None = None, continue_matching: bool = False) -> Route:
    return Route.model_validate({"id": id, "match": match or {}, "continue_matching": continue_matching,
                                 "levels": [{"targets": ["rotation:duty"]}]})


ROUTES = [
    route("chat-all", continue_matching=True),
    route("fire", {"cause": ["fire", "smoke", "water_leak"]}),
    route("east-climate", {"building": ["east"], "cause": ["humidity_high", "temperature_high"]}),
    route("vault", {"room": ["vault-1"], "priority": ["critical", "high"]}),
    route("catch-all"),
]


def ids(routes: list[Route]) -> list[str]:
    return [r.id for r in routes]


def test_first_match_wins_after_the_routes_that_continue() -> None:
    assert ids(matching_routes(ROUTES, Priority.CRITICAL, "east", "vault-1", "fire")) == ["chat-all", "fire"]


def test_unset_fields_match_anything_and_lists_match_any_value() -> None:
    assert ids(matching_routes(ROUTES, "high", "east", "r101", "humidity_high")) == ["chat-all", "east-climate"]
    assert ids(matching_routes(ROUTES, "high", "west", "r101", "humidity_high")) == ["chat-all", "catch-all"]
    assert ids(matching_routes(ROUTES, "high", None, "vault-1", "no_data")) == ["chat-all", "vault"]
    assert ids(matching_routes(ROUTES, "medium", None, "vault-1", "no_data")) == ["chat-all", "catch-all"]


def test_a_site_wide_alarm_matches_no_route_asking_for_a_room_or_building() -> None:
    routes = [route("rooms", {"room": ["r101"]}), route("east", {"building": ["east"]})]
    assert matching_routes(routes, "high", None, None, "gateway_comm_loss") == []


def test_every_continuing_route_collects() -> None:
    routes = [route("a", continue_matching=True), route("b", {"cause": ["fire"]}, continue_matching=True),
              route("c", {"cause": ["no_data"]})]
    assert ids(matching_routes(routes, "critical", None, "r1", "fire")) == ["a", "b"]
    assert ids(matching_routes([], "critical", None, "r1", "fire")) == []


# --- quiet hours -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("clock", "released"), [
    ((2026, 3, 11, 23, 0), (2026, 3, 12, 7, 0)),  # after the start: next morning
    ((2026, 3, 11, 22, 0), (2026, 3, 12, 7, 0)),  # the start itself is quiet
    ((2026, 3, 12, 3, 0), (2026, 3, 12, 7, 0)),  # after midnight: this morning
    ((2026, 3, 12, 6, 59), (2026, 3, 12, 7, 0)),
    ((2026, 3, 12, 7, 0), (2026, 3, 12, 7, 0)),  # the end is not quiet
    ((2026, 3, 11, 21, 59), (2026, 3, 11, 21, 59)),
    ((2026, 3, 14, 23, 30), (2026, 3, 15, 7, 0)),  # a Saturday night: medium ignores opening hours
])
def test_medium_waits_for_the_end_of_quiet_hours_across_midnight(clock: tuple[int, ...],
                                                                  released: tuple[int, ...]) -> None:
    assert held_until(Priority.MEDIUM, at(SHANGHAI, *clock), QUIET, CALENDAR, SHANGHAI) == at(SHANGHAI, *released)


def test_critical_is_never_held() -> None:
    everything = QuietHours(start="00:00", end="23:59", applies_to=["high", "medium", "low"])
    night = at(SHANGHAI, 2026, 3, 14, 3, 0)  # a Saturday night, closed
    assert held_until(Priority.CRITICAL, night, everything, CALENDAR, SHANGHAI) == night
    assert held_until("critical", night, QUIET, CALENDAR, SHANGHAI) == night


def test_high_is_held_only_when_quiet_hours_apply_to_it() -> None:
    night = at(SHANGHAI, 2026, 3, 11, 23, 0)
    assert held_until(Priority.HIGH, night, QUIET, CALENDAR, SHANGHAI) == night
    strict = QuietHours(applies_to=["high", "medium", "low"])
    assert held_until(Priority.HIGH, night, strict, CALENDAR, SHANGHAI) == at(SHANGHAI, 2026, 3, 12, 7, 0)


def test_quiet_hours_within_one_day_and_none_at_all() -> None:
    lunch = QuietHours(start="12:00", end="14:00")
    assert held_until("medium", at(SHANGHAI, 2026, 3, 11, 13, 0), lunch, CALENDAR, SHANGHAI) == \
        at(SHANGHAI, 2026, 3, 11, 14, 0)
    assert held_until("medium", at(SHANGHAI, 2026, 3, 11, 23, 0), lunch, CALENDAR, SHANGHAI) == \
        at(SHANGHAI, 2026, 3, 11, 23, 0)
    never = QuietHours(start="07:00", end="07:00")
    assert not in_quiet_hours(at(SHANGHAI, 2026, 3, 11, 7, 0), never, ZoneInfo(SHANGHAI))
    assert held_until("medium", at(SHANGHAI, 2026, 3, 11, 3, 0), never, CALENDAR, SHANGHAI) == \
        at(SHANGHAI, 2026, 3, 11, 3, 0)


def test_quiet_hours_end_on_the_wall_clock_in_a_dst_night() -> None:
    """The night of 28/29 March in Berlin has 23 hours: 23:00 to 07:00 is seven hours, not eight."""
    calendar = OpeningCalendar(OpeningHours(), BERLIN)
    start = at(BERLIN, 2026, 3, 28, 23, 0)
    released = held_until("medium", start, QUIET, calendar, BERLIN)
    assert local(released, BERLIN) == datetime(2026, 3, 29, 7, 0)
    assert released - start == 7 * 3600


# --- low waits for opening hours -----------------------------------------------------------------------------------


def test_low_on_friday_night_waits_for_monday_morning() -> None:
    friday_night = at(SHANGHAI, 2026, 3, 13, 23, 0)
    assert local(held_until(Priority.LOW, friday_night, QUIET, CALENDAR, SHANGHAI)) == datetime(2026, 3, 16, 8, 0)


@pytest.mark.parametrize(("clock", "released"), [
    ((2026, 3, 11, 10, 0), (2026, 3, 11, 10, 0)),  # open: now
    ((2026, 3, 11, 19, 0), (2026, 3, 12, 8, 0)),  # closed but not quiet: tomorrow's opening
    ((2026, 3, 12, 7, 30), (2026, 3, 12, 8, 0)),  # quiet is over, not open yet
    ((2026, 3, 14, 12, 0), (2026, 3, 16, 8, 0)),  # Saturday noon
    ((2026, 3, 13, 17, 59), (2026, 3, 13, 17, 59)),  # the last open minute
    ((2026, 3, 13, 18, 0), (2026, 3, 16, 8, 0)),  # closing time itself is closed
])
def test_low_waits_for_the_next_opening(clock: tuple[int, ...], released: tuple[int, ...]) -> None:
    assert held_until(Priority.LOW, at(SHANGHAI, *clock), QUIET, CALENDAR, SHANGHAI) == at(SHANGHAI, *released)


def test_low_skips_a_holiday_and_takes_a_working_saturday() -> None:
    hours = OpeningHours(closed_dates=["2026-03-16"], open_dates={"2026-03-14": ["09:30-12:00"]})
    calendar = OpeningCalendar(hours, SHANGHAI)
    friday_night = at(SHANGHAI, 2026, 3, 13, 23, 0)
    assert local(held_until("low", friday_night, QUIET, calendar, SHANGHAI)) == datetime(2026, 3, 14, 9, 30)
    saturday_noon = at(SHANGHAI, 2026, 3, 14, 12, 0)
    assert local(held_until("low", saturday_noon, QUIET, calendar, SHANGHAI)) == datetime(2026, 3, 17, 8, 0)


def test_low_opening_inside_quiet_hours_waits_for_both() -> None:
    """A reading room open from 06:00 still gets its low pages only after the quiet hours, at 07:00."""
    calendar = OpeningCalendar(OpeningHours(weekly={"wed": ["06:00-10:00"], "thu": ["06:00-10:00"]}), SHANGHAI)
    assert local(held_until("low", at(SHANGHAI, 2026, 3, 11, 2, 0), QUIET, calendar, SHANGHAI)) == \
        datetime(2026, 3, 11, 7, 0)
    evening_only = OpeningCalendar(OpeningHours(weekly={"wed": ["22:30-23:30"], "thu": ["09:00-10:00"]}),
                                   SHANGHAI)
    assert local(held_until("low", at(SHANGHAI, 2026, 3, 11, 20, 0), QUIET, evening_only, SHANGHAI)) == \
        datetime(2026, 3, 12, 9, 0)


def test_low_pages_are_not_swallowed_by_a_calendar_that_never_opens() -> None:
    closed = OpeningCalendar(OpeningHours(weekly={}), SHANGHAI)
    assert next_opening(closed, at(SHANGHAI, 2026, 3, 11, 12, 0)) is None
    assert local(held_until("low", at(SHANGHAI, 2026, 3, 11, 23, 0), QUIET, closed, SHANGHAI)) == \
        datetime(2026, 3, 12, 7, 0)


def test_next_opening_is_bounded() -> None:
    long_holiday = OpeningHours(closed_dates=[f"2026-02-{day:02d}" for day in range(16, 28)])
    calendar = OpeningCalendar(long_holiday, SHANGHAI)
    start = at(SHANGHAI, 2026, 2, 13, 19, 0)
    assert next_opening(calendar, start) is None  # 16 days closed: beyond the 14-day search
    assert local(next_opening(calendar, start, days=20) or 0.0) == datetime(2026, 3, 2, 8, 0)


def test_opening_hours_on_the_calendar_clock_and_quiet_hours_on_the_site_clock() -> None:
    berlin_calendar = OpeningCalendar(OpeningHours(), BERLIN)
    shanghai_friday_night = at(SHANGHAI, 2026, 3, 13, 23, 0)  # Friday 16:00 in Berlin, open there, quiet here
    released = held_until("low", shanghai_friday_night, QUIET, berlin_calendar, SHANGHAI)
    assert released == at(BERLIN, 2026, 3, 16, 8, 0)  # 07:00 Saturday here is midnight there: wait for Monday
