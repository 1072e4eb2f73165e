"""`stackwatch report compliance` over a real influxd: raw readings in, the service's roll-up, figures out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackwatch.catalog import PointCatalog
from stackwatch.cli import main
from stackwatch.config import load_config
from stackwatch.localservers import LocalInfluxd
from stackwatch.readings import Reading
from stackwatch.store.rollup import Rollup

from .service_harness import EXAMPLE, influx

pytestmark = pytest.mark.integration
START = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00


def test_a_two_day_report_from_raw_minutes(tmp_path: Path, influxd: LocalInfluxd, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STACKWATCH_INFLUX_PORT", str(influxd.port))
    monkeypatch.setenv("STACKWATCH_STATE_DIR", str(tmp_path / "state"))
    config = load_config(EXAMPLE)
    catalog = PointCatalog.from_config(config)
    client = influx(influxd)
    client.create_database()
    lines = []
    for minute in range(2 * 24 * 60):
        ts = round((START + minute * 60) * 1e9)
        humid = 10 * 60 <= minute < 13 * 60  # 10:00–13:00 on the first day at 63 %
        lines.append(catalog.encode(Reading("th-101.humidity", ts, 63.0 if humid else 52.0)))
        lines.append(catalog.encode(Reading("th-101.temperature", ts, 19.0)))
    client.write(lines)
    Rollup(client, catalog).backfill(START, START + 2 * 86400)

    code = main(["report", "compliance", "--config", str(EXAMPLE), "--room", "main-1-paper",
                 "--from", "2026-01-01T00:00:00+08:00", "--to", "2026-01-03T00:00:00+08:00"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    [room] = report["rooms"]
    rh = room["humidity"]
    assert rh["time_within"]["outside"] == 3 * 3600 and rh["completeness"]["ratio"] == 1.0
    [excursion] = rh["excursions"]
    assert (excursion["start"], excursion["end"], excursion["peak"]) == (START + 10 * 3600, START + 13 * 3600, 63.0)
    assert room["key_figures"]["humidity_days_within_allowance"] == 0.5  # 63 − 52 = 11 > 10 on day one
    assert room["key_figures"]["temperature_share_within"] == 1.0
    assert report["integrity"]["config_sha256"] and "audit" not in report["integrity"]  # no trail yet

    assert main(["report", "compliance", "--config", str(EXAMPLE), "--from", "now-2d", "--format", "csv",
                 "-o", str(tmp_path / "r.csv")]) == 0
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines.index("") == 1 + len(config.rooms)  # the key figures first, one line a room; sections follow
    assert main(["report", "compliance", "--config", str(EXAMPLE), "--room", "nowhere", "--from", "now-1d"]) == 2
