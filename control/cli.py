"""`stackwatch control status|log`: what the control runtime last recorded, read from its journal.

Works with the service stopped (after a fire, an inspector asks what the plant was told and when); actions
go through the API, where roles and the audit trail apply.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any
from zoneinfo import ZoneInfo

from alarms.cli import explained
from api.history import parse_time
from stackwatch.config import load_config
from stackwatch.config.loader import resolve_state_dir

from .journal import ControlJournal


def _journal(args: argparse.Namespace) -> tuple[ControlJournal, str] | None:
    config = load_config(args.config)
    path = resolve_state_dir(config, args.config) / config.control.journal
    if not config.control.rooms:
        print("no climate control is configured at this site", file=sys.stderr)
        return None
    if not path.exists():
        print(f"no control journal yet at {path}: the service has not controlled anything", file=sys.stderr)
        return None
    return ControlJournal(path, readonly=True), config.site.timezone


def _time(ts: float | None, zone: str) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _cmd_status(args: argparse.Namespace) -> int:
    opened = _journal(args)
    if opened is None:
        return 2
    journal, zone = opened
    rooms, overrides = journal.rooms(), journal.overrides()
    journal.close()
    if args.json:
        views = {target: {"target": target, **override.as_dict()} for target, override in overrides.items()}
        print(json.dumps({"rooms": rooms, "overrides": views}, indent=2))
        return 0
    for room, data in sorted(rooms.items()):
        lock = data.get("interlock", {})
        state = ("FIRE INTERLOCK" if lock.get("fire") else "fire interlock latched, awaiting reset"
                 if lock.get("latched") else "LEAK INTERLOCK" if lock.get("leak") else
                 "leak interlock latched, awaiting reset" if lock.get("leak_latched") else "no interlock")
        print(f"{room}: {state}")
        for name, value in sorted(data.get("commanded", {}).items()):
            unit = data.get("units", {}).get(name, {})
            since = f", since {_time(unit.get('since'), zone)}" if unit.get("since") else ""
            print(f"  {name:28} last commanded {'-' if value is None else f'{value:g}'}{since}")
    for target, override in sorted(overrides.items()):
        print(f"manual: {target} = {'hold' if override.value is None else f'{override.value:g}'} by {override.who} "
              f"until {_time(override.until, zone)}: {override.reason}")
    return 0


def _cmd_log(args: argparse.Namespace) -> int:
    opened = _journal(args)
    if opened is None:
        return 2
    journal, zone = opened
    try:
        since = parse_time(args.since) if args.since else None
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    rows = journal.rows(since=since, room=args.room, target=args.target, limit=args.limit)
    journal.close()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        value = "" if row.value is None else f" {row.value:g}"
        who = f" by {row.who}" if row.who else ""
        print(f"{_time(row.ts, zone)}  {row.kind:11} {row.target}{value} [{row.source}]{who}: {row.reason}")
    return 0


def add_commands(commands: Any) -> None:
    control = commands.add_parser("control", help="environmental control: what was commanded and why")
    sub = control.add_subparsers(dest="control_command", required=True)
    status = sub.add_parser("status", help="interlocks, last commands and manual overrides per room")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=explained(_cmd_status))
    log = sub.add_parser("log", help="every command with its reason and outcome, overrides, interlocks, resets")
    log.add_argument("--config", required=True)
    log.add_argument("--room")
    log.add_argument("--target", help="an actuator (<device>.<actuator>) or loop (<room>/<loop>)")
    log.add_argument("--since", help="ISO 8601 with zone, or now-24h")
    log.add_argument("--limit", type=int, default=200)
    log.add_argument("--json", action="store_true")
    log.set_defaults(handler=explained(_cmd_log))
