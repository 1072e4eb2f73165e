"""Alarm engine benchmark: rule evaluations per second, and reading → alarm journaled latency under load.

    .venv/bin/python bench/alarms.py [--points 10000] [--seconds 30] [--flips 20]

(1) The engine alone: readings for every point, in range, through `AlarmEngine.process`; prints evaluations/s.
(2) The service's path: the same readings handed to `AlarmRuntime` (its thread, queue and SQLite journal) at
    1 reading/s per point, in 100 batches a second as the collectors deliver them; every second `--flips`
    points cross a limit (on-delay 0), so alarms are raised and returned all along. Latency is measured from the
    hand-over of a batch to the journal commit of the events it caused: p50/p99/max.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alarms.engine import AlarmEngine  # noqa: E402
from alarms.journal import Journal  # noqa: E402
from alarms.ruleset import build_ruleset  # noqa: E402
from alarms.runtime import AlarmRuntime  # noqa: E402
from stackwatch.catalog import PointCatalog  # noqa: E402
from stackwatch.clock import SystemClock  # noqa: E402
from stackwatch.config import SiteConfig  # noqa: E402
from stackwatch.readings import Reading  # noqa: E402


def site(points: int) -> SiteConfig:
    """`points / 2` T/RH transmitters in 100 paper stacks behind 50 gateways, limit alarms without delay."""
    devices: list[dict[str, Any]] = []
    for n in range(points // 2):
        devices.append({
            "id": f"th{n}", "protocol": "modbus", "gateway": f"gw{n % 50}", "unit": n // 50 + 1,
            "room": f"room{n % 100}", "poll_interval": 1,
            "points": [{"id": "t", "quantity": "temperature", "table": "input", "address": 1},
                       {"id": "rh", "quantity": "humidity", "table": "input", "address": 2}]})
    return SiteConfig.model_validate({
        "site": {"id": "bench"},
        "buildings": [{"id": "b"}],
        "rooms": [{"id": f"room{n}", "building": "b", "profile": "paper"} for n in range(100)],
        "gateways": [{"type": "modbus-tcp", "id": f"gw{n}", "host": "127.0.0.1"} for n in range(50)],
        "devices": devices,
        "alarms": {"defaults": {"limit_on_delay": 0, "limit_off_delay": 0}},
    })


def readings(catalog: PointCatalog, now: float, high: set[str]) -> list[Reading]:
    ts = round(now * 1e9)
    out = []
    for info in catalog:
        if info.quantity == "temperature":
            out.append(Reading(info.key, ts, 19.0))
        else:
            out.append(Reading(info.key, ts, 65.0 if info.key in high else 52.0))
    return out


def engine_alone(config: SiteConfig, catalog: PointCatalog, folder: Path, rounds: int) -> None:
    now = time.time()
    engine = AlarmEngine(build_ruleset(config, catalog, now), Journal(folder / "alone.db"), config.alarms, now)
    batch = readings(catalog, now, set())
    engine.process(batch, now)  # warm-up
    engine.evaluations = 0
    started = time.perf_counter()
    for n in range(rounds):
        t = now + n + 1
        engine.process([r._replace(ts_ns=round(t * 1e9)) for r in batch], t)
    elapsed = time.perf_counter() - started
    print(f"engine alone: {len(catalog)} points, {len(engine.rules.rules)} rules, {rounds} rounds: "
          f"{engine.evaluations:,} evaluations in {elapsed:.2f} s = {engine.evaluations / elapsed:,.0f} evaluations/s, "
          f"{len(batch) * rounds / elapsed:,.0f} readings/s")


def under_load(config: SiteConfig, catalog: PointCatalog, folder: Path, seconds: float, flips: int) -> None:
    clock = SystemClock()
    runtime = AlarmRuntime(config, catalog, folder, clock)
    runtime.latencies = []
    runtime.start()
    humidity = [info.key for info in catalog if info.quantity == "humidity"]
    per_batch = 100
    stop = time.monotonic() + seconds
    sent = 0
    second = 0
    while time.monotonic() < stop:
        begin = time.monotonic()
        stride = max(1, len(humidity) // flips)  # spread over the second's batches; a new set every second
        high = {humidity[(second + i * stride) % len(humidity)] for i in range(flips)}
        batch = readings(catalog, clock.now(), high)
        size = len(batch) // per_batch
        for part in range(per_batch):
            runtime(batch[part * size:(part + 1) * size])
            sent += size
            pause = begin + (part + 1) / per_batch - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        second += 1
    lag_start = time.monotonic()
    while not runtime._queue.empty() and time.monotonic() - lag_start < 30:
        time.sleep(0.05)
    runtime.stop()
    latencies = sorted(runtime.latencies)
    journal = Journal(folder / "alarms.db", readonly=True)
    events = journal.count_events()
    journal.close()
    if not latencies:
        print("no alarm events were caused: nothing to measure")
        return
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"under load: {len(catalog)} points at 1 reading/s for {seconds:g} s ({sent:,} readings, "
          f"{sent / seconds:,.0f}/s), {flips} limit crossings a second → {events:,} journaled events")
    print(f"  latency reading handed over → alarm journaled, over {len(latencies):,} batches that caused events: "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
          f"(target p99 ≤ 100 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--flips", type=int, default=20, help="limit crossings per second")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of every point for the engine-alone figure")
    args = parser.parse_args()
    config = site(args.points)
    catalog = PointCatalog.from_config(config)
    with tempfile.TemporaryDirectory() as folder:
        engine_alone(config, catalog, Path(folder), args.rounds)
        under_load(config, catalog, Path(folder), args.seconds, args.flips)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
