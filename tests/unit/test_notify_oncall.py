"""Who is on call (alarms/notify/oncall.py): turns at the handover, overrides, and DST weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alarms.notify.oncall import next_handover, who_is_on_call
from stackwatch.config.notify import Override, Rotation

SHANGHAI, BERLIN = "Asia/Shanghai", "Europe/Berlin"
DAY = 86400.0


def at(zone: str, *fields: int) -> float:
    return datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()  # type: ignore[arg-type,misc]


def rotation(shift: str = "weekly", start: date = date(2026, 3, 2), handover: str = "08:30",
             overrides: list[Override] | None = None, members: list[str] | None = None) -> Rotation:
    return Rotation.model_validate({"id": "duty", "shift": shift, "handover": handover, "start": start,
                                    "members": members or ["ann", "bob", "cai"], "overrides": overrides or []})


WEEKLY = rotation()  # 2026-03-02 is a Monday


def test_before_the_first_shift_nobody() -> None:
    assert who_is_on_call(WEEKLY, SHANGHAI, at(SHANGHAI, 2026, 3, 2, 8, 29, 59)) is None
    assert who_is_on_call(WEEKLY, SHANGHAI, at(SHANGHAI, 2026, 2, 1, 12, 0)) is None


def test_weekly_turns_at_the_handover() -> None:
    first = at(SHANGHAI, 2026, 3, 2, 8, 30)
    assert who_is_on_call(WEEKLY, SHANGHAI, first) == "ann"
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 3.5 * DAY) == "ann"
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 7 * DAY - 1) == "ann"
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 7 * DAY) == "bob"
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 14 * DAY) == "cai"
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 21 * DAY) == "ann"  # round again
    assert who_is_on_call(WEEKLY, SHANGHAI, first + 21 * DAY - 1) == "cai"


def test_daily_turns_every_day_at_the_handover() -> None:
    daily = rotation(shift="daily", handover="07:00")
    first = at(SHANGHAI, 2026, 3, 2, 7, 0)
    assert [who_is_on_call(daily, SHANGHAI, first + n * DAY) for n in range(4)] == ["ann", "bob", "cai", "ann"]
    assert who_is_on_call(daily, SHANGHAI, first + DAY - 1) == "ann"
    assert who_is_on_call(daily, SHANGHAI, at(SHANGHAI, 2026, 3, 3, 2, 0)) == "ann"  # the night is the day before's


def test_the_handover_is_on_the_site_clock() -> None:
    """08:30 in Shanghai is 00:30 UTC: a UTC-minded rotation would hand over eight hours late."""
    assert who_is_on_call(WEEKLY, SHANGHAI, datetime(2026, 3, 9, 0, 30, tzinfo=UTC).timestamp()) == "bob"
    assert who_is_on_call(WEEKLY, "UTC", datetime(2026, 3, 9, 0, 30, tzinfo=UTC).timestamp()) == "ann"


def test_a_holiday_override_wins() -> None:
    holiday = Override(start=datetime(2026, 3, 10, 8, 30), end=datetime(2026, 3, 13, 8, 30), person="dan",
                       reason="bob on holiday")
    weekly = rotation(overrides=[holiday])
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 10, 8, 29, 59)) == "bob"
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 10, 8, 30)) == "dan"
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 13, 8, 29, 59)) == "dan"
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 13, 8, 30)) == "bob"  # the end is exclusive


def test_a_swap_inside_a_holiday_cover_wins_as_the_later_start() -> None:
    holiday = Override(start=datetime(2026, 3, 9, 8, 30), end=datetime(2026, 3, 16, 8, 30), person="dan")
    swap = Override(start=datetime(2026, 3, 11, 18, 0), end=datetime(2026, 3, 12, 8, 30), person="eve")
    for overrides in ([holiday, swap], [swap, holiday]):
        weekly = rotation(overrides=overrides)
        assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 11, 17, 59)) == "dan"
        assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 11, 23, 0)) == "eve"
        assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 12, 9, 0)) == "dan"


def test_an_override_with_a_zone_is_taken_as_written() -> None:
    utc = Override(start=datetime(2026, 3, 10, 0, 0, tzinfo=UTC), end=datetime(2026, 3, 10, 4, 0, tzinfo=UTC),
                   person="dan")
    weekly = rotation(overrides=[utc])
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 10, 8, 0)) == "dan"  # 00:00 UTC
    assert who_is_on_call(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 10, 12, 0)) == "bob"  # 04:00 UTC: over


def test_an_override_covers_even_before_the_rotation_starts() -> None:
    early = Override(start=datetime(2026, 3, 1), end=datetime(2026, 3, 2, 8, 30), person="dan")
    assert who_is_on_call(rotation(overrides=[early]), SHANGHAI, at(SHANGHAI, 2026, 3, 1, 12, 0)) == "dan"


def test_berlin_week_with_the_spring_change_is_an_hour_shorter() -> None:
    """2026-03-29 02:00 CET → 03:00 CEST: the shift of 23–30 March lasts 7 days minus an hour."""
    weekly = rotation(start=date(2026, 3, 23))
    begins = at(BERLIN, 2026, 3, 23, 8, 30)
    ends = at(BERLIN, 2026, 3, 30, 8, 30)
    assert ends - begins == 7 * DAY - 3600
    assert who_is_on_call(weekly, BERLIN, ends - 1) == "ann"
    assert who_is_on_call(weekly, BERLIN, ends) == "bob"
    assert who_is_on_call(weekly, BERLIN, begins + 7 * DAY - 1) == "bob"  # a UTC week would still say ann
    assert next_handover(weekly, BERLIN, begins) == ends


def test_berlin_week_with_the_autumn_change_is_an_hour_longer() -> None:
    weekly = rotation(start=date(2026, 10, 19))
    begins, ends = at(BERLIN, 2026, 10, 19, 8, 30), at(BERLIN, 2026, 10, 26, 8, 30)
    assert ends - begins == 7 * DAY + 3600
    assert who_is_on_call(weekly, BERLIN, ends - 1) == "ann"
    assert who_is_on_call(weekly, BERLIN, ends) == "bob"
    assert next_handover(weekly, BERLIN, begins + 1) == ends


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_a_handover_inside_the_changing_hour_never_runs_backwards(day: date) -> None:
    """02:30 does not exist in spring and happens twice in autumn; each person still gets one unbroken turn."""
    daily = rotation(shift="daily", handover="02:30", start=day - timedelta(days=2))
    ts = at(BERLIN, day.year, day.month, day.day - 1, 22, 0)
    seen: list[str | None] = []
    for _ in range(8 * 60):  # every minute for eight hours across the change
        person = who_is_on_call(daily, BERLIN, ts)
        if not seen or seen[-1] != person:
            seen.append(person)
        ts += 60
    assert seen == ["bob", "cai"]  # started two days before: the day before is the second turn


def test_next_handover_weekly_and_daily() -> None:
    monday = at(SHANGHAI, 2026, 3, 2, 8, 30)
    assert next_handover(WEEKLY, SHANGHAI, monday) == monday + 7 * DAY
    assert next_handover(WEEKLY, SHANGHAI, monday - 1) == monday  # before the start: the first shift
    assert next_handover(WEEKLY, SHANGHAI, monday + 10 * DAY) == monday + 14 * DAY
    daily = rotation(shift="daily")
    assert next_handover(daily, SHANGHAI, monday + 0.5 * DAY) == monday + DAY


def test_next_handover_counts_an_override_starting_or_ending_first() -> None:
    swap = Override(start=datetime(2026, 3, 4, 18, 0), end=datetime(2026, 3, 5, 8, 30), person="eve")
    weekly = rotation(overrides=[swap])
    assert next_handover(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 3, 12, 0)) == at(SHANGHAI, 2026, 3, 4, 18, 0)
    assert next_handover(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 4, 20, 0)) == at(SHANGHAI, 2026, 3, 5, 8, 30)
    assert next_handover(weekly, SHANGHAI, at(SHANGHAI, 2026, 3, 6, 12, 0)) == at(SHANGHAI, 2026, 3, 9, 8, 30)


def test_a_single_member_is_always_on_call_once_started() -> None:
    solo = rotation(members=["ann"], shift="daily")
    assert {who_is_on_call(solo, SHANGHAI, at(SHANGHAI, 2026, 3, 2, 8, 30) + n * 5000.0) for n in range(100)} == {"ann"}


def test_a_handover_in_the_spring_gap_happens_an_hour_later_on_the_wall_clock() -> None:
    """02:30 does not exist on 29 March: read with the winter offset (PEP 495) it is 01:30 UTC, 03:30 CEST."""
    daily = rotation(shift="daily", handover="02:30", start=date(2026, 3, 27))
    handover = next_handover(daily, BERLIN, at(BERLIN, 2026, 3, 29, 0, 0))
    assert handover == datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp()
    assert who_is_on_call(daily, BERLIN, handover - 1) == "bob"
    assert who_is_on_call(daily, BERLIN, handover) == "cai"
