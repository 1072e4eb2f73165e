"""The report's control section: what the service did to each room's climate, and what stopped it.

Inspectors ask of a controlled room not only whether it stayed in band but
whether people overrode the automation (who, why, for how long), whether fire
and leak interlocks acted and who restarted the plant, and whether units
failed to follow their commands. All of it comes from the control journal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from control.journal import LogRow

CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "control_rooms": ("section", "room", "commands", "auto", "manual", "interlock", "unit_starts", "failures",
                      "recovered"),
    "control_overrides": ("section", "room", "target", "value", "set_by", "reason", "since", "until", "ended",
                          "ended_by", "end_reason"),
    "control_interlocks": ("section", "at", "room", "kind", "who", "what"),
    "control_failures": ("section", "at", "room", "target", "value", "source", "detail"),
}


def control_section(rows: Sequence[LogRow], rooms: Sequence[str] | None, start: float, end: float) -> dict[str, Any]:
    """Per room counts, every override (also one set before the period and still running), interlock trips and
    resets, failed commands; `rows` is the journal from before `start` (to pair overrides) up to `end`."""
    keep = set(rooms) if rooms is not None else None
    chosen = [r for r in rows if (keep is None or r.room in keep) and r.ts < end]
    in_period = [r for r in chosen if r.ts >= start]
    by_room: dict[str, dict[str, Any]] = {}
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    starts: dict[str, Counter[str]] = defaultdict(Counter)
    last_value: dict[str, float | None] = {}
    for row in chosen:  # unit starts need the state before the period
        if row.kind != "command":
            continue
        if row.ts >= start:
            sources[row.room][row.source] += 1
            if row.value == 1 and last_value.get(row.target) != 1:
                starts[row.room][row.target] += 1
        last_value[row.target] = row.value
    failures = [r for r in in_period if r.kind == "failed"]
    recovered = Counter(r.room for r in in_period if r.kind == "recovered")
    for room in sorted({r.room for r in in_period}):
        by_room[room] = {
            "room": room, "commands": sum(sources[room].values()), "by_source": dict(sources[room]),
            "unit_starts": dict(starts[room]), "failures": sum(1 for f in failures if f.room == room),
            "recovered": recovered[room],
        }
    return {
        "source": "control journal (state_dir/control.db)",
        "rooms": list(by_room.values()),
        "overrides": _overrides(chosen, start),
        "interlocks": [{"at": r.ts, "room": r.room, "kind": r.kind, "who": r.who or "system", "what": r.reason}
                       for r in in_period if r.kind in ("interlock", "reset")],
        "failures": [{"at": r.ts, "room": r.room, "target": r.target, "value": r.value, "source": r.source,
                      "detail": r.detail.get("error") or r.detail.get("attempts") or r.reason} for r in failures],
    }


def _overrides(rows: Sequence[LogRow], start: float) -> list[dict[str, Any]]:
    open_: dict[str, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for row in rows:
        if row.kind == "override":
            previous = open_.pop(row.target, None)
            if previous is not None:  # replaced by a newer override
                previous.update(ended=row.ts, ended_by=row.who, end_reason="replaced")
                done.append(previous)
            open_[row.target] = {"room": row.room, "target": row.target, "value": row.value, "set_by": row.who,
                                 "reason": row.reason, "since": row.ts, "until": row.detail.get("until"),
                                 "ended": None, "ended_by": None, "end_reason": None}
        elif row.kind == "override_end" and row.target in open_:
            entry = open_.pop(row.target)
            entry.update(ended=row.ts, ended_by=row.who, end_reason=row.reason)
            done.append(entry)
    overrides = done + list(open_.values())
    return sorted((o for o in overrides if o["ended"] is None or o["ended"] >= start), key=lambda o: o["since"])


def csv_blocks(section: dict[str, Any]) -> list[tuple[str, list[list[Any]]]]:
    return [
        ("control_rooms", [[r["room"], r["commands"], r["by_source"].get("auto", 0), r["by_source"].get("manual", 0),
                            r["by_source"].get("interlock", 0), sum(r["unit_starts"].values()), r["failures"],
                            r["recovered"]] for r in section["rooms"]]),
        ("control_overrides", [[o["room"], o["target"], o["value"], o["set_by"], o["reason"], o["since"], o["until"],
                                o["ended"], o["ended_by"], o["end_reason"]] for o in section["overrides"]]),
        ("control_interlocks", [[i["at"], i["room"], i["kind"], i["who"], i["what"]] for i in section["interlocks"]]),
        ("control_failures", [[f["at"], f["room"], f["target"], f["value"], f["source"], f["detail"]]
                              for f in section["failures"]]),
    ]
