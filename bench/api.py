"""API benchmark: latest-state requests per second and latency with 10,000 points, over real HTTP.

    .venv/bin/python bench/api.py [--points 10000] [--seconds 15] [--concurrency 16]

The server is the real app (uvicorn, one process, as `stackwatch run` serves it) with 10,000 points in the live
state, a real alarm engine over them (70,000 alarms, a few active) and API-key authentication (argon2 users
store, key checked per request). The load comes from a second process: an asyncio httpx client with
`--concurrency` keep-alive connections, asking for random points (`/api/v1/points/{key}`) and rooms
(`/api/v1/rooms/{id}`, which adds the alarm state). Both share the machine's 2 cores.
Target: ≥ 1,000 requests/s for latest state. The year-of-history figure comes from bench/history.py.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(points: int, port: int, folder: str, ready: Any) -> None:
    import uvicorn

    from alarms.runtime import AlarmRuntime
    from api.app import create_app
    from api.auth import UserStore, make_auth
    from api.services import ApiServices
    from bench.alarms import readings, site
    from stackwatch.catalog import PointCatalog
    from stackwatch.clock import SystemClock
    from stackwatch.config.api import ApiConfig
    from stackwatch.livestate import LiveState

    config = site(points)
    catalog = PointCatalog.from_config(config)
    clock = SystemClock()
    live = LiveState()
    humidity = [info.key for info in catalog if info.quantity == "humidity"]
    batch = readings(catalog, clock.now(), set(humidity[:20]))  # twenty rooms' RH above the limit: active alarms
    live(batch)
    runtime = AlarmRuntime(config, catalog, Path(folder), clock)
    runtime.engine.process(batch, clock.now())
    runtime.start()
    api_config = ApiConfig(port=port)
    users = UserStore(Path(folder) / "users.db", config=api_config)
    users.add_user("bench", "viewer", "a-long-enough-password")
    key = users.create_api_key("bench", "benchmark", "bench")
    (Path(folder) / "key").write_text(key)
    services = ApiServices(config=config, catalog=catalog, live=live, now=clock.now, alarms=runtime)
    auth = make_auth(users, api_config)
    app = create_app(api_config, services, auth.require, extra_routers=(auth.router,))
    ready.set()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def load(port: int, key: str, keys: list[str], rooms: list[str], seconds: float, concurrency: int,
               room_share: float) -> tuple[list[float], int, int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key},
                                     timeout=10) as client:
            while time.perf_counter() < stop:
                path = (f"/api/v1/rooms/{rng.choice(rooms)}" if rng.random() < room_share
                        else f"/api/v1/points/{rng.choice(keys)}")
                started = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies, errors, len(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--room-share", type=float, default=0.2, help="share of requests for a whole room")
    args = parser.parse_args()
    from bench.alarms import site
    from stackwatch.catalog import PointCatalog
    from stackwatch.localservers import free_port

    catalog = PointCatalog.from_config(site(args.points))
    keys = [info.key for info in catalog]
    rooms = sorted({info.room for info in catalog})
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=serve, args=(args.points, port, folder, ready), daemon=True)
        server.start()
        ready.wait(120)
        time.sleep(1.0)
        key = (Path(folder) / "key").read_text()
        asyncio.run(load(port, key, keys, rooms, 2.0, args.concurrency, args.room_share))  # warm-up
        latencies, errors, count = asyncio.run(load(port, key, keys, rooms, args.seconds, args.concurrency,
                                                    args.room_share))
        server.terminate()
        server.join(10)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"latest state over HTTP, {args.points:,} points, {args.concurrency} connections, "
          f"{args.room_share:.0%} room requests, {args.seconds:g} s: {count / args.seconds:,.0f} requests/s, "
          f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, {errors} errors "
          "(target ≥ 1,000 requests/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
