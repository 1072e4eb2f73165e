"""`stackwatch control status|log` read the control journal, with the service stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control.runtime import ControlRuntime
from stackwatch.cli import main
from stackwatch.clock import ManualClock
from stackwatch.readings import Quality, Reading

from .control_site import SITE, plan
from .test_control_runtime import T0, FakeUnits


@pytest.fixture
async def site(tmp_path: Path) -> Path:
    config = tmp_path / "site.yaml"
    config.write_text(SITE + "state_dir: state\n", encoding="utf-8")
    (tmp_path / "state").mkdir()
    clock = ManualClock(T0)
    runtime = ControlRuntime(plan(), FakeUnits(), clock, tmp_path / "state" / "control.db")
    runtime([Reading("th1.humidity", clock.now_ns(), 54.0, Quality.GOOD, ""),
             Reading("th1.temperature", clock.now_ns(), 18.0, Quality.GOOD, "")])
    await runtime.step()
    runtime.set_override("io1.hum", 0, "li.wei", "tank empty", 3600)
    runtime([Reading("fire1.zone1", clock.now_ns() + 1, True, Quality.GOOD, "")])
    await runtime.step()
    await runtime.stop()
    return config


def test_status_shows_the_latch_the_last_commands_and_overrides(site: Path, capsys: pytest.CaptureFixture[str]) \
        -> None:
    assert main(["control", "status", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    assert "r1: FIRE INTERLOCK" in out and "io1.dh" in out
    assert "manual: io1.hum = 0 by li.wei" in out and "tank empty" in out


def test_log_lists_commands_with_reasons_and_filters(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["control", "log", "--config", str(site), "--target", "crac1.run", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["value"], r["source"]) for r in rows] == [("command", 1, "auto"), ("command", 0, "interlock")]
    assert main(["control", "log", "--config", str(site), "--room", "r1"]) == 0
    out = capsys.readouterr().out
    assert "fire interlock tripped by fire1.zone1" in out and "override" in out
    assert main(["control", "log", "--config", str(site), "--since", "yesterday"]) == 2


def test_a_site_without_control_or_journal_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE, encoding="utf-8")
    assert main(["control", "log", "--config", str(config)]) == 2
    assert "no control journal yet" in capsys.readouterr().err
