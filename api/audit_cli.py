"""`stackwatch audit verify` and `stackwatch audit list`: the audit trail from a shell, for inspectors.

Both open the trail read-only (SQLite WAL lets them read while the service
appends), so checking the trail can never change it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from alarms.cli import explained
from stackwatch.config import ConfigError, load_config
from stackwatch.config.base import parse_duration
from stackwatch.config.loader import resolve_state_dir

from .audit import AuditTrail, anchor_path, read_head_anchor


def _audit_path(config_path: str) -> Path:
    config = load_config(config_path)
    return resolve_state_dir(config, config_path) / config.api.audit


def _open(config_path: str, path: Path) -> AuditTrail:
    if not path.exists():
        raise ConfigError(config_path, [f"no audit trail at {path}: has the service run yet?"])
    return AuditTrail(path, readonly=True)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _since(value: str) -> float:
    """An ISO date or time (local time unless it names its zone), or a duration back from now (`7d`, `12h`):
    inspectors ask both "since the last visit" and "over the last week"."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            return time.time() - parse_duration(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is neither an ISO date/time (2025-03-01, 2025-03-01T08:00) nor a duration (7d)",
            ) from None
    return moment.astimezone().timestamp()  # a naive time is taken as local, like the listing shows


def _cmd_verify(args: argparse.Namespace) -> int:
    path = _audit_path(args.config)
    if not path.exists() and anchor_path(path).exists():
        # The whole database is gone but its anchor is not: that is a deletion, not a fresh site.
        try:
            said = f"the head anchor says {read_head_anchor(anchor_path(path))[0]}"
        except (OSError, ValueError):
            said = "its head anchor remains"
        print(f"audit trail BROKEN at row 1: the audit database {path} is missing ({said})")
        return 1
    with _open(args.config, path) as trail:
        result = trail.verify()
        _, digest = trail.head()
    if not result.ok:
        where = f" at row {result.first_broken}" if result.first_broken is not None else ""
        print(f"audit trail BROKEN{where}: {result.reason}")
        return 1
    print(f"audit trail intact: {result.rows} rows, head {digest}")
    if result.reason:
        print(f"note: {result.reason}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _open(args.config, _audit_path(args.config)) as trail:
        rows = trail.rows(since=args.since, actor=args.actor, action=args.action, target=args.target,
                          limit=args.limit)
    if args.json:
        listed: list[dict[str, Any]] = [{**row.as_dict(), "time": _when(row.ts)} for row in rows]
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no audit rows")
        return 0
    for row in rows:
        where = f" from {row.remote}" if row.remote else ""
        why = f": {row.reason}" if row.reason else ""
        detail = f"  {json.dumps(row.detail, ensure_ascii=False)}" if row.detail else ""
        print(f"#{row.seq:<6} {_when(row.ts)}  {row.actor}{where}  {row.action} {row.target}{why}{detail}")
    return 0


def add_commands(commands: Any) -> None:
    """Register `audit verify` and `audit list` on the `stackwatch` command's sub-parsers."""
    audit = commands.add_parser("audit", help="verify and read the hash-chained audit trail")
    sub = audit.add_subparsers(dest="audit_command", required=True)

    verify = sub.add_parser("verify", help="check that no row was altered or removed (exit 1 if one was)")
    verify.add_argument("--config", required=True, help="site YAML file of the service")
    verify.set_defaults(handler=explained(_cmd_verify))

    listing = sub.add_parser("list", help="audit rows, oldest first")
    listing.add_argument("--config", required=True, help="site YAML file of the service")
    listing.add_argument("--since", type=_since, help="ISO date/time (local unless zoned) or a duration: 7d")
    listing.add_argument("--action", help="only this action, e.g. alarm.ack")
    listing.add_argument("--actor", help="only this user")
    listing.add_argument("--target", help="only this target")
    listing.add_argument("--limit", type=int, default=1000)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=explained(_cmd_list))
