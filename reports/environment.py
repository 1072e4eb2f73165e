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
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Literal, Protocol

from alarms.model import AlarmEvent
from alarms.profiles import effective_limits
from stackwatch.config.model import SiteConfig

from .alarm_report import RESOLUTION as ALARM_RESOLUTION
from .alarm_report import AlarmContext, alarm_history, performance
from .compliance import completeness, daily_fluctuation, excursions, fluctuation_summary, summary, time_in_limits
from .control_report import CSV_COLUMNS as CONTROL_CSV_COLUMNS
from .control_report import csv_blocks as control_csv_blocks
from .preservation import days_to_mould, emc, mould_risk_factor, rate_pi, twpi

HOUR = 3600.0
RESOLUTION = "hourly roll-ups (mean, min, max per hour of good and uncertain readings)"
# What each key figure is computed from; `{source}` is where the hourly rows came from: "rollup 1h" (the
# store's roll-up), "raw" (hourly aggregates computed from raw readings: not rolled up yet) or both.
FIGURE_BASIS = {
    "temperature_share_within": "hourly means",
    "humidity_share_within": "hourly means",
    "temperature_days_within_allowance": "hourly minima and maxima per local day",
    "humidity_days_within_allowance": "hourly minima and maxima per local day",
    "twpi": "hourly means of temperature and RH",
    "mould_risk_days": "hourly means of temperature and RH",
    "completeness": "hours holding at least one good or uncertain reading",
    "alarms": "alarm journal, every event",
}
KEY_FIGURES = tuple(FIGURE_BASIS)


class RoomHistory(Protocol):
    def room(self, room_id: str, quantity: str, start: float, end: float,
             agg: Literal["raw", "1m", "1h", "1d"]) -> Any: ...


def _rows(history: RoomHistory, room: str, quantity: str, start: float,
          end: float) -> tuple[list[tuple[float, ...]], str]:
    """Every sensor's hourly rows of one quantity, merged in time order (a room may have several sensors), and
    where they came from (`Series.source` of the history: "rollup 1h", "rollup 1h + raw" or "raw")."""
    rows: list[tuple[float, ...]] = []
    sources: set[str] = set()
    for series in history.room(room, quantity, start, end, "1h"):
        rows += [tuple(row) for row in series.rows if row[4] and row[1] is not None]
        sources.add(str(getattr(series, "source", "rollup 1h")))
    return sorted(rows), " + ".join(sorted(sources)) or "no series"


def resolution(quantity_source: str) -> dict[str, str]:
    """`{"aggregation": "1h", "source": ...}`: what a quantity's figures rest on."""
    return {"aggregation": "1h", "source": quantity_source}


def quantity_figures(rows: Sequence[tuple[float, ...]], low: float, high: float, allowance: float,
                     timezone: str, start: float, end: float, source: str = "rollup 1h") -> dict[str, Any]:
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
        "resolution": RESOLUTION, "source": source,
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


def _in_room(room: str) -> Callable[[AlarmEvent], bool]:
    return lambda event: event.room == room


def compliance_report(config: SiteConfig, history: RoomHistory, events: Sequence[AlarmEvent], start: float,
                      end: float, *, rooms: Sequence[str] | None = None, integrity: dict[str, Any] | None = None,
                      generated: float | None = None, context: AlarmContext | None = None) -> dict[str, Any]:
    """The whole report. `events`: the journal's events in [start, end); `context`: what they cannot tell
    (how alarms stood at the start, who was notified; see `reports.alarm_report`)."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    chosen = [room for room in config.rooms if rooms is None or room.id in rooms]
    unknown = set(rooms or ()) - {room.id for room in chosen}
    if unknown:
        raise KeyError(f"unknown room(s): {', '.join(sorted(unknown))}")
    context = context or AlarmContext()
    zone = config.site.timezone
    report_rooms = []
    for room in chosen:
        limits = effective_limits(room)
        t_rows, t_source = _rows(history, room.id, "temperature", start, end)
        rh_rows, rh_source = _rows(history, room.id, "humidity", start, end)
        temperature = quantity_figures(t_rows, limits.t_min, limits.t_max, limits.t_daily_range, zone, start, end,
                                       t_source)
        humidity = quantity_figures(rh_rows, limits.rh_min, limits.rh_max, limits.rh_daily_range, zone, start, end,
                                    rh_source)
        preservation = preservation_figures(t_rows, rh_rows)
        alarms = alarm_history(events, context, start, end, keep=_in_room(room.id))
        both = t_source if t_source == rh_source else f"temperature {t_source}; humidity {rh_source}"
        sources = {"temperature_share_within": t_source, "humidity_share_within": rh_source,
                   "temperature_days_within_allowance": t_source, "humidity_days_within_allowance": rh_source,
                   "twpi": both, "mould_risk_days": both, "completeness": both}
        report_room: dict[str, Any] = {
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
                "alarms": len(alarms["alarms"]),
            },
            "key_figures_resolution": {name: f"{FIGURE_BASIS[name]} ({sources.get(name, 'full resolution')})"
                                       for name in KEY_FIGURES},
            "temperature": temperature, "humidity": humidity, "preservation": preservation,
            "alarms": alarms,
        }
        report_rooms.append(report_room)
    chosen_ids = {room.id for room in chosen}

    def keep(event: AlarmEvent) -> bool:
        """The chosen rooms' alarms; alarms of no room (gateways, the notifier) only in a whole-site report."""
        return event.room in chosen_ids if event.room is not None else rooms is None

    history_all = alarm_history(events, context, start, end, keep)
    return {"site": {"id": config.site.id, "name": config.site.name, "timezone": zone},
            "period": {"from": start, "to": end}, "generated": generated,
            "scope": "site" if rooms is None else sorted(chosen_ids),
            "key_figures": [{"room": r["room"], "name": r["name"], **r["key_figures"],
                             "resolution": r["key_figures_resolution"]} for r in report_rooms],
            "rooms": report_rooms,
            "alarm_performance": performance(config.site.id, events, context, start, end, history_all["alarms"],
                                             keep),
            "alarm_history": history_all,
            "fire_and_security": {"events": history_all["safety_events"], "resolution": ALARM_RESOLUTION},
            "integrity": integrity or {}}


CSV_COLUMNS = ("room", "name", "profile", "temperature_share_within", "humidity_share_within",
               "temperature_days_within_allowance", "humidity_days_within_allowance", "twpi", "mould_risk_days",
               "completeness", "t_min", "t_mean", "t_max", "rh_min", "rh_mean", "rh_max", "t_excursions",
               "rh_excursions", "alarms", "t_resolution", "rh_resolution")
SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "excursions": ("section", "room", "quantity", "side", "start", "end", "duration", "peak"),
    "gaps": ("section", "room", "quantity", "start", "end", "seconds"),
    "alarm_performance": ("section", "figure", "value"),
    "time_to_acknowledge": ("section", "priority", "alarms", "acknowledged", "unacknowledged", "median_seconds",
                            "p90_seconds", "max_seconds"),
    "alarms": ("section", "ticket", "alarm", "room", "cause", "priority", "raised", "carried_in", "acknowledged",
               "acknowledged_by", "comment", "seconds_to_acknowledge", "returned", "cleared", "notifications"),
    "notifications": ("section", "ticket", "at", "person", "channel", "address", "kind", "outcome", "ok"),
    "shelved_or_out_of_service": ("section", "alarm", "room", "kind", "from", "by", "reason", "expires", "ended",
                                  "ended_by", "seconds_hidden_in_period", "started_before_period"),
    "fire_and_security": ("section", "at", "category", "event", "room", "alarm", "ticket", "priority",
                          "acknowledged", "acknowledged_by", "cleared", "notified"),
    "integrity": ("section", "figure", "value"),
}


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The key figures per room first, one line each; then one block per section, each opened by its own
    header line whose first cell is `section` (the JSON has every detail behind them)."""
    rows: list[list[Any]] = [list(CSV_COLUMNS)]
    for room in report["rooms"]:
        t, rh, key = room["temperature"], room["humidity"], room["key_figures"]
        rows.append([room["room"], room["name"], room["profile"], key["temperature_share_within"],
                     key["humidity_share_within"], key["temperature_days_within_allowance"],
                     key["humidity_days_within_allowance"], key["twpi"], key["mould_risk_days"], key["completeness"],
                     t["min"], t["mean"], t["max"], rh["min"], rh["mean"], rh["max"], len(t["excursions"]),
                     len(rh["excursions"]), len(room["alarms"]["alarms"]), f"1h {t['source']}",
                     f"1h {rh['source']}"])

    def block(name: str, lines: list[list[Any]]) -> None:
        rows.append([])
        rows.append(list(SECTION_COLUMNS[name]))
        rows.extend([name, *line] for line in lines)

    block("excursions", [[room["room"], quantity, e["side"], e["start"], e["end"], e["duration"], e["peak"]]
                         for room in report["rooms"] for quantity in ("temperature", "humidity")
                         for e in room[quantity]["excursions"]])
    block("gaps", [[room["room"], quantity, a, b, b - a] for room in report["rooms"]
                   for quantity in ("temperature", "humidity") for a, b in room[quantity]["completeness"]["gaps"]])
    perf = report["alarm_performance"]
    figures: list[list[Any]] = [[name, perf[name]] for name in (
        "activations", "avg_per_10min", "peak_10min", "floods", "flood_seconds", "flood_share",
        "chattering_episodes")]
    figures += [["chattering_alarms", len(perf["chattering_alarms"])], ["stale_at_end", len(perf["stale_at_end"])]]
    figures += [[f"priority_{p}_count", d["count"]] for p, d in perf["priority_distribution"].items()]
    figures += [[f"priority_{p}_share", d["share"]] for p, d in perf["priority_distribution"].items()]
    block("alarm_performance", figures)
    block("time_to_acknowledge", [[p, d["alarms"], d["acknowledged"], d["unacknowledged"],
                                   d["median_seconds_to_acknowledge"], d["p90_seconds_to_acknowledge"],
                                   d["max_seconds_to_acknowledge"]]
                                  for p, d in perf["time_to_acknowledge"].items()])
    history = report["alarm_history"]
    block("alarms", [[o["ticket"], o["alarm"], o["room"], o["cause"], o["priority"], o["raised"], o["carried_in"],
                      o["acknowledged"], o["acknowledged_by"], o["comment"], o["seconds_to_acknowledge"],
                      o["returned"], o["cleared"], len(o["notifications"])] for o in history["alarms"]])
    block("notifications", [[o["ticket"], n["at"], n["person"], n["channel"], n["address"], n["kind"], n["outcome"],
                             n["ok"]] for o in history["alarms"] for n in o["notifications"]])
    block("shelved_or_out_of_service", [[h["alarm"], h["room"], h["kind"], h["from"], h["by"], h["reason"],
                                         h["expires"], h["ended"], h["ended_by"], h["seconds_hidden_in_period"],
                                         h["started_before_period"]]
                                        for h in history["shelved_or_out_of_service"]])
    block("fire_and_security", [[e["at"], e["category"], e["event"], e["room"], e["alarm"], e["ticket"],
                                 e["priority"], e["acknowledged"], e["acknowledged_by"], e["cleared"],
                                 " ".join(e["notified"])] for e in report["fire_and_security"]["events"]])
    if "control" in report:
        for name, lines in control_csv_blocks(report["control"]):
            rows.append([])
            rows.append(list(CONTROL_CSV_COLUMNS[name]))
            rows.extend([name, *line] for line in lines)
    integrity = report["integrity"]
    audit = integrity.get("audit") or {}
    block("integrity", [["config_sha256", integrity.get("config_sha256")],
                        ["audit_chain", "absent" if not audit else "intact" if audit["ok"] else "BROKEN"],
                        *[[f"audit_{name}", audit[name]] for name in ("rows", "first_broken", "reason", "head_seq",
                                                                      "head_hash") if audit]])
    return rows
