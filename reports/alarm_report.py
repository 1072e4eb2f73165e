"""The alarm sections of the inspectors' report: ISA-18.2 performance, every alarm and who responded, what
was hidden by shelving or taken out of service, and the fire and security log.

All of it comes from the alarm journal (every event, full resolution) and the notifier's delivery log; nothing
is sampled. The period's own events cannot tell how things stood when it began, so `AlarmContext` carries
that: each alarm's last event before the start (its state), the raise of every occurrence still open at the
start, and shelves or out-of-service periods that began earlier and were still on.

Definitions used throughout:
* an alarm *in the period* is an occurrence (ticket) raised in [start, end), or one raised earlier that was
  not back to normal at the start (`carried_in`: listed, but left out of the time-to-acknowledge figures,
  which are over alarms raised in the period);
* time to acknowledge = first acknowledgement − raise; median and 90th percentile (nearest rank: the
  ⌈0.9·n⌉-th smallest) by the priority the alarm was raised with; an acknowledgement after the period's end
  is not known to the report;
* performance figures replay the period's events through `alarms.performance.AlarmPerformance`, the same
  code the live service runs (rate windows of 10 minutes, flood above 10 in a window, chattering at 3
  activations in 60 s, stale after 24 h active).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alarms.model import AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority
from alarms.performance import (
    ISA_FLOOD_SHARE_MAX,
    ISA_PRIORITY_SHARE,
    ISA_RATE_ACCEPTABLE_PER_10MIN,
    ISA_RATE_MANAGEABLE_PER_10MIN,
    AlarmPerformance,
)

RESOLUTION = "alarm journal: every event (full resolution)"
HIDING = (EventKind.SHELVED, EventKind.UNSHELVED, EventKind.OUT_OF_SERVICE, EventKind.IN_SERVICE)
PRIORITIES = tuple(p.value for p in sorted(Priority, key=lambda p: p.rank))

# The fire and security log: cause → (category, what an inspector reads).
SAFETY: dict[str, tuple[str, str]] = {
    "fire": ("fire", "Fire alarm"),
    "smoke": ("fire", "Smoke detected"),
    "fire_pre_alarm": ("fire", "Fire pre-alarm"),
    "fire_trouble": ("fire", "Fire detection trouble"),
    "fire_zone_disabled": ("fire", "Fire zone disabled"),
    "suppression_pre_discharge": ("fire", "Gas suppression pre-discharge"),
    "suppression_discharge": ("fire", "Gas suppression discharged"),
    "water_leak": ("water", "Water leak"),
    "leak_cable_fault": ("water", "Leak detection cable broken"),
    "leak_contamination": ("water", "Leak detection cable contaminated"),
    "door_forced": ("security", "Door opened outside opening hours (after-hours access or forced)"),
    "door_held_open": ("security", "Door held open"),
    "intrusion": ("security", "Motion outside opening hours (after-hours presence)"),
}

Keep = Callable[[AlarmEvent], bool]


@dataclass(frozen=True)
class AlarmContext:
    """What the period's events alone cannot tell (see the module docstring); empty when there is no journal."""

    before: Sequence[AlarmEvent] = ()  # each alarm's last event before the start
    raised_before: Sequence[AlarmEvent] = ()  # RAISED events of occurrences not normal at the start
    hidden_before: Sequence[AlarmEvent] = ()  # each alarm's last shelve/out-of-service event before the start
    notifications: Mapping[int, Sequence[dict[str, Any]]] = field(default_factory=dict)  # ticket → messages


def keep_all(_: AlarmEvent) -> bool:
    return True


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The ⌈share·n⌉-th smallest value (nearest-rank percentile); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def notifications_by_ticket(deliveries: Iterable[Mapping[str, Any]],
                            attempts: Iterable[Mapping[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Every message the notifier sent or tried, per alarm ticket: one line per attempt (time, person, channel,
    address, outcome), and a delivery never attempted (still pending, or dropped) as one line with its status."""
    kinds = {row["id"]: row for row in deliveries}
    tried: set[int] = set()
    found: dict[int, list[dict[str, Any]]] = {}

    def add(tickets: str, line: dict[str, Any]) -> None:
        for ticket in filter(None, tickets.split(",")):
            found.setdefault(int(ticket), []).append(line)

    for row in attempts:
        tried.add(row["delivery"])
        delivery = kinds.get(row["delivery"], {})
        add(row["tickets"], {"at": row["ts"], "person": row["person"], "channel": row["channel"],
                             "address": row["address"], "kind": delivery.get("kind", ""),
                             "outcome": row["status"], "ok": bool(row["ok"])})
    for row in kinds.values():
        if row["id"] not in tried:
            add(row["tickets"], {"at": row["created"], "person": row["person"], "channel": row["channel"],
                                 "address": row["address"], "kind": row["kind"], "outcome": row["status"],
                                 "ok": False})
    for lines in found.values():
        lines.sort(key=lambda line: line["at"])
    return found


def occurrences(events: Sequence[AlarmEvent], context: AlarmContext, keep: Keep = keep_all) -> list[dict[str, Any]]:
    """Every alarm in the period (raised in it, or carried in from before) with what happened to it."""
    found: dict[int, dict[str, Any]] = {}

    def start(raised: AlarmEvent, carried: bool) -> None:
        found[raised.occurrence] = {
            "ticket": raised.occurrence, "alarm": raised.alarm, "room": raised.room, "cause": raised.cause,
            "priority": raised.priority.value, "raised": raised.ts, "carried_in": carried, "value": raised.value,
            "limit": raised.limit, "message": raised.message, "acknowledged": None, "acknowledged_by": None,
            "comment": None, "seconds_to_acknowledge": None, "returned": None, "cleared": None, "realarms": 0,
            "escalated_to": None, "notifications": list(context.notifications.get(raised.occurrence, ()))}

    for raised in context.raised_before:
        if keep(raised):
            start(raised, True)
    for event in events:
        if not keep(event):
            continue
        if event.kind is EventKind.RAISED:
            start(event, False)
        entry = found.get(event.occurrence)
        if entry is None:
            continue
        if event.kind is EventKind.ACKNOWLEDGED and entry["acknowledged"] is None:
            entry.update(acknowledged=event.ts, acknowledged_by=event.actor, comment=event.comment,
                         seconds_to_acknowledge=event.ts - entry["raised"])
        elif event.kind is EventKind.RETURNED and entry["returned"] is None:
            entry["returned"] = event.ts
        elif event.kind is EventKind.REALARM:
            entry["realarms"] += 1
        elif event.kind is EventKind.ESCALATED:
            entry["escalated_to"] = event.priority.value
        if event.state is AlarmState.NORMAL and entry["cleared"] is None:
            entry["cleared"] = event.ts
    return sorted(found.values(), key=lambda o: (o["raised"], o["ticket"]))


def time_to_acknowledge(listed: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """By priority, over alarms raised in the period: how many, how many acknowledged, median and p90 seconds."""
    result: dict[str, dict[str, Any]] = {}
    for priority in PRIORITIES:
        mine = [o for o in listed if o["priority"] == priority and not o["carried_in"]]
        waits = [o["seconds_to_acknowledge"] for o in mine if o["seconds_to_acknowledge"] is not None]
        result[priority] = {
            "alarms": len(mine), "acknowledged": len(waits), "unacknowledged": len(mine) - len(waits),
            "median_seconds_to_acknowledge": statistics.median(waits) if waits else None,
            "p90_seconds_to_acknowledge": nearest_rank(waits, 0.9),
            "max_seconds_to_acknowledge": max(waits) if waits else None}
    return result


def hidden_periods(events: Sequence[AlarmEvent], context: AlarmContext, start: float, end: float,
                   keep: Keep = keep_all) -> list[dict[str, Any]]:
    """Every shelf and out-of-service period that overlaps the period: who, why, until when, when it ended."""
    periods: list[dict[str, Any]] = []
    open_now: dict[tuple[str, str], dict[str, Any]] = {}

    def begin(event: AlarmEvent, carried: bool) -> None:
        kind = "shelved" if event.kind is EventKind.SHELVED else "out_of_service"
        entry = {"alarm": event.alarm, "room": event.room, "cause": event.cause, "priority": event.priority.value,
                 "kind": kind, "from": event.ts, "by": event.actor, "reason": event.comment,
                 "expires": event.until, "ended": None, "ended_by": None, "end_comment": None,
                 "started_before_period": carried}
        periods.append(entry)
        open_now[(event.alarm, kind)] = entry

    def finish(event: AlarmEvent) -> None:
        kind = "shelved" if event.kind is EventKind.UNSHELVED else "out_of_service"
        entry = open_now.pop((event.alarm, kind), None)
        if entry is not None:
            entry.update(ended=event.ts, ended_by=event.actor, end_comment=event.comment)

    for event in context.hidden_before:
        if keep(event) and event.kind in (EventKind.SHELVED, EventKind.OUT_OF_SERVICE):
            begin(event, True)
    for event in events:
        if not keep(event) or event.kind not in HIDING:
            continue
        if event.kind in (EventKind.SHELVED, EventKind.OUT_OF_SERVICE):
            begin(event, False)
        else:
            finish(event)
    for entry in periods:
        stop = entry["ended"] if entry["ended"] is not None else end
        entry["seconds_hidden_in_period"] = max(0.0, min(stop, end) - max(entry["from"], start))
    return periods


def statuses_at_end(events: Sequence[AlarmEvent], context: AlarmContext, keep: Keep = keep_all) -> list[AlarmStatus]:
    """Each alarm's state at the period's end, rebuilt from the journal (stale alarms need it)."""
    raised_at = {e.occurrence: e.ts for e in context.raised_before}
    statuses: dict[str, AlarmStatus] = {}
    for event in context.before:
        if keep(event):
            statuses[event.alarm] = AlarmStatus(event.alarm, event.state, event.occurrence, event.priority,
                                                raised_at.get(event.occurrence))
    for event in context.hidden_before:
        if keep(event) and event.alarm in statuses:
            if event.kind is EventKind.SHELVED:
                statuses[event.alarm].shelved_until = event.until
            elif event.kind is EventKind.OUT_OF_SERVICE:
                statuses[event.alarm].out_of_service = True
    for event in events:
        if not keep(event):
            continue
        status = statuses.setdefault(event.alarm, AlarmStatus(event.alarm))
        status.state, status.occurrence, status.priority = event.state, event.occurrence, event.priority
        if event.kind is EventKind.RAISED:
            status.active_since = event.ts
        elif event.kind is EventKind.SHELVED:
            status.shelved_until = event.until
        elif event.kind is EventKind.UNSHELVED:
            status.shelved_until = None
        elif event.kind in (EventKind.OUT_OF_SERVICE, EventKind.IN_SERVICE):
            status.out_of_service = event.kind is EventKind.OUT_OF_SERVICE
    return list(statuses.values())


def performance(site: str, events: Sequence[AlarmEvent], context: AlarmContext, start: float, end: float,
                listed: Sequence[dict[str, Any]], keep: Keep = keep_all) -> dict[str, Any]:
    """ISA-18.2 figures for the period, with the standard's reference values beside them."""
    replay = AlarmPerformance(site, start=start).replay(e for e in events if keep(e))
    figures = replay.figures(end, statuses_at_end(events, context, keep))
    return {
        "activations": figures["activations"],
        "avg_per_10min": figures["avg_per_10min"], "peak_10min": figures["peak_10min"],
        "floods": figures["floods"], "flood_seconds": figures["flood_seconds"],
        "flood_share": figures["flood_share"],
        "chattering_alarms": [{"alarm": alarm, "episodes": n} for alarm, n in replay.chattered().items()],
        "chattering_episodes": figures["chattering_episodes"],
        "stale_at_end": figures["stale"],
        "priority_distribution": figures["priority_distribution"],
        "time_to_acknowledge": time_to_acknowledge(listed),
        "reference": {"acceptable_per_10min": ISA_RATE_ACCEPTABLE_PER_10MIN,
                      "manageable_per_10min": ISA_RATE_MANAGEABLE_PER_10MIN, "flood_share_max": ISA_FLOOD_SHARE_MAX,
                      "priority_share": {p.value: share for p, share in ISA_PRIORITY_SHARE.items()},
                      "source": "ANSI/ISA-18.2-2016 §16.5 (IEC 62682), per operator position"},
        "settings": {"window_seconds": replay.window, "flood_above": replay.flood_enter,
                     "chatter": f"{replay.chatter_count} activations in {replay.chatter_window:g} s",
                     "stale_after_seconds": replay.stale_after},
        "resolution": RESOLUTION,
    }


def fire_and_security(listed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fire-panel events, water leaks, doors forced or held open, after-hours access, in time order."""
    log = []
    for o in listed:
        if o["cause"] not in SAFETY:
            continue
        category, label = SAFETY[o["cause"]]
        log.append({"at": o["raised"], "category": category, "event": label, "cause": o["cause"],
                    "room": o["room"], "alarm": o["alarm"], "ticket": o["ticket"], "priority": o["priority"],
                    "acknowledged": o["acknowledged"], "acknowledged_by": o["acknowledged_by"],
                    "comment": o["comment"], "cleared": o["cleared"], "carried_in": o["carried_in"],
                    "notified": sorted({n["person"] for n in o["notifications"] if n["ok"]})})
    return log


def alarm_history(events: Sequence[AlarmEvent], context: AlarmContext, start: float, end: float,
                  keep: Keep = keep_all) -> dict[str, Any]:
    """Every alarm with its response, time to acknowledge by priority, shelving, and the fire/security log."""
    listed = occurrences(events, context, keep)
    messages = [n for o in listed for n in o["notifications"]]
    return {"alarms": listed, "time_to_acknowledge": time_to_acknowledge(listed),
            "shelved_or_out_of_service": hidden_periods(events, context, start, end, keep),
            "notifications": {"messages": len(messages), "delivered": sum(1 for n in messages if n["ok"]),
                              "failed": sum(1 for n in messages if not n["ok"]),
                              "people": sorted({n["person"] for n in messages})},
            "safety_events": fire_and_security(listed), "resolution": RESOLUTION}
