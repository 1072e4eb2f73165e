"""`stackwatch report compliance`: the inspectors' report from a shell, as JSON or CSV.

Reads what the service wrote (InfluxDB, the alarm journal, the audit trail); the service need not run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from alarms.cli import explained
from alarms.journal import Journal
from api.audit import AuditTrail
from api.history import HistoryQuery, parse_time
from stackwatch.catalog import PointCatalog
from stackwatch.config import load_config
from stackwatch.config.loader import resolve_state_dir
from stackwatch.store.influx import InfluxClient

from .environment import compliance_report, csv_rows


def integrity(audit: AuditTrail | None, config_digest: str) -> dict[str, Any]:
    """What the figures can be trusted on: the audit chain's state and the site file the limits came from."""
    result: dict[str, Any] = {"config_sha256": config_digest}
    if audit is not None:
        verification = audit.verify()
        seq, head = audit.head()
        result["audit"] = {"ok": verification.ok, "rows": verification.rows,
                           "first_broken": verification.first_broken, "reason": verification.reason,
                           "head_seq": seq, "head_hash": head}
    return result


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(report))
    return out.getvalue()


def _cmd_compliance(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    state = resolve_state_dir(config, args.config)
    now = time.time()
    try:
        start = parse_time(args.start, now)
        end = parse_time(args.end, now) if args.end else now
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    history = HistoryQuery(InfluxClient(config.storage.influxdb), PointCatalog.from_config(config),
                           timezone=config.site.timezone)
    journal_path = state / config.alarms.journal
    events = []
    if journal_path.exists():
        journal = Journal(journal_path, readonly=True)
        events = journal.events(since=start, until=end, limit=10_000_000)
        journal.close()
    audit_path = state / config.api.audit
    audit = AuditTrail(audit_path, readonly=True) if audit_path.exists() else None
    digest = hashlib.sha256(Path(args.config).read_bytes()).hexdigest()
    try:
        report = compliance_report(config, history, events, start, end, rooms=args.room or None,
                                   integrity=integrity(audit, digest), generated=now)
    except (KeyError, ValueError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def add_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="inspectors' reports")
    sub = report.add_subparsers(dest="report_command", required=True)
    compliance = sub.add_parser("compliance", help="environmental compliance per room over a period")
    compliance.add_argument("--config", required=True)
    compliance.add_argument("--room", action="append", help="a room id (repeat; default every room)")
    compliance.add_argument("--from", dest="start", required=True, help="ISO 8601 with zone, or now-30d")
    compliance.add_argument("--to", dest="end", help="ISO 8601 with zone (default now)")
    compliance.add_argument("--format", choices=("json", "csv"), default="json")
    compliance.add_argument("-o", "--output", help="write to this file")
    compliance.set_defaults(handler=explained(_cmd_compliance))
