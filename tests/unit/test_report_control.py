"""The report's control section from a real control journal with known rows."""

from __future__ import annotations

from pathlib import Path

from control.journal import ControlJournal
from reports.control_report import control_section
from reports.environment import csv_rows

T0 = 1_780_000_000.0
DAY = 86400.0


def journal(tmp_path: Path) -> ControlJournal:
    control = ControlJournal(tmp_path / "control.db")
    log = control.log
    log(T0 - 3600, "command", "r1", "io.dh", 1, "auto", "", "RH 54 %")  # running when the period starts
    log(T0 - 1800, "override", "r1", "io.hum", 0, "manual", "li.wei", "tank empty", {"until": T0 + 1800})
    log(T0 + 100, "command", "r1", "io.dh", 0, "auto", "", "RH 48 %")
    log(T0 + 1000, "command", "r1", "io.dh", 1, "auto", "", "RH 53 %")
    log(T0 + 1800, "override_end", "r1", "io.hum", 0, "auto", "system", "override expired: back to automatic")
    log(T0 + 2000, "interlock", "r1", "r1", None, "interlock", "", "fire interlock tripped by fire.zone1")
    log(T0 + 2000, "command", "r1", "crac.run", 0, "interlock", "", "fire interlock (fire.zone1)")
    log(T0 + 2600, "reset", "r1", "r1", None, "manual", "admin", "room inspected")
    log(T0 + 3000, "failed", "r1", "crac.run", 1, "auto", "", "read-back 0", {"attempts": 3})
    log(T0 + 4000, "recovered", "r1", "crac.run", 1, "auto", "", "")
    log(T0 + 5000, "command", "r2", "io2.dh", 1, "auto", "", "RH 56 %")
    log(T0 + 2 * DAY, "command", "r1", "io.dh", 0, "auto", "", "after the period")
    return control


def test_the_control_section_counts_starts_lists_overrides_interlocks_and_failures(tmp_path: Path) -> None:
    control = journal(tmp_path)
    section = control_section(control.rows(since=T0 - DAY, limit=1000), ["r1"], T0, T0 + DAY)
    [room] = section["rooms"]
    assert room["commands"] == 3 and room["by_source"] == {"auto": 2, "interlock": 1}
    assert room["unit_starts"] == {"io.dh": 1}  # it was already running when the period began
    assert room["failures"] == 1 and room["recovered"] == 1
    [override] = section["overrides"]
    assert override["set_by"] == "li.wei" and override["since"] == T0 - 1800 and override["until"] == T0 + 1800
    assert override["ended_by"] == "system" and "expired" in override["end_reason"]
    assert [(i["kind"], i["who"]) for i in section["interlocks"]] == [("interlock", "system"), ("reset", "admin")]
    assert section["failures"][0]["detail"] == 3
    control.close()


def test_control_rows_go_to_the_csv(tmp_path: Path) -> None:
    control = journal(tmp_path)
    section = control_section(control.rows(limit=1000), None, T0, T0 + DAY)
    report = {"rooms": [], "alarm_performance": {
        "activations": 0, "avg_per_10min": 0, "peak_10min": 0, "floods": 0, "flood_seconds": 0, "flood_share": 0,
        "chattering_episodes": 0, "chattering_alarms": [], "stale_at_end": [], "priority_distribution": {},
        "time_to_acknowledge": {}}, "alarm_history": {"alarms": [], "shelved_or_out_of_service": []},
        "fire_and_security": {"events": []}, "integrity": {}, "control": section}
    rows = csv_rows(report)
    names = [row[0] for row in rows if row]
    assert names.count("control_rooms") == 2 and "control_overrides" in names and "control_interlocks" in names
    assert ["control_failures", T0 + 3000, "r1", "crac.run", 1, "auto", 3] in rows
    control.close()


def test_the_pdf_prints_the_control_section_in_both_languages(tmp_path: Path) -> None:
    from reports.pdf import render_pdf
    from tests.unit.test_report_pdf import flat, needs_font, pages, report, series

    control = journal(tmp_path)
    full = report()
    full["control"] = control_section(control.rows(limit=1000), None, T0, T0 + DAY)
    text = flat(" ".join(pages(render_pdf(full, series(), "en"))))
    assert "Environmental control" in text and "Manual overrides" in text and "li.wei" in text
    assert "tank empty" in text and "room inspected" in text
    if needs_font.args[0]:  # no CJK font on this machine
        return
    assert "环境控制" in flat(" ".join(pages(render_pdf(full, series(), "zh"))))
    control.close()
