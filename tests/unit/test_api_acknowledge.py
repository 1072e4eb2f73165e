"""Acknowledging from the message: the link page (GET shows, POST acts), tampered and expired links, replies."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alarms.notify import links
from alarms.notify.acknowledge import Acknowledger
from alarms.notify.store import NotifyStore
from api.app import create_app
from api.services import ApiServices
from stackwatch.catalog import PointCatalog
from stackwatch.config import SiteConfig
from stackwatch.config.api import ApiConfig
from stackwatch.config.notify import NotifyConfig
from stackwatch.livestate import LiveState

SECRET = b"k" * 32
NOW = 1_767_254_400.0
SETTINGS = NotifyConfig.model_validate({
    "people": [{"id": "li", "contacts": [{"channel": "sms", "address": "+86 138 0000 0001"},
                                         {"channel": "mail", "address": "Li Wei <li@archive.example>"}],
                "pin": "4321"}],
    "channels": [{"type": "sms-http", "id": "sms", "url": "http://127.0.0.1:9/", "body": "{text}"},
                 {"type": "smtp", "id": "mail", "host": "127.0.0.1", "sender": "sw@archive.example"}],
})


class Engine:
    def __init__(self) -> None:
        self.acks: list[tuple[int, str, str]] = []

    def acknowledge(self, ticket: int, who: str, comment: str) -> str:
        if ticket == 404:
            raise ValueError("no alarm '404'")
        self.acks.append((ticket, who, comment))
        return f"acknowledged #{ticket}"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, Engine, NotifyStore]:
    engine = Engine()
    store = NotifyStore(tmp_path / "notify.db")
    acknowledger = Acknowledger(SETTINGS, SECRET, store, engine.acknowledge)
    config = ApiConfig(inbound_token="gw-token")
    site = SiteConfig.model_validate({"site": {"id": "s"}, "buildings": [{"id": "b"}]})
    services = ApiServices(config=site, catalog=PointCatalog.from_config(site), live=LiveState(), now=lambda: NOW,
                           acknowledger=acknowledger)
    return TestClient(create_app(config, services, lambda _permission: lambda: None)), engine, store


def token(ticket: int = 12, person: str = "li", expires: float = NOW + 3600) -> str:
    return links.sign(SECRET, ticket, person, expires)


def test_opening_the_link_only_shows_the_button_posting_it_acknowledges(setup: tuple[TestClient, Engine, NotifyStore]) \
        -> None:
    client, engine, _ = setup
    page = client.get(f"/ack/{token()}")
    assert page.status_code == 200 and "#12" in page.text and "<form" in page.text
    assert engine.acks == []  # a chat app's link preview must not acknowledge a fire
    done = client.post(f"/ack/{token()}", content="comment=on+my+way", headers={
        "content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    assert engine.acks == [(12, "li", "on my way")]


@pytest.mark.parametrize("bad", [
    token()[:-2] + ("AA" if not token().endswith("AA") else "BB"),  # signature changed
    links.sign(b"another-secret-entirely-32-bytes", 12, "li", NOW + 3600),  # forged with a guessed key
    token(expires=NOW - 1),  # expired
    "not-a-token",
])
def test_tampered_forged_and_expired_links_are_refused(setup: tuple[TestClient, Engine, NotifyStore], bad: str) \
        -> None:
    client, engine, _ = setup
    assert client.get(f"/ack/{bad}").status_code == 403
    assert client.post(f"/ack/{bad}").status_code == 403
    assert engine.acks == []


def test_a_link_to_an_alarm_that_cannot_be_acknowledged_says_so(setup: tuple[TestClient, Engine, NotifyStore]) \
        -> None:
    client, _, _ = setup
    answer = client.post(f"/ack/{token(ticket=404)}")
    assert answer.status_code == 409 and "no alarm" in answer.text


def test_an_sms_reply_with_ticket_and_pin_acknowledges_as_the_sender(setup: tuple[TestClient, Engine, NotifyStore]) \
        -> None:
    client, engine, store = setup
    answer = client.post("/api/v1/inbound/sms", json={"from": "+8613800000001", "text": "确认 12 4321"},
                         headers={"x-stackwatch-token": "gw-token"})
    assert answer.status_code == 200 and answer.json()["ok"]
    assert engine.acks == [(12, "li", "acknowledged by sms reply")]
    assert store.replies()[-1]["outcome"].startswith("acknowledged")


def test_a_wrong_pin_is_refused_and_journaled_and_five_lock_the_sender_out(
        setup: tuple[TestClient, Engine, NotifyStore]) -> None:
    client, engine, store = setup
    headers = {"x-stackwatch-token": "gw-token"}
    for _ in range(5):
        answer = client.post("/api/v1/inbound/sms", json={"from": "13800000001", "text": "ACK 12 9999"},
                             headers=headers)
        assert answer.status_code == 422 and answer.json()["result"] == "refused: wrong PIN"
    right = client.post("/api/v1/inbound/sms", json={"from": "13800000001", "text": "ACK 12 4321"}, headers=headers)
    assert right.json()["result"] == "refused: too many wrong PINs"
    assert engine.acks == []
    assert [r["outcome"] for r in store.replies()].count("refused: wrong PIN") == 5


def test_an_unknown_sender_or_a_missing_gateway_token_is_refused(setup: tuple[TestClient, Engine, NotifyStore]) \
        -> None:
    client, engine, _ = setup
    assert client.post("/api/v1/inbound/sms", json={"from": "+15550000000", "text": "12 4321"},
                       headers={"x-stackwatch-token": "gw-token"}).json()["result"] == "refused: unknown sender"
    assert client.post("/api/v1/inbound/sms", json={"from": "13800000001", "text": "12 4321"}).status_code == 403
    assert engine.acks == []


def test_an_email_reply_acknowledges_and_ignores_the_quoted_message(setup: tuple[TestClient, Engine, NotifyStore]) \
        -> None:
    client, engine, _ = setup
    body = "12 4321\n\nOn Mon, stackwatch wrote:\n> ticket #99 fire 1234"
    answer = client.post("/api/v1/inbound/email?token=gw-token", json={
        "from": "Li Wei <LI@archive.example>", "subject": "Re: [stackwatch] #12", "text": body})
    assert answer.status_code == 200, answer.text
    assert engine.acks == [(12, "li", "acknowledged by email reply")]


def test_oversized_bodies_are_refused(setup: tuple[TestClient, Engine, NotifyStore]) -> None:
    client, _, _ = setup
    answer = client.post("/api/v1/inbound/sms?token=gw-token", content=b"x" * 70_000,
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413
