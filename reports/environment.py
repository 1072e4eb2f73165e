"""The environmental compliance report: per room, the figures an inspector asks for, with what they rest on.

Built from the hourly roll-ups (mean, min, max, count per hour) so a year of
many rooms answers in seconds; the report says so for each figure. Share of
time within limits uses the hourly means; excursions and daily fluctuation use
the hourly extremes, so a short spike still shows; completeness counts the
hours that hold any reading, so a clean-looking report over missing data
cannot pass as compliant.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any, Literal, Protocol

from alarms.model import AlarmEvent, EventKind
from alarms.profiles import effective_limits
from stackwatch.config.model import SiteConfig

from .compliance import completeness, daily_fluctuation, excursions, fluctuation_summary, summary, time_in_limits
from .preservation import days_to_mould, emc, mould_risk_factor, rate_pi, twpi

HOUR = 3600.0
RESOLUTION = "hourly roll-ups (mean, min, max per hour of good and uncertain readings)"
SAFETY_CAUSES = frozenset({"fire", "smoke", "fire_pre_alarm", "fire_trouble", "suppression_pre_discharge",
                           "suppression_discharge", "water_leak", "door_forced", "door_held_open", "intrusion"})


class RoomHistory(Protocol):
    def room(self, room_id: str, quantity: str, start: float, end: float,
             agg: Literal["raw", "1m", "1h", "1d"]) -> Any: ...


def _rows(history: RoomHistory, room: str, quantity: str, start: float, end: float) -> list[tuple[float, ...]]:
    """Every sensor's hourly rows of one quantity, merged in time order (a room may have several sensors)."""
    rows: list[tuple[float, ...]] = []
    for series in history.room(room, quantity, start, end, "1h"):
        rows += [tuple(row) for row in series.rows if row[4] and row[1] is not None]
    return sorted(rows)


def quantity_figures(rows: Sequence[tuple[float, ...]], low: float, high: float, allowance: float,
                     timezone: str, start: float, end: float) -> dict[str, Any]:
    means = [(r[0], r[1]) for r in rows]
    extremes = sorted([(r[0], r[2]) for r in rows] + [(r[0], r[3]) for r in rows])
    share = time_in_limits(means, low, high, start, end, max_gap=2 * HOUR)
    overall = summary(means, max_gap=2 * HOUR)
    highs = excursions([(r[0], r[3]) for r in rows], None, high, max_gap=2 * HOUR, until=end)
    lows = excursions([(r[0], r[2]) for r in rows], low, None, max_gap=2 * HOUR, until=end)
    days = daily_fluctuation(extremes, allowance, timezone)
    hours = sorted({r[0] for r in rows})
    complete = completeness([(ts, 0.0) for ts in hours], HOUR, start, end)
    # An hourly row at 29:00 covers 29:00–30:00: a gap starts where the hour before it ended.
    present = set(hours)
    gaps = [(a + HOUR if a > start and a in present else a, b) for a, b in complete.gaps]
    return {
        "limits": {"low": low, "high": high, "daily_allowance": allowance},
        "time_within": asdict(share),
        "min": min((r[2] for r in rows), default=None), "mean": overall.mean,
        "max": max((r[3] for r in rows), default=None),
        "excursions": sorted((asdict(e) for e in [*highs, *lows]), key=lambda e: e["start"]),
        "daily_fluctuation": {**asdict(fluctuation_summary(days)),
                              "days": [{**asdict(d), "date": d.date.isoformat()} for d in days]},
        "completeness": {**asdict(complete), "gaps": gaps, "gap_seconds": sum(b - a for a, b in gaps)},
        "resolution": RESOLUTION,
    }


def preservation_figures(t_rows: Sequence[tuple[float, ...]], rh_rows: Sequence[tuple[float, ...]]) -> dict[str, Any]:
    """TWPI, EMC range and mould risk from the hours where both temperature and RH were measured."""
    rh_by_hour: dict[float, list[float]] = {}
    for row in rh_rows:
        rh_by_hour.setdefault(row[0], []).append(row[1])
    t_by_hour: dict[float, list[float]] = {}
    for row in t_rows:
        t_by_hour.setdefault(row[0], []).append(row[1])
    pairs = [(HOUR, statistics.fmean(t_by_hour[ts]), statistics.fmean(rh_by_hour[ts]))
             for ts in sorted(set(t_by_hour) & set(rh_by_hour))]
    index = twpi(pairs)
    emcs = [emc(t, rh) for _, t, rh in pairs]
    mould_hours = sum(1 for _, t, rh in pairs if days_to_mould(t, rh) is not None)
    return {
        "twpi": None if index is None else round(index, 1), "twpi_rating": None if index is None else rate_pi(index),
        "emc_min": round(min(emcs), 2) if emcs else None, "emc_max": round(max(emcs), 2) if emcs else None,
        "mould_risk_factor": round(mould_risk_factor(pairs), 4), "mould_risk_days": round(mould_hours / 24, 1),
        "hours_measured": len(pairs), "source": "IPI metrics: Padfield 2004 fit of the PI table; "
        "Hailwood–Horrobin EMC with Simpson's coefficients; mould isopleths interpolated (reports/preservation.py)",
    }


def alarm_history(events: Iterable[AlarmEvent], room: str | None) -> dict[str, Any]:
    """Every activation with its acknowledgement and clearing; time to acknowledge by priority; shelving."""
    occurrences: dict[int, dict[str, Any]] = {}
    hidden: list[dict[str, Any]] = []
    for event in events:
        if room is not None and event.room != room:
            continue
        if event.kind in (EventKind.SHELVED, EventKind.OUT_OF_SERVICE):
            hidden.append({"alarm": event.alarm, "kind": event.kind.value, "at": event.ts, "by": event.actor,
                           "reason": event.comment, "until": event.until})
        if event.kind is EventKind.RAISED:
            occurrences[event.occurrence] = {"ticket": event.occurrence, "alarm": event.alarm, "cause": event.cause,
                                             "priority": event.priority.value, "raised": event.ts,
                                             "value": event.value, "limit": event.limit, "acknowledged": None,
                                             "acknowledged_by": None, "comment": None, "cleared": None}
        found = occurrences.get(event.occurrence)
        if found is None:
            continue
        if event.kind is EventKind.ACKNOWLEDGED and found["acknowledged"] is None:
            found.update(acknowledged=event.ts, acknowledged_by=event.actor, comment=event.comment)
        if event.state.value == "normal" and found["cleared"] is None:
            found["cleared"] = event.ts
    listed = sorted(occurrences.values(), key=lambda o: o["raised"])
    by_priority: dict[str, dict[str, Any]] = {}
    for priority in ("critical", "high", "medium", "low"):
        waits = sorted(o["acknowledged"] - o["raised"] for o in listed
                       if o["priority"] == priority and o["acknowledged"] is not None)
        by_priority[priority] = {
            "alarms": sum(1 for o in listed if o["priority"] == priority), "acknowledged": len(waits),
            "median_seconds_to_acknowledge": statistics.median(waits) if waits else None,
            "p90_seconds_to_acknowledge": waits[min(len(waits) - 1, int(0.9 * len(waits)))] if waits else None}
    return {"alarms": listed, "time_to_acknowledge": by_priority, "shelved_or_out_of_service": hidden,
            "safety_events": [o for o in listed if o["cause"] in SAFETY_CAUSES]}


def compliance_report(config: SiteConfig, history: RoomHistory, events: Sequence[AlarmEvent], start: float,
                      end: float, *, rooms: Sequence[str] | None = None, integrity: dict[str, Any] | None = None,
                      generated: float | None = None) -> dict[str, Any]:
    if end <= start:
        raise ValueError("the period must end after it starts")
    chosen = [room for room in config.rooms if rooms is None or room.id in rooms]
    unknown = set(rooms or ()) - {room.id for room in chosen}
    if unknown:
        raise KeyError(f"unknown room(s): {', '.join(sorted(unknown))}")
    zone = config.site.timezone
    report_rooms = []
    for room in chosen:
        limits = effective_limits(room)
        t_rows = _rows(history, room.id, "temperature", start, end)
        rh_rows = _rows(history, room.id, "humidity", start, end)
        temperature = quantity_figures(t_rows, limits.t_min, limits.t_max, limits.t_daily_range, zone, start, end)
        humidity = quantity_figures(rh_rows, limits.rh_min, limits.rh_max, limits.rh_daily_range, zone, start, end)
        preservation = preservation_figures(t_rows, rh_rows)
        report_rooms.append({
            "room": room.id, "name": room.name or room.id, "building": room.building, "profile": room.profile,
            "limit_sources": {field: limits.source_of(field) for field in ("t_min", "rh_max", "t_daily_range")},
            "key_figures": {
                "temperature_share_within": temperature["time_within"]["share_of_period"],
                "humidity_share_within": humidity["time_within"]["share_of_period"],
                "temperature_days_within_allowance": temperature["daily_fluctuation"]["share"],
                "humidity_days_within_allowance": humidity["daily_fluctuation"]["share"],
                "twpi": preservation["twpi"], "mould_risk_days": preservation["mould_risk_days"],
                "completeness": min((x for x in (temperature["completeness"]["ratio"],
                                                 humidity["completeness"]["ratio"]) if x is not None), default=None),
            },
            "temperature": temperature, "humidity": humidity, "preservation": preservation,
            "alarms": alarm_history(events, room.id),
        })
    return {"site": {"id": config.site.id, "name": config.site.name, "timezone": zone},
            "period": {"from": start, "to": end}, "generated": generated, "rooms": report_rooms,
            "alarm_history": alarm_history(events, None), "integrity": integrity or {}}


CSV_COLUMNS = ("room", "name", "profile", "temperature_share_within", "humidity_share_within",
               "temperature_days_within_allowance", "humidity_days_within_allowance", "twpi", "mould_risk_days",
               "completeness", "t_min", "t_mean", "t_max", "rh_min", "rh_mean", "rh_max", "t_excursions",
               "rh_excursions", "alarms")


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The key figures per room, one line each (the JSON has the detail behind them)."""
    rows: list[list[Any]] = [list(CSV_COLUMNS)]
    for room in report["rooms"]:
        t, rh, key = room["temperature"], room["humidity"], room["key_figures"]
        rows.append([room["room"], room["name"], room["profile"], key["temperature_share_within"],
                     key["humidity_share_within"], key["temperature_days_within_allowance"],
                     key["humidity_days_within_allowance"], key["twpi"], key["mould_risk_days"], key["completeness"],
                     t["min"], t["mean"], t["max"], rh["min"], rh["mean"], rh["max"], len(t["excursions"]),
                     len(rh["excursions"]), len(room["alarms"]["alarms"])])
    return rows
