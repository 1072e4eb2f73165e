"""InfluxDB's own line-protocol write rate, and ours from the spool, measured in the same run.

The raw rate is the ceiling: pre-built batches of 5,000 lines over one
keep-alive connection, nothing else. The writer rate is the durable path's
drain: spool rows → `InfluxWriter` → InfluxDB, including SQLite reads and
deletes. Both use the same lines (catalog-shaped: five tags, `value` and
`quality`) into fresh databases, so the gap is our overhead.

    python bench/influx_raw.py                 # starts a private influxd
    python bench/influx_raw.py --url http://127.0.0.1:8086 --points 500000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stackwatch.config.services import InfluxConfig
from stackwatch.localservers import LocalInfluxd
from stackwatch.store.influx import InfluxClient, quote_ident
from stackwatch.store.lineprotocol import series_key
from stackwatch.store.spool import Spool
from stackwatch.store.writer import InfluxWriter

START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Rate:
    points: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return f"{self.per_second:>10,.0f} points/s  ({self.points:,} in {self.seconds:.2f} s)"


def make_lines(points: int, series: int = 200, start_ns: int = START_NS, step_ns: int = 10**9) -> list[str]:
    """Lines shaped like `PointCatalog.encode` output; one timestamp per series per step, so none overwrite."""
    keys = [series_key("temperature", {"site": "bench", "building": "b1", "room": f"room{i % 20}",
                                       "device": f"dev{i}", "point": "t"}) for i in range(series)]
    return [f'{keys[i % series]} value={18.0 + (i % 97) / 10!r},quality="good" {start_ns + (i // series) * step_ns}'
            for i in range(points)]


def _fresh_client(url: str, database: str, **auth: str) -> InfluxClient:
    client = InfluxClient(InfluxConfig(url=url, database=database, timeout=60.0, **auth))
    client.query(f"DROP DATABASE {quote_ident(database)}", epoch=None)
    client.create_database()
    return client


def raw_write_rate(url: str, database: str = "bench_raw", *, points: int = 200_000, batch: int = 5000,
                   lines: list[str] | None = None, **auth: str) -> Rate:
    """InfluxDB's ingest ceiling: bodies built beforehand, written back to back over one keep-alive connection.

    `auth` takes `username`/`password` or `token` as `InfluxConfig` does. The database is dropped first.
    """
    lines = lines if lines is not None else make_lines(points)
    client = _fresh_client(url, database, **auth)
    bodies = ["\n".join(lines[i:i + batch]).encode() for i in range(0, len(lines), batch)]
    client.write_body(bodies[0])  # warm up the connection and the new database's first shard
    started = time.perf_counter()
    for body in bodies:
        client.write_body(body)
    seconds = time.perf_counter() - started
    client.close()
    return Rate(len(lines), seconds)


@dataclass(frozen=True)
class WriterRates:
    append: Rate  # lines into the spool, in rows of `row_lines`, one commit each
    drain: Rate  # spool → InfluxDB by the writer


async def writer_rate(url: str, spool_path: Path, database: str = "bench_writer", *, points: int = 200_000,
                      batch_lines: int = 5000, row_lines: int = 100, lines: list[str] | None = None,
                      **auth: str) -> WriterRates:
    """Fill a spool as collectors would (one row per poll of `row_lines`), then time the writer emptying it."""
    lines = lines if lines is not None else make_lines(points)
    client = _fresh_client(url, database, **auth)
    spool = Spool(spool_path)
    started = time.perf_counter()
    for i in range(0, len(lines), row_lines):
        spool.append(lines[i:i + row_lines])
    append = Rate(len(lines), time.perf_counter() - started)
    writer = InfluxWriter(spool, client, InfluxConfig(url=url, database=database, batch_lines=batch_lines))
    started = time.perf_counter()
    await writer.drain()
    drain = Rate(writer.lines_written, time.perf_counter() - started)
    assert spool.depth() == 0, "the writer left lines behind"
    spool.close()
    client.close()
    return WriterRates(append, drain)


def count_points(url: str, database: str) -> int:
    series = InfluxClient(InfluxConfig(url=url, database=database)).query("SELECT count(value) FROM temperature")
    return int(series[0].values[0][1]) if series else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an InfluxDB to use (default: start a private influxd)")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-influx-") as folder:
        server = None
        url = args.url
        if url is None:
            server = LocalInfluxd(Path(folder) / "influxd")
            server.start()
            url = server.url
        try:
            lines = make_lines(args.points)
            raw = raw_write_rate(url, points=args.points, batch=args.batch, lines=lines)
            ours = asyncio.run(writer_rate(url, Path(folder) / "spool.db", points=args.points,
                                           batch_lines=args.batch, lines=lines))
            stored = (count_points(url, "bench_raw"), count_points(url, "bench_writer"))
        finally:
            if server is not None:
                server.stop()
    print(f"InfluxDB raw write, batches of {args.batch}: {raw}")
    print(f"spool append, rows of 100 lines:       {ours.append}")
    share = ours.drain.per_second / raw.per_second
    print(f"writer drain, spool -> InfluxDB:        {ours.drain}  = {share:.0%} of raw")
    print(f"points stored: raw {stored[0]:,}, writer {stored[1]:,} (expected {args.points:,} each)")
    return 0 if stored == (args.points, args.points) else 1


if __name__ == "__main__":
    raise SystemExit(main())
