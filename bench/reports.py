"""A one-year compliance report for 20 rooms: how long it takes to gather and render (target: under 30 s).

    .venv/bin/python bench/reports.py                 # 20 rooms, a year ending now
    .venv/bin/python bench/reports.py --rooms 5 --days 90

The site: 20 stack rooms (paper, film, special collections), each with one temperature and one humidity
point read every minute. A year of that is 21 million raw readings, which would take longer to seed than to
report on, and which the report never reads: it works from the hourly roll-ups the service keeps
(`stackwatch.store.rollup`). So the script seeds what the report reads, as the running service would have
left it:

* the year's hourly roll-up rows (`temperature_1h`, `humidity_1h` in retention policy `forever`: mean, min,
  max and count of 60 per hour), written directly, except the last day; a seasonal and daily swing, a few
  humid excursions and one 6-hour gap per room;
* raw 1-minute readings for the last day only (57,600 readings for 20 rooms), rolled up by the real
  `Rollup.backfill`, which also sets the roll-up state; the hour not yet complete stays raw, so the report
  reads "rollup 1h + raw" like the live service does;
* an alarm journal (about 150 alarms a room with acknowledgements and clearing, shelves, fire-panel and door
  events), the notifier's store (one SMS per alarm) and an audit trail of 300 rows.

Then it times `reports.gather.report_from_files` (InfluxDB queries, preservation metrics, alarm replay,
audit verification), the JSON and CSV rendering, and the PDF (`reports.pdf.report_pdf`, which reads the
hourly chart rows again) when it is available.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from alarms.journal import Journal  # noqa: E402
from alarms.model import AlarmEvent, AlarmState, EventKind, Priority  # noqa: E402
from alarms.notify.model import Delivery, Message, NoticeKind  # noqa: E402
from alarms.notify.store import NewDelivery, NotifyStore  # noqa: E402
from api.audit import AuditTrail  # noqa: E402
from reports.cli import render  # noqa: E402
from reports.gather import open_sources, report_from_files  # noqa: E402
from stackwatch.catalog import PointCatalog  # noqa: E402
from stackwatch.config import load_config  # noqa: E402
from stackwatch.config.model import SiteConfig  # noqa: E402
from stackwatch.localservers import LocalInfluxd  # noqa: E402
from stackwatch.store.influx import InfluxClient  # noqa: E402
from stackwatch.store.rollup import HOUR, ROLLUP_RP, Rollup, floor_hour, rollup_measurement  # noqa: E402

DAY = 86400
YEAR = 365 * DAY
PROFILES = ("paper", "film", "special")


def site_file(folder: Path, url: str, rooms: int) -> Path:
    site: dict[str, Any] = {
        "version": 1,
        "site": {"id": "bench", "name": "Benchmark archive", "timezone": "Asia/Shanghai"},
        "state_dir": str(folder / "state"),
        "buildings": [{"id": "main", "floors": ["1", "2"]}],
        "rooms": [{"id": f"stack-{n:02d}", "building": "main", "floor": "1" if n % 2 else "2",
                   "profile": PROFILES[n % len(PROFILES)]} for n in range(rooms)],
        "gateways": [{"type": "modbus-tcp", "id": "gw", "host": "127.0.0.1"}],
        "storage": {"influxdb": {"url": url, "database": "bench", "timeout": 300}},
        "devices": [{"id": f"th{n:02d}", "protocol": "modbus", "gateway": "gw", "unit": n + 1,
                     "room": f"stack-{n:02d}", "poll_interval": 60,
                     "points": [{"id": "t", "quantity": "temperature", "unit": "°C", "table": "input", "address": 1},
                                {"id": "rh", "quantity": "humidity", "unit": "%", "table": "input", "address": 2}]}
                    for n in range(rooms)],
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    return path


def climate(ts: float, quantity: str, room: int) -> float:
    season = math.sin(2 * math.pi * (ts % YEAR) / YEAR + room)
    day = math.sin(2 * math.pi * (ts % DAY) / DAY)
    return 18 + 2 * season + 0.5 * day if quantity == "temperature" else 48 + 4 * season - 1.5 * day


def seed_rollups(client: InfluxClient, catalog: PointCatalog, start: int, until: int, rooms: int) -> int:
    """The hourly roll-up rows of [start, until) as the service's roll-up writes them."""
    writer = client.with_retention_policy(ROLLUP_RP)
    Rollup(client, catalog).ensure_retention_policy()
    rng = random.Random(7)
    lines: list[str] = []
    written = 0
    for info in catalog:
        room = int(info.room.rsplit("-", 1)[1]) if info.room else 0
        key = rollup_measurement(info.measurement) + info.series[len(info.measurement):]
        gap = start + rng.randrange(0, (until - start) // HOUR - 6) * HOUR  # one 6-hour gap per room
        humid = {start + rng.randrange(0, (until - start) // HOUR) * HOUR for _ in range(5)}  # 5 humid spells
        humid_hours = {h + k * HOUR for h in humid for k in range(rng.randrange(2, 12))}
        for ts in range(start, until, HOUR):
            if gap <= ts < gap + 6 * HOUR:
                continue
            mean = climate(ts + 1800, info.quantity, room)
            if info.quantity == "humidity" and ts in humid_hours:
                mean += 15
            lines.append(f"{key} mean={mean!r},min={mean - 0.3!r},max={mean + 0.3!r},count=60i {ts * 10**9}")
            if len(lines) >= 20_000:
                writer.write(lines)
                written += len(lines)
                lines = []
    writer.write(lines)
    return written + len(lines)


def seed_raw(client: InfluxClient, catalog: PointCatalog, start: int, end: int) -> int:
    lines = []
    for info in catalog:
        room = int(info.room.rsplit("-", 1)[1]) if info.room else 0
        for ts in range(start, end, 60):
            lines.append(f'{info.series} value={round(climate(ts, info.quantity, room), 2)!r},quality="good" '
                         f"{ts * 10**9}")
    for first in range(0, len(lines), 20_000):
        client.write(lines[first:first + 20_000])
    return len(lines)


def seed_state(state: Path, config: SiteConfig, start: int, end: int) -> tuple[int, int]:
    """A year of alarms with acknowledgements, shelves and safety events; one SMS per alarm; an audit trail."""
    rng = random.Random(11)
    events: list[AlarmEvent] = []
    ticket = 0

    def event(alarm: str, room: str, cause: str, priority: Priority, kind: EventKind, ts: float,
              state_: AlarmState, actor: str = "system", comment: str = "", until: float | None = None) -> None:
        events.append(AlarmEvent(seq=0, ts=ts, alarm=alarm, occurrence=ticket, kind=kind, state=state_,
                                 previous=AlarmState.NORMAL, priority=priority, cause=cause, room=room,
                                 building="main", site=config.site.id, source=alarm, actor=actor, comment=comment,
                                 until=until))

    causes = [("humidity_high", Priority.HIGH)] * 8 + [("temperature_low", Priority.HIGH)] * 4 + [
        ("door_held_open", Priority.MEDIUM), ("door_forced", Priority.CRITICAL), ("fire_trouble", Priority.HIGH),
        ("water_leak", Priority.CRITICAL), ("comm_loss", Priority.MEDIUM), ("calibration_due", Priority.LOW)]
    for room in config.rooms:
        for _ in range(150):
            ticket += 1
            cause, priority = rng.choice(causes)
            alarm = f"{room.id}:{cause}"
            raised = rng.uniform(start, end - DAY)
            event(alarm, room.id, cause, priority, EventKind.RAISED, raised, AlarmState.ACTIVE_UNACK)
            acked = raised + rng.expovariate(1 / 900)
            event(alarm, room.id, cause, priority, EventKind.ACKNOWLEDGED, acked, AlarmState.ACTIVE_ACK,
                  rng.choice(("li.wei", "wang", "zhang")), "seen")
            event(alarm, room.id, cause, priority, EventKind.CLEARED, acked + rng.uniform(60, 4 * HOUR),
                  AlarmState.NORMAL)
        for _ in range(4):
            at = rng.uniform(start, end - DAY)
            event(f"{room.id}:humidity_high", room.id, "humidity_high", Priority.HIGH, EventKind.SHELVED, at,
                  AlarmState.NORMAL, "zhang", "dehumidifier service", until=at + 8 * HOUR)
            event(f"{room.id}:humidity_high", room.id, "humidity_high", Priority.HIGH, EventKind.UNSHELVED,
                  at + 8 * HOUR, AlarmState.NORMAL, "system", "shelf expired")
    events.sort(key=lambda e: e.ts)
    journal = Journal(state / "alarms.db")
    for first in range(0, len(events), 5000):
        journal.commit(events[first:first + 5000], [])
    journal.close()
    store = NotifyStore(state / "notify.db")
    pages = [e for e in events if e.kind is EventKind.RAISED]
    store.dispatch([], [NewDelivery("li.wei", 0, "sms", "+8613800000001", Message(
        NoticeKind.PAGE, e.priority, e.cause, e.cause, e.cause, tickets=(e.occurrence,))) for e in pages], start)
    for row in store.due(end, limit=len(pages)):
        store.record(row, Delivery(True, False, "http 200"), start + row.id, status="sent", next_attempt=None)
    store.close()
    with AuditTrail(state / "audit.db") as trail:
        for n in range(300):
            trail.append("li.wei", "alarm.ack", f"#{n}", reason="seen")
    return len(events), len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF")
    args = parser.parse_args()
    began = time.perf_counter()
    end = int(time.time()) // 60 * 60
    start = end - args.days * DAY
    raw_from = floor_hour(end - DAY)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-reports-")))
        server = LocalInfluxd(folder / "influxd")
        stack.enter_context(server)  # stopped on the way out, whatever happens
        path = site_file(folder, server.url, args.rooms)
        config = load_config(path)
        catalog = PointCatalog.from_config(config)
        client = InfluxClient(config.storage.influxdb)
        client.create_database()
        (folder / "state").mkdir()
        started = time.perf_counter()
        rows = seed_rollups(client, catalog, floor_hour(start), raw_from, args.rooms)
        raw = seed_raw(client, catalog, raw_from, end)
        rolled = Rollup(client, catalog).backfill(raw_from, end)
        events, alarms = seed_state(folder / "state", config, start, end)
        print(f"seeded in {time.perf_counter() - started:.1f} s: {rows:,} hourly roll-up rows written directly "
              f"({args.days} days less the last, {args.rooms} rooms × 2 points), {raw:,} raw 1-minute readings "
              f"for the last day rolled up by Rollup.backfill ({rolled.rows:,} rows), {events:,} journal events "
              f"({alarms:,} alarms), {alarms:,} SMS, 300 audit rows")
        print(f"(the same period at 1-minute raw resolution would be {args.rooms * 2 * args.days * 1440:,} readings;"
              " the report reads only the roll-ups and the raw tail not yet rolled up)")

        started = time.perf_counter()
        report = report_from_files(config, path, start, end, generated=time.time())
        gathered = time.perf_counter() - started
        started = time.perf_counter()
        text = render(report, "json")
        table = render(report, "csv")
        rendered = time.perf_counter() - started
        sources = {r["temperature"]["source"] for r in report["rooms"]} | {
            r["humidity"]["source"] for r in report["rooms"]}
        lines = len(list(csv.reader(io.StringIO(table))))
        print(f"gather (InfluxDB queries, figures, alarm replay, audit verify): {gathered:.2f} s; "
              f"JSON {len(text) / 1e6:.1f} MB + CSV {lines:,} lines rendered in {rendered:.2f} s; "
              f"hourly rows from: {', '.join(sorted(sources))}")
        perf = report["alarm_performance"]
        first = report["key_figures"][0]
        print(f"report: {len(report['rooms'])} rooms, {len(report['alarm_history']['alarms']):,} alarms, "
              f"{perf['activations']:,} activations ({perf['avg_per_10min']:.3f} per 10 min, "
              f"peak {perf['peak_10min']}), {len(report['alarm_history']['shelved_or_out_of_service'])} shelves, "
              f"{len(report['fire_and_security']['events'])} fire/security events; audit chain "
              f"{'intact' if report['integrity']['audit']['ok'] else 'BROKEN'}")
        print(f"first room: RH within {first['humidity_share_within']:.4f}, completeness {first['completeness']:.4f}, "
              f"TWPI {first['twpi']}, resolution {first['resolution']['humidity_share_within']!r}")
        total = gathered + rendered
        if not args.no_pdf:
            try:
                from reports.pdf import report_pdf
            except ImportError:
                print("PDF: reports.pdf not available")
            else:
                with open_sources(config, path) as opened:
                    started = time.perf_counter()
                    pdf = report_pdf(report, opened.history, "en")
                    pdf_seconds = time.perf_counter() - started
                total += pdf_seconds
                print(f"PDF (charts re-read from InfluxDB): {len(pdf) / 1e6:.2f} MB, "
                      f"{pdf.count(b'/Type /Page') - pdf.count(b'/Type /Pages')} pages, {pdf_seconds:.2f} s")
        span = "one-year" if args.days == 365 else f"{args.days}-day"
        print(f"{span} report for {args.rooms} rooms: {total:.2f} s in all (target < 30 s)")
        json.loads(text)  # it is valid JSON
        client.close()
    print(f"benchmark total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
