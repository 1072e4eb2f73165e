"""The service's memory over a simulated day (issue #2 (c) beyond the burst): what the in-memory parts keep.

    .venv/bin/python bench/memory_day.py [--hours 24] [--interval 60] [--noise 0.05]

bench/ingest.py measures the peak of a 6-second burst. Some state fills only with time: the alarm rules' rate
and 24-hour fluctuation windows, the live values, the alarm statuses. This builds the service of the 10,002-point
site of bench/ingest.py (its real `Service`, with its injected clock), then feeds every point one reading per
`--interval` simulated seconds for `--hours`: temperature and humidity follow a daily cycle with Gaussian noise
(`--noise`, in °C and % RH: a float transmitter, not quantised to 0.1, the worst case for the windows), the
other points steady values. The readings go where the hub hands them in `stackwatch run`, except the spool: the
alarm engine (with its journal and its MQTT publisher, on a local mosquitto), the live state and the dashboard
feed. Prints the RSS (VmRSS) every 3 simulated
hours and the pairs the rules' windows hold.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alarms.rules import FluctuationRule, RateRule  # noqa: E402
from bench.ingest import mqtt_site, sqlite_mb, status_mb  # noqa: E402
from stackwatch.config import parse_config  # noqa: E402
from stackwatch.localservers import LocalMosquitto  # noqa: E402
from stackwatch.readings import Quality, Reading  # noqa: E402

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class SteppedClock:
    """The service's clock, moved by the feeding loop (nothing here sleeps on it)."""

    def __init__(self, start: float) -> None:
        self.at = start

    def now(self) -> float:
        return self.at

    def now_ns(self) -> int:
        return round(self.at * 1e9)

    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("nothing sleeps on the simulated day's clock")


def drain(service: Any) -> None:
    """Let the alarm publisher catch up: the simulated day raises hours of events in seconds, which no broker
    link sees in a real day; what it holds meanwhile shows in the peak, not in the figure after the drain."""
    publisher = service.alarm_publisher
    deadline = time.monotonic() + 60
    while publisher is not None and time.monotonic() < deadline:
        stats = publisher.stats()
        if not stats["unacknowledged"] and not stats["states_pending"]:
            return
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--interval", type=float, default=60.0, help="simulated seconds between readings")
    parser.add_argument("--noise", type=float, default=0.05, help="standard deviation of T (°C) and RH (%%) noise")
    parser.add_argument("--devices", type=int, default=1667)
    parser.add_argument("--t-swing", type=float, default=1.5, help="daily temperature swing, °C")
    parser.add_argument("--rh-swing", type=float, default=4.0,
                        help="daily RH swing, %%; above the paper profile's 5 %% every RH point is in alarm at once")
    args = parser.parse_args()
    from stackwatch.heap import release_free_memory, settle_heap, tune_allocator
    from stackwatch.service import Service

    tune_allocator()
    with tempfile.TemporaryDirectory(prefix="stackwatch-memday-") as folder:
        work = Path(folder)
        mosquitto = LocalMosquitto(work / "mosquitto")  # the alarm publisher's broker: events leave the queue
        mosquitto.start()
        site = mqtt_site(args.devices, mosquitto.port, "http://127.0.0.1:9", work / "state", 16)
        config_path = work / "site.yaml"
        config_path.write_text(yaml.safe_dump(site))
        clock = SteppedClock(T0)
        service = Service(parse_config(config_path.read_text()), config_path, clock)
        if service.alarm_publisher is not None:
            service.alarm_publisher.start()
        settle_heap()
        points = [(info.key, info.quantity) for info in service.catalog]
        engine = service.alarms.engine
        listeners = (service.live, service.feed.readings)
        print(f"stackwatch memory over a simulated day — {time.strftime('%Y-%m-%d %H:%M')} — {len(points):,} "
              f"points, a reading each {args.interval:g} s, noise {args.noise:g}, daily swing {args.t_swing:g} °C and "
              f"{args.rh_swing:g} % RH")
        print(f"  service built: {status_mb('VmRSS'):.0f} MB")
        tracing = None
        if os.environ.get("BENCH_TRACEMALLOC"):  # what each 3 hours add, by line
            tracemalloc.start()
            tracing = tracemalloc.take_snapshot()
        random.seed(1)
        steps = int(args.hours * 3600 / args.interval)
        report_every = int(3 * 3600 / args.interval)
        started = time.perf_counter()
        for step in range(1, steps + 1):
            now = T0 + step * args.interval
            clock.at = now
            day = math.sin(2 * math.pi * (now - T0) / 86400)
            ts_ns = int(now * 1e9)
            batch = []
            for index, (key, quantity) in enumerate(points):
                if quantity == "temperature":
                    value = 19.0 + args.t_swing / 2 * day + (index % 7) * 0.1 + random.gauss(0, args.noise)
                elif quantity == "humidity":
                    value = 50.0 - args.rh_swing / 2 * day + (index % 5) * 0.3 + random.gauss(0, args.noise)
                else:
                    value = 97.0
                batch.append(Reading(key, ts_ns + index, value, Quality.GOOD))
            for start in range(0, len(batch), 2_000):  # as the collectors hand them over
                chunk = batch[start:start + 2_000]
                engine.process(chunk, now)
                for listener in listeners:
                    listener(chunk)
            engine.tick(now)
            if step % report_every == 0 or step == steps:
                drain(service)
                release_free_memory()  # as the service's status task does every minute
                pairs = sum(len(rule.samples) if isinstance(rule, RateRule) else len(rule.maxima) + len(rule.minima)
                            for rule in engine.rules.rules.values() if isinstance(rule, RateRule | FluctuationRule))
                print(f"  after {(now - T0) / 3600:4.1f} h: {status_mb('VmRSS'):.0f} MB "
                      f"(peak {status_mb('VmHWM'):.0f} MB); window pairs held {pairs:,}; "
                      f"SQLite {sqlite_mb()[0]:.1f} MB; {len(engine.not_normal()):,} alarms not normal; "
                      f"{time.perf_counter() - started:.0f} s so far")
                if tracing is not None:  # what these 3 hours added
                    snapshot = tracemalloc.take_snapshot()
                    for diff in snapshot.compare_to(tracing, "lineno")[:6]:
                        print(f"    {diff}")
                    tracing = snapshot

        service.alarms.stop()
        if service.alarm_publisher is not None:
            service.alarm_publisher.stop()
        service.spool.close()
        mosquitto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
