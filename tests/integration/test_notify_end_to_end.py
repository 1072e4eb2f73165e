"""Paging end to end: `stackwatch run` and the simulators as processes, a local HTTP server playing the SMS
gateway, aiosmtpd receiving e-mail, the acknowledge link opened over real HTTP."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from alarms.journal import Journal
from alarms.model import AlarmState, EventKind
from stackwatch.localservers import LocalInfluxd, LocalMosquitto, free_port

from .fake_gateway import FakeGateway, Recorded
from .service_harness import EXAMPLE, Process, control, influx, service, simulators, site_env, wait_for

pytestmark = pytest.mark.integration
LI, CHIEF, DIRECTOR = "+8613800000001", "+8613800000009", "+8613800000099"
LEVEL_2_AFTER, LEVEL_3_AFTER = 6.0, 14.0
BULK = 50


class Mailbox:
    """aiosmtpd handler: every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # aiosmtpd calls it so
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"


def paging_site(folder: Path, gateway: str, smtp_port: int, api_port: int) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["devices"] += [{"id": f"bulk-leak-{n}", "protocol": "mqtt", "model": "z2m-aqara-leak",
                         "topic": f"bulk-leak-{n}", "room": "annex-2-mixed"} for n in range(BULK)]
    data["api"] = {"port": api_port}
    data["notify"] = {
        "base_url": f"http://127.0.0.1:{api_port}", "link_secret": "a-test-secret-of-some-length",
        "group_window": "5s", "retry_max": 1, "retry_backoff": "0.5s", "language": "en",
        "people": [
            {"id": "li.wei", "pin": "4321", "contacts": [{"channel": "sms", "address": LI},
                                                         {"channel": "mail", "address": "li.wei@archive.example"}]},
            {"id": "chief", "contacts": [{"channel": "sms", "address": CHIEF}]},
            {"id": "director", "contacts": [{"channel": "sms", "address": DIRECTOR}]},
        ],
        "channels": [
            {"type": "sms-http", "id": "sms", "url": f"{gateway}/sms", "body": '{"to": "{to}", "text": "{text}"}',
             "timeout": "2s"},
            {"type": "smtp", "id": "mail", "host": "127.0.0.1", "port": smtp_port, "security": "none",
             "sender": "stackwatch <alarms@archive.example>"},
        ],
        "rotations": [{"id": "duty", "start": "2026-01-05", "members": ["li.wei"]}],
        "routes": [{"id": "critical", "match": {"priority": ["critical"]}, "levels": [
            {"targets": ["rotation:duty"]},
            {"after": f"{LEVEL_2_AFTER}s", "targets": ["person:chief"]},
            {"after": f"{LEVEL_3_AFTER}s", "targets": ["person:director"]}]}],
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class PagedArchive:
    folder: Path
    influxd: LocalInfluxd
    mosquitto: LocalMosquitto
    gateway: FakeGateway
    mailbox: Mailbox
    service: Process
    sim: Process

    def control(self, **command: Any) -> None:
        control(self.mosquitto, **command)

    def sms_to(self, number: str, since: float = 0.0) -> list[Recorded]:
        return [r for r in self.gateway.requests if r.path == "/sms" and r.json()["to"] == number and r.at >= since]

    def journal_events(self, alarm: str) -> list[Any]:
        journal = Journal(self.folder / "state" / "alarms.db", readonly=True)
        try:
            return journal.events(alarm=alarm)
        finally:
            journal.close()

    def diagnostics(self) -> str:
        return f"--- service\n{self.service.output()}\n--- sim\n{self.sim.output()}"


def wall(monotonic_at: float) -> float:
    return time.time() - (time.monotonic() - monotonic_at)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PagedArchive]:
    folder = tmp_path_factory.mktemp("paged")
    influxd, mosquitto = LocalInfluxd(folder / "influxd"), LocalMosquitto(folder / "mosquitto")
    gateway = FakeGateway().start()
    gateway.respond("/sms", 200, {"status": "queued"})
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    influxd.start()
    mosquitto.start()
    env = site_env(folder, influxd, mosquitto)
    config = paging_site(folder, gateway.url, smtp.port, free_port())
    running = PagedArchive(folder, influxd, mosquitto, gateway, mailbox, service(config, env, folder / "service.log"),
                           simulators(config, env, folder / "sim.log"))
    running.sim.start()
    time.sleep(0.5)
    running.service.start()
    try:
        wait_for(lambda: "API listening" in running.service.output(), 30, "the service and its API")
        time.sleep(3)
        yield running
    finally:
        running.service.stop()
        running.sim.stop()
        smtp.stop()
        gateway.stop()
        mosquitto.stop()
        influxd.stop()


def test_fire_pages_level_one_within_two_seconds_escalates_and_the_link_stops_it(archive: PagedArchive) -> None:
    alarm = "fire-main.zone4_fire:fire"
    start = time.monotonic()
    archive.control(scenario="fire-in-room", room="main-2-film")
    try:
        [first] = wait_for(lambda: archive.sms_to(LI, start), 15, "the level-1 SMS")
    except AssertionError:
        raise AssertionError(archive.diagnostics()) from None
    seen = wait_for(lambda: influx(archive.influxd).query(
        "SELECT first(\"value\") FROM state WHERE device = 'fire-main' AND point = 'zone4_fire' AND \"value\" = true"),
        10, "the fire reading in InfluxDB")[0].values[0][0] / 1e9
    assert 0 <= wall(first.at) - seen <= 2.0, f"SMS {wall(first.at) - seen:.2f} s after the poll saw the zone bit"
    text = first.json()["text"]
    ticket = archive.journal_events(alarm)[0].occurrence
    assert f"#{ticket}" in text

    [second] = wait_for(lambda: archive.sms_to(CHIEF, start), LEVEL_2_AFTER + 10, "the level-2 SMS")
    assert LEVEL_2_AFTER - 1.0 <= second.at - first.at <= LEVEL_2_AFTER + 3.0

    link = re.search(r"http://127\.0\.0\.1:\d+/ack/\S+", text)
    assert link, text
    with urllib.request.urlopen(link.group(0), timeout=5) as page:  # opening shows the button, acts on nothing
        assert page.status == 200
    request = urllib.request.Request(link.group(0), data=b"comment=on+site", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    acked = [e for e in archive.journal_events(alarm) if e.kind is EventKind.ACKNOWLEDGED]
    assert [(e.actor, e.comment, e.state) for e in acked] == [("li.wei", "on site", AlarmState.ACTIVE_ACK)]

    time.sleep(max(0.0, LEVEL_3_AFTER + 3 - (time.monotonic() - first.at)))
    assert archive.sms_to(DIRECTOR, start) == [], "level 3 was paged after the acknowledgement"
    notices = [r.json()["text"] for r in archive.sms_to(LI, start)[1:] + archive.sms_to(CHIEF, start)[1:]]
    assert len(notices) == 2 and all("li.wei" in text for text in notices), notices
    archive.control(scenario="fire-in-room", room="main-2-film", on=False)


def test_a_gateway_answering_500_falls_back_to_email(archive: PagedArchive) -> None:
    archive.gateway.respond("/sms", 500, "internal error")
    start = time.monotonic()
    try:
        archive.control(scenario="water-leak", room="main-b1-paper")
        mail = wait_for(lambda: [m for m in archive.mailbox.messages if "li.wei@" in m["X-Envelope-To"]], 20,
                        "the e-mail after the SMS gateway failed")
        assert len(archive.sms_to(LI, start)) == 2  # the first try and one retry
        body = mail[0].get_body(("plain",))
        assert body is not None and "/ack/" in body.get_content()
    finally:
        archive.gateway.respond("/sms", 200, {"status": "queued"})
        archive.control(scenario="water-leak", room="main-b1-paper", on=False)


def test_fifty_simultaneous_leak_alarms_in_one_room_go_out_as_one_message(archive: PagedArchive) -> None:
    time.sleep(6)  # past the previous tests' grouping windows
    start = time.monotonic()
    archive.control(scenario="water-leak", room="annex-2-mixed")
    try:
        wait_for(lambda: len([e for n in range(BULK) for e in archive.journal_events(f"bulk-leak-{n}.water_leak"
                                                                                      ":water_leak")]) >= BULK,
                 20, "fifty leak alarms")
        time.sleep(7)  # the grouping window and more
        pages = [r for r in archive.sms_to(LI, start) if "leak" in r.json()["text"].lower()]
        assert len(pages) == 1, [r.json()["text"] for r in pages]
    finally:
        archive.control(scenario="water-leak", room="annex-2-mixed", on=False)

