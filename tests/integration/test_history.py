"""History and the hourly roll-up against a real influxd 1.6: values checked against Python's own arithmetic.

Three days of 30-second readings for three points, written with the catalog's own encoder, with `bad`
readings carrying a wild value (99.0) that must never reach an aggregate, `uncertain` ones that must,
readings with no value at all (`comm_failure`), and a two-hour gap in one point.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from api.history import HistoryQuery
from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.clock import ManualClock
from stackwatch.config.services import InfluxConfig
from stackwatch.localservers import LocalInfluxd
from stackwatch.readings import Quality, Reading
from stackwatch.store.influx import InfluxClient, quote_ident
from stackwatch.store.lineprotocol import series_key
from stackwatch.store.rollup import Rollup, rolled_until, schedule

pytestmark = pytest.mark.integration

ZONE = "Asia/Shanghai"
BASE = int(dt.datetime.fromisoformat("2026-03-01T00:00:00+08:00").timestamp())  # a local midnight
DAYS = 3
STEP = 30
END = BASE + DAYS * 86400
GAP = (BASE + 30 * 3600, BASE + 32 * 3600)  # th1.t sends nothing here
OFFSETS = {"th1.t": 18.0, "th2.t": 21.0, "th1.rh": 50.0, "th9.t": 15.0}
Stats = tuple[float, float, float, int]


def info(device: str, point: str, quantity: str, room: str, unit: str, is_state: bool = False) -> PointInfo:
    measurement = "state" if is_state else quantity
    tags = {"site": "s1", "building": "b1", "room": room, "device": device, "point": point}
    if is_state:
        tags["quantity"] = quantity
    return PointInfo(key=f"{device}.{point}", device=device, point=point, quantity=quantity, unit=unit, room=room,
                     building="b1", is_state=is_state, expected_interval=STEP, series=series_key(measurement, tags))


CATALOG = PointCatalog("s1", [
    info("th1", "t", "temperature", "r1", "°C"),
    info("th2", "t", "temperature", "r1", "°C"),
    info("th3", "t", "temperature", "r1", "°C"),  # never reports
    info("th1", "rh", "humidity", "r1", "%"),
    info("th9", "t", "temperature", "r2", "°C"),  # another room: must not leak into r1
    info("door1", "open", "door_open", "r1", "", is_state=True),
])


def reading(key: str, i: int) -> Reading:
    ts = BASE + i * STEP
    value = OFFSETS[key] + ((i * 7) % 101) / 20
    if i % 47 == 5:
        return Reading(key, ts * 10**9, 99.0, Quality.BAD)
    if i % 53 == 3:
        return Reading(key, ts * 10**9, value, Quality.UNCERTAIN)
    if i % 61 == 11:
        return Reading(key, ts * 10**9, None, Quality.COMM_FAILURE)
    return Reading(key, ts * 10**9, value)


def dataset(until: int = END) -> list[Reading]:
    out = []
    for i in range((until - BASE) // STEP):
        ts = BASE + i * STEP
        for key in ("th1.t", "th2.t", "th1.rh"):
            if key == "th1.t" and GAP[0] <= ts < GAP[1]:
                continue
            out.append(reading(key, i))
        if i % 20 == 0:
            out.append(reading("th9.t", i))
    return out


READINGS = dataset()


def usable(key: str, start: float = BASE, end: float = END) -> list[tuple[int, float]]:
    return [(r.ts_ns // 10**9, float(r.value)) for r in READINGS
            if r.point == key and r.quality.usable and isinstance(r.value, float) and start <= r.ts_ns / 1e9 < end]


def expected(key: str, bucket: Callable[[int], int], start: float = BASE, end: float = END) -> dict[int, Stats]:
    groups: dict[int, list[float]] = {}
    for ts, value in usable(key, start, end):
        groups.setdefault(bucket(ts), []).append(value)
    return {b: (sum(v) / len(v), min(v), max(v), len(v)) for b, v in sorted(groups.items())}


def hour(ts: int) -> int:
    return ts - ts % 3600


def minute(ts: int) -> int:
    return ts - ts % 60


def local_day(ts: int) -> int:
    day = dt.datetime.fromtimestamp(ts, ZoneInfo(ZONE)).date()
    return int(dt.datetime.combine(day, dt.time(), ZoneInfo(ZONE)).timestamp())


def as_dict(rows: list[tuple[float, float | None, float | None, float | None, int]]) -> dict[int, Stats]:
    return {int(ts): (mean, low, high, count) for ts, mean, low, high, count in rows}


def assert_same(got: dict[int, Stats], want: dict[int, Stats]) -> None:
    assert list(got) == list(want)
    for ts, (mean, low, high, count) in want.items():
        g = got[ts]
        assert g[3] == count, ts
        assert g[0] == pytest.approx(mean, rel=1e-12, abs=1e-9), ts
        assert (g[1], g[2]) == (pytest.approx(low), pytest.approx(high)), ts


@pytest.fixture
def client(influxd: LocalInfluxd) -> Iterator[InfluxClient]:
    c = InfluxClient(InfluxConfig(url=influxd.url, database="archive", timeout=30))
    c.create_database()
    lines = [CATALOG.encode(r) for r in READINGS]
    for n in range(0, len(lines), 5000):
        c.write(lines[n:n + 5000])
    yield c
    c.close()


def history(client: InfluxClient) -> HistoryQuery:
    return HistoryQuery(client, CATALOG, timezone=ZONE)


def rollup(client: InfluxClient, now: float, **options: Any) -> Rollup:
    return Rollup(client, CATALOG, ManualClock(now), **options)


# -- raw and 1m -----------------------------------------------------------------------------------

def test_raw_rows_are_the_readings_with_their_quality(client: InfluxClient) -> None:
    start, end = BASE + 300 * STEP, BASE + 340 * STEP  # i=334 bad, 316 comm_failure, 321 uncertain
    series = history(client).point("th1.t", start, end, "raw")
    want = [r for r in READINGS if r.point == "th1.t" and start <= r.ts_ns / 1e9 < end]
    assert (series.agg, series.source, series.unit) == ("raw", "raw", "°C")
    assert [row[0] for row in series.rows] == [r.ts_ns / 1e9 for r in want]
    assert [row[1] for row in series.rows] == [r.value for r in want]
    assert [row[4] for row in series.rows] == [0 if r.value is None else 1 for r in want]
    assert series.quality == [r.quality.value for r in want]
    assert {"bad", "uncertain", "comm_failure"} <= set(series.quality)


def test_raw_refuses_more_rows_than_the_limit(client: InfluxClient) -> None:
    with pytest.raises(ValueError, match="aggregate"):
        history(client).point("th1.t", BASE, BASE + 86400, "raw", limit=1000)
    assert len(history(client).point("th1.t", BASE, BASE + 1000 * STEP, "raw", limit=1000).rows) == 1000


def test_1m_means_exclude_bad_readings(client: InfluxClient) -> None:
    start, end = BASE + 3 * 3600, BASE + 5 * 3600
    series = history(client).point("th2.t", start, end, "1m")
    want = expected("th2.t", minute, start, end)
    assert_same(as_dict(series.rows), want)
    assert any(count == 1 for *_, count in want.values())  # minutes with a bad or missing reading
    assert max(row[3] for row in series.rows if row[3] is not None) < 99.0


# -- roll-up --------------------------------------------------------------------------------------

def test_1h_from_the_rollup_equals_python(client: InfluxClient) -> None:
    report = rollup(client, END + 3600).run()
    assert report.hours == {"humidity": 72, "temperature": 72}
    assert not report.behind
    assert report.done_until == {"humidity": END, "temperature": END}
    query = history(client)
    for key in ("th1.t", "th2.t", "th1.rh"):
        series = query.point(key, BASE, END, "1h")
        assert series.source == "rollup 1h"
        assert_same(as_dict(series.rows), expected(key, hour))
    gap = as_dict(query.point("th1.t", BASE, END, "1h").rows)
    assert hour(GAP[0]) not in gap and hour(GAP[1]) in gap
    stored = client.query('SELECT max("max") FROM "archive"."forever"."temperature_1h"')
    assert stored[0].values[0][1] < 99.0
    tags = client.query('SHOW TAG KEYS FROM "archive"."forever"."temperature_1h"')
    assert {row[0] for row in tags[0].values} == {"building", "device", "point", "room", "site"}


def test_1d_buckets_are_local_days(client: InfluxClient) -> None:
    rollup(client, END + 3600).run()
    series = history(client).room("r1", "temperature", BASE + 3600, END - 3600, "1d")  # widened to whole days
    assert [s.point for s in series] == ["th1.t", "th2.t", "th3.t"]
    for s in series[:2]:
        got = as_dict(s.rows)
        assert list(got) == [BASE, BASE + 86400, BASE + 2 * 86400]  # local midnights, 16:00 UTC
        assert all(dt.datetime.fromtimestamp(ts, ZoneInfo(ZONE)).hour == 0 for ts in got)
        assert_same(got, expected(s.point, local_day))
    assert series[2].rows == []


def test_1d_is_weighted_by_count_not_a_mean_of_means(client: InfluxClient) -> None:
    """An hour with a single reading weighs one reading, not one hour."""
    late = BASE + 86400 + 7200
    client.write([f'{CATALOG["th3.t"].series} value=10.0,quality="good" {late * 10**9}'] +
                 [f'{CATALOG["th3.t"].series} value=40.0,quality="good" {(late + 3600 + n) * 10**9}'
                  for n in range(3)])
    rollup(client, END + 3600).run()
    (row,) = history(client).point("th3.t", BASE, END, "1d").rows
    assert row[1] == pytest.approx((10 + 3 * 40) / 4)
    assert row[4] == 4


def test_the_hour_not_yet_rolled_up_is_still_served(client: InfluxClient) -> None:
    now = BASE + 60 * 3600 + 600  # roll-up done up to hour 60; the rest (data up to hour 72) only raw
    assert rollup(client, now).run().done_until["temperature"] == BASE + 60 * 3600
    query = history(client)
    series = query.point("th2.t", BASE, END, "1h")
    assert series.source == "rollup 1h + raw"
    assert_same(as_dict(series.rows), expected("th2.t", hour))
    day = query.point("th2.t", BASE, END, "1d")  # the third day: 12 h rolled up, 12 h raw, one bucket
    assert_same(as_dict(day.rows), expected("th2.t", local_day))
    before = query.point("th2.t", BASE, BASE + 6 * 3600, "1h")
    assert before.source == "rollup 1h"


def test_without_any_rollup_everything_comes_from_raw(client: InfluxClient) -> None:
    series = history(client).point("th1.rh", BASE, END, "1d")
    assert series.source == "raw"
    assert_same(as_dict(series.rows), expected("th1.rh", local_day))


def test_rollup_rows_are_what_is_read(client: InfluxClient) -> None:
    """A reading written after its hour was rolled up shows only after a backfill of that hour."""
    rollup(client, END + 3600).run()
    late = BASE + 5 * 3600 + 17
    client.write([f'{CATALOG["th2.t"].series} value=80.0,quality="good" {late * 10**9}'])
    query = history(client)
    assert as_dict(query.point("th2.t", BASE, END, "1h").rows)[hour(late)][2] < 80.0
    report = rollup(client, END + 3600).backfill(late, late + 1)
    assert report.hours == {"humidity": 1, "temperature": 1}
    assert report.done_until["temperature"] == END  # a backfill behind the frontier does not move it back
    assert as_dict(query.point("th2.t", BASE, END, "1h").rows)[hour(late)][2] == 80.0


def test_a_new_instance_continues_where_the_last_stopped(client: InfluxClient, influxd: LocalInfluxd) -> None:
    now = END + 3600
    first = rollup(client, now, max_span=86400).run()
    assert first.behind and first.done_until["temperature"] == BASE + 86400
    influxd.stop()  # the service and the database restart; the state is in the database
    influxd.start()
    assert rolled_until(client) == {"humidity": BASE + 86400, "temperature": BASE + 86400}
    second = rollup(client, now, max_span=86400).run()
    assert second.hours == {"humidity": 24, "temperature": 24}
    assert second.done_until["temperature"] == BASE + 2 * 86400
    third = rollup(client, now, max_span=86400).run()
    assert not third.behind and third.done_until["temperature"] == END
    assert rollup(client, now, max_span=86400).run().rows == 0  # up to date: nothing redone
    assert_same(as_dict(history(client).point("th1.t", BASE, END, "1h").rows), expected("th1.t", hour))
    assert history(client).point("th1.t", BASE, END, "1h").source == "rollup 1h"


def test_catch_up_after_downtime_runs_pieces_until_current(client: InfluxClient) -> None:
    report = rollup(client, END + 3600, max_span=86400).catch_up()
    assert report.hours == {"humidity": 72, "temperature": 72} and not report.behind


def test_backfill_works_in_chunks(client: InfluxClient) -> None:
    queries: list[str] = []
    real = client.query

    def counting(q: str, **kw: Any) -> Any:
        queries.append(q)
        return real(q, **kw)

    client.query = counting  # type: ignore[method-assign]
    report = rollup(client, END + 7800, max_span=86400).backfill(BASE - 86400, END + 86400)
    assert report.hours == {"humidity": 98, "temperature": 98}  # all that was asked, up to the last complete hour
    assert report.done_until == {"humidity": END + 7200, "temperature": END + 7200}
    selects = [q for q in queries if "GROUP BY time(1h), *" in q]
    assert len(selects) == 2 * 5  # 98 hours in pieces of at most a day, per measurement
    assert_same(as_dict(history(client).point("th2.t", BASE, END, "1h").rows), expected("th2.t", hour))


def test_rollup_skips_text_measurements_and_reads_a_named_retention_policy(influxd: LocalInfluxd) -> None:
    admin = InfluxClient(InfluxConfig(url=influxd.url, database="arch ive"))
    admin.create_database()
    admin.query(f'CREATE RETENTION POLICY "raw" ON {quote_ident("arch ive")} DURATION 520w REPLICATION 1',
                epoch=None)
    client = InfluxClient(InfluxConfig(url=influxd.url, database="arch ive", retention_policy="raw"))
    client.write([f'temperature,device=a,point=t value={v}.5,quality="good" {(BASE + n * 60) * 10**9}'
                  for n, v in enumerate([1, 2, 3, 4])] +
                 [f'status,device=a,point=s value="ok",quality="good" {BASE * 10**9}'])
    report = Rollup(client, ["status", "temperature"], ManualClock(BASE + 7200)).run()
    assert "status" in report.skipped and report.hours == {"temperature": 1}
    rows = client.query(f'SELECT * FROM {quote_ident("arch ive")}."forever"."temperature_1h"', epoch="s")
    assert rows[0].rows() == [{"time": BASE, "count": 4, "device": "a", "max": 4.5, "mean": 3.0, "min": 1.5,
                               "point": "t"}]


async def test_scheduled_job_runs_in_a_thread_and_rolls_up(client: InfluxClient) -> None:
    scheduler = AsyncIOScheduler()
    job = schedule(scheduler, rollup(client, END + 3600))  # runs at start, then at minute 5
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 3600)
    assert str(job.trigger) == "cron[minute='5']"
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while await asyncio.to_thread(rolled_until, client) != {"humidity": END, "temperature": END}:
            assert time.monotonic() < deadline, "the job did not roll up"
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
