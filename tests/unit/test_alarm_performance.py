"""ISA-18.2 performance figures: flood edges to the second, chatter, stale alarms, priorities, bounded memory."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarms.model import AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority
from alarms.performance import AlarmPerformance

SITE = "main"
DAY = 86400.0


def event(
    ts: float,
    kind: EventKind = EventKind.RAISED,
    alarm: str = "th-101.humidity:high",
    priority: Priority = Priority.LOW,
    site: str = SITE,
) -> AlarmEvent:
    return AlarmEvent(
        seq=0,
        ts=ts,
        alarm=alarm,
        occurrence=1,
        kind=kind,
        state=AlarmState.ACTIVE_UNACK,
        previous=AlarmState.NORMAL,
        priority=priority,
        cause=alarm.split(":")[-1],
        room="r1",
        building="b1",
        site=site,
        source=alarm.split(".")[0],
    )


def raise_each(perf: AlarmPerformance, times: list[float]) -> None:
    """One activation per time, each of its own alarm, so chatter stays out of the way."""
    for ts in times:
        perf.observe(event(ts, alarm=f"at-{ts}:high"))


def status(key: str, state: AlarmState, active_since: float | None) -> AlarmStatus:
    return AlarmStatus(key=key, state=state, active_since=active_since, priority=Priority.HIGH)


# -- flood --------------------------------------------------------------------------------------


def test_eleventh_activation_within_ten_minutes_starts_the_flood() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    times = [50.0 * n for n in range(11)]  # 0 … 500: all within 600 s
    raise_each(perf, times[:10])
    before = perf.figures(500.0)
    assert before["alarms_last_10min"] == 10
    assert not before["in_flood"] and before["floods"] == 0

    raise_each(perf, times[10:])
    after = perf.figures(500.0)
    assert after["in_flood"] and after["floods"] == 1
    assert after["flood_since"] == 500.0
    assert after["alarms_last_10min"] == 11 and after["peak_10min"] == 11


def test_ten_activations_in_ten_minutes_are_not_a_flood() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [59.0 * n for n in range(10)])
    figures = perf.figures(600.0)
    assert not figures["in_flood"]
    assert figures["floods"] == 0 and figures["flood_seconds"] == 0.0 and figures["flood_share"] == 0.0


def test_eleven_activations_spanning_exactly_ten_minutes_are_not_a_flood() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [60.0 * n for n in range(11)])  # the first leaves at 600 as the 11th arrives
    assert perf.figures(600.0)["floods"] == 0
    assert perf.figures(600.0)["alarms_last_10min"] == 10


def test_flood_ends_when_an_old_activation_leaves_and_the_count_falls_below_five() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [10.0 * n for n in range(11)])  # 0 … 100: flood from 100
    # The count falls to 4 when the 7th activation (at 60) leaves the window: at 660.
    assert perf.figures(659.5)["in_flood"]
    assert perf.figures(659.5)["alarms_last_10min"] == 5
    ended = perf.figures(660.0)
    assert not ended["in_flood"] and ended["flood_since"] is None
    assert ended["alarms_last_10min"] == 4

    figures = perf.figures(1000.0)  # no event since: the end is computed, not observed
    assert figures["flood_seconds"] == 560.0
    assert figures["flood_share"] == pytest.approx(0.56)
    assert figures["floods"] == 1

    perf.observe(event(900.0, alarm="late:high"))  # settling the flood on a later event agrees
    assert perf.figures(1000.0)["flood_seconds"] == 560.0
    assert perf.figures(1000.0)["flood_share"] == pytest.approx(0.56)


def test_activation_at_the_instant_one_leaves_keeps_the_flood_going() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [10.0 * n for n in range(11)])
    perf.observe(event(660.0, alarm="same-instant:high"))  # 60 leaves as this arrives: still 5
    assert perf.figures(669.0)["in_flood"]
    figures = perf.figures(700.0)  # 70 leaves at 670: 80, 90, 100, 660 remain
    assert not figures["in_flood"]
    assert figures["flood_seconds"] == 570.0
    assert figures["floods"] == 1


def test_second_flood_is_counted_and_flood_time_adds_up() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [10.0 * n for n in range(11)])  # flood 100 → 660
    raise_each(perf, [2000.0 + n for n in range(11)])  # flood 2010 → 2606 (the 7th, at 2006, leaves)
    figures = perf.figures(4000.0)
    assert figures["floods"] == 2
    assert figures["flood_seconds"] == 560.0 + 596.0
    assert figures["flood_share"] == pytest.approx((560.0 + 596.0) / 4000.0)


# -- rate ---------------------------------------------------------------------------------------


def test_average_per_ten_minutes_over_the_observed_period() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [600.0 * n + 1 for n in range(6)])
    figures = perf.figures(3600.0)
    assert figures["activations"] == 6
    assert figures["avg_per_10min"] == pytest.approx(1.0)
    assert figures["period_start"] == 0.0 and figures["period_end"] == 3600.0


def test_period_starts_at_the_first_event_of_any_kind_when_no_start_is_given() -> None:
    perf = AlarmPerformance(SITE)
    assert perf.figures(50.0)["period_start"] is None
    assert perf.figures(50.0)["avg_per_10min"] is None and perf.figures(50.0)["flood_share"] is None
    perf.observe(event(100.0, EventKind.ACKNOWLEDGED))
    perf.observe(event(700.0))
    figures = perf.figures(1300.0)
    assert figures["period_start"] == 100.0
    assert figures["avg_per_10min"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kind",
    [
        EventKind.ACKNOWLEDGED,
        EventKind.CLEARED,
        EventKind.SHELVED,
        EventKind.RETURNED,
        EventKind.REALARM,
        EventKind.ESCALATED,
        EventKind.SUPPRESSED,
        EventKind.OUT_OF_SERVICE,
    ],
)
def test_events_other_than_raised_and_reactivated_are_not_activations(kind: EventKind) -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    for n in range(20):
        perf.observe(event(float(n), kind))
    figures = perf.figures(30.0)
    assert figures["activations"] == 0 and figures["alarms_last_10min"] == 0
    assert figures["floods"] == 0 and figures["chattering"] == [] and figures["chattering_episodes"] == 0
    assert all(share["count"] == 0 for share in figures["priority_distribution"].values())


def test_reactivation_is_an_activation() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    perf.observe(event(1.0, EventKind.RAISED))
    perf.observe(event(2.0, EventKind.RETURNED))
    perf.observe(event(3.0, EventKind.REACTIVATED))
    assert perf.figures(4.0)["activations"] == 2


def test_events_of_other_sites_are_ignored() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    for n in range(20):
        perf.observe(event(float(n), site="annex"))
    figures = perf.figures(30.0)
    assert figures["activations"] == 0 and figures["floods"] == 0


def test_event_stamped_before_the_latest_counts_at_the_latest_time() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    perf.observe(event(1000.0, alarm="a:high"))
    perf.observe(event(10.0, alarm="b:high"))  # clock stepped back
    figures = perf.figures(1500.0)
    assert figures["alarms_last_10min"] == 2
    assert perf.figures(5.0)["period_end"] == 1000.0


# -- chattering -------------------------------------------------------------------------------


def test_three_activations_of_one_alarm_within_59_seconds_chatter() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    for ts in (100.0, 130.0, 159.0):
        perf.observe(event(ts, alarm="th-7.humidity:high"))
    figures = perf.figures(159.0)
    assert figures["chattering"] == [{"alarm": "th-7.humidity:high", "activations": 3, "last": 159.0, "episodes": 1}]
    assert figures["chattering_episodes"] == 1 and figures["chattering_alarms"] == 1
    assert perf.figures(160.0)["chattering"] == []  # 100 left the window at 160
    assert perf.figures(160.0)["chattering_episodes"] == 1


def test_three_activations_of_one_alarm_over_61_seconds_do_not_chatter() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    for ts in (100.0, 130.0, 161.0):
        perf.observe(event(ts, alarm="th-7.humidity:high"))
    figures = perf.figures(161.0)
    assert figures["chattering"] == [] and figures["chattering_episodes"] == 0


def test_activations_of_different_alarms_do_not_chatter() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [1.0, 2.0, 3.0])
    assert perf.figures(3.0)["chattering_episodes"] == 0


def test_continued_chatter_is_one_episode_and_a_pause_starts_another() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    for ts in (0.0, 20.0, 40.0, 60.0, 80.0, 100.0):  # three in every 60 s from 40 to 160
        perf.observe(event(ts, alarm="a:high"))
    assert perf.figures(100.0)["chattering_episodes"] == 1
    assert perf.figures(100.0)["chattering"][0]["activations"] == 3
    for ts in (500.0, 510.0, 520.0, 530.0):
        perf.observe(event(ts, alarm="a:high"))
    figures = perf.figures(530.0)
    assert figures["chattering_episodes"] == 2 and figures["chattering_alarms"] == 1
    assert figures["chattering"] == [{"alarm": "a:high", "activations": 4, "last": 530.0, "episodes": 2}]


# -- stale ------------------------------------------------------------------------------------


def test_alarm_active_for_more_than_a_day_is_stale() -> None:
    now = 10 * DAY
    perf = AlarmPerformance(SITE, start=0.0)
    statuses = [
        status("old-unacked:high", AlarmState.ACTIVE_UNACK, now - DAY - 1),
        status("old-acked:high", AlarmState.ACTIVE_ACK, now - 2 * DAY),
        status("young:high", AlarmState.ACTIVE_ACK, now - DAY + 1),
        status("exactly-a-day:high", AlarmState.ACTIVE_ACK, now - DAY),
        status("returned:high", AlarmState.RETURNED_UNACK, now - 3 * DAY),
        status("normal:high", AlarmState.NORMAL, None),
    ]
    stale = perf.figures(now, statuses)["stale"]
    assert [s["alarm"] for s in stale] == ["old-acked:high", "old-unacked:high"]
    assert stale[1] == {
        "alarm": "old-unacked:high",
        "priority": "high",
        "active_since": now - DAY - 1,
        "active_for": DAY + 1,
        "hidden": False,
    }


# -- priorities -------------------------------------------------------------------------------


def test_priority_distribution_has_every_priority_and_sums_to_the_total() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    empty = perf.figures(0.0)["priority_distribution"]
    assert list(empty) == ["critical", "high", "medium", "low"]
    assert all(share == {"count": 0, "share": 0.0} for share in empty.values())

    counts = {Priority.CRITICAL: 1, Priority.HIGH: 2, Priority.MEDIUM: 7, Priority.LOW: 0}
    ts = 0.0
    for priority, count in counts.items():
        for _ in range(count):
            ts += 1000.0
            perf.observe(event(ts, priority=priority, alarm=f"{priority}:{ts}"))
    figures = perf.figures(ts)
    distribution = figures["priority_distribution"]
    assert list(distribution) == ["critical", "high", "medium", "low"]
    assert sum(share["count"] for share in distribution.values()) == figures["activations"] == 10
    assert sum(share["share"] for share in distribution.values()) == pytest.approx(1.0)
    assert distribution["medium"] == {"count": 7, "share": pytest.approx(0.7)}
    assert distribution["low"] == {"count": 0, "share": 0.0}


# -- against a brute-force reference ---------------------------------------------------------


def reference_figures(times: list[float], alarms: list[str], now: float) -> tuple[float, int, bool, int]:
    """Flood seconds, floods, in flood at `now` and chatter episodes, by walking every moment the
    counts can change (an activation or one leaving its window): counts are constant in between."""
    window, enter, exit_below, chatter, chatter_window = 10.0, 4, 2, 3, 5.0

    def count(at: float, of: list[float], span: float) -> int:
        return sum(1 for a in of if at - span < a <= at)

    flood_since: float | None = None
    flood_seconds, floods, episodes = 0.0, 0, 0
    moments = sorted({t for a in times for t in (a, a + window, a + chatter_window)} | {now})
    for moment in (m for m in moments if m <= now):
        in_window = count(moment, times, window)
        if flood_since is not None and in_window < exit_below:
            flood_seconds += moment - flood_since
            flood_since = None
        if flood_since is None and in_window > enter:
            flood_since, floods = moment, floods + 1
        for alarm in set(alarms):
            own = [a for a, k in zip(times, alarms, strict=True) if k == alarm]
            just_before = sum(1 for a in own if moment - chatter_window <= a < moment)
            if count(moment, own, chatter_window) >= chatter > just_before:
                episodes += 1
    if flood_since is not None:
        flood_seconds += now - flood_since
    return flood_seconds, floods, flood_since is not None, episodes


@given(
    st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 3, 5, 10]), st.sampled_from(["a", "b"])), min_size=1, max_size=40),
    st.integers(0, 20),
)
def test_floods_and_chatter_match_a_brute_force_reference(gaps: list[tuple[int, str]], after: int) -> None:
    """Whole-second times with many ties and gaps of exactly a window: the edges of the half-open windows."""
    perf = AlarmPerformance(SITE, start=0.0, window=10.0, flood_enter=4, flood_exit=2, chatter_window=5.0)
    times: list[float] = []
    alarms: list[str] = []
    ts = 0.0
    for gap, alarm in gaps:
        ts += gap
        times.append(ts)
        alarms.append(alarm)
        perf.observe(event(ts, alarm=alarm))
    now = ts + after
    figures = perf.figures(now)
    flood_seconds, floods, in_flood, episodes = reference_figures(times, alarms, now)
    assert (figures["flood_seconds"], figures["floods"], figures["in_flood"]) == (flood_seconds, floods, in_flood)
    assert figures["chattering_episodes"] == episodes


# -- long runs, restarts ----------------------------------------------------------------------


def month_of_events(n: int = 100_000) -> list[AlarmEvent]:
    """A month of mixed traffic for 40 alarms, with a burst every few days and a chattering alarm."""
    rng = random.Random(182)
    kinds = [EventKind.RAISED, EventKind.REACTIVATED, EventKind.ACKNOWLEDGED, EventKind.CLEARED, EventKind.RETURNED]
    step = 30 * DAY / n
    events: list[AlarmEvent] = []
    for i in range(n):
        into_burst = i % 7000
        if into_burst < 30:  # a burst: one activation a second, three alarms taking turns (chatter)
            ts = (i - into_burst) * step + into_burst
            events.append(event(ts, alarm=f"p{into_burst % 3}:high", priority=Priority.HIGH))
        else:
            ts = i * step
            events.append(event(ts, rng.choice(kinds), f"p{rng.randrange(40)}:high", rng.choice(list(Priority))))
    return events


def test_a_month_of_events_keeps_memory_bounded() -> None:
    perf = AlarmPerformance(SITE)
    largest = dict.fromkeys(perf.retained(), 0)
    for n, e in enumerate(month_of_events()):
        perf.observe(e)
        if n % 100 == 0:
            largest = {key: max(largest[key], size) for key, size in perf.retained().items()}
    figures = perf.figures(30 * DAY)
    assert figures["activations"] > 40_000
    assert figures["floods"] > 0 and figures["chattering_episodes"] > 0
    assert largest["rate_window"] <= figures["peak_10min"] + 5 <= 100
    assert largest["chatter_window"] <= 50
    assert largest["alarms_in_chatter_window"] <= 40 and largest["alarms_that_chattered"] <= 40
    retained = perf.retained()
    assert retained["rate_window"] <= 100 and retained["chatter_window"] <= 50


def test_replaying_the_journal_gives_the_live_figures() -> None:
    events = month_of_events(5_000)
    live = AlarmPerformance(SITE, start=0.0)
    for e in events:
        live.observe(e)
    statuses = [status("old:high", AlarmState.ACTIVE_ACK, 0.0)]
    replayed = AlarmPerformance(SITE, start=0.0).replay(events)
    assert replayed.figures(31 * DAY, statuses) == live.figures(31 * DAY, statuses)


def test_figures_are_json_serialisable_and_do_not_change_state() -> None:
    perf = AlarmPerformance(SITE, start=0.0)
    raise_each(perf, [10.0 * n for n in range(11)])
    for ts in (200.0, 210.0, 220.0):
        perf.observe(event(ts, alarm="c:high"))
    statuses = [status("old:high", AlarmState.ACTIVE_ACK, 0.0)]
    first = perf.figures(2 * DAY, statuses)
    json.dumps(first)
    assert perf.figures(2 * DAY, statuses) == first
    assert perf.figures(300.0)["in_flood"]  # asking about later did not end the flood for earlier


@pytest.mark.parametrize(
    "settings",
    [{"window": 0.0}, {"flood_exit": 0}, {"flood_enter": 3, "flood_exit": 5}, {"chatter_count": 1}],
)
def test_meaningless_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AlarmPerformance(SITE, **settings)
