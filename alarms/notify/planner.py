"""Who is paged when: the escalation state machine, pure (alarm events and time in, notices out).

For each alarm ticket and matching route, a `Page` walks the route's levels:
level 1 after the route's delay (held through quiet hours for the priorities
that wait), level 2 when nobody acknowledged `after` seconds later, and so on.
The engine's own re-alarms repeat the current level at the priority's
interval. An acknowledgement, a return to normal, a shelf or a suppression
ends the page; those already paged are told it was acknowledged or returned.

A page that has not gone out yet when its alarm returns is dropped silently:
that is what a notification delay is for (a door open for 2 minutes shows on
the dashboard; it pages only after 10).

Grouping: notices due in the same step for the same room, cause, kind and
person become one notice with several tickets; the notifier merges further
within its window and turns floods into summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from stackwatch.config.notify import Route

from ..model import AlarmEvent, EventKind
from .model import NoticeKind

Resolve = Callable[[str, float], list[str]]  # target ("person:x", "rotation:y") at a time → person ids
HoldUntil = Callable[[str, float], float]  # priority, time → earliest time a page may go out
RouteFor = Callable[[AlarmEvent], list[Route]]

_STARTS = frozenset({EventKind.RAISED, EventKind.REACTIVATED, EventKind.ESCALATED})
_ENDS_QUIETLY = frozenset({EventKind.SHELVED, EventKind.SUPPRESSED, EventKind.OUT_OF_SERVICE})
_RETURNS = frozenset({EventKind.RETURNED, EventKind.CLEARED})


@dataclass(slots=True)
class Page:
    ticket: int
    alarm: str
    route: str
    group: str  # room:cause
    priority: str
    started: float  # when the alarm was raised
    next_due: float | None  # next level (or level 1) due at; None when all levels are paged
    level: int = 0  # levels already paged
    paged: list[str] = field(default_factory=list)  # people told so far, in order
    event: AlarmEvent | None = None  # the event that started it (for the message)

    @property
    def key(self) -> str:
        return f"{self.ticket}/{self.route}"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    people: tuple[str, ...]
    events: tuple[AlarmEvent, ...]
    route: str
    group: str
    level: int = 1

    @property
    def tickets(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(event.occurrence for event in self.events))


class Planner:
    """The open pages and the rules that move them. Not thread-safe: the notifier's thread owns it."""

    def __init__(self, routes: Sequence[Route], route_for: RouteFor, resolve: Resolve, hold_until: HoldUntil) -> None:
        self.routes = {route.id: route for route in routes}
        self.route_for = route_for
        self.resolve = resolve
        self.hold_until = hold_until
        self.pages: dict[str, Page] = {}

    def on_event(self, event: AlarmEvent, now: float) -> list[Notice]:
        kind = event.kind
        if kind in _STARTS:
            return self._start(event, now)
        if kind is EventKind.REALARM:
            return self._repeat(event)
        if kind is EventKind.ACKNOWLEDGED:
            return self._end(event, NoticeKind.ACKNOWLEDGED)
        if kind in _RETURNS:
            return self._end(event, NoticeKind.RETURNED)
        if kind in _ENDS_QUIETLY:
            self._end(event, None)
        return []

    def tick(self, now: float) -> list[Notice]:
        """Pages whose next level is due: resolve who is on call now, and page them."""
        notices = []
        for page in sorted(self.pages.values(), key=lambda p: (p.next_due or 0.0, p.ticket)):
            if page.next_due is None or page.next_due > now:
                continue
            route = self.routes[page.route]
            level = route.levels[page.level]
            people = _unique(person for target in level.targets for person in self.resolve(target, now))
            page.level += 1
            page.paged = _unique([*page.paged, *people])
            page.next_due = self._next_due(page, route)
            assert page.event is not None
            kind = NoticeKind.PAGE if page.level == 1 else NoticeKind.ESCALATION
            if people:
                notices.append(Notice(kind, tuple(people), (page.event,), page.route, page.group, page.level))
        return merge(notices)

    def _next_due(self, page: Page, route: Route) -> float | None:
        if page.level >= len(route.levels):
            return None
        first = self._first_due(page, route)
        return first + route.levels[page.level].after

    def _first_due(self, page: Page, route: Route) -> float:
        return self.hold_until(page.priority, page.started + route.delay)

    def _start(self, event: AlarmEvent, now: float) -> list[Notice]:
        for route in self.route_for(event):
            existing = self.pages.get(f"{event.occurrence}/{route.id}")
            if existing is not None:
                existing.priority = event.priority.value  # escalated: a more urgent priority, same ticket
                existing.event = event
                continue
            page = Page(ticket=event.occurrence, alarm=event.alarm, route=route.id, group=event.group_key,
                        priority=event.priority.value, started=event.ts, next_due=None, event=event)
            page.next_due = self._first_due(page, route)
            self.pages[page.key] = page
        return []

    def _repeat(self, event: AlarmEvent) -> list[Notice]:
        notices = []
        for page in self._pages_of(event.occurrence):
            route = self.routes[page.route]
            if page.level == 0 or not route.repeat:
                continue
            targets = route.levels[page.level - 1].targets
            people = _unique(person for target in targets for person in self.resolve(target, event.ts))
            page.paged = _unique([*page.paged, *people])
            if people:
                notices.append(Notice(NoticeKind.REPEAT, tuple(people), (replace(event),), page.route, page.group,
                                      page.level))
        return merge(notices)

    def _end(self, event: AlarmEvent, notice: NoticeKind | None) -> list[Notice]:
        notices = []
        for page in self._pages_of(event.occurrence):
            del self.pages[page.key]
            route = self.routes[page.route]
            if notice is not None and page.paged and route.notify_return:
                notices.append(Notice(notice, tuple(page.paged), (event,), page.route, page.group, page.level))
        return merge(notices)

    def _pages_of(self, ticket: int) -> list[Page]:
        return [page for page in self.pages.values() if page.ticket == ticket]

    def next_due(self) -> float | None:
        dues = [page.next_due for page in self.pages.values() if page.next_due is not None]
        return min(dues) if dues else None


def merge(notices: list[Notice]) -> list[Notice]:
    """One notice per (kind, group, route, level, people): simultaneous alarms of a room and cause go out as one."""
    merged: dict[tuple[object, ...], Notice] = {}
    for notice in notices:
        key = (notice.kind, notice.group, notice.route, notice.level, notice.people)
        if key in merged:
            previous = merged[key]
            merged[key] = replace(previous, events=previous.events + notice.events)
        else:
            merged[key] = notice
    return list(merged.values())


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
