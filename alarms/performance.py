"""ISA-18.2 alarm-system performance figures for one site, kept up to date event by event.

The engine feeds every journaled `AlarmEvent` in journal order and asks for figures whenever a
dashboard, the API or a report wants them. Nothing here reads a clock: time is the events' `ts`
and the `now` passed to `figures`, so replaying the journal after a restart gives back the figures
the live run had.

The service runs for months, so only what the sliding windows still need is kept (activations of
the last rate window and of the last chatter window); everything older is folded into counters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Self, TypedDict

from alarms.model import AlarmEvent, AlarmStatus, EventKind, Priority

# Reference figures, per operator position, from the recommended alarm performance metrics of
# ANSI/ISA-18.2-2009 §16.5 (kept in the 2016 edition and in IEC 62682). For comparison on
# dashboards; nothing here enforces them.
ISA_RATE_ACCEPTABLE_PER_10MIN = 1.0  # "very likely to be acceptable"
ISA_RATE_MANAGEABLE_PER_10MIN = 2.0  # "maximum manageable"
ISA_FLOOD_SHARE_MAX = 0.01  # share of time in flood: about 1 % or less
ISA_PRIORITY_SHARE = {  # annunciated priority distribution (approximate shares)
    Priority.CRITICAL: 0.01,  # ISA's optional fourth, "highest", priority: about 1 % or less
    Priority.HIGH: 0.05,
    Priority.MEDIUM: 0.15,
    Priority.LOW: 0.80,
}

# Annunciated activations. The engine emits neither for shelved, suppressed or out-of-service
# alarms; realarms and escalations re-notify an activation already counted.
ACTIVATIONS = frozenset({EventKind.RAISED, EventKind.REACTIVATED})


class ChatteringAlarm(TypedDict):
    alarm: str
    activations: int  # in the trailing chatter window at `period_end`
    last: float  # time of its latest activation
    episodes: int  # chattering episodes of this alarm over the period


class StaleAlarm(TypedDict):
    alarm: str
    priority: str
    active_since: float
    active_for: float  # seconds
    hidden: bool  # shelved, suppressed or out of service: stale all the same, but nobody is being told


class PriorityShare(TypedDict):
    count: int
    share: float  # of all activations in the period; 0.0 while there are none


class PerformanceFigures(TypedDict):
    site: str
    period_start: float | None  # None until something was observed (and no start was given)
    period_end: float
    activations: int
    alarms_last_10min: int  # activations in the trailing rate window (10 min unless configured otherwise)
    peak_10min: int  # most activations in any one rate window of the period
    avg_per_10min: float | None  # None while the period has no length
    in_flood: bool
    flood_since: float | None
    floods: int
    flood_seconds: float
    flood_share: float | None  # None while the period has no length
    chattering: list[ChatteringAlarm]  # alarms chattering at `period_end`
    chattering_episodes: int
    chattering_alarms: int  # distinct alarms that chattered in the period
    stale: list[StaleAlarm]
    priority_distribution: dict[str, PriorityShare]  # every priority, most urgent first


class AlarmPerformance:
    """The live performance figures of one site's alarm system.

    Windows are half-open, `(t - window, t]`: an activation at `a` counts until it leaves at
    `a + window`. A flood starts at the activation that brings the trailing count above
    `flood_enter` and ends at the exact moment an old activation leaves and the count falls
    below `flood_exit`; the gap between the two thresholds keeps a flood from flickering.
    """

    def __init__(
        self,
        site: str,
        *,
        window: float = 600.0,
        flood_enter: int = 10,
        flood_exit: int = 5,
        chatter_count: int = 3,
        chatter_window: float = 60.0,
        stale_after: float = 86400.0,
        start: float | None = None,
    ) -> None:
        _check_settings(window, flood_enter, flood_exit, chatter_count, chatter_window, stale_after)
        self.site = site
        self.window = window
        self.flood_enter = flood_enter
        self.flood_exit = flood_exit
        self.chatter_count = chatter_count
        self.chatter_window = chatter_window
        self.stale_after = stale_after
        self._period_start = start
        self._latest: float | None = None
        self._activations = 0
        self._by_priority = dict.fromkeys(Priority, 0)
        self._peak = 0
        self._rate_window: deque[float] = deque()
        self._flood_since: float | None = None
        self._floods = 0
        self._flood_seconds = 0.0
        self._chatter_window: deque[tuple[float, str]] = deque()
        self._chatter_by_alarm: dict[str, deque[float]] = {}
        self._episodes_by_alarm: dict[str, int] = {}
        self._episodes = 0

    def replay(self, events: Iterable[AlarmEvent]) -> Self:
        """Rebuild the figures from the journal at start-up, so a restart does not reset them."""
        for event in events:
            self.observe(event)
        return self

    def observe(self, event: AlarmEvent) -> None:
        """Take one journaled event; events of other sites are ignored, since the figures are per site."""
        if event.site != self.site:
            return
        ts = self._advance_clock(event.ts)
        if event.kind in ACTIVATIONS:
            self._count_activation(ts, event.priority)
            self._track_chatter(ts, event.alarm)

    def figures(self, now: float, statuses: Sequence[AlarmStatus] = ()) -> PerformanceFigures:
        """The figures at `now`, without changing any state, so they can be asked for at any moment.

        `statuses` are the engine's current statuses of this site's alarms (only stale alarms need
        them). A `now` earlier than the latest event seen is taken as that event's time: the past
        inside the windows is no longer fully known.
        """
        t = now if self._latest is None else max(now, self._latest)
        flood_seconds, flood_since = self._flood_time_at(t)
        length = self._period_length(t)
        return {
            "site": self.site,
            "period_start": self._period_start,
            "period_end": t,
            "activations": self._activations,
            "alarms_last_10min": self._count_in_rate_window(t),
            "peak_10min": self._peak,
            "avg_per_10min": self._activations * self.window / length if length else None,
            "in_flood": flood_since is not None,
            "flood_since": flood_since,
            "floods": self._floods,
            "flood_seconds": flood_seconds,
            "flood_share": flood_seconds / length if length else None,
            "chattering": self._chattering_at(t),
            "chattering_episodes": self._episodes,
            "chattering_alarms": len(self._episodes_by_alarm),
            "stale": self._stale_at(t, statuses),
            "priority_distribution": self._priority_distribution(),
        }

    def chattered(self) -> dict[str, int]:
        """Every alarm that chattered in the period, with its number of chattering episodes (for reports)."""
        return dict(sorted(self._episodes_by_alarm.items()))

    def retained(self) -> dict[str, int]:
        """How much is held in memory, so a long-running service can show that it stays bounded."""
        return {
            "rate_window": len(self._rate_window),
            "chatter_window": len(self._chatter_window),
            "alarms_in_chatter_window": len(self._chatter_by_alarm),
            "alarms_that_chattered": len(self._episodes_by_alarm),  # bounded by the configured alarms
        }

    # -- time -------------------------------------------------------------------------------

    def _advance_clock(self, ts: float) -> float:
        """An event stamped before the latest one (a clock stepped back) counts as happening at the
        latest time, so the windows stay sorted; an event before an explicit start widens the period."""
        if self._latest is not None:
            ts = max(ts, self._latest)
        self._latest = ts
        if self._period_start is None or ts < self._period_start:
            self._period_start = ts
        return ts

    def _period_length(self, t: float) -> float:
        if self._period_start is None:
            return 0.0
        return max(0.0, t - self._period_start)

    # -- rate and flood ---------------------------------------------------------------------

    def _count_activation(self, ts: float, priority: Priority) -> None:
        self._settle_flood(ts)
        self._rate_window.append(ts)
        self._activations += 1
        self._by_priority[priority] += 1
        in_window = self._count_in_rate_window(ts)
        self._peak = max(self._peak, in_window)
        if self._flood_since is None and in_window > self.flood_enter:
            self._flood_since = ts
            self._floods += 1

    def _settle_flood(self, t: float) -> None:
        """Close a flood that ended before `t` and drop what left the window before `t`.

        Activations leaving exactly at `t` stay until time moves past `t`: another activation
        at the same instant may still come and keep the count up, so the flood has not ended.
        """
        ended = self._flood_end(until=t, inclusive=False)
        if ended is not None and self._flood_since is not None:
            self._flood_seconds += ended - self._flood_since
            self._flood_since = None
        while self._rate_window and self._leaves_rate_window(self._rate_window[0]) < t:
            self._rate_window.popleft()

    def _flood_end(self, until: float, inclusive: bool) -> float | None:
        """When the current flood ends, if it does by `until`: the moment an activation leaves the
        window and the trailing count falls below `flood_exit`.

        Activations leaving at the same moment need no grouping: the first of them to bring the
        count below the threshold gives the same moment as the last would."""
        if self._flood_since is None:
            return None
        remaining = len(self._rate_window)
        for ts in self._rate_window:
            leaves = self._leaves_rate_window(ts)
            if leaves > until or (leaves == until and not inclusive):
                return None
            remaining -= 1
            if remaining < self.flood_exit:
                return leaves
        return None

    def _flood_time_at(self, t: float) -> tuple[float, float | None]:
        """Seconds in flood up to `t`, and the start of the flood still going on at `t` (or None)."""
        if self._flood_since is None:
            return self._flood_seconds, None
        ended = self._flood_end(until=t, inclusive=True)
        if ended is not None:
            return self._flood_seconds + ended - self._flood_since, None
        return self._flood_seconds + t - self._flood_since, self._flood_since

    def _count_in_rate_window(self, t: float) -> int:
        left = 0
        for ts in self._rate_window:
            if self._leaves_rate_window(ts) > t:
                break
            left += 1
        return len(self._rate_window) - left

    def _leaves_rate_window(self, ts: float) -> float:
        """One expression for window membership everywhere, so rounding cannot disagree with itself."""
        return ts + self.window

    # -- chattering -------------------------------------------------------------------------

    def _track_chatter(self, ts: float, alarm: str) -> None:
        """Count a new episode when this activation is the one that brings the alarm to
        `chatter_count` in the window, unless it was chattering right up to this instant (an old
        activation leaving as this one arrives does not split an episode in two)."""
        self._forget_chatter_before(ts)
        recent = self._chatter_by_alarm.setdefault(alarm, deque())
        recent.append(ts)
        self._chatter_window.append((ts, alarm))
        in_window = sum(1 for a in recent if self._leaves_chatter_window(a) > ts)
        just_before = sum(1 for a in recent if a < ts)  # in [ts - chatter_window, ts): pruning kept no older
        if in_window == self.chatter_count and just_before < self.chatter_count:
            self._episodes_by_alarm[alarm] = self._episodes_by_alarm.get(alarm, 0) + 1
            self._episodes += 1

    def _forget_chatter_before(self, t: float) -> None:
        """Drop activations that left the chatter window before `t` (those leaving at `t` still
        tell whether the alarm was chattering just before), and alarms with none left."""
        while self._chatter_window and self._leaves_chatter_window(self._chatter_window[0][0]) < t:
            _, alarm = self._chatter_window.popleft()
            recent = self._chatter_by_alarm[alarm]
            recent.popleft()
            if not recent:
                del self._chatter_by_alarm[alarm]

    def _leaves_chatter_window(self, ts: float) -> float:
        return ts + self.chatter_window

    def _chattering_at(self, t: float) -> list[ChatteringAlarm]:
        chattering: list[ChatteringAlarm] = []
        for alarm, recent in self._chatter_by_alarm.items():
            in_window = sum(1 for ts in recent if self._leaves_chatter_window(ts) > t)
            if in_window >= self.chatter_count:
                chattering.append(
                    {
                        "alarm": alarm,
                        "activations": in_window,
                        "last": recent[-1],
                        "episodes": self._episodes_by_alarm[alarm],
                    }
                )
        return sorted(chattering, key=lambda c: (-c["activations"], c["alarm"]))

    # -- stale and priorities ---------------------------------------------------------------

    def _stale_at(self, t: float, statuses: Sequence[AlarmStatus]) -> list[StaleAlarm]:
        stale: list[StaleAlarm] = [
            {
                "alarm": status.key,
                "priority": status.priority.value,
                "active_since": status.active_since,
                "active_for": t - status.active_since,
                "hidden": status.hidden,
            }
            for status in statuses
            if status.state.active and status.active_since is not None and t - status.active_since > self.stale_after
        ]
        return sorted(stale, key=lambda s: (s["active_since"], s["alarm"]))

    def _priority_distribution(self) -> dict[str, PriorityShare]:
        total = self._activations
        return {
            priority.value: {
                "count": self._by_priority[priority],
                "share": self._by_priority[priority] / total if total else 0.0,
            }
            for priority in sorted(Priority, key=lambda p: p.rank)
        }


def _check_settings(
    window: float,
    flood_enter: int,
    flood_exit: int,
    chatter_count: int,
    chatter_window: float,
    stale_after: float,
) -> None:
    """Refuse settings under which the figures would mean nothing, at start rather than in a report."""
    if window <= 0 or chatter_window <= 0 or stale_after <= 0:
        raise ValueError("window, chatter_window and stale_after must be positive")
    if not 1 <= flood_exit <= flood_enter + 1:
        raise ValueError("need 1 <= flood_exit <= flood_enter + 1, or a flood would end as it starts")
    if chatter_count < 2:
        raise ValueError("chatter_count must be at least 2: one activation is not chatter")
