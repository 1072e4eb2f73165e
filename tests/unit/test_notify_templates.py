"""Message texts (alarms/notify/templates.py): what a page names, both languages, and SMS that fit two segments."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.notify.links import link_url, sign
from alarms.notify.model import Message, NoticeKind
from alarms.notify.templates import (
    CAUSES,
    LANGUAGES,
    MEASURES,
    PHRASES,
    cause_words,
    fit_sms,
    is_gsm,
    render,
    sms_segments,
)
from alarms.ruleset import DEFAULT_PRIORITY

ZONE = "Asia/Shanghai"
NOW = datetime(2026, 3, 14, 14, 30, tzinfo=ZoneInfo(ZONE)).timestamp()
RAISED_AT = datetime(2026, 3, 14, 14, 5, tzinfo=ZoneInfo(ZONE)).timestamp()
LINK = link_url("https://sw.dag.example.cn", sign(b"k" * 32, 123, "zhang.wei", NOW + 86400))  # 84 characters
SITES = {"zh": "市档案馆", "en": "City Archive"}
ROOMS = {"zh": {"r101": "101 库房", "r102": "102 库房"}, "en": {"r101": "Stack room 101", "r102": "Stack room 102"}}
KIND_OF_EVENT = {NoticeKind.PAGE: EventKind.RAISED, NoticeKind.REPEAT: EventKind.REALARM,
                 NoticeKind.ESCALATION: EventKind.REALARM, NoticeKind.ACKNOWLEDGED: EventKind.ACKNOWLEDGED,
                 NoticeKind.RETURNED: EventKind.RETURNED, NoticeKind.SUMMARY: EventKind.RAISED}


def event(ticket: int = 123, cause: str = "humidity_high", value: float | None = 66.2, limit: float | None = 60.0,
          *, room: str | None = "r101", ts: float = RAISED_AT, kind: EventKind = EventKind.RAISED,
          priority: Priority | None = None, actor: str = "system", comment: str = "") -> AlarmEvent:
    return AlarmEvent(
        seq=ticket, ts=ts, alarm=f"th-{ticket}.humidity:{cause}", occurrence=ticket, kind=kind,
        state=AlarmState.ACTIVE_UNACK, previous=AlarmState.NORMAL,
        priority=priority or DEFAULT_PRIORITY.get(cause, Priority.MEDIUM), cause=cause, room=room, building="b1",
        site="main", source=f"th-{ticket}.humidity", value=value, limit=limit,
        message="RH above 60 % (paper stack limit, JGJ 25-2010 5.2.1)", actor=actor, comment=comment)


def page(events: list[AlarmEvent], language: str = "en", kind: NoticeKind = NoticeKind.PAGE,
         **options: object) -> Message:
    settings: dict[str, object] = {"site_name": SITES[language], "room_names": ROOMS[language],
                                   "language": language, "link": LINK, "timezone": ZONE, "now": NOW}
    settings.update(options)
    return render(kind, events, **settings)  # type: ignore[arg-type]


# --- words ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cause_has_words_in_every_language(language: str) -> None:
    assert set(DEFAULT_PRIORITY) <= set(CAUSES[language])
    for cause in DEFAULT_PRIORITY:
        assert cause_words(cause, language) != cause


def test_chinese_words_are_chinese() -> None:
    assert cause_words("humidity_high", "zh") == "湿度过高"
    assert cause_words("fire", "zh") == "火警"
    assert cause_words("water_leak", "zh") == "漏水"
    assert cause_words("humidity_high", "en") == "RH high"
    assert all(not is_gsm(words) for words in CAUSES["zh"].values())


def test_an_unknown_cause_still_reads_as_words() -> None:
    assert cause_words("battery_low", "en") == "Battery low"


def test_both_languages_have_the_same_phrases() -> None:
    assert set(PHRASES["zh"]) - {"months"} == set(PHRASES["en"]) - {"months"}


# --- a page ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_page_names_everything_in_every_form(language: str) -> None:
    message = page([event()], language)
    room = ROOMS[language]["r101"]
    for form in (message.text, message.html, message.sms):
        for needed in ("#123", "66.2", "60%" if language == "zh" else "60 %", room, LINK):
            assert needed in form, (needed, form)
    for form in (message.text, message.subject):
        assert SITES[language] in form
        assert cause_words("humidity_high", language) in form
    assert "14:05" in message.text
    assert message.tickets == (123,)
    assert message.link == LINK
    assert message.priority is Priority.HIGH
    assert message.language == language
    assert sms_segments(message.sms) <= 2


def test_english_page_formats() -> None:
    message = page([event()], "en")
    assert message.subject == "[HIGH] #123 RH high – Stack room 101, City Archive"
    assert message.sms == f"HIGH #123 RH high in Stack room 101: 66.2 % > 60 % since 14:05. City Archive Ack: {LINK}"
    assert "Value: RH 66.2 % > 60 %" in message.text
    assert "Since: 14:05" in message.text
    assert "Priority: HIGH" in message.text
    assert is_gsm(message.sms)


def test_chinese_page_formats() -> None:
    message = page([event()], "zh")
    assert message.subject == "【高】#123 市档案馆 101 库房 湿度过高"
    assert message.sms == f"【高】#123 湿度过高：101 库房 66.2%>60%，14:05起。市档案馆 确认：{LINK}"
    assert "数值：湿度 66.2% > 60%" in message.text
    assert "开始时间：14:05" in message.text
    assert "级别：高" in message.text


def test_a_page_without_a_measurement_says_what_and_where() -> None:
    message = page([event(cause="fire", value=1.0, limit=None)], "zh")
    assert message.sms.startswith("【紧急】#123 火警：101 库房，14:05起。")
    assert message.priority is Priority.CRITICAL
    assert "数值" not in message.text


def test_since_has_the_date_when_not_today_and_the_year_when_not_this_year() -> None:
    yesterday = RAISED_AT - 86400
    assert "since Mar 13 14:05" in page([event(ts=yesterday)], "en").sms
    assert "3月13日14:05起" in page([event(ts=yesterday)], "zh").sms
    last_year = datetime(2025, 12, 31, 23, 50, tzinfo=ZoneInfo(ZONE)).timestamp()
    assert "since 2025-12-31 23:50" in page([event(ts=last_year)], "en").sms


def test_local_time_is_the_site_clock() -> None:
    berlin = page([event()], "en", timezone="Europe/Berlin")  # 14:05 in Shanghai is 07:05 in Berlin
    assert "since 07:05" in berlin.sms


def test_temperature_in_an_english_sms_stays_gsm() -> None:
    message = page([event(cause="temperature_high", value=24.44, limit=24.0)], "en")
    assert "T 24.44 °C > 24 °C" in message.text
    assert "24.44 C > 24 C" in message.sms
    assert is_gsm(message.sms)


def test_a_site_wide_alarm() -> None:
    message = page([event(cause="gateway_comm_loss", value=None, limit=None, room=None)], "en")
    assert "Gateway down in whole site" in message.sms
    assert "全馆" in page([event(cause="gateway_comm_loss", value=None, limit=None, room=None)], "zh").text


def test_an_unnamed_room_shows_its_id() -> None:
    assert "r999" in page([event(room="r999")], "en").sms


# --- a group -----------------------------------------------------------------------------------------------------


def test_a_group_is_one_message_listing_its_tickets() -> None:
    group = [event(123, value=66.2), event(124, value=67.5, ts=RAISED_AT - 600), event(125, value=61.0)]
    message = page(group, "en")
    assert message.tickets == (124, 123, 125)  # oldest first
    assert "#124, #123, #125" in message.text
    assert message.sms.startswith("HIGH #124,#123,#125 RH high in Stack room 101: 67.5 % > 60 % since 13:55.")
    for ticket, value in ((123, "66.2"), (124, "67.5"), (125, "61")):
        assert f"#{ticket}: RH {value} % > 60 %" in message.text


def test_a_group_of_low_alarms_names_the_lowest_value() -> None:
    group = [event(1, "humidity_low", 41.0, 45.0), event(2, "humidity_low", 38.5, 45.0)]
    assert "38.5 % < 45 %" in page(group, "en").sms


def test_a_long_group_names_its_first_tickets_and_how_many_more() -> None:
    message = page([event(ticket) for ticket in range(200, 210)], "en")
    assert message.sms.startswith("HIGH #200,#201,#202 +7 ")
    assert message.tickets == tuple(range(200, 210))


def test_a_group_is_one_room_and_cause() -> None:
    with pytest.raises(ValueError, match="summary"):
        page([event(1), event(2, room="r102")], "en")
    with pytest.raises(ValueError):
        page([], "en")


# --- notices -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "words"), [("en", "still unacknowledged since 14:05 (level 2)"),
                                                   ("zh", "14:05起仍未确认（第2级）")])
def test_repeat_says_since_when_and_the_level(language: str, words: str) -> None:
    message = page([event()], language, NoticeKind.REPEAT, level=2)
    assert words in message.sms
    assert ("level 2" if language == "en" else "第2级") in message.text
    assert LINK in message.sms


def test_a_repeat_of_realarm_events_takes_since_from_the_raise() -> None:
    realarm = event(kind=EventKind.REALARM, ts=RAISED_AT + 3600)
    message = page([realarm], "en", NoticeKind.REPEAT, since=RAISED_AT)
    assert "still unacknowledged since 14:05" in message.sms
    assert "still unacknowledged since 15:05" in page([realarm], "en", NoticeKind.REPEAT).sms


@pytest.mark.parametrize(("language", "words"), [("en", "escalated to level 3, unacknowledged since 14:05"),
                                                   ("zh", "已升级至第3级，自14:05起无人确认")])
def test_escalation_says_the_level_and_since_when(language: str, words: str) -> None:
    message = page([event()], language, NoticeKind.ESCALATION, level=3)
    assert words in message.sms
    assert message.data["level"] == 3


@pytest.mark.parametrize(("language", "words"), [
    ("en", '#123 acknowledged by Zhang Wei at 14:20 "dehumidifier on"'),
    ("zh", "#123 已由张伟于14:20确认：“除湿机已开启”"),
])
def test_acknowledged_names_who_and_the_comment(language: str, words: str) -> None:
    comment = "dehumidifier on" if language == "en" else "除湿机已开启"
    name = "Zhang Wei" if language == "en" else "张伟"
    acked = event(kind=EventKind.ACKNOWLEDGED, ts=RAISED_AT + 900, actor="zhang.wei", comment=comment)
    message = page([acked], language, NoticeKind.ACKNOWLEDGED, person_names={"zhang.wei": name})
    assert message.sms.startswith(words)
    assert name in message.text and comment in message.text
    assert message.link == "" and LINK not in message.sms  # nothing left to acknowledge


def test_acknowledged_by_someone_without_a_name_shows_the_id() -> None:
    acked = event(kind=EventKind.ACKNOWLEDGED, actor="li.na")
    assert "acknowledged by li.na at 14:05." in page([acked], "en", NoticeKind.ACKNOWLEDGED).sms


@pytest.mark.parametrize(("language", "words"), [
    ("en", "back to normal at 15:10"), ("zh", "已恢复正常：湿度过高，101 库房 58.1%，15:10。"),
])
def test_returned_says_back_to_normal_with_the_value_now(language: str, words: str) -> None:
    back = event(kind=EventKind.RETURNED, ts=RAISED_AT + 3900, value=58.1)
    message = page([back], language, NoticeKind.RETURNED)
    assert words in message.sms
    assert ("58.1%" if language == "zh" else "58.1 %") in message.sms
    assert ">" not in message.sms.split(LINK)[0]


def test_summary_counts_rooms_and_causes_and_names_the_most_urgent() -> None:
    flood = [event(100 + n, "no_data", None, None, room="r102") for n in range(8)]
    flood += [event(200, "fire", room="r101", ts=RAISED_AT + 60), event(201, "humidity_high", room="r101")]
    message = page(flood, "en", NoticeKind.SUMMARY)
    assert message.subject == "[CRITICAL] 10 alarms at City Archive"
    assert message.priority is Priority.CRITICAL
    assert message.sms.startswith("CRITICAL 10 alarms #200,#201,#100 1 Fire, 1 RH high, 8 No data; "
                                  "2 in Stack room 101, 8 in Stack room 102. City Archive Ack: ")
    assert message.sms.count(LINK) == 1 and message.text.count(LINK) == 1
    assert "Stack room 102: 8 (8 No data)" in message.text
    assert "Most urgent: #200 CRITICAL Fire in Stack room 101, since 14:06" in message.text
    assert message.data["count"] == 10
    assert message.data["urgent"] == [200, 201, 100, 101, 102]
    assert len(message.tickets) == 10


def test_summary_in_chinese() -> None:
    flood = [event(100 + n, "no_data", None, None, room="r102") for n in range(3)] + [event(200, "water_leak")]
    message = page(flood, "zh", NoticeKind.SUMMARY)
    assert message.subject == "【紧急】市档案馆 共4条报警"
    assert message.sms.startswith("【紧急】4条报警 #200,#100,#101 漏水1条、无数据3条；101 库房 1条")
    assert message.sms.endswith(f" 确认：{LINK}")
    assert "102 库房：3条（无数据3条）" in message.text and "101 库房：1条（漏水1条）" in message.text


# --- html, data, languages ---------------------------------------------------------------------------------------


def test_html_escapes_names_and_the_link() -> None:
    message = page([event()], "en", room_names={"r101": "<script>&"}, link="https://x.example/ack/a?b=1&c=<2>")
    assert "<script>" not in message.html
    assert "&lt;script&gt;&amp;" in message.html
    assert 'href="https://x.example/ack/a?b=1&amp;c=&lt;2&gt;"' in message.html


def test_data_is_a_json_copy() -> None:
    message = page([event(), event(124)], "zh")
    data = json.loads(json.dumps(message.data, ensure_ascii=False))
    assert data["tickets"] == [123, 124]
    assert data["kind"] == "page" and data["priority"] == "high" and data["site_name"] == "市档案馆"
    assert data["events"][0]["value"] == 66.2 and data["events"][0]["unit"] == "%"
    assert data["events"][0]["room_name"] == "101 库房" and data["events"][0]["what"] == "湿度过高"


def test_a_unit_in_the_event_wins() -> None:
    message = page([replace(event(), extra={"unit": "%RH"})], "en")
    assert "66.2 %RH > 60 %RH" in message.sms


def test_an_unknown_language_falls_back_to_english() -> None:
    message = render(NoticeKind.PAGE, [event()], site_name="Archives", room_names={}, language="fr", link=LINK,
                     timezone=ZONE, now=NOW)
    assert message.language == "en" and "RH high" in message.sms


def test_without_a_link_there_is_no_link_line() -> None:
    message = page([event()], "en", link="")
    assert "Ack:" not in message.sms and "Acknowledge" not in message.text and "<a " not in message.html


# --- SMS length ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("库" * 70, 1), ("库" * 71, 2), ("库" * 134, 2), ("库" * 135, 3),
    ("€" * 80, 1), ("€" * 81, 2), ("€" * 152, 2), ("€" * 153, 3),  # two septets each, never split: 76 a segment
    ("😀" * 35, 1), ("😀" * 36, 2), ("😀" * 66, 2), ("😀" * 67, 3),  # two UCS-2 units each, never split: 33
    ("a" * 159 + "°", 3), ("a" * 69 + "°", 1),  # one non-GSM character makes it all UCS-2
])
def test_sms_segments_at_the_boundaries(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_an_escape_pair_never_straddles_two_segments() -> None:
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3  # 306 septets, but the € cannot be split


def test_fit_sms_keeps_head_and_tail_whole() -> None:
    head, tail = "HIGH #123 ", " Ack: " + "x" * 80
    fitted = fit_sms(head, "word " * 100, tail)
    assert fitted.startswith(head) and fitted.endswith(tail)
    assert sms_segments(fitted) == 2 and "..." in fitted and is_gsm(fitted)
    chinese = fit_sms("【高】#123 ", "湿度过高" * 50, " 确认：" + "x" * 80)
    assert chinese.startswith("【高】#123 湿度过高") and chinese.endswith("…" + " 确认：" + "x" * 80)
    assert sms_segments(chinese) == 2
    assert fit_sms("a ", "short", " b") == "a short b"


def test_fit_sms_never_ends_a_cut_in_digits() -> None:
    fitted = fit_sms("#1 ", "x" * 290 + " 66.25 % > 60 %", " " + "y" * 5)
    assert "66" not in fitted and sms_segments(fitted) <= 2


def test_fit_sms_sends_a_long_message_rather_than_break_the_link() -> None:
    link = "https://example.cn/ack/" + "x" * 400
    assert fit_sms("#1 ", "body", " " + link) == "#1 " + link


def _flood(cause: str) -> list[AlarmEvent]:
    return [event(10_000 + n, cause, room=f"r{n % 7}", priority=Priority.CRITICAL) for n in range(40)]


LONG_ROOMS = {
    "zh": {f"r{n}": f"东区{n}号特藏库房（善本古籍）" for n in range(7)}
    | {"r101": "东区第三特藏库房（善本古籍与字画）"},
    "en": {f"r{n}": f"East wing special collections vault {n}" for n in range(7)}
    | {"r101": "East wing special collections vault 3 (rare books)"},
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_cause_fits_two_segments_with_ticket_and_link_whole(language: str, kind: NoticeKind) -> None:
    site = "上海市城市建设档案馆" if language == "zh" else "Municipal Urban Construction Archives of Shanghai"
    link = link_url("https://sw.dag.example.cn", sign(b"k" * 32, 10_000_000, "zhang.wei", 2e9))
    assert len(link) >= 80
    for cause in DEFAULT_PRIORITY:
        measured = cause in MEASURES
        single = event(10_000_000, cause, 66.25 if measured else None, 60.0 if measured else None,
                       kind=KIND_OF_EVENT[kind], ts=RAISED_AT - 2 * 86400, actor="zhang.wei",
                       comment="除湿机已开启，门窗已关闭，持续观察中" * 3 if language == "zh" else
                       "dehumidifier switched on, doors closed, watching it " * 3)
        for events in ([single], [replace(single, occurrence=10_000_000 + n) for n in range(12)], _flood(cause)):
            if kind is not NoticeKind.SUMMARY and events[0].room != events[-1].room:
                continue
            message = page(events, language, kind, site_name=site, room_names=LONG_ROOMS[language], link=link,
                           level=3, person_names={"zhang.wei": "张伟" if language == "zh" else "Zhang Wei"})
            assert sms_segments(message.sms) <= 2, (cause, message.sms)
            assert f"#{events[0].occurrence}" in message.sms or kind is NoticeKind.SUMMARY
            assert (link in message.sms) == (kind is not NoticeKind.ACKNOWLEDGED)
