"""What a page says, in Chinese and English: subject, plain text, HTML, SMS and a JSON copy.

A page must let someone decide from the phone's lock screen whether to get up:
site, room, what happened, the value against its limit, since when, how urgent,
the ticket to quote and the link that acknowledges it. The SMS is the tightest
form: two segments at most (longer ones arrive out of order or not at all on
some networks), so `fit_sms` shortens the description and never the ticket or
the link, and the SMS body puts what matters most first.

Texts are plain `str.format` templates in one dict per language, so a
translator edits data, not code.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from ..model import AlarmEvent, Priority
from .model import Message, NoticeKind

LANGUAGES = ("zh", "en")
FALLBACK_LANGUAGE = "en"  # a person with an unknown language still gets paged
SMS_SEGMENTS = 2
URGENT_IN_SUMMARY = 5
TICKETS_IN_SMS = 3

# ---------------------------------------------------------------------------------------------------------------
# SMS length (3GPP TS 23.038): GSM 7-bit when every character allows it, otherwise UCS-2.

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")  # sent as ESC + character: two septets
_GSM_SINGLE, _GSM_PART = 160, 153  # a concatenated segment loses 7 septets to its header
_UCS2_SINGLE, _UCS2_PART = 70, 67
_GSM_FRIENDLY = str.maketrans({"°": "", "–": "-", "—": "-", "…": "...", "“": '"', "”": '"', "‘": "'", "’": "'"})
_CUT_TRAILING = " ,;:.-<>=，。；：、（("
_DIGITS = "0123456789"


def is_gsm(text: str) -> bool:
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def _unit_costs(text: str) -> list[int]:
    if is_gsm(text):
        return [2 if char in GSM_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]  # outside the BMP: a surrogate pair


def sms_segments(text: str) -> int:
    """Segments the network bills and reassembles; an escape pair or surrogate pair never straddles two."""
    costs = _unit_costs(text)
    single, part = (_GSM_SINGLE, _GSM_PART) if is_gsm(text) else (_UCS2_SINGLE, _UCS2_PART)
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def fit_sms(head: str, body: str, tail: str = "", *, segments: int = SMS_SEGMENTS) -> str:
    """`head` + `body` + `tail` in `segments`, shortening only `body`; the ticket (head) and link (tail) stay whole.

    "..." ends a GSM text, since "…" would turn it into UCS-2 and cost half the
    room; a text that is UCS-2 anyway gets the one-character "…". When even an
    empty body does not fit, the message goes out longer rather than with a
    broken link.
    """
    whole = head + body + tail
    if sms_segments(whole) <= segments:
        return whole
    kept = {ellipsis: _longest_prefix(head, body, tail, ellipsis, segments) for ellipsis in ("…", "...")}
    fitting = [(length, ellipsis) for ellipsis, length in kept.items() if length is not None]
    if not fitting:
        return head.rstrip() + tail
    length, ellipsis = max(fitting, key=lambda choice: choice[0])  # a tie keeps "…", the first
    return _cut(head, body, tail, ellipsis, length)


def _cut(head: str, body: str, tail: str, ellipsis: str, keep: int) -> str:
    """A cut never ends in digits: "66.2…" of 66.25 %, or "r1022…" of "r102 2条", would be read as a value."""
    kept = body[:keep]
    if keep < len(body):
        kept = kept.rstrip(_CUT_TRAILING + _DIGITS)
    return head + kept + ellipsis + tail


def _longest_prefix(head: str, body: str, tail: str, ellipsis: str, segments: int) -> int | None:
    """How much of `body` fits (by bisection: a shorter prefix never costs more), or None when nothing does."""
    if sms_segments(_cut(head, body, tail, ellipsis, 0)) > segments:
        return None
    low, high = 0, len(body)
    while low < high:
        middle = (low + high + 1) // 2
        if sms_segments(_cut(head, body, tail, ellipsis, middle)) <= segments:
            low = middle
        else:
            high = middle - 1
    return low


def _fit_sms_heads(heads: list[str], body: str, tail: str) -> str:
    sms = ""
    for head in heads:
        sms = fit_sms(*_gsm_friendly(head, body, tail))
        if sms_segments(sms) <= SMS_SEGMENTS:
            return sms
    return sms


def _gsm_friendly(head: str, body: str, tail: str) -> tuple[str, str, str]:
    """°C as C and typographic dashes as '-' when that is all that kept a text out of GSM: 306 septets, not 134."""
    plain = tuple(part.translate(_GSM_FRIENDLY) for part in (head, body, tail))
    if is_gsm("".join(plain)) and not is_gsm(head + body + tail):
        return plain[0], plain[1], plain[2]
    return head, body, tail


# ---------------------------------------------------------------------------------------------------------------
# Causes in words (every cause of alarms.ruleset.DEFAULT_PRIORITY) and the measurement each one compares.

CAUSES: dict[str, dict[str, str]] = {
    "zh": {
        "fire": "火警", "smoke": "烟感报警", "water_leak": "漏水",
        "suppression_pre_discharge": "气体灭火即将喷放", "suppression_discharge": "气体灭火已喷放",
        "door_forced": "闭馆时开门", "intrusion": "闭馆时有人活动",
        "fire_pre_alarm": "火灾预警", "fire_trouble": "火灾探测故障", "gateway_comm_loss": "网关离线",
        "temperature_high": "温度过高", "temperature_low": "温度过低",
        "humidity_high": "湿度过高", "humidity_low": "湿度过低",
        "mould_risk": "霉变风险", "condensation_risk": "结露风险",
        "fire_zone_disabled": "火灾探测区已屏蔽", "leak_cable_fault": "漏水感应线断线",
        "door_held_open": "门长时间未关",
        "temperature_rate": "温度变化过快", "humidity_rate": "湿度变化过快",
        "temperature_fluctuation": "温度日波动过大", "humidity_fluctuation": "湿度日波动过大",
        "comm_loss": "设备通信中断", "no_data": "无数据", "sensor_fault": "传感器故障",
        "leak_contamination": "漏水感应线污染", "calibration_due": "校准到期",
        "notification_failure": "报警通知发送失败",
        "control_failure": "控制指令未执行", "control_interlock": "消防/漏水联锁已动作",
        "control_input": "控制回路缺少有效读数",
    },
    "en": {
        "fire": "Fire", "smoke": "Smoke", "water_leak": "Water leak",
        "suppression_pre_discharge": "Gas suppression about to discharge",
        "suppression_discharge": "Gas suppression discharged",
        "door_forced": "Door opened out of hours", "intrusion": "Motion out of hours",
        "fire_pre_alarm": "Fire pre-alarm", "fire_trouble": "Fire detection trouble",
        "gateway_comm_loss": "Gateway down",
        "temperature_high": "Temperature high", "temperature_low": "Temperature low",
        "humidity_high": "RH high", "humidity_low": "RH low",
        "mould_risk": "Mould risk", "condensation_risk": "Condensation risk",
        "fire_zone_disabled": "Fire zone disabled", "leak_cable_fault": "Leak cable broken",
        "door_held_open": "Door held open",
        "temperature_rate": "Temperature changing fast", "humidity_rate": "RH changing fast",
        "temperature_fluctuation": "Temperature swing too large", "humidity_fluctuation": "RH swing too large",
        "comm_loss": "Device not answering", "no_data": "No data", "sensor_fault": "Sensor fault",
        "leak_contamination": "Leak cable contaminated", "calibration_due": "Calibration due",
        "notification_failure": "Alarm notifications failing",
        "control_failure": "Control command not followed", "control_interlock": "Fire/leak interlock acted",
        "control_input": "Control loop without a good reading",
    },
}


@dataclass(frozen=True, slots=True)
class Measure:
    quantity: str  # key of a `measure.*` phrase
    unit: str
    comparison: str  # how the value stands against the limit while the alarm holds
    worst: str = "max"  # which of a group's values tells the state of the room


MEASURES: dict[str, Measure] = {
    "temperature_high": Measure("t", "°C", ">"),
    "temperature_low": Measure("t", "°C", "<", "min"),
    "humidity_high": Measure("rh", "%", ">"),
    "humidity_low": Measure("rh", "%", "<", "min"),
    "mould_risk": Measure("rh", "%", ">"),
    "temperature_rate": Measure("t_rate", "°C/h", ">"),
    "humidity_rate": Measure("rh_rate", "%/h", ">"),
    "temperature_fluctuation": Measure("t_swing", "°C", ">"),
    "humidity_fluctuation": Measure("rh_swing", "%", ">"),
    "condensation_risk": Measure("dew_margin", "K", "<", "min"),
}

# ---------------------------------------------------------------------------------------------------------------
# Phrases. Fields: priority, tickets, what, room, site, since, at, who, comment, value, level, count, rooms, causes.

PHRASES: dict[str, dict[str, str]] = {
    "zh": {
        "priority.critical": "紧急", "priority.high": "高", "priority.medium": "中", "priority.low": "低",
        "site_wide": "全馆", "sep": "：", "list_sep": "、", "amount": "{number}{unit}",
        "compare": "{value} {op} {limit}", "compare.sms": "{value}{op}{limit}",
        "date": "{month}月{day}日{time}",
        "measure.t": "温度", "measure.rh": "湿度", "measure.t_rate": "温度变化", "measure.rh_rate": "湿度变化",
        "measure.t_swing": "温度日波动", "measure.rh_swing": "湿度日波动", "measure.dew_margin": "高于露点",
        "label.site": "地点", "label.room": "库房", "label.what": "报警", "label.value": "数值",
        "label.since": "开始时间", "label.priority": "级别", "label.tickets": "工单", "label.source": "来源",
        "label.details": "说明", "label.level": "通知级别", "label.who": "确认人", "label.at": "时间",
        "label.comment": "备注", "label.link": "确认", "label.count": "报警数", "label.urgent": "最紧急",
        "level": "第{level}级",
        "subject.page": "【{priority}】{tickets} {site} {room} {what}",
        "subject.repeat": "【{priority}】仍未确认 {tickets} {site} {room} {what}",
        "subject.escalation": "【{priority}】已升级至第{level}级 {tickets} {site} {room} {what}",
        "subject.acknowledged": "已确认 {tickets} {site} {room} {what}",
        "subject.returned": "已恢复正常 {tickets} {site} {room} {what}",
        "subject.summary": "【{priority}】{site} 共{count}条报警",
        "headline.page": "{site} {room}：{what}",
        "headline.repeat": "自{since}起仍未确认（第{level}级）：{site} {room} {what}",
        "headline.escalation": "已升级至第{level}级，自{since}起无人确认：{site} {room} {what}",
        "headline.acknowledged": "{tickets} 已由{who}于{at}确认：{site} {room} {what}",
        "headline.returned": "{tickets} 已于{at}恢复正常：{site} {room} {what}",
        "headline.summary": "{site}自{since}起共{count}条报警",
        "sms.head": "【{priority}】{tickets} ",
        "sms.head.notice": "{tickets} ",
        "sms.head.summary": "【{priority}】{count}条报警 {tickets} ",
        "sms.value": " {value}", "sms.now_value": "，当前{value}",
        "sms.comment": "：“{comment}”",
        "sms.page": "{what}：{room}{value}，{since}起。{site}",
        "sms.repeat": "{what}：{room}，{since}起仍未确认（第{level}级）{now_value}。{site}",
        "sms.escalation": "{what}：{room}，已升级至第{level}级，自{since}起无人确认{now_value}。{site}",
        "sms.acknowledged": "已由{who}于{at}确认{comment}。{what}：{room}。{site}",
        "sms.returned": "已恢复正常：{what}，{room}{value}，{at}。{site}",
        "sms.summary": "{causes}；{rooms}。{site}",
        "sms.link": " 确认：{link}",
        "summary.room": "{room} {count}条", "summary.cause": "{what}{count}条",
        "summary.urgent": "{ticket} 【{priority}】{room} {what}，{since}",
        "summary.room_detail": "{count}条（{causes}）",
    },
    "en": {
        "priority.critical": "CRITICAL", "priority.high": "HIGH", "priority.medium": "MEDIUM", "priority.low": "LOW",
        "site_wide": "whole site", "sep": ": ", "list_sep": ", ", "amount": "{number} {unit}",
        "compare": "{value} {op} {limit}", "compare.sms": "{value} {op} {limit}",
        "date": "{month_name} {day} {time}",
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        "measure.t": "T", "measure.rh": "RH", "measure.t_rate": "T rate", "measure.rh_rate": "RH rate",
        "measure.t_swing": "T 24 h swing", "measure.rh_swing": "RH 24 h swing",
        "measure.dew_margin": "Above dew point",
        "label.site": "Site", "label.room": "Room", "label.what": "Alarm", "label.value": "Value",
        "label.since": "Since", "label.priority": "Priority", "label.tickets": "Ticket", "label.source": "Source",
        "label.details": "Details", "label.level": "Level", "label.who": "By", "label.at": "At",
        "label.comment": "Comment", "label.link": "Acknowledge", "label.count": "Alarms",
        "label.urgent": "Most urgent",
        "level": "level {level}",
        "subject.page": "[{priority}] {tickets} {what} – {room}, {site}",
        "subject.repeat": "[{priority}] Still unacknowledged {tickets}: {what} – {room}, {site}",
        "subject.escalation": "[{priority}] Escalated to level {level} {tickets}: {what} – {room}, {site}",
        "subject.acknowledged": "Acknowledged {tickets}: {what} – {room}, {site}",
        "subject.returned": "Back to normal {tickets}: {what} – {room}, {site}",
        "subject.summary": "[{priority}] {count} alarms at {site}",
        "headline.page": "{what} in {room}, {site}",
        "headline.repeat": "Still unacknowledged since {since} (level {level}): {what} in {room}, {site}",
        "headline.escalation": "Escalated to level {level}, unacknowledged since {since}: {what} in {room}, {site}",
        "headline.acknowledged": "{tickets} acknowledged by {who} at {at}: {what} in {room}, {site}",
        "headline.returned": "{tickets} back to normal at {at}: {what} in {room}, {site}",
        "headline.summary": "{count} alarms at {site} since {since}",
        "sms.head": "{priority} {tickets} ",
        "sms.head.notice": "{tickets} ",
        "sms.head.summary": "{priority} {count} alarms {tickets} ",
        "sms.value": ": {value}", "sms.now_value": ", now {value}",
        "sms.comment": ' "{comment}"',
        "sms.page": "{what} in {room}{value} since {since}. {site}",
        "sms.repeat": "{what} in {room}, still unacknowledged since {since} (level {level}){now_value}. {site}",
        "sms.escalation": "{what} in {room}, escalated to level {level}, unacknowledged since {since}{now_value}. "
                          "{site}",
        "sms.acknowledged": "acknowledged by {who} at {at}{comment}. {what} in {room}. {site}",
        "sms.returned": "back to normal at {at}: {what} in {room}{value}. {site}",
        "sms.summary": "{causes}; {rooms}. {site}",
        "sms.link": " Ack: {link}",
        "summary.room": "{count} in {room}", "summary.cause": "{count} {what}",
        "summary.urgent": "{ticket} {priority} {what} in {room}, since {since}",
        "summary.room_detail": "{count} ({causes})",
    },
}

# Kinds that carry the acknowledge link; a returned alarm still waits for one (ISA-18.2 returned-unacknowledged).
_CARRY_LINK = frozenset({NoticeKind.PAGE, NoticeKind.REPEAT, NoticeKind.ESCALATION, NoticeKind.SUMMARY,
                         NoticeKind.RETURNED})


# ---------------------------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True, slots=True)
class _Context:
    phrases: Mapping[str, str]
    language: str
    zone: ZoneInfo
    now: float
    site: str
    room_names: Mapping[str, str]
    person_names: Mapping[str, str]

    def say(self, key: str, **fields: object) -> str:
        return self.phrases[key].format(**fields)


@dataclass(slots=True)
class _Parts:
    """One message before assembly: every form derives from these, so they cannot disagree."""

    subject: str
    headline: str
    rows: list[tuple[str, str]]
    sms_heads: list[str]  # alternatives, the most complete first: `_fit_sms_heads` takes the first that fits
    sms_body: str
    data: dict[str, object] = field(default_factory=dict)


def render(kind: NoticeKind, events: Sequence[AlarmEvent], *, site_name: str, room_names: Mapping[str, str],
           language: str, link: str, timezone: str, now: float, level: int = 1,
           person_names: Mapping[str, str] | None = None, since: float | None = None) -> Message:
    """One message for `events`: one room and cause (a group), or any mix for a SUMMARY.

    `level` is the escalation level being paged (REPEAT, ESCALATION);
    `person_names` turns the acknowledging person's id into a name; `since`
    is when the group went active, for a REPEAT or ESCALATION rendered from
    REALARM events, whose own time is the re-alarm (default: the earliest event).
    An unknown language falls back to English rather than leave someone unpaged.
    """
    ordered = sorted(events, key=lambda event: (event.ts, event.occurrence))
    if not ordered:
        raise ValueError("a message needs at least one event")
    if kind is not NoticeKind.SUMMARY and len({event.group_key for event in ordered}) > 1:
        raise ValueError(f"a {kind.value} covers one room and cause; use a summary for several")
    language = language if language in PHRASES else FALLBACK_LANGUAGE
    context = _Context(PHRASES[language], language, ZoneInfo(timezone), now, site_name or ordered[0].site,
                       room_names, person_names or {})
    started = ordered[0].ts if since is None else since
    parts = (_summary(ordered, context) if kind is NoticeKind.SUMMARY
             else _group(kind, ordered, context, level, started))
    shown_link = link if kind in _CARRY_LINK else ""
    return _assemble(kind, ordered, parts, context, shown_link, level)


def _assemble(kind: NoticeKind, events: list[AlarmEvent], parts: _Parts, context: _Context, link: str,
              level: int) -> Message:
    tickets = _tickets(events)
    tail = context.say("sms.link", link=link) if link else ""
    sms = _fit_sms_heads(parts.sms_heads, parts.sms_body, tail)
    data: dict[str, object] = {
        "kind": kind.value, "priority": _priority(events).value, "site": events[0].site, "site_name": context.site,
        "language": context.language, "tickets": list(tickets), "link": link, "level": level,
        "subject": parts.subject, "events": [_event_data(event, context) for event in events], **parts.data,
    }
    return Message(kind=kind, priority=_priority(events), subject=parts.subject,
                   text=_plain_text(parts, context, link), sms=sms, html=_html(parts, context, link),
                   tickets=tickets, link=link, language=context.language, data=data)


def _plain_text(parts: _Parts, context: _Context, link: str) -> str:
    separator = context.say("sep")
    lines = [parts.headline, "", *(f"{label}{separator}{value}" if label else f"  {value}"
                                   for label, value in parts.rows)]
    if link:
        lines += ["", f"{context.say('label.link')}{separator}{link}"]
    return "\n".join(lines) + "\n"


def _html(parts: _Parts, context: _Context, link: str) -> str:
    escape = html.escape
    rows = "".join(f'<tr><th align="left">{escape(label)}</th><td>{escape(value)}</td></tr>'
                   for label, value in parts.rows)
    anchor = f'<p><a href="{escape(link, quote=True)}">{escape(context.say("label.link"))}</a></p>' if link else ""
    return (f'<div lang="{context.language}"><p><strong>{escape(parts.headline)}</strong></p>'
            f"<table>{rows}</table>{anchor}</div>")


# --- one room and cause --------------------------------------------------------------------------------------------


def _group(kind: NoticeKind, events: list[AlarmEvent], context: _Context, level: int, since: float) -> _Parts:
    first = events[0]
    fields = _group_fields(events, context, level, since)
    value = _measure_text(_worst(events), context, against_limit=kind is not NoticeKind.RETURNED, for_sms=True)
    fields["value"] = context.say("sms.value", value=value) if value else ""
    fields["now_value"] = context.say("sms.now_value", value=value) if value else ""  # a repeat: the page said why
    rows = _common_rows(context, fields) + _kind_rows(kind, events, context, fields)
    return _Parts(
        subject=context.say(f"subject.{kind.value}", **fields),
        headline=context.say(f"headline.{kind.value}", **fields),
        rows=rows,
        sms_heads=[context.say("sms.head.notice" if kind in (NoticeKind.ACKNOWLEDGED, NoticeKind.RETURNED)
                               else "sms.head", priority=fields["priority"], tickets=tickets)
                   for tickets in _tickets_sms(events)],
        sms_body=context.say(f"sms.{kind.value}", **fields),
        data={"what": fields["what"], "room_name": fields["room"], "cause": first.cause, "room": first.room},
    )


def _group_fields(events: list[AlarmEvent], context: _Context, level: int, since: float) -> dict[str, object]:
    last, first = events[-1], events[0]
    comment = last.comment.strip()
    return {
        "priority": _priority_word(_priority(events), context), "tickets": _tickets_text(events),
        "what": _what(first.cause, context), "room": _room(first.room, context), "site": context.site,
        "since": _when(since, context), "at": _when(last.ts, context), "level": level,
        "who": context.person_names.get(last.actor, last.actor) or "?",
        "comment": context.say("sms.comment", comment=comment) if comment else "", "comment_text": comment,
    }


def _common_rows(context: _Context, fields: Mapping[str, object]) -> list[tuple[str, str]]:
    label = _labels(context)
    return [(label["site"], context.site), (label["room"], str(fields["room"])), (label["what"], str(fields["what"])),
            (label["priority"], str(fields["priority"])), (label["tickets"], str(fields["tickets"]))]


def _kind_rows(kind: NoticeKind, events: list[AlarmEvent], context: _Context,
               fields: Mapping[str, object]) -> list[tuple[str, str]]:
    label = _labels(context)
    if kind is NoticeKind.ACKNOWLEDGED:
        rows = [(label["who"], str(fields["who"])), (label["at"], str(fields["at"]))]
        return rows + ([(label["comment"], str(fields["comment_text"]))] if fields["comment_text"] else [])
    if kind is NoticeKind.RETURNED:
        return [(label["at"], str(fields["at"])), *_event_rows(events, context, against_limit=False)]
    rows = [(label["since"], str(fields["since"]))]
    if kind in (NoticeKind.REPEAT, NoticeKind.ESCALATION):
        rows.append((label["level"], context.say("level", level=fields["level"])))
    return rows + _event_rows(events, context, against_limit=True)


def _event_rows(events: list[AlarmEvent], context: _Context, *, against_limit: bool) -> list[tuple[str, str]]:
    """One event: value, source, details on their own rows. A group: one row per ticket."""
    label = _labels(context)
    if len(events) == 1:
        event = events[0]
        value = _measure_text(event, context, against_limit=against_limit)
        rows = [(label["value"], value)] if value else []
        rows.append((label["source"], event.source))
        return rows + ([(label["details"], event.message)] if event.message else [])
    rows = []
    for event in events:
        facts = [_measure_text(event, context, against_limit=against_limit), _when(event.ts, context), event.source]
        rows.append((f"#{event.occurrence}", context.say("list_sep").join(fact for fact in facts if fact)))
    return rows


# --- a flood -----------------------------------------------------------------------------------------------------


def _summary(events: list[AlarmEvent], context: _Context) -> _Parts:
    label = _labels(context)
    priority = _priority_word(_priority(events), context)
    fields = {"priority": priority, "count": len(events), "site": context.site, "since": _when(events[0].ts, context)}
    urgent = _most_urgent(events)
    rows = [(label["site"], context.site), (label["priority"], priority), (label["count"], str(len(events))),
            (label["since"], str(fields["since"])), *_room_rows(events, context)]
    rows += [(label["urgent"] if index == 0 else "", _urgent_line(event, context))
             for index, event in enumerate(urgent)]
    return _Parts(
        subject=context.say("subject.summary", **fields),
        headline=context.say("headline.summary", **fields),
        rows=rows,
        sms_heads=[context.say("sms.head.summary", priority=priority, count=len(events), tickets=tickets)
                   for tickets in _tickets_sms(urgent, count_the_rest=False)],
        sms_body=context.say("sms.summary", site=context.site, rooms=_room_counts(events, context),
                             causes=_cause_counts(events, context)),
        data={"count": len(events), "urgent": [event.occurrence for event in urgent],
              "by_room": dict(Counter(event.room or "" for event in events)),
              "by_cause": dict(Counter(event.cause for event in events))},
    )


def _most_urgent(events: list[AlarmEvent]) -> list[AlarmEvent]:
    """The most urgent first, the oldest first within a priority: one per ticket."""
    chosen: dict[int, AlarmEvent] = {}
    for event in sorted(events, key=lambda event: (event.priority.rank, event.ts)):
        chosen.setdefault(event.occurrence, event)
    return list(chosen.values())[:URGENT_IN_SUMMARY]


def _urgent_line(event: AlarmEvent, context: _Context) -> str:
    return context.say("summary.urgent", ticket=f"#{event.occurrence}",
                       priority=_priority_word(event.priority, context), room=_room(event.room, context),
                       what=_what(event.cause, context), since=_when(event.ts, context))


def _by(events: list[AlarmEvent], key: Callable[[AlarmEvent], str]) -> list[tuple[str, list[AlarmEvent]]]:
    """The most urgent first, then the largest: one fire among forty no-data alarms must survive a cut SMS."""
    shares: dict[str, list[AlarmEvent]] = {}
    for event in events:
        shares.setdefault(key(event), []).append(event)
    return sorted(shares.items(), key=lambda share: (_priority(share[1]).rank, -len(share[1])))


def _room_rows(events: list[AlarmEvent], context: _Context) -> list[tuple[str, str]]:
    return [(room, context.say("summary.room_detail", count=len(members), causes=_cause_counts(members, context)))
            for room, members in _by(events, lambda event: _room(event.room, context))]


def _room_counts(events: list[AlarmEvent], context: _Context) -> str:
    return context.say("list_sep").join(context.say("summary.room", room=room, count=len(members))
                                        for room, members in _by(events, lambda event: _room(event.room, context)))


def _cause_counts(events: list[AlarmEvent], context: _Context) -> str:
    return context.say("list_sep").join(context.say("summary.cause", what=what, count=len(members))
                                        for what, members in _by(events, lambda event: _what(event.cause, context)))


# --- words ---------------------------------------------------------------------------------------------------------


def cause_words(cause: str, language: str) -> str:
    """A cause nobody translated yet still reads as words, not as an identifier."""
    table = CAUSES.get(language, CAUSES[FALLBACK_LANGUAGE])
    return table.get(cause) or cause.replace("_", " ").capitalize()


def _what(cause: str, context: _Context) -> str:
    return cause_words(cause, context.language)


def _room(room: str | None, context: _Context) -> str:
    if room is None:
        return context.say("site_wide")
    return context.room_names.get(room) or room


def _labels(context: _Context) -> dict[str, str]:
    return {key.removeprefix("label."): text for key, text in context.phrases.items() if key.startswith("label.")}


def _priority(events: Sequence[AlarmEvent]) -> Priority:
    return min((event.priority for event in events), key=lambda priority: priority.rank)


def _priority_word(priority: Priority, context: _Context) -> str:
    return context.say(f"priority.{priority.value}")


def _tickets(events: Sequence[AlarmEvent]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(event.occurrence for event in events))


def _tickets_text(events: Sequence[AlarmEvent]) -> str:
    return ", ".join(f"#{ticket}" for ticket in _tickets(events))


def _tickets_sms(events: Sequence[AlarmEvent], *, count_the_rest: bool = True) -> list[str]:
    """The tickets an SMS can name, most first: a long group names its first few and how many more.

    A reply needs one ticket and the link covers them all, so when room is
    short fewer tickets are named rather than the description cut to nothing.
    """
    tickets = _tickets(events)
    choices = []
    for shown in range(min(len(tickets), TICKETS_IN_SMS), 0, -1):
        text = ",".join(f"#{ticket}" for ticket in tickets[:shown])
        hidden = len(tickets) - shown
        choices.append(f"{text} +{hidden}" if count_the_rest and hidden > 0 else text)
    return choices


def _when(ts: float, context: _Context) -> str:
    """HH:MM on the site's clock; with the date when not today, with the year when not this year."""
    local = datetime.fromtimestamp(ts, context.zone)
    today = datetime.fromtimestamp(context.now, context.zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return clock
    if local.year != today.year:
        return f"{local.date().isoformat()} {clock}"
    months = context.phrases.get("months", "").split()
    month_name = months[local.month - 1] if months else str(local.month)
    return context.say("date", month=local.month, month_name=month_name, day=local.day, time=clock)


def format_number(value: float) -> str:
    """At most two decimals and no trailing zeros: 66.2, 60, 3.33."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _measure_text(event: AlarmEvent, context: _Context, *, against_limit: bool, for_sms: bool = False) -> str:
    """'RH 66.2 % > 60 %' while it holds, 'RH 58.1 %' once back; empty for causes without a measurement.

    The SMS leaves the quantity out (its "RH high" already says what the
    number is) and, in Chinese, the spaces: every character counts in 134.
    """
    measure = MEASURES.get(event.cause)
    if measure is None or event.value is None:
        return ""
    unit = event.extra.get("unit", measure.unit)
    value = _with_unit(event.value, unit, context)
    if not for_sms:
        value = f"{context.say(f'measure.{measure.quantity}')} {value}"
    if against_limit and event.limit is not None:
        value = context.say("compare.sms" if for_sms else "compare", value=value, op=measure.comparison,
                            limit=_with_unit(event.limit, unit, context))
    return value


def _with_unit(value: float, unit: str, context: _Context) -> str:
    return context.say("amount", number=format_number(value), unit=unit).rstrip()


def _worst(events: list[AlarmEvent]) -> AlarmEvent:
    """The event whose value tells the state of the room: the highest of high alarms, the lowest of low ones."""
    measure = MEASURES.get(events[0].cause)
    valued = [event for event in events if event.value is not None]
    if measure is None or not valued:
        return events[-1]
    pick = min if measure.worst == "min" else max
    return pick(valued, key=lambda event: event.value or 0.0)


def _event_data(event: AlarmEvent, context: _Context) -> dict[str, object]:
    measure = MEASURES.get(event.cause)
    return {
        "ticket": event.occurrence, "alarm": event.alarm, "event": event.kind.value, "priority": event.priority.value,
        "cause": event.cause, "what": _what(event.cause, context), "room": event.room,
        "room_name": _room(event.room, context), "building": event.building, "source": event.source,
        "value": event.value, "limit": event.limit,
        "unit": event.extra.get("unit", measure.unit if measure else ""), "ts": event.ts,
        "since": _when(event.ts, context), "actor": event.actor, "comment": event.comment, "message": event.message,
    }
