"""The notifier on plain float time with fake channels: escalation, grouping, delays, fallback, restarts."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.notify import links
from alarms.notify.model import Delivery, Message, NoticeKind
from alarms.notify.notifier import Notifier
from stackwatch.config import SiteConfig

T0 = 1_767_254_400.0  # 2026-01-01T08:00:00Z = 16:00 in Shanghai, a Thursday (open)


@dataclass
class FakeChannel:
    id: str
    outcomes: list[Delivery] = field(default_factory=list)  # consumed one per send; then ok
    sent: list[tuple[str, Message]] = field(default_factory=list)

    def send(self, message: Message, address: str) -> Delivery:
        self.sent.append((address, message))
        return self.outcomes.pop(0) if self.outcomes else Delivery(True, False, "http 200", "queued")


class Inline:
    """An executor that runs at once, so a test sees the send before it goes on."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


@dataclass
class Clock:
    t: float = T0

    def now(self) -> float:
        return self.t


def site(**notify: Any) -> SiteConfig:
    routes = notify.pop("routes", [{
        "id": "all", "levels": [{"targets": ["rotation:duty"]}, {"after": "10m", "targets": ["person:chief"]}]}])
    return SiteConfig.model_validate({
        "site": {"id": "archive", "name": "District Archive", "timezone": "Asia/Shanghai"},
        "buildings": [{"id": "main"}],
        "rooms": [{"id": "r1", "name": "Stack 101", "building": "main", "profile": "paper"}],
        "notify": {
            "base_url": "https://sw.example", "link_secret": "s3cret-for-tests",
            "people": [
                {"id": "li", "contacts": [{"channel": "sms", "address": "+8613800000001"},
                                          {"channel": "mail", "address": "li@archive.example"}], "pin": "4321"},
                {"id": "chief", "language": "en", "contacts": [{"channel": "sms", "address": "+8613800000009"}]},
            ],
            "channels": [
                {"type": "sms-http", "id": "sms", "url": "http://127.0.0.1:9/sms", "body": "{text}"},
                {"type": "smtp", "id": "mail", "host": "127.0.0.1", "sender": "sw@archive.example"},
            ],
            "rotations": [{"id": "duty", "start": "2025-12-29", "members": ["li"]}],
            "routes": routes, "retry_max": 2, "retry_backoff": "5s", **notify,
        },
    })


class Harness:
    def __init__(self, tmp: Path, config: SiteConfig | None = None) -> None:
        self.tmp, self.config, self.clock = tmp, config or site(), Clock()
        self.sms, self.mail = FakeChannel("sms"), FakeChannel("mail")
        self.failures: list[bool] = []
        self.open()

    def open(self) -> None:
        self.notifier = Notifier(self.config, self.tmp, self.clock,  # type: ignore[arg-type]
                                 on_failure=lambda failing, _detail: self.failures.append(failing),
                                 senders={"sms": self.sms, "mail": self.mail}, executor=Inline())  # type: ignore[dict-item]

    def restart(self) -> None:
        self.notifier.store.close()
        self.open()

    def events(self, *events: AlarmEvent) -> None:
        self.notifier.on_events(list(events), self.clock.t)

    def run(self, seconds: float, step: float = 0.5) -> None:
        end = self.clock.t + seconds
        while self.clock.t < end:
            self.clock.t = min(end, self.clock.t + step)
            self.notifier.pump(self.clock.t)


def event(kind: EventKind, ticket: int = 7, *, alarm: str = "fire-main.zone1_fire:fire", cause: str = "fire",
          priority: Priority = Priority.CRITICAL, ts: float = T0, actor: str = "system") -> AlarmEvent:
    state = {EventKind.RAISED: AlarmState.ACTIVE_UNACK, EventKind.ACKNOWLEDGED: AlarmState.ACTIVE_ACK,
             EventKind.RETURNED: AlarmState.RETURNED_UNACK, EventKind.REALARM: AlarmState.ACTIVE_UNACK,
             EventKind.CLEARED: AlarmState.NORMAL}[kind]
    return AlarmEvent(seq=ticket, ts=ts, alarm=alarm, occurrence=ticket, kind=kind, state=state,
                      previous=AlarmState.NORMAL, priority=priority, cause=cause, room="r1", building="main",
                      site="archive", source="fire-main.zone1_fire", value=1.0, message="Fire alarm", actor=actor)


def test_a_raised_alarm_pages_the_person_on_call_with_a_signed_link(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(event(EventKind.RAISED))
    h.run(1)
    [(address, message)] = h.sms.sent
    assert address == "+8613800000001" and message.kind is NoticeKind.PAGE and message.tickets == (7,)
    assert "#7" in message.sms and message.link in message.sms
    claim = links.verify(b"s3cret-for-tests", message.link.rsplit("/", 1)[1], h.clock.t)
    assert (claim.ticket, claim.person) == (7, "li")


def test_nobody_acknowledges_so_level_two_is_paged_then_acknowledgement_stops_it(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(event(EventKind.RAISED))
    h.run(9 * 60)
    assert [a for a, _ in h.sms.sent] == ["+8613800000001"]
    h.run(61)
    assert [a for a, _ in h.sms.sent] == ["+8613800000001", "+8613800000009"]
    assert h.sms.sent[1][1].kind is NoticeKind.ESCALATION and h.sms.sent[1][1].language == "en"
    h.events(event(EventKind.ACKNOWLEDGED, actor="li", ts=h.clock.t))
    h.run(30 * 60, step=5)
    notices = [(a, m.kind) for a, m in h.sms.sent[2:]]
    assert sorted(notices) == [("+8613800000001", NoticeKind.ACKNOWLEDGED), ("+8613800000009", NoticeKind.ACKNOWLEDGED)]


def test_a_gateway_failing_with_500_is_retried_then_falls_back_to_email(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.sms.outcomes = [Delivery(False, True, "http 500", "down")] * 3
    h.events(event(EventKind.RAISED))
    h.run(60)
    assert len(h.sms.sent) == 3  # the first try and two retries
    assert [a for a, _ in h.mail.sent] == ["li@archive.example"]
    attempts = h.notifier.store.attempts()
    assert [(a["channel"], a["ok"], a["status"]) for a in attempts] == [
        ("sms", 0, "http 500"), ("sms", 0, "http 500"), ("sms", 0, "http 500"), ("mail", 1, "http 200")]
    assert h.failures == []


def test_no_channel_working_raises_the_notifiers_own_alarm(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.sms.outcomes = [Delivery(False, False, "http 400", "bad number")]
    h.mail.outcomes = [Delivery(False, False, "smtp 550", "no such user")]
    h.events(event(EventKind.RAISED))
    h.run(5)
    assert h.failures == [True]


def test_fifty_simultaneous_alarms_in_one_room_give_one_message(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(*[event(EventKind.RAISED, ticket=100 + n, alarm=f"leak-{n}.leak:water_leak", cause="water_leak")
               for n in range(50)])
    h.run(2)
    [(_, message)] = h.sms.sent
    assert len(message.tickets) == 50


def test_a_burst_across_rooms_and_causes_becomes_one_summary(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(*[event(EventKind.RAISED, ticket=200 + n, alarm=f"d{n}.x:c{n}", cause=f"cause_{n}")
               for n in range(15)])
    h.run(2)
    [(_, message)] = h.sms.sent
    assert message.kind is NoticeKind.SUMMARY and len(message.tickets) == 15


def test_a_route_delay_drops_the_page_when_the_alarm_returns_first(tmp_path: Path) -> None:
    h = Harness(tmp_path, site(routes=[{"id": "doors", "delay": "10m", "levels": [{"targets": ["person:li"]}]}]))
    h.events(event(EventKind.RAISED, cause="door_held_open", priority=Priority.MEDIUM))
    h.run(120)
    h.events(event(EventKind.RETURNED, cause="door_held_open", priority=Priority.MEDIUM, ts=h.clock.t))
    h.run(900, step=5)
    assert h.sms.sent == []


def test_medium_alarms_wait_for_the_end_of_quiet_hours_critical_do_not(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.clock.t = T0 + 7 * 3600  # 23:00 in Shanghai
    h.events(event(EventKind.RAISED, ticket=1, cause="humidity_high", priority=Priority.MEDIUM, ts=h.clock.t),
             event(EventKind.RAISED, ticket=2, ts=h.clock.t))
    h.run(60)
    assert [m.tickets for _, m in h.sms.sent] == [(2,)]
    h.run(8 * 3600, step=30)  # past 07:00
    to_li = [(m.tickets, m.kind) for a, m in h.sms.sent if a == "+8613800000001"]
    assert to_li == [((2,), NoticeKind.PAGE), ((1,), NoticeKind.PAGE)]


def test_a_restart_neither_loses_nor_repeats_a_pending_page(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(event(EventKind.RAISED))
    h.restart()  # before the outbox was flushed
    h.run(1)
    assert len(h.sms.sent) == 1
    h.restart()
    h.run(5 * 60, step=5)
    assert len(h.sms.sent) == 1  # and level 2 is still to come, from the same page
    h.run(6 * 60, step=5)
    assert [a for a, _ in h.sms.sent] == ["+8613800000001", "+8613800000009"]


@pytest.mark.parametrize("kind", [EventKind.RETURNED, EventKind.CLEARED])
def test_return_to_normal_is_told_to_those_paged(tmp_path: Path, kind: EventKind) -> None:
    h = Harness(tmp_path)
    h.events(event(EventKind.RAISED))
    h.run(1)
    h.events(event(kind, ts=h.clock.t))
    h.run(1)
    assert [m.kind for _, m in h.sms.sent] == [NoticeKind.PAGE, NoticeKind.RETURNED]


def test_chat_channels_of_a_route_get_each_message_once_without_a_personal_link(tmp_path: Path) -> None:
    config = site(routes=[{"id": "all", "chat": ["ops-room"], "levels": [{"targets": ["rotation:duty"]}]}],
                  channels=[{"type": "sms-http", "id": "sms", "url": "http://127.0.0.1:9/sms", "body": "{text}"},
                            {"type": "smtp", "id": "mail", "host": "127.0.0.1", "sender": "sw@archive.example"},
                            {"type": "webhook", "id": "ops-room", "style": "wecom", "url": "http://127.0.0.1:9/x"}])
    h = Harness(tmp_path, config)
    room = FakeChannel("ops-room")
    h.notifier.senders["ops-room"] = room
    h.events(event(EventKind.RAISED))
    h.run(1)
    [(address, message)] = room.sent
    assert address == "" and message.link == "" and message.tickets == (7,)
    assert len(h.sms.sent) == 1


def test_a_burst_arriving_over_a_second_and_a_half_is_still_one_message(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    for n in range(50):  # one every 30 ms, as a broker delivers fifty sensors' reports
        h.clock.t = T0 + n * 0.03
        h.events(event(EventKind.RAISED, ticket=100 + n, alarm=f"leak-{n}.leak:water_leak", cause="water_leak",
                       ts=h.clock.t))
        h.notifier.pump(h.clock.t)
    h.run(3, step=0.1)
    [(_, message)] = h.sms.sent
    assert len(message.tickets) == 50


def test_a_single_fire_alarm_leaves_after_half_a_second(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.events(event(EventKind.RAISED))
    h.run(0.4, step=0.1)
    assert h.sms.sent == []
    h.run(0.2, step=0.1)
    assert len(h.sms.sent) == 1
