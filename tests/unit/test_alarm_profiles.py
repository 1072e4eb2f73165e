"""Room profiles pinned to shared/domain/standards.md, room overrides, and the opening-hours calendar."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alarms.calendar import OpeningCalendar
from alarms.profiles import DAT87, FLUCTUATION, JGJ, PROFILES, describe_profiles, effective_limits
from stackwatch.config.alarms import OpeningHours
from stackwatch.config.site import Room

# --- profiles ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "t_min", "t_max", "rh_min", "rh_max", "cited"), [
    ("paper", 14, 24, 45, 60, f"{JGJ}, table 5.2.1"),
    ("special", 14, 20, 45, 55, f"{JGJ}, table 5.2.2"),
    ("film", 14, 24, 40, 60, f"{JGJ}, table 5.2.2"),
    ("film-master", 13, 15, 35, 45, f"{JGJ}, table 5.2.2"),
    ("magnetic", 14, 24, 40, 60, f"{JGJ}, table 5.2.2"),
    ("optical", 15, 20, 25, 45, DAT87),
    ("photo", 14, 18, 30, 50, "GB/T 11821-2002"),
    ("office", 18, 28, 30, 65, DAT87),
])
def test_profile_limits_are_those_of_the_standard(name: str, t_min: float, t_max: float, rh_min: float,
                                                  rh_max: float, cited: str) -> None:
    profile = PROFILES[name]
    assert (profile.t_min, profile.t_max, profile.rh_min, profile.rh_max) == (t_min, t_max, rh_min, rh_max)
    assert profile.source.startswith(cited)


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_allows_a_daily_range_of_4_kelvin_and_10_percent(name: str) -> None:
    profile = PROFILES[name]
    assert (profile.t_daily_range, profile.rh_daily_range) == (4, 10)
    assert "§5.2.3" in profile.fluctuation_source and "§5.1.2" in profile.fluctuation_source


def test_mixed_profile_is_the_intersection_of_paper_film_copies_and_magnetic_media() -> None:
    media = [PROFILES[name] for name in ("paper", "film", "magnetic")]
    mixed = PROFILES["mixed"]
    assert mixed.t_min == max(p.t_min for p in media) and mixed.t_max == min(p.t_max for p in media)
    assert mixed.rh_min == max(p.rh_min for p in media) and mixed.rh_max == min(p.rh_max for p in media)


def test_describe_profiles_lists_every_profile_with_its_source() -> None:
    described = describe_profiles()
    assert [row["name"] for row in described] == list(PROFILES)
    paper = next(row for row in described if row["name"] == "paper")
    assert (paper["t_min"], paper["t_max"], paper["rh_min"], paper["rh_max"]) == (14, 24, 45, 60)
    assert paper["source"] == PROFILES["paper"].source


# --- room overrides ------------------------------------------------------------------------------------------------


def room(profile: str = "paper", **limits: float) -> Room:
    return Room.model_validate({"id": "r101", "building": "b1", "profile": profile, "limits": limits})


def test_room_without_overrides_has_the_profile_limits() -> None:
    limits = effective_limits(room("special"))
    assert (limits.t_min, limits.t_max, limits.rh_min, limits.rh_max) == (14, 20, 45, 55)
    assert (limits.t_daily_range, limits.rh_daily_range) == (4, 10)
    assert limits.overridden == ()
    assert limits.source_of("rh_max") == PROFILES["special"].source


def test_room_override_tightens_one_limit_and_keeps_the_rest() -> None:
    limits = effective_limits(room("paper", rh_max=55))
    assert limits.rh_max == 55
    assert (limits.t_min, limits.t_max, limits.rh_min) == (14, 24, 45)
    assert limits.overridden == ("rh_max",)
    assert limits.profile is PROFILES["paper"]


def test_source_of_names_the_site_configuration_for_overridden_fields_and_the_standard_for_the_rest() -> None:
    limits = effective_limits(room("paper", rh_max=55, t_daily_range=3))
    assert limits.source_of("rh_max") == "site configuration (rooms: r101.limits.rh_max)"
    assert limits.source_of("t_daily_range") == "site configuration (rooms: r101.limits.t_daily_range)"
    assert limits.source_of("t_max") == PROFILES["paper"].source
    assert limits.source_of("rh_min") == PROFILES["paper"].source
    assert limits.source_of("rh_daily_range") == FLUCTUATION
    assert limits.t_daily_range == 3


@pytest.mark.parametrize(("profile", "overrides"), [
    ("paper", {"t_min": 24}),
    ("paper", {"t_max": 14}),
    ("paper", {"rh_min": 61}),
    ("paper", {"rh_max": 45}),
    ("film-master", {"t_max": 12}),
    ("optical", {"rh_min": 45}),
])
def test_override_that_leaves_an_empty_band_is_refused(profile: str, overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="r101: limits after overrides are empty"):
        effective_limits(room(profile, **overrides))


# --- opening calendar --------------------------------------------------------------------------------------------

SHANGHAI = "Asia/Shanghai"


def at(day: str, clock: str, zone: str = SHANGHAI) -> float:
    """Epoch seconds of a local date and time, e.g. at("2024-03-04", "08:00")."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo(zone)).timestamp()


MONDAY = "2024-03-04"
SATURDAY = "2024-03-09"
SUNDAY = "2024-03-10"


def calendar(zone: str = SHANGHAI, **hours: object) -> OpeningCalendar:
    return OpeningCalendar(OpeningHours.model_validate(hours), zone)


@pytest.mark.parametrize(("clock", "is_open"), [
    ("00:00", False), ("07:59", False), ("08:00", True), ("12:00", True), ("17:59", True), ("18:00", False),
    ("23:59", False),
])
def test_default_weekday_is_open_from_8_to_18_end_exclusive(clock: str, is_open: bool) -> None:
    hours = calendar()
    assert hours.is_open(at(MONDAY, clock)) is is_open
    assert hours.is_closed(at(MONDAY, clock)) is not is_open


@pytest.mark.parametrize("day", [SATURDAY, SUNDAY])
def test_default_weekend_is_closed(day: str) -> None:
    assert calendar().is_closed(at(day, "10:00"))


def test_weekly_plan_with_several_spans_and_a_day_to_midnight() -> None:
    hours = calendar(weekly={"mon": ["08:00-12:00", "13:30-17:00"], "sat": ["00:00-24:00"]})
    assert hours.is_open(at(MONDAY, "11:59"))
    assert hours.is_closed(at(MONDAY, "12:30"))
    assert hours.is_open(at(MONDAY, "13:30"))
    assert hours.is_closed(at(MONDAY, "17:00"))
    assert hours.is_closed(at("2024-03-05", "10:00"))  # Tuesday: not in the plan
    assert hours.is_open(at(SATURDAY, "00:00"))
    assert hours.is_open(at(SATURDAY, "23:59"))


def test_closed_date_is_closed_all_day() -> None:
    hours = calendar(closed_dates=["2024-10-01"])  # National Day, a Tuesday
    assert hours.is_closed(at("2024-10-01", "10:00"))
    assert hours.is_open(at("2024-10-08", "10:00"))  # the Tuesday after: the weekly plan again


def test_open_date_uses_its_own_spans() -> None:
    hours = calendar(open_dates={"2024-09-29": ["09:00-12:00"]})  # a working Sunday
    assert hours.is_closed(at("2024-09-29", "08:30"))
    assert hours.is_open(at("2024-09-29", "09:00"))
    assert hours.is_closed(at("2024-09-29", "12:00"))
    assert hours.is_closed(at("2024-09-22", "10:00"))  # the Sunday before: closed as usual


def test_open_date_on_a_weekday_replaces_the_weekly_spans() -> None:
    hours = calendar(open_dates={MONDAY: ["10:00-14:00"]})
    assert hours.is_closed(at(MONDAY, "09:00"))
    assert hours.is_open(at(MONDAY, "13:00"))
    assert hours.is_closed(at(MONDAY, "15:00"))


def test_hours_are_evaluated_in_the_site_time_zone() -> None:
    shanghai, utc = calendar(SHANGHAI), calendar("UTC")
    morning = at(MONDAY, "08:30", SHANGHAI)  # 00:30 UTC
    assert shanghai.is_open(morning) and utc.is_closed(morning)
    evening = at(MONDAY, "17:30", "UTC")  # Tuesday 01:30 in Shanghai
    assert utc.is_open(evening) and shanghai.is_closed(evening)


def test_dates_are_taken_in_the_site_time_zone() -> None:
    hours = calendar(SHANGHAI, closed_dates=["2024-10-01"])
    # 2024-10-01 09:00 in Shanghai is still 2024-09-30 in UTC: the holiday applies by the local date
    assert hours.is_closed(at("2024-10-01", "09:00", SHANGHAI))
    assert hours.is_open(at("2024-09-30", "09:00", SHANGHAI))
