"""The PDF report from a report dict with known figures: pages, key figures in its text, Chinese extractable,
sections present or absent, charts that leave gaps open; no server involved."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from reportlab.graphics.shapes import PolyLine, Rect

from api.app import create_app
from api.services import ApiServices
from reports.charts import NO_DATA, bucket, merge_sensors, quantity_chart
from reports.environment import compliance_report
from reports.labels import _LABELS, label
from reports.pdf import FontUnavailable, chart_series, find_font, render_pdf
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from tests.unit.test_api_routes import SITE, Runtime
from tests.unit.test_compliance_report import EVENTS, START, Hourly, header_auth

HOUR = 3600.0
END = START + 48 * HOUR
AUDIT = {"config_sha256": "c0ffee" * 10 + "abcd",
         "audit": {"ok": True, "rows": 12, "first_broken": None, "reason": None, "head_seq": 12, "head_hash": "9f"}}
needs_font = pytest.mark.skipif(find_font() is None, reason="fonts-wqy-microhei is not installed")


def report() -> dict[str, Any]:
    return compliance_report(SITE, Hourly(), EVENTS, START, END, rooms=["r1"], integrity=AUDIT, generated=END)


def series() -> dict[str, Any]:
    return chart_series(Hourly(), ["r1"], START, END)


def pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@needs_font
def test_english_pdf_has_key_figures_first_then_the_room_then_alarms_and_integrity() -> None:
    data = render_pdf(report(), series(), "en")
    assert data.startswith(b"%PDF-")
    text = [flat(page) for page in pages(data)]
    first = text[0]
    assert "Environmental compliance report" in first and "Key figures per room" in first
    # r1: T within 89.6 % and RH 81.2 % of the period, T days 2/2, RH days 1/2, TWPI 48.7, completeness 87.5 %
    for figure in ("Stack 101", "89.6 %", "81.2 %", "100.0 %", "50.0 %", "48.7", "87.5 %"):
        assert figure in first
    assert "Rooms needing attention Stack 101" in first
    assert "verified: 12 rows, unbroken" in first
    assert f"Page 2 of {len(text)}" in text[1] and "Stack 101 (r1) · main" in text[1]
    room = " ".join(text[1:3])
    assert "Temperature (°C)" in room and "Relative humidity (% RH)" in room
    assert "2026-01-02 06:00 2026-01-02 12:00 6 h" in room  # the 6-hour gap, in the site's time zone
    assert "Excursions (1)" in room and "64.0" in room  # the humid afternoon and its peak
    rest = " ".join(text[2:])
    assert "Alarm and response history" in rest and "li.wei" in rest and "dehumidifier on" in rest
    assert "Integrity" in rest and AUDIT["config_sha256"] in rest
    assert "Resolution of each figure" in rest
    outline = PdfReader(io.BytesIO(data)).outline  # the viewer's side panel: every section, each room under one
    titles = [entry.title if not isinstance(entry, list) else [e.title for e in entry] for entry in outline]
    assert titles[:3] == ["Key figures per room", "Room detail", ["Stack 101 (r1)"]]
    assert "Alarm and response history" in titles and titles[-1] == "Integrity"


@needs_font
def test_chinese_pdf_embeds_its_font_and_its_text_is_extractable() -> None:
    data = render_pdf(report(), series(), "zh")
    text = [flat(page) for page in pages(data)]
    for word in ("环境合规报告", "各库房关键指标", "温度达标", "湿度达标", "数据完整率", "霉变风险天数",
                 "需要关注的库房"):
        assert word in text[0]
    assert "89.6 %" in text[0]
    assert "相对湿度" in text[1] and "超限" in " ".join(text[1:])
    reader = PdfReader(io.BytesIO(data))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    cjk = [font.get_object() for font in fonts.values() if "WenQuanYi" in str(font.get_object()["/BaseFont"])]
    assert cjk  # subsets of the TrueType face (reportlab splits them every 256 glyphs), embedded, with ToUnicode
    assert all(font["/Subtype"] == "/TrueType" and "/FontFile2" in font["/FontDescriptor"] and "/ToUnicode" in font
               for font in cjk)


def test_without_the_font_english_falls_back_and_chinese_is_refused_clearly() -> None:
    with pytest.raises(FontUnavailable, match="fonts-wqy-microhei"):
        render_pdf(report(), series(), "zh", font_path="/nonexistent/font.ttc")
    data = render_pdf(report(), series(), "en", font_path="/nonexistent/font.ttc")
    first = flat(pages(data)[0])
    assert "Key figures per room" in first and "89.6 %" in first


@needs_font
def test_absent_sections_are_left_out_and_unknown_ones_still_printed() -> None:
    full = report()
    bare = {key: full[key] for key in ("site", "period", "rooms")}
    bare["rooms"] = [{k: v for k, v in full["rooms"][0].items() if k not in ("alarms", "preservation")}]
    text = flat(" ".join(pages(render_pdf(bare, {}, "en"))))
    assert "Alarm and response history" not in text and "Preservation metrics" not in text
    assert "No data in the period." in text  # no series given: no chart, said so
    assert "no audit trail found" in text
    bare["visitor_log"] = {"entries_total": 2, "entries": [{"at": START + 9 * HOUR, "who": "auditor"}]}
    text = flat(" ".join(pages(render_pdf(bare, {}, "en"))))
    assert "Visitor log" in text and "Entries total 2" in text and "2026-01-01 09:00 auditor" in text


def test_every_label_has_both_languages_and_unknown_keys_read_as_words() -> None:
    assert all(en and zh for en, zh in _LABELS.values())
    assert label("time_to_acknowledge", "zh") == "按优先级的确认时间"
    assert label("never_seen_key", "zh") == "Never seen key"


def test_hours_are_grouped_to_the_chart_width_and_gaps_stay_empty() -> None:
    year = 8760
    rows = [(START + h * HOUR, 20.0, 19.0, 21.0, 60) for h in range(year) if not 1000 <= h < 1100]
    steps = bucket(rows, START, START + year * HOUR, 400)
    assert steps.hours == 22 and len(steps.values) == 399
    assert steps.values[1000 // 22 + 1] is None  # hours 1034–1055 lie inside the gap
    assert steps.values[0] == (20.0, 19.0, 21.0)


def test_sensors_of_a_room_merge_by_hour_weighted_by_count() -> None:
    merged = merge_sensors([[(0.0, 20.0, 19.0, 21.0, 30)], [(0.0, 23.0, 22.0, 25.0, 60), (3600.0, 22.0, 22, 22, 1)]])
    assert merged == [(0.0, 22.0, 19.0, 25.0, 90), (3600.0, 22.0, 22, 22, 1)]


def test_a_gap_breaks_the_line_and_is_shaded() -> None:
    rows = merge_sensors([Hourly().room("r1", "humidity", START, END, "1h")[0].rows])
    drawing, hours = quantity_chart(rows, start=START, end=END, low=45, high=55,
                                    excursions=[{"start": START + 14 * HOUR, "end": START + 18 * HOUR}],
                                    timezone="Asia/Shanghai", unit="% RH", font="Helvetica")
    assert hours == 1
    lines = [shape for shape in drawing.contents if isinstance(shape, PolyLine)]
    assert len(lines) == 2  # before and after the 6-hour gap
    grey = [shape for shape in drawing.contents if isinstance(shape, Rect) and shape.fillColor == NO_DATA]
    assert len(grey) == 1 and grey[0].width == pytest.approx(6 * (drawing.width - 42) / 48)


@needs_font
def test_the_api_serves_the_pdf_to_inspectors(tmp_path: Path) -> None:
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(),
                           now=lambda: END, alarms=Runtime(tmp_path), history=Hourly())
    client = TestClient(create_app(ApiConfig(), services, header_auth))
    url = "/api/v1/reports/compliance?from=2026-01-01T00:00:00%2B08:00&room=r1&format=pdf"
    assert client.get(url, headers={"x-role": "viewer"}).status_code == 403
    answer = client.get(url + "&lang=zh", headers={"x-role": "inspector"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    first = flat(pages(answer.content)[0])
    assert "各库房关键指标" in first and "Stack 101" in first and "89.6 %" in first
    assert client.get(url + "&lang=fr", headers={"x-role": "inspector"}).status_code == 422
