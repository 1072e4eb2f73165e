"""`stackwatch report compliance --format pdf` over a real influxd: the thirty seeded days of
test_report_cli (36 hours above the RH limit in three excursions, a 6-hour gap), the PDF's text checked
against the JSON report of the same period."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from reports.pdf import find_font
from stackwatch.catalog import PointCatalog
from stackwatch.cli import main
from stackwatch.config import load_config
from stackwatch.localservers import LocalInfluxd

from .service_harness import EXAMPLE, influx
from .test_report_cli import seed_state, seed_thirty_days

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_font() is None, reason="fonts-wqy-microhei is not installed")]
PERIOD = ["--room", "main-1-paper", "--from", "2026-01-01T00:00:00+08:00", "--to", "2026-01-31T00:00:00+08:00"]


def flat(text: str) -> str:
    return " ".join(text.split())


def pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def test_a_thirty_day_pdf_through_the_cli(tmp_path: Path, influxd: LocalInfluxd, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STACKWATCH_INFLUX_PORT", str(influxd.port))
    monkeypatch.setenv("STACKWATCH_STATE_DIR", str(tmp_path / "state"))
    client = influx(influxd)
    client.create_database()
    seed_thirty_days(client, PointCatalog.from_config(load_config(EXAMPLE)))
    seed_state(tmp_path / "state")
    assert main(["report", "compliance", "--config", str(EXAMPLE), *PERIOD]) == 0
    report = json.loads(capsys.readouterr().out)
    key = report["rooms"][0]["key_figures"]

    out = tmp_path / "report.pdf"
    assert main(["report", "compliance", "--config", str(EXAMPLE), *PERIOD, "--format", "pdf", "--lang", "zh",
                 "-o", str(out)]) == 0
    text = [flat(page.extract_text()) for page in PdfReader(out).pages]
    first = text[0]
    assert "环境合规报告" in first and "Stack 101 – paper records" in first
    for figure in ("temperature_share_within", "humidity_share_within", "humidity_days_within_allowance",
                   "completeness"):
        assert pct(key[figure]) in first, figure
    assert f"{key['twpi']:.1f}" in first
    assert "已校验：3 条" in first  # the audit trail's three rows, unbroken
    everything = " ".join(text)
    assert "超限 (3)" in everything  # RH: the three seeded excursions
    assert "数据缺失 (1)" in everything and "2026-01-25 06:00 2026-01-25 12:00 6 小时" in everything
    assert "li.wei" in everything and "+8613800000001" in everything  # acknowledged by, and the SMS sent
    assert report["integrity"]["config_sha256"] in everything

    capsys.readouterr()
    assert main(["report", "compliance", "--config", str(EXAMPLE), *PERIOD, "--format", "pdf"]) == 2
    assert "-o FILE" in capsys.readouterr().err
