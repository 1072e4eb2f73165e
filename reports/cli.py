"""`stackwatch report compliance`: the inspectors' report from a shell, as JSON or CSV.

Reads what the service wrote (InfluxDB, the alarm journal, the audit trail); the service need not run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from alarms.cli import explained
from api.history import parse_time
from stackwatch.config import load_config

from .environment import csv_rows
from .gather import report_from_files


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(report))
    return out.getvalue()


def _cmd_compliance(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    try:
        start = parse_time(args.start, now)
        end = parse_time(args.end, now) if args.end else now
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.format == "pdf":
        return _write_pdf(config, args, start, end, now)
    try:
        report = report_from_files(config, args.config, start, end, rooms=args.room, generated=now)
    except (KeyError, ValueError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _write_pdf(config: Any, args: argparse.Namespace, start: float, end: float, now: float) -> int:
    """The PDF with its charts (reportlab imported only here: JSON and CSV do not pay for it)."""
    from .gather import gather, open_sources
    from .pdf import FontUnavailable, font_for, report_pdf

    if not args.output:
        print("--format pdf writes a file: give -o FILE", file=sys.stderr)
        return 2
    try:
        font_for(args.lang)
        with open_sources(config, args.config) as sources:
            report = gather(config, sources, start, end, rooms=args.room, generated=now)
            data = report_pdf(report, sources.history, args.lang)
    except FontUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    except (KeyError, ValueError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    Path(args.output).write_bytes(data)
    return 0


def add_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="inspectors' reports")
    sub = report.add_subparsers(dest="report_command", required=True)
    compliance = sub.add_parser("compliance", help="environmental compliance per room over a period")
    compliance.add_argument("--config", required=True)
    compliance.add_argument("--room", action="append", help="a room id (repeat; default every room)")
    compliance.add_argument("--from", dest="start", required=True, help="ISO 8601 with zone, or now-30d")
    compliance.add_argument("--to", dest="end", help="ISO 8601 with zone (default now)")
    compliance.add_argument("--format", choices=("json", "csv", "pdf"), default="json",
                            help="pdf: key figures, charts and every section (needs -o)")
    compliance.add_argument("--lang", choices=("zh", "en"), default="en", help="language of the PDF")
    compliance.add_argument("-o", "--output", help="write to this file")
    compliance.set_defaults(handler=explained(_cmd_compliance))
