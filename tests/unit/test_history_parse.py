"""Time parsing and the checks made before any query is sent: nothing here needs a server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from api.history import HistoryQuery, parse_time
from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.clock import ManualClock
from stackwatch.store.influx import Series
from stackwatch.store.rollup import Rollup, quote_literal, schedule

NOW = 1_796_000_000.0


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-01T00:00:00+08:00", dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC).timestamp()),
    ("2026-11-01T00:00:00Z", dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()),
    ("2026-11-01t00:00:00z", dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()),
    ("2026-11-01T08:30:15.250+08:00", dt.datetime(2026, 11, 1, 0, 30, 15, 250000, tzinfo=dt.UTC).timestamp()),
    ("2026-11-01 08:00-05:00", dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC).timestamp()),
    ("  2026-11-01T00:00:00+00:00 ", dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()),
    ("now", NOW),
    ("now-24h", NOW - 86400),
    ("now-7d", NOW - 7 * 86400),
    ("now - 30m", NOW - 1800),
    ("NOW-2w", NOW - 14 * 86400),
    ("now-1.5h", NOW - 5400),
])
def test_parse_time_accepts(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["2026-11-01T00:00:00", "2026-11-01", "2026-11-01 08:00"])
def test_parse_time_refuses_times_without_a_zone(text: str) -> None:
    with pytest.raises(ValueError, match=r"times need a zone, e\.g\. 2026-11-30T08:00:00\+08:00"):
        parse_time(text)


@pytest.mark.parametrize("text", ["", "yesterday", "1767225600", "2026-13-01T00:00:00Z", "now+1h", "now-5y",
                                  "2026-11-01T00:00:00+08:00'; DROP DATABASE x", "x" * 500])
def test_parse_time_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="unreadable time") as error:
        parse_time(text)
    assert len(str(error.value)) < 200


def info(device: str, point: str, quantity: str, room: str, is_state: bool = False) -> PointInfo:
    return PointInfo(key=f"{device}.{point}", device=device, point=point, quantity=quantity, unit="", room=room,
                     building="b", is_state=is_state, expected_interval=None, series="")


CATALOG = PointCatalog("s", [
    info("th1", "t", "temperature", "r1"),
    info("th2", "rh", "humidity", "r2"),
    info("door", "open", "door_open", "r1", is_state=True),
    info("o'neil\\", 'x"y', "temperature", "r'3"),
    info("gauge", "open", "door_open", "r1"),  # a numeric point of a quantity others report as on/off
])


class Recorder:
    """Stands in for `InfluxClient`: records each statement and answers with no data."""

    database = "archive"
    retention_policy = None

    def __init__(self) -> None:
        self.statements: list[str] = []

    def query(self, q: str, **_: Any) -> list[Series]:
        self.statements.append(q)
        return []


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def history(recorder: Recorder) -> HistoryQuery:
    return HistoryQuery(recorder, CATALOG, timezone="Asia/Shanghai")  # type: ignore[arg-type]


def test_unknown_point_room_and_quantity_are_key_errors(history: HistoryQuery, recorder: Recorder) -> None:
    with pytest.raises(KeyError, match="unknown point"):
        history.point("th1.nope", NOW - 3600, NOW)
    with pytest.raises(KeyError, match="unknown point"):
        history.point("th1.t' OR 1=1", NOW - 3600, NOW)
    with pytest.raises(KeyError, match="unknown room"):
        history.room("r9", "temperature", NOW - 3600, NOW)
    with pytest.raises(KeyError, match="unknown quantity"):
        history.room("r1", "temprature", NOW - 3600, NOW)
    assert recorder.statements == []
    assert history.room("r2", "temperature", NOW - 3600, NOW) == []  # known room, no such sensor there


@pytest.mark.parametrize(("start", "end", "agg", "limit", "message"), [
    (NOW, NOW, "1h", 100_000, "start must be before end"),
    (NOW, NOW - 1, "1h", 100_000, "start must be before end"),
    (NOW - 11 * 365 * 86400, NOW, "1d", 100_000, "at most 10 years"),
    (float("nan"), NOW, "1h", 100_000, "finite"),
    (NOW - 3600, NOW, "5m", 100_000, "agg must be one of raw, 1m, 1h, 1d"),
    (NOW - 3600, NOW, "1h", 0, "limit"),
    (NOW - 365 * 86400, NOW, "1m", 100_000, "agg=1h or 1d"),
    (NOW - 365 * 86400, NOW, "1h", 1000, "agg=1d"),
])
def test_bad_ranges_are_value_errors(history: HistoryQuery, recorder: Recorder, start: float, end: float, agg: Any,
                                     limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history.point("th1.t", start, end, agg, limit=limit)
    with pytest.raises(ValueError, match=message):
        history.room("r1", "temperature", start, end, agg, limit=limit)
    assert recorder.statements == []


def test_ten_years_is_allowed(history: HistoryQuery) -> None:
    assert history.point("th1.t", NOW - 10 * 365 * 86400, NOW, "1d").rows == []


def test_state_points_have_only_raw_history(history: HistoryQuery) -> None:
    with pytest.raises(ValueError, match="agg=raw"):
        history.point("door.open", NOW - 3600, NOW, "1h")
    assert history.point("door.open", NOW - 3600, NOW, "raw").quality == []


def test_names_reach_influxql_quoted(history: HistoryQuery, recorder: Recorder) -> None:
    history.point("o'neil\\.x\"y", NOW - 86400, NOW, "raw")
    history.room("r'3", "temperature", NOW - 86400, NOW, "1d")
    assert recorder.statements
    for statement in recorder.statements:
        assert "'o\\'neil\\\\'" in statement or "stackwatch_rollup" in statement
        assert "o'neil" not in statement
    assert any("tz('Asia/Shanghai')" in s for s in recorder.statements)
    assert quote_literal("a'b\\") == "'a\\'b\\\\'"


def test_unknown_time_zone_is_refused(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        HistoryQuery(recorder, CATALOG, timezone="Mars/Olympus")  # type: ignore[arg-type]


def test_schedule_adds_one_hourly_job() -> None:
    scheduler = AsyncIOScheduler()
    rollup = Rollup(Recorder(), CATALOG, ManualClock(NOW), writer=Recorder())  # type: ignore[arg-type]
    job = schedule(scheduler, rollup, run_at_start=False)
    assert str(job.trigger) == "cron[minute='5']"
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 3600)
    assert rollup.measurements == ["door_open", "humidity", "temperature"]  # not "state": on/off is not averaged


def test_a_room_quantity_spread_over_two_measurements(history: HistoryQuery, recorder: Recorder) -> None:
    series = history.room("r1", "door_open", NOW - 3600, NOW, "raw")
    assert [s.point for s in series] == ["door.open", "gauge.open"]
    assert {'"state"' in q for q in recorder.statements} == {True, False}
