"""Acknowledge links of alarms/notify/links.py: what a tampered, expired or foreign link gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
from pathlib import Path

import pytest

from alarms.notify.links import (
    MAC_BYTES,
    SECRET_BYTES,
    LinkClaim,
    LinkRefused,
    link_url,
    load_or_create_secret,
    sign,
    verify,
)

SECRET = bytes(range(32))
EXPIRES = 1_800_000_000.0
NOW = EXPIRES - 3600.0
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(ticket: int = 123, person: str = "zhang.wei", expires: float = EXPIRES) -> str:
    return sign(SECRET, ticket, person, expires)


def refused(token_text: str, now: float = NOW, secret: bytes = SECRET) -> str:
    with pytest.raises(LinkRefused) as caught:
        verify(secret, token_text, now)
    return caught.value.reason


def test_round_trip() -> None:
    assert verify(SECRET, token(), NOW) == LinkClaim(ticket=123, person="zhang.wei", expires=EXPIRES)


def test_token_is_url_safe_and_short_enough_for_an_sms() -> None:
    text = token(ticket=99999)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", text)
    assert len(text) <= 64
    assert len(text.split(".")[1]) == 22  # 16 bytes of HMAC-SHA256: 128 bits


@pytest.mark.parametrize("person", ["a", "li-na", "ops_team.2", "a.b.c", "x:y:z", "张伟"])
def test_person_comes_back_exactly_whatever_it_holds(person: str) -> None:
    assert verify(SECRET, sign(SECRET, 7, person, EXPIRES), NOW).person == person


def test_ticket_zero_and_large_tickets() -> None:
    assert verify(SECRET, token(ticket=0), NOW).ticket == 0
    assert verify(SECRET, token(ticket=10**12), NOW).ticket == 10**12


def test_expiry_is_kept_to_whole_seconds_rounded_down() -> None:
    assert verify(SECRET, token(expires=EXPIRES + 0.9), NOW).expires == EXPIRES


def test_expired_refused_after_and_accepted_before() -> None:
    assert verify(SECRET, token(), EXPIRES - 1).ticket == 123
    assert refused(token(), now=EXPIRES + 1) == "expired"
    assert refused(token(), now=EXPIRES) == "expired"  # the link works until, not through, `expires`


def test_wrong_secret_refused() -> None:
    assert refused(token(), secret=bytes(32)) == "bad signature"
    assert refused(token(), secret=SECRET[:-1] + b"\xff") == "bad signature"


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_every_single_character_change_is_refused(part: str) -> None:
    """Also the last character, whose low bits base64 leaves unused: a lenient decoder would accept that change."""
    original = token()
    dot = original.index(".")
    positions = range(dot) if part == "payload" else range(dot + 1, len(original))
    for position in positions:
        for replacement in {ALPHABET[(ALPHABET.index(original[position]) + 1) % 64], "A", "_"}:
            if replacement == original[position]:
                continue
            tampered = original[:position] + replacement + original[position + 1:]
            refused(tampered)


def test_signature_of_another_link_is_refused() -> None:
    mine, other = token(ticket=1), token(ticket=2)
    refused(mine.split(".")[0] + "." + other.split(".")[1])


def test_a_later_expiry_cannot_be_written_in() -> None:
    mac = token().split(".")[1]
    assert refused(f"{b64(b'123:1900000000:zhang.wei')}.{mac}") == "bad signature"


@pytest.mark.parametrize("text", [
    "", ".", "abc", "a.b.c", "abc.", ".abc", "ab c.def", "abc.de=", "abc+/.def", "ü.x", "x" * 600 + ".y",
    "MTIzOjE4MDAwMDAwMDA6emhhbmc.AAAA",  # a signature of the wrong length
])
def test_malformed_tokens_are_refused(text: str) -> None:
    assert refused(text) == "malformed"


def test_a_validly_signed_but_foreign_payload_is_refused() -> None:
    """A key shared with something else that signs other payloads: the MAC is good, the payload is not ours."""
    payload = b"not a link"
    mac = hmac.new(SECRET, b"stackwatch/ack-link/v1\0" + payload, hashlib.sha256).digest()[:MAC_BYTES]
    assert refused(f"{b64(payload)}.{b64(mac)}") == "malformed"


@pytest.mark.parametrize(("ticket", "person", "expires"), [
    (-1, "a", EXPIRES), (1, "", EXPIRES), (1, "a", float("nan")), (1, "a", float("inf")), (1, "a", -5.0),
])
def test_sign_refuses_what_could_not_be_verified(ticket: int, person: str, expires: float) -> None:
    with pytest.raises(ValueError):
        sign(SECRET, ticket, person, expires)


def test_link_url() -> None:
    assert link_url("https://sw.example.cn", "abc.def") == "https://sw.example.cn/ack/abc.def"
    assert link_url("https://sw.example.cn/sw/", "abc.def") == "https://sw.example.cn/sw/ack/abc.def"


def test_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "link.key"
    secret = load_or_create_secret(path)
    assert len(secret) == SECRET_BYTES
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    assert load_or_create_secret(str(path)) == secret
    assert [p.name for p in path.parent.iterdir()] == ["link.key"]  # no temporary file left behind


def test_secrets_differ_between_sites(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_a_truncated_secret_file_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="5 bytes"):
        load_or_create_secret(path)


def test_links_signed_with_the_loaded_secret_verify(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path / "link.key")
    again = load_or_create_secret(tmp_path / "link.key")
    assert verify(again, sign(secret, 5, "ann", EXPIRES), NOW).ticket == 5
