"""A year of one room's history: how long the roll-up takes, and how fast the year comes back.

    .venv/bin/python bench/history.py                     # one year at 1-minute resolution, 20 runs per query
    .venv/bin/python bench/history.py --resolution 300    # 5-minute data, if seeding a year takes too long

Starts a private influxd in a temporary folder, seeds one room (a temperature and a humidity point; a year at
1 minute is 1,051,200 readings, 0.3 % `bad`, 0.5 % `uncertain`) in batches of 5,000 lines ending now, then:
(1) the year at agg=1h with no roll-up at all (raw GROUP BY: the fallback's cost), (2) `Rollup.backfill` over
the year, (3) p50/p95 of `HistoryQuery.room(..., agg="1h")` and `agg="1d"` over the year. Target: p50 ≤ 2 s.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.history import HistoryQuery  # noqa: E402
from stackwatch.catalog import PointCatalog, PointInfo  # noqa: E402
from stackwatch.config.services import InfluxConfig  # noqa: E402
from stackwatch.localservers import LocalInfluxd  # noqa: E402
from stackwatch.store.influx import InfluxClient  # noqa: E402
from stackwatch.store.lineprotocol import series_key  # noqa: E402
from stackwatch.store.rollup import Rollup, rolled_until  # noqa: E402

ROOM = "stack-a1"
YEAR = 365 * 86400


def catalog() -> PointCatalog:
    infos = []
    for point, quantity, unit in (("t", "temperature", "°C"), ("rh", "humidity", "%")):
        tags = {"site": "bench", "building": "b1", "room": ROOM, "device": "th1", "point": point}
        infos.append(PointInfo(key=f"th1.{point}", device="th1", point=point, quantity=quantity, unit=unit,
                               room=ROOM, building="b1", is_state=False, expected_interval=60.0,
                               series=series_key(quantity, tags)))
    return PointCatalog("bench", infos)


def seed(client: InfluxClient, points: PointCatalog, start: int, end: int, resolution: int) -> int:
    """A seasonal and daily swing with noise; written as it is built, 5,000 lines a request."""
    rng = random.Random(5)
    t_key, rh_key = points["th1.t"].series, points["th1.rh"].series
    batch: list[str] = []
    written = 0
    for ts in range(start, end, resolution):
        season = math.sin(2 * math.pi * (ts % YEAR) / YEAR)
        day = math.sin(2 * math.pi * (ts % 86400) / 86400)
        ns = ts * 10**9
        for key, value in ((t_key, 18 + 3 * season + 0.8 * day), (rh_key, 50 + 6 * season - 2 * day)):
            draw = rng.random()
            quality = "bad" if draw < 0.003 else "uncertain" if draw < 0.008 else "good"
            value = 99.0 if quality == "bad" else round(value + rng.gauss(0, 0.1), 2)
            batch.append(f'{key} value={value!r},quality="{quality}" {ns}')
        if len(batch) >= 5000:
            client.write(batch)
            written += len(batch)
            batch = []
    client.write(batch)
    return written + len(batch)


def timed(call: Callable[[], object], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=60, help="seconds between readings (default 60)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=20, help="runs per query (default 20)")
    args = parser.parse_args()
    began = time.perf_counter()
    points = catalog()
    end = int(time.time()) // 60 * 60
    start = end - args.days * 86400
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder, LocalInfluxd(Path(folder)) as server:
        client = InfluxClient(InfluxConfig(url=server.url, database="bench", timeout=300.0))
        client.create_database()
        started = time.perf_counter()
        count = seed(client, points, start, end, args.resolution)
        seeding = time.perf_counter() - started
        print(f"seeded {count:,} readings ({args.days} days at {args.resolution} s, 2 points) in {seeding:.1f} s "
              f"= {count / seeding:,.0f} readings/s")

        history = HistoryQuery(client, points, timezone="Asia/Shanghai")

        def year(agg: str) -> Callable[[], object]:
            return lambda: history.room(ROOM, "temperature", start, end, agg)  # type: ignore[arg-type]

        raw_year = timed(year("1h"), 3)
        print(f"year at agg=1h with no roll-up (raw GROUP BY time(1h)): p50 {statistics.median(raw_year):.3f} s "
              f"(3 runs)")

        rollup = Rollup(client, points)
        started = time.perf_counter()
        report = rollup.backfill(start, end)
        print(f"roll-up backfill of the year: {report.rows:,} hourly rows, {report.hours} hours, "
              f"{time.perf_counter() - started:.1f} s; rolled up until "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(min(rolled_until(client).values())))} UTC")

        for agg in ("1h", "1d"):
            (series,) = history.room(ROOM, "temperature", start, end, agg)  # type: ignore[arg-type]
            runs = timed(year(agg), args.runs)
            print(f"room year agg={agg}: {len(series.rows):,} rows ({series.source}); {args.runs} runs: "
                  f"p50 {statistics.median(runs) * 1000:.1f} ms, p95 {p95(runs) * 1000:.1f} ms, "
                  f"max {max(runs) * 1000:.1f} ms  (target p50 ≤ 2000 ms)")
        both = timed(lambda: [history.room(ROOM, q, start, end, "1h") for q in ("temperature", "humidity")],
                     args.runs)
        print(f"room year agg=1h, temperature + humidity: p50 {statistics.median(both) * 1000:.1f} ms")
        client.close()
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
