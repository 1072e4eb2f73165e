"""`stackwatch profiles` and `stackwatch alarms …`: the alarm journal from a shell.

`list` and `history` read the journal directly (SQLite WAL lets them read
while the service writes). `ack`, `shelve`, `unshelve` leave a command in the
journal for the running service to apply, and wait for its verdict, so the
lifecycle rules are enforced in one place and every action is journaled like
one from the dashboard.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from stackwatch.command_queue import LOST, WITHDRAWN
from stackwatch.config import ConfigError, load_config
from stackwatch.config.base import parse_duration
from stackwatch.config.loader import resolve_state_dir

from .journal import Journal
from .model import AlarmState, AlarmStatus
from .performance import AlarmPerformance
from .profiles import REFERENCES, describe_profiles

WAIT_FOR_SERVICE = 10.0


def _journal(config_path: str, readonly: bool) -> Journal:
    config = load_config(config_path)
    path = Path(config.alarms.journal)
    if not path.is_absolute():
        path = resolve_state_dir(config, config_path) / path
    if readonly and not path.exists():
        raise ConfigError(config_path, [f"no alarm journal at {path}: has the service run yet?"])
    return Journal(path, readonly=readonly)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cmd_profiles(args: argparse.Namespace) -> int:
    profiles = describe_profiles()
    if args.json:
        print(json.dumps({"profiles": profiles, "references": list(REFERENCES)}, indent=2, ensure_ascii=False))
        return 0
    for p in profiles:
        print(f"{p['name']:<12} T {p['t_min']:g}–{p['t_max']:g} °C  RH {p['rh_min']:g}–{p['rh_max']:g} %  "
              f"daily ≤ {p['t_daily_range']:g} K / {p['rh_daily_range']:g} %  {p['title']}")
        print(f"{'':<12} source: {p['source']}; fluctuation: {p['fluctuation_source']}")
    print("\nInternational references (for comparison; confirm against each standard before relying on them):")
    for line in REFERENCES:
        print(f"  {line}")
    return 0


def _status_row(status: AlarmStatus) -> dict[str, Any]:
    return {"ticket": status.occurrence, "alarm": status.key, "state": status.state.value,
            "priority": status.priority.value, "since": status.active_since, "value": status.value,
            "acked_by": status.acked_by, "ack_comment": status.ack_comment, "shelved_until": status.shelved_until,
            "shelve_reason": status.shelve_reason, "suppressed_by": status.suppressed_by,
            "out_of_service": status.out_of_service}


def _cmd_list(args: argparse.Namespace) -> int:
    journal = _journal(args.config, readonly=True)
    statuses = [s for s in journal.statuses().values()
                if args.all or s.state is not AlarmState.NORMAL or (s.hidden and s.condition)]
    statuses.sort(key=lambda s: (s.priority.rank, -(s.active_since or 0.0)))
    if args.json:
        print(json.dumps([_status_row(s) for s in statuses], indent=2, ensure_ascii=False))
        return 0
    if not statuses:
        print("no active alarms")
        return 0
    for s in statuses:
        flags = [f"shelved until {_when(s.shelved_until)} ({s.shelve_reason})" if s.shelved_until else "",
                 f"suppressed by {s.suppressed_by}" if s.suppressed_by else "",
                 "out of service" if s.out_of_service else "",
                 f"acknowledged by {s.acked_by}" if s.acked_by and s.state.active else ""]
        print(f"#{s.occurrence:<6} {s.priority.value:<8} {s.state.value:<24} {_when(s.active_since)}  {s.key}"
              + "".join(f"  [{flag}]" for flag in flags if flag))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    journal = _journal(args.config, readonly=True)
    target = args.alarm.lstrip("#")
    events = (journal.events(occurrence=int(target), limit=args.limit) if target.isdigit()
              else journal.events(alarm=args.alarm, limit=args.limit))
    for e in events:
        who = f" by {e.actor}" if e.actor and e.actor != "system" else ""
        note = f": {e.comment}" if e.comment else ""
        print(f"{_when(e.ts)}  #{e.occurrence:<6} {e.kind.value:<14} → {e.state.value:<24} {e.alarm}{who}{note}")
    return 0


def _act(args: argparse.Namespace, action: str, extra: dict[str, Any]) -> int:
    commands = _journal(args.config, readonly=False).commands
    command = commands.submit(time.time(), action, args.alarm, args.user, extra)
    started = time.monotonic()
    while (outcome := commands.check(command, time.monotonic() - started, args.wait, time.time())) is None:
        time.sleep(0.1)
    status, result = outcome
    if status == WITHDRAWN:
        print(f"the service did not take the command within {args.wait:g} s (is `stackwatch run` running?); "
              "withdrawn", file=sys.stderr)
        return 3
    if status == LOST:
        print(result, file=sys.stderr)
        return 3
    print(result if status == "done" else f"refused: {result}", file=sys.stdout if status == "done" else sys.stderr)
    return 0 if status == "done" else 1


def _cmd_ack(args: argparse.Namespace) -> int:
    return _act(args, "ack", {"comment": args.comment})


def _cmd_shelve(args: argparse.Namespace) -> int:
    return _act(args, "shelve", {"reason": args.reason, "duration": parse_duration(args.duration)})


def _cmd_unshelve(args: argparse.Namespace) -> int:
    return _act(args, "unshelve", {})


def _cmd_disable(args: argparse.Namespace) -> int:
    return _act(args, "out_of_service", {"reason": args.reason})


def _cmd_enable(args: argparse.Namespace) -> int:
    return _act(args, "in_service", {})


def _cmd_performance(args: argparse.Namespace) -> int:
    """ISA-18.2 figures over the last `--hours`, replayed from the journal (the service keeps the same live)."""
    config = load_config(args.config)
    journal = _journal(args.config, readonly=True)
    now = time.time()
    start = now - args.hours * 3600
    performance = AlarmPerformance(config.site.id, start=start).replay(journal.events(since=start, limit=10_000_000))
    figures = performance.figures(now, list(journal.statuses().values()))
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


def explained(handler: Any) -> Any:
    """A broken site file or a missing journal is a message and exit code 2, not a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = handler(args)
        except ConfigError as error:
            print(error, file=sys.stderr)
            return 2
        return code
    return run


def add_commands(commands: Any) -> None:
    """Register `profiles` and `alarms` on the `stackwatch` command's sub-parsers."""
    profiles = commands.add_parser("profiles", help="room profiles: limits by storage class, with their sources")
    profiles.add_argument("--json", action="store_true")
    profiles.set_defaults(handler=_cmd_profiles)

    alarms = commands.add_parser("alarms", help="list and act on alarms of the running service")
    sub = alarms.add_subparsers(dest="alarms_command", required=True)

    def command(name: str, help_text: str, handler: Any, target: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, help="site YAML file of the running service")
        if target:
            parser.add_argument("alarm", help="alarm key or ticket number (#123)")
        parser.set_defaults(handler=explained(handler))
        return parser

    listing = command("list", "alarms that are not normal (or all)", _cmd_list, target=False)
    listing.add_argument("--all", action="store_true", help="every alarm, normal ones too")
    listing.add_argument("--json", action="store_true")
    history = command("history", "the journal of one alarm or ticket", _cmd_history)
    history.add_argument("--limit", type=int, default=200)
    performance = command("performance", "ISA-18.2 figures: rate, floods, chattering, stale, priorities",
                          _cmd_performance, target=False)
    performance.add_argument("--hours", type=float, default=24.0)
    for name, handler, help_text in (("ack", _cmd_ack, "acknowledge"), ("shelve", _cmd_shelve, "shelve for a while"),
                                     ("unshelve", _cmd_unshelve, "return a shelved alarm to service"),
                                     ("disable", _cmd_disable, "take out of service (maintenance, a removed sensor)"),
                                     ("enable", _cmd_enable, "return to service")):
        parser = command(name, help_text, handler)
        parser.add_argument("--user", default=getpass.getuser(), help="who acts (journaled)")
        parser.add_argument("--wait", type=float, default=WAIT_FOR_SERVICE, help="seconds to wait for the service")
        if name == "ack":
            parser.add_argument("--comment", default="", help="what was done")
        if name == "disable":
            parser.add_argument("--reason", required=True, help="why (mandatory)")
        if name == "shelve":
            parser.add_argument("--for", dest="duration", required=True, help="how long: 30m, 2h, 1d")
            parser.add_argument("--reason", required=True, help="why (mandatory)")
