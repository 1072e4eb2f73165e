"""The compliance report as a PDF: key figures first, then each room with its charts, then the alarm sections
and the integrity statement.

`render_pdf(report, series, lang)` is pure: the report dict (`reports.environment.compliance_report` and the
sections others add to it) and the hourly rows per room and quantity go in, the PDF's bytes come out, so it is
tested without InfluxDB or the service. `chart_series` reads those rows from `api.history.HistoryQuery` at 1h.

Sections are rendered from what the dict holds: a section this module knows is laid out for reading (tables
with their own columns); a section it does not know yet is still printed, as tables of its keys and values, and
a section that is absent is left out. Nothing in the dict is dropped for want of a layout.

Text is set in WenQuanYi Micro Hei, embedded as a TrueType subset (only the glyphs used, with a ToUnicode map,
so Chinese text is searchable and extractable). Without that font an English report falls back to Helvetica,
and a Chinese one is refused with `FontUnavailable`.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from .charts import Row, merge_sensors, quantity_chart
from .labels import Lang, known, label

log = logging.getLogger(__name__)
FONT_ENV = "STACKWATCH_PDF_FONT"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # Debian fonts-wqy-microhei (the Makefile installs it)
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
FALLBACK_FONT = "Helvetica"
QUANTITIES = (("temperature", "unit_t"), ("humidity", "unit_rh"))
# Sections of the dict laid out by this module; any other top-level key with content gets the generic layout.
_HANDLED = frozenset({"site", "period", "generated", "rooms", "alarm_history", "integrity", "lang", "format",
                      "key_figures", "scope", "alarm_performance", "fire_and_security"})
_TIME_KEYS = frozenset({"start", "end", "raised", "acknowledged", "cleared", "at", "until", "from", "to", "ts",
                        "time", "sent", "since", "generated", "returned", "shelved", "unshelved", "expires"})
MAX_GAPS = 40
SHORT_CELL = 18  # characters a cell holds without wrapping in the narrowest column (a time, a figure, an id)
PAGE_W, PAGE_H = A4
MARGIN = 15 * mm
CONTENT_W = PAGE_W - 2 * MARGIN
RED = colors.Color(1.0, 0.78, 0.78)
AMBER = colors.Color(1.0, 0.92, 0.7)
HEADER_BG = colors.Color(0.9, 0.92, 0.96)
GRID = colors.Color(0.7, 0.7, 0.7)
ATTENTION_SHARE = 0.95  # time in range, days within allowance, completeness below this need attention


class FontUnavailable(RuntimeError):
    """No CJK TrueType font to embed: a Chinese report cannot be rendered."""


@functools.cache
def _register(path: str) -> str:
    name = "StackwatchCJK-" + Path(path).stem
    pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))  # .ttc: the first face (Micro Hei, not Mono)
    return name


def find_font(font_path: str | Path | None = None) -> Path | None:
    """The CJK font file: the one given, else $STACKWATCH_PDF_FONT, else the Debian WenQuanYi fonts."""
    chosen = font_path or os.environ.get(FONT_ENV)
    if chosen:
        return Path(chosen) if Path(chosen).is_file() else None
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


def font_for(lang: Lang, font_path: str | Path | None = None) -> str:
    path = find_font(font_path)
    if path is None:
        if lang == "zh":
            raise FontUnavailable(
                "a Chinese PDF needs a CJK TrueType font to embed: install the Debian package fonts-wqy-microhei "
                f"(or point {FONT_ENV} at a .ttf/.ttc file); English (--lang en) works without it")
        log.warning("no CJK font (fonts-wqy-microhei): the English PDF is set in Helvetica, names in Chinese "
                    "will not show")
        return FALLBACK_FONT
    try:
        return _register(str(path))
    except Exception as error:  # reportlab raises TTFError and others for an unusable file
        if lang == "zh":
            raise FontUnavailable(f"cannot use {path} as a CJK font: {error}") from error
        log.warning("cannot use %s as the PDF font (%s): the English PDF is set in Helvetica", path, error)
        return FALLBACK_FONT


def chart_series(history: Any, rooms: Iterable[str], start: float, end: float) -> dict[str, dict[str, list[Row]]]:
    """Hourly rows per room and quantity from `api.history.HistoryQuery` (sensors of a room merged per hour)."""
    found: dict[str, dict[str, list[Row]]] = {}
    for room in rooms:
        found[room] = {}
        for quantity, _ in QUANTITIES:
            try:
                parts = history.room(room, quantity, start, end, "1h")
            except KeyError:  # the room has no such sensor at all
                parts = []
            found[room][quantity] = merge_sensors([series.rows for series in parts])
    return found


# -- formatting ----------------------------------------------------------------------------------------------


class _Format:
    def __init__(self, lang: Lang, timezone: str) -> None:
        self.lang = lang
        self.zone = ZoneInfo(timezone)

    def t(self, key: str, **values: Any) -> str:
        text = label(key, self.lang)
        return text.format(**values) if values else text

    def time(self, ts: Any) -> str:
        if not isinstance(ts, int | float):
            return "–" if ts is None else str(ts)
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M")

    def pct(self, share: Any) -> str:
        return "–" if not isinstance(share, int | float) else f"{share * 100:.1f} %"

    def num(self, value: Any, digits: int = 1) -> str:
        if isinstance(value, bool):
            return self.t("yes" if value else "no")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return "–" if value is None else str(value)

    def duration(self, seconds: Any) -> str:
        if not isinstance(seconds, int | float):
            return "–"
        minutes = round(seconds / 60)
        days, rest = divmod(minutes, 1440)
        hours, mins = divmod(rest, 60)
        zh = self.lang == "zh"
        parts = []
        if days:
            parts.append(f"{days} 天" if zh else f"{days} d")
        if hours:
            parts.append(f"{hours} 小时" if zh else f"{hours} h")
        if mins or not parts:
            parts.append(f"{mins} 分" if zh else f"{mins} min")
        return " ".join(parts)

    def word(self, value: Any) -> str:
        """An enumerated value (rating, priority, side) in the report's language when there is a label."""
        if not isinstance(value, str):
            return self.num(value)
        key = {"low": "low_priority", "high": "high_priority"}.get(value, value)
        return label(key, self.lang) if known(key) else value

    def value(self, key: str, value: Any) -> str:
        """A field of a generic section: times, durations and shares recognised by their key."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            if key in _TIME_KEYS or key.endswith("_at") or key.endswith("_ts"):
                return self.time(value) if value > 1e8 else self.num(value)
            if "seconds" in key or key.endswith("_s") or key == "duration":
                return self.duration(value)
            if "share" in key or "ratio" in key or ("percent" in key and value <= 1):
                return self.pct(value)
            return self.num(value, 2)
        if isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
            return ", ".join(self.num(v) for v in value) if value else "–"
        if isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False, default=str)
            return text if len(text) <= 160 else text[:157] + "…"
        if isinstance(value, str):
            return self.word(value)
        return self.num(value)


class _Styles:
    def __init__(self, font: str, lang: Lang) -> None:
        wrap = "CJK" if lang == "zh" else None
        self.font = font
        self.title = ParagraphStyle("title", fontName=font, fontSize=17, leading=22, spaceAfter=6)
        self.h1 = ParagraphStyle("h1", fontName=font, fontSize=13, leading=17, spaceBefore=8, spaceAfter=5,
                                 textColor=colors.Color(0.1, 0.2, 0.45), keepWithNext=1)
        self.h2 = ParagraphStyle("h2", fontName=font, fontSize=10.5, leading=14, spaceBefore=6, spaceAfter=3,
                                 keepWithNext=1)
        self.body = ParagraphStyle("body", fontName=font, fontSize=8.5, leading=11.5, wordWrap=wrap)
        self.caption = ParagraphStyle("caption", parent=self.body, spaceBefore=3, spaceAfter=1, keepWithNext=1)
        self.small = ParagraphStyle("small", fontName=font, fontSize=7, leading=9, wordWrap=wrap,
                                    textColor=colors.Color(0.3, 0.3, 0.3))
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.2, wordWrap=wrap)
        self.head = ParagraphStyle("head", parent=self.cell, textColor=colors.Color(0.1, 0.1, 0.25))


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _cell(value: Any, styles: _Styles) -> Any:
    text = str(value)
    return text if len(text) <= SHORT_CELL and "\n" not in text else _p(text, styles.cell)


def _table(styles: _Styles, header: Sequence[str], rows: Sequence[Sequence[Any]],
           widths: Sequence[float] | None = None, shading: Sequence[tuple[int, int, Any]] = ()) -> LongTable:
    """A table that breaks across pages and repeats its header. Long cells wrap (a Paragraph each); short ones
    are drawn as plain strings, which is what keeps a year of thousands of excursions to seconds."""
    data = [[_p(h, styles.head) for h in header]] + [[_cell(c, styles) for c in row] for row in rows]
    table = LongTable(data, colWidths=list(widths) if widths else None, repeatRows=1, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 1), (-1, -1), styles.font, styles.cell.fontSize, styles.cell.leading),
        ("GRID", (0, 0), (-1, -1), 0.3, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2), ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
    commands += [("BACKGROUND", (col, row + 1), (col, row + 1), colour) for row, col, colour in shading]
    table.setStyle(TableStyle(commands))
    return table


def _pairs(styles: _Styles, rows: Sequence[tuple[str, str]], key_width: float = 62 * mm) -> LongTable:
    data = [[_p(k, styles.head), _p(v, styles.cell)] for k, v in rows]
    table = LongTable(data, colWidths=[key_width, CONTENT_W - key_width], hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, GRID), ("BACKGROUND", (0, 0), (0, -1), HEADER_BG),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]))
    return table


class _NumberedCanvas(Canvas):
    """Holds each finished page until the end, then stamps "page n of N" on all of them (N is known only then)."""

    def __init__(self, *args: Any, font: str, page_text: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._font, self._page_text = font, page_text
        self._held: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._held.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]  # reportlab's own reset, not in the stubs

    def save(self) -> None:
        total = len(self._held)
        for number, state in enumerate(self._held, start=1):
            self.__dict__.update(state)
            self.saveState()
            self.setFont(self._font, 7)
            self.setFillColor(colors.Color(0.4, 0.4, 0.4))
            self.drawRightString(PAGE_W - MARGIN, 8 * mm, self._page_text.format(n=number, total=total))
            self.restoreState()
            super().showPage()
        super().save()


class _Bookmark(Flowable):
    """An entry in the PDF's outline (the viewer's side panel) where it stands: a 300-page year is navigable."""

    def __init__(self, title: str, level: int = 0) -> None:
        super().__init__()
        self.title, self.level = title, level
        self.width = self.height = 0

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        key = f"section-{id(self)}"
        self.canv.bookmarkPage(key)
        self.canv.addOutlineEntry(self.title, key, level=self.level)


# -- sections ------------------------------------------------------------------------------------------------


def _attention(key: str, value: Any) -> Any:
    """The colour a key figure's cell gets, or None when it needs no attention."""
    if not isinstance(value, int | float):
        return AMBER if key != "twpi" or value is None else None  # nothing measured is itself a finding
    if key == "twpi":
        return RED if value < 45 else AMBER if value < 75 else None
    if key == "mould_risk_days":
        return RED if value > 0 else None
    return RED if value < ATTENTION_SHARE else None


_KEY_COLUMNS = (("temperature_share_within", "t_within"), ("humidity_share_within", "rh_within"),
                ("temperature_days_within_allowance", "t_days"), ("humidity_days_within_allowance", "rh_days"),
                ("twpi", "twpi"), ("mould_risk_days", "mould_days"), ("completeness", "completeness"))


def _first_page(report: Mapping[str, Any], f: _Format, s: _Styles) -> list[Flowable]:
    site, period = report.get("site", {}), report.get("period", {})
    story: list[Flowable] = [_p(f.t("title"), s.title)]
    facts = [(f.t("site"), f"{site.get('name', '')} ({site.get('id', '')})"),
             (f.t("period"), f"{f.time(period.get('from'))} – {f.time(period.get('to'))}"),
             (f.t("times_in"), str(site.get("timezone", "UTC")))]
    if report.get("generated") is not None:
        facts.append((f.t("generated"), f.time(report["generated"])))
    audit = (report.get("integrity") or {}).get("audit")
    facts.append((f.t("audit_chain"), _audit_text(audit, f)))
    story += [_pairs(s, facts, 40 * mm), Spacer(1, 8), _p(f.t("key_figures"), s.h1)]
    columns: tuple[tuple[str, str], ...] = _KEY_COLUMNS
    if any("alarms" in room.get("key_figures", {}) for room in report.get("rooms", [])):
        columns = (*columns, ("alarms", "alarms"))
    header = [f.t("room"), f.t("profile")] + [f.t(name) for _, name in columns]
    rows: list[list[str]] = []
    shading: list[tuple[int, int, Any]] = []
    needing: list[str] = []
    for index, room in enumerate(report.get("rooms", [])):
        key = room.get("key_figures", {})
        row = [f"{room.get('name', room.get('room'))}", str(room.get("profile", ""))]
        flagged = False
        for col, (field, _) in enumerate(columns, start=2):
            value = key.get(field)
            if field == "alarms":
                row.append(f.num(value))
                continue
            row.append(f.num(value) if field in ("twpi", "mould_risk_days") else f.pct(value))
            colour = _attention(field, value)
            if colour is not None:
                shading.append((index, col, colour))
                flagged = flagged or colour is RED
        rows.append(row)
        if flagged:
            needing.append(str(room.get("name", room.get("room"))))
    widths = [34 * mm, 18 * mm] + [(CONTENT_W - 52 * mm) / len(columns)] * len(columns)
    story += [_table(s, header, rows, widths, shading), Spacer(1, 4), _p(f.t("key_figures_note"), s.small),
              Spacer(1, 6), _p(f.t("attention"), s.h2),
              _p(", ".join(needing) if needing else f.t("no_attention"), s.body)]
    return story


def _audit_text(audit: Any, f: _Format) -> str:
    if not isinstance(audit, Mapping):
        return f.t("audit_missing")
    if audit.get("ok"):
        return f.t("audit_ok", rows=audit.get("rows", "?"))
    return f.t("audit_broken", first=audit.get("first_broken", "?"), reason=audit.get("reason") or "")


def _room(room: Mapping[str, Any], series: Mapping[str, Sequence[Row]], report: Mapping[str, Any], f: _Format,
          s: _Styles) -> list[Flowable]:
    period = report.get("period", {})
    start, end = float(period.get("from", 0)), float(period.get("to", 0))
    zone = str(report.get("site", {}).get("timezone", "UTC"))
    title = f"{room.get('name', room.get('room'))} ({room.get('room')}) · {room.get('building', '')} · " \
            f"{f.t('profile')}: {room.get('profile', '')}"
    story: list[Flowable] = [_p(title, s.h1)]
    quantities = [(q, unit) for q, unit in QUANTITIES if isinstance(room.get(q), Mapping)]
    header = [f.t("figure")] + [f"{f.t(q)} ({f.t(unit)})" for q, unit in quantities]
    figures: list[tuple[str, Any]] = [
        ("limits", lambda d: f"{f.num(d['limits'].get('low'))} – {f.num(d['limits'].get('high'))}"),
        ("daily_allowance", lambda d: f.num(d["limits"].get("daily_allowance"))),
        ("min", lambda d: f.num(d.get("min"))), ("mean", lambda d: f.num(d.get("mean"))),
        ("max", lambda d: f.num(d.get("max"))),
        ("share_of_period", lambda d: f.pct(d["time_within"].get("share_of_period"))),
        ("share_of_known", lambda d: f.pct(d["time_within"].get("share_of_known"))),
        ("unknown_time", lambda d: f.duration(d["time_within"].get("unknown"))),
        ("days_within", lambda d: f"{d['daily_fluctuation'].get('days_within')} / "
                                  f"{d['daily_fluctuation'].get('days_measured')} "
                                  f"({f.pct(d['daily_fluctuation'].get('share'))})"),
        ("samples", lambda d: f"{d['completeness'].get('present')} / {d['completeness'].get('expected')} "
                              f"({f.pct(d['completeness'].get('ratio'))})"),
        ("gap_count", lambda d: f"{len(d['completeness'].get('gaps', []))} "
                                f"({f.duration(d['completeness'].get('gap_seconds'))})"),
        ("excursions", lambda d: str(len(d.get("excursions", [])))),
    ]
    rows = []
    for key, get in figures:
        cells = [f.t(key)]
        for quantity, _ in quantities:
            try:
                cells.append(get(room[quantity]))
            except (KeyError, TypeError):
                cells.append("–")
        rows.append(cells)
    width = (CONTENT_W - 62 * mm) / max(1, len(quantities))
    story.append(_table(s, header, rows, [62 * mm] + [width] * len(quantities)))
    sources = room.get("limit_sources")
    if isinstance(sources, Mapping) and sources:
        story.append(_p(f"{f.t('limit_sources')}: " + "; ".join(f"{k}: {v}" for k, v in sources.items()), s.small))
    preservation = room.get("preservation")
    if isinstance(preservation, Mapping):
        story += [_p(f.t("preservation"), s.h2), _pairs(s, [
            (f.t("twpi"), f"{f.num(preservation.get('twpi'))} ({f.word(preservation.get('twpi_rating'))})"),
            (f.t("emc_range"), f"{f.num(preservation.get('emc_min'), 2)} – {f.num(preservation.get('emc_max'), 2)} %"),
            (f.t("mould_risk_factor"), f.num(preservation.get("mould_risk_factor"), 4)),
            (f.t("mould_days"), f.num(preservation.get("mould_risk_days"))),
            (f.t("hours_measured"), f.num(preservation.get("hours_measured")))])]
    for quantity, unit in quantities:
        figures_q = room[quantity]
        limits = figures_q.get("limits", {})
        rows_q = series.get(quantity, [])
        block: list[Flowable] = [_p(f"{f.t(quantity)} ({f.t(unit)})", s.h2)]
        if rows_q and end > start:
            drawing, hours = quantity_chart(rows_q, start=start, end=end, low=limits.get("low"),
                                            high=limits.get("high"), excursions=figures_q.get("excursions", []),
                                            gaps=figures_q.get("completeness", {}).get("gaps", []),
                                            timezone=zone, unit=f.t(unit), font=s.font, width=CONTENT_W)
            note = f.t("chart_legend") + ("" if hours == 1 else " " + f.t("chart_bucketed", hours=hours))
            block += [drawing, _p(note, s.small)]
        else:
            block.append(_p(f.t("no_data"), s.body))
        story.append(KeepTogether(block))
        story += _excursions(figures_q.get("excursions", []), f, s)
        story += _gaps(figures_q.get("completeness", {}).get("gaps", []), f, s)
    return story


def _excursions(excursions: Sequence[Mapping[str, Any]], f: _Format, s: _Styles) -> list[Flowable]:
    if not excursions:
        return [_p(f"{f.t('excursions')}: {f.t('no_excursions')}", s.body)]
    header = [f.t(k) for k in ("start", "end", "duration", "peak", "side", "limit", "ended_by")]
    rows = [[f.time(e.get("start")), f.time(e.get("end")), f.duration(e.get("duration")), f.num(e.get("peak")),
             f.t(str(e.get("side"))), f.num(e.get("limit")), f.word(e.get("ended_by"))] for e in excursions]
    return [_p(f"{f.t('excursions')} ({len(rows)})", s.caption), _table(s, header, rows)]


def _gaps(gaps: Sequence[Sequence[float]], f: _Format, s: _Styles) -> list[Flowable]:
    if not gaps:
        return [_p(f"{f.t('gaps')}: {f.t('no_gaps')}", s.body), Spacer(1, 4)]
    rows = [[f.time(a), f.time(b), f.duration(b - a)] for a, b in gaps[:MAX_GAPS]]
    story: list[Flowable] = [_p(f"{f.t('gaps')} ({len(gaps)})", s.caption),
                             _table(s, [f.t("start"), f.t("end"), f.t("duration")], rows, [45 * mm] * 3)]
    if len(gaps) > MAX_GAPS:
        story.append(_p(f.t("more_rows", n=len(gaps) - MAX_GAPS), s.small))
    return [*story, Spacer(1, 4)]


_ALARM_COLUMNS = ("ticket", "alarm", "room", "priority", "raised", "acknowledged", "acknowledged_by", "comment",
                  "cleared")
_ALARM_DONE = ("alarms", "time_to_acknowledge", "shelved_or_out_of_service", "safety_events", "notifications",
               "resolution")


def _alarm_history(history: Mapping[str, Any], f: _Format, s: _Styles, *, safety: bool) -> list[Flowable]:
    """Every alarm with its response and messages; time to acknowledge; shelving. `safety`: also the fire and
    security log (when the report has no section of its own for it)."""
    story: list[Flowable] = [_p(f.t("alarm_history"), s.h1)]
    alarms = history.get("alarms") or []
    if alarms:
        columns = [c for c in _ALARM_COLUMNS if any(c in a for a in alarms)]
        if any("notifications" in a for a in alarms):
            columns.append("notifications")
        rows = []
        for alarm in alarms:
            row = []
            for key in columns:
                value = alarm.get(key)
                if key == "notifications":
                    row.append(_notifications(value, f))
                elif key in ("raised", "acknowledged", "cleared"):
                    row.append(f.time(value))
                else:
                    row.append(f.word(value) if key == "priority" else f.num(value))
            rows.append(row)
        story += [_p(f"{f.t('alarms')} ({len(alarms)})", s.h2), _table(s, [f.t(c) for c in columns], rows)]
    else:
        story.append(_p(f.t("no_alarms"), s.body))
    summary = history.get("notifications")
    if isinstance(summary, Mapping):
        story += _generic("notifications", summary, f, s, depth=1)
    waits = history.get("time_to_acknowledge")
    if isinstance(waits, Mapping) and waits:
        story += _generic("time_to_acknowledge", waits, f, s, depth=1)
    if "shelved_or_out_of_service" in history:
        story += [_p(f.t("shelved_or_out_of_service"), s.h2), *_records(history["shelved_or_out_of_service"], f, s)]
    if safety and "safety_events" in history:
        story += [_p(f.t("safety_events"), s.h1), *_records(history["safety_events"], f, s)]
    for key, value in history.items():
        if key not in _ALARM_DONE:
            story += _generic(key, value, f, s, depth=1)
    if history.get("resolution"):
        story.append(_p(f"{f.t('resolution')}: {history['resolution']}", s.small))
    return story


def _notifications(value: Any, f: _Format) -> str:
    if not isinstance(value, list):
        return f.num(value)
    parts = []
    for sent in value:
        if isinstance(sent, Mapping):
            when = f.time(sent.get("at") or sent.get("sent") or sent.get("ts"))
            outcome = sent.get("outcome") or sent.get("status") or ""
            parts.append(" ".join(str(x) for x in (when, sent.get("person"), sent.get("channel"), sent.get("address"),
                                                    outcome) if x))
        else:
            parts.append(str(sent))
    return "; ".join(parts) if parts else "–"


def _records(records: Any, f: _Format, s: _Styles) -> list[Flowable]:
    """A list of dicts as a table (columns: the keys in first-seen order), with times and durations readable."""
    if not isinstance(records, list):
        return _generic("", records, f, s, depth=2)
    if not records:
        return [_p(f.t("none_listed"), s.body)]
    if not all(isinstance(r, Mapping) for r in records):
        return [_p(", ".join(f.num(r) for r in records), s.body)]
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    columns = columns[:10]
    rows = [[f.value(k, r.get(k)) for k in columns] for r in records]
    return [_table(s, [f.t(k) for k in columns], rows)]


def _generic(key: str, value: Any, f: _Format, s: _Styles, depth: int = 0) -> list[Flowable]:
    """Any section: scalars as a two-column table, lists of records as tables, nested sections as sub-headings."""
    story: list[Flowable] = []
    if key:
        story.append(_p(f.t(key), s.h1 if depth == 0 else s.h2))
    if isinstance(value, Mapping) and value and all(
            isinstance(v, Mapping) and v and not any(isinstance(x, Mapping | list) for x in v.values())
            for v in value.values()):
        columns: list[str] = []
        for inner in value.values():
            columns += [k for k in inner if k not in columns]
        rows = [[f.word(k), *(f.value(c, inner.get(c)) for c in columns)] for k, inner in value.items()]
        story.append(_table(s, ["", *(f.t(c) for c in columns)], rows))
    elif isinstance(value, Mapping):
        scalars = [(f.t(k), f.value(k, v)) for k, v in value.items()
                   if not isinstance(v, Mapping | list) or (isinstance(v, list) and not v)]
        if scalars:
            story.append(_pairs(s, scalars))
        for k, v in value.items():
            if isinstance(v, Mapping) or (isinstance(v, list) and v):
                story += _generic(k, v, f, s, depth + 1) if isinstance(v, Mapping) else \
                    [_p(f.t(k), s.h2), *_records(v, f, s)]
    elif isinstance(value, list):
        story += _records(value, f, s)
    else:
        story.append(_p(f.value(key, value), s.body))
    return story


def _integrity(report: Mapping[str, Any], f: _Format, s: _Styles) -> list[Flowable]:
    integrity = report.get("integrity") or {}
    story: list[Flowable] = [_p(f.t("integrity"), s.h1)]
    rows = [(f.t("audit_chain"), _audit_text(integrity.get("audit"), f)),
            (f.t("config_sha256"), str(integrity.get("config_sha256", "–")))]
    audit = integrity.get("audit")
    if isinstance(audit, Mapping) and audit.get("head_hash"):
        rows.append((f.t("audit_chain") + " head", f"{audit.get('head_seq')}: {audit.get('head_hash')}"))
    story.append(_pairs(s, rows))
    rest = {k: v for k, v in integrity.items() if k not in ("audit", "config_sha256")}
    if rest:
        story += _generic("", rest, f, s, depth=1)
    resolutions: dict[str, str] = {}
    for room in report.get("rooms", []):
        for quantity, _ in QUANTITIES:
            if isinstance(room.get(quantity), Mapping) and room[quantity].get("resolution"):
                resolutions.setdefault(f.t(quantity), str(room[quantity]["resolution"]))
        preservation = room.get("preservation")
        if isinstance(preservation, Mapping) and preservation.get("source"):
            resolutions.setdefault(f.t("preservation"), f"{f.t('chart_resolution')}; {preservation['source']}")
    bases: dict[str, dict[str, list[str]]] = {}
    for room in report.get("rooms", []):
        for figure, basis in (room.get("key_figures_resolution") or {}).items():
            bases.setdefault(figure, {}).setdefault(str(basis), []).append(str(room.get("room")))
    for figure, texts in bases.items():
        for text, rooms in texts.items():
            where = "" if len(texts) == 1 else f" ({', '.join(rooms)})"
            resolutions[f.t(figure) + where] = text
    resolutions[f.t("charts")] = f.t("chart_resolution")
    story += [_p(f.t("resolutions"), s.h2), _pairs(s, list(resolutions.items()))]
    return story


def render_pdf(report: Mapping[str, Any], series: Mapping[str, Mapping[str, Sequence[Row]]], lang: Lang = "en",
               *, font_path: str | Path | None = None) -> bytes:
    """The report as PDF bytes. `series`: room id → quantity ("temperature", "humidity") → hourly rows
    (ts, mean, min, max, count); a room or quantity missing from it is drawn as "no data"."""
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be zh or en, not {lang!r}")
    font = font_for(lang, font_path)
    site = report.get("site", {})
    f = _Format(lang, str(site.get("timezone", "UTC")))
    s = _Styles(font, lang)
    story: list[Flowable] = [_Bookmark(f.t("key_figures")), *_first_page(report, f, s)]
    for index, room in enumerate(report.get("rooms", [])):
        marks = [_Bookmark(f.t("room_detail"))] if index == 0 else []
        marks.append(_Bookmark(f"{room.get('name', room.get('room'))} ({room.get('room')})", 1))
        story += [PageBreak(), *marks, *_room(room, series.get(str(room.get("room")), {}), report, f, s)]
    performance = report.get("alarm_performance")
    if isinstance(performance, Mapping):
        story += [PageBreak(), _Bookmark(f.t("alarm_performance")), *_generic("alarm_performance", performance, f, s)]
    history = report.get("alarm_history")
    if isinstance(history, Mapping):
        story += [PageBreak(), _Bookmark(f.t("alarm_history")),
                  *_alarm_history(history, f, s, safety="fire_and_security" not in report)]
    security = report.get("fire_and_security")
    if security is not None:
        story += [CondPageBreak(60 * mm), _Bookmark(f.t("fire_and_security")),
                  *_generic("fire_and_security", security, f, s)]
    for key, value in report.items():
        if key not in _HANDLED and value not in (None, {}, []):
            story += [CondPageBreak(60 * mm), _Bookmark(f.t(key)), *_generic(key, value, f, s)]
    story += [CondPageBreak(80 * mm), _Bookmark(f.t("integrity")), *_integrity(report, f, s)]
    period = report.get("period", {})
    footer = f"{f.t('title')} · {site.get('name', site.get('id', ''))} · " \
             f"{f.time(period.get('from'))} – {f.time(period.get('to'))}"

    def decorate(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.Color(0.4, 0.4, 0.4))
        canvas.drawString(MARGIN, 8 * mm, footer)
        canvas.restoreState()

    def numbered(*args: Any, **kwargs: Any) -> Canvas:
        return _NumberedCanvas(*args, font=font, page_text=f.t("page_of"), **kwargs)

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN + 4 * mm, title=f"{f.t('title')} – {site.get('name', '')}",
                            author="stackwatch", subject=footer, lang="zh-CN" if lang == "zh" else "en")
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate, canvasmaker=numbered)
    return out.getvalue()


def report_pdf(report: Mapping[str, Any], history: Any, lang: Lang = "en", *,
               font_path: str | Path | None = None) -> bytes:
    """`render_pdf` with the charts' hourly rows read from `history` (an `api.history.HistoryQuery`) for the
    report's rooms and period: what the CLI, the API and the monthly e-mail call."""
    font_for(lang, font_path)  # refuse a Chinese report before reading a year of history
    period = report.get("period", {})
    rooms = [str(room.get("room")) for room in report.get("rooms", [])]
    series = chart_series(history, rooms, float(period.get("from", 0)), float(period.get("to", 0)))
    return render_pdf(report, series, lang, font_path=font_path)
