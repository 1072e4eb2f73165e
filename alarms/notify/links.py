"""Signed, expiring acknowledge links: a tap on the phone acknowledges a ticket without a login.

The token carries the ticket, the person it was sent to and its expiry, so the
web handler needs no table of issued links: the HMAC proves stackwatch made it
for that person, the expiry limits what a forwarded or leaked SMS can do.

Token: ``base64url(payload) "." base64url(mac)`` with the payload
``"<ticket>:<expires>:<person>"``. Ticket and expiry are digits only and the
person comes last, so the payload splits one way only whatever the person id
holds; base64url has no ".", so neither does the token split otherwise.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_BYTES = 32
MAC_BYTES = 16  # 128 bits: forging one needs 2**128 tries; the SMS stays short
MAX_TOKEN = 512  # a longer "token" is garbage: refuse it before any work
_DOMAIN = b"stackwatch/ack-link/v1\0"  # a MAC made for something else with the same key never passes here
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_PAYLOAD = re.compile(r"^(0|[1-9][0-9]{0,17}):(0|[1-9][0-9]{0,15}):(.+)$", re.DOTALL)


class LinkRefused(ValueError):
    """The link does not acknowledge anything; `reason` is safe to show to whoever opened it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid link proves: this person may acknowledge this ticket until `expires`."""

    ticket: int
    person: str
    expires: float


def sign(secret: bytes, ticket: int, person: str, expires: float) -> str:
    """The expiry is kept to whole seconds, rounded down: a link never outlives what was asked."""
    if ticket < 0 or not person or not math.isfinite(expires) or expires < 0:
        raise ValueError("a link needs a ticket ≥ 0, a person and a finite expiry ≥ 0")
    payload = f"{ticket}:{math.floor(expires)}:{person}".encode()
    return f"{_encode(payload)}.{_encode(_mac(secret, payload))}"


def verify(secret: bytes, token: str, now: float) -> LinkClaim:
    """The signature is checked before the payload is read, so nobody learns how a forged payload would parse."""
    payload, mac = _split(token)
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise LinkRefused("bad signature")
    claim = _parse(payload)
    if now >= claim.expires:
        raise LinkRefused("expired")
    return claim


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/ack/{token}"


def load_or_create_secret(path: str | os.PathLike[str]) -> bytes:
    """For sites without `link_secret`: one key for the life of the state folder, so links survive restarts.

    The key is written to a private temporary file and hard-linked into place:
    two processes starting at once end up with the same key, and a crash
    mid-write leaves no half-written key behind.
    """
    target = Path(path)
    if target.exists():
        return _read_secret(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(secrets.token_bytes(SECRET_BYTES))
            stream.flush()
            os.fsync(stream.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(target)


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path} holds {len(secret)} bytes, not a {SECRET_BYTES}-byte link key: remove it "
                         "to have a new one made (links already sent stop working)")
    return secret


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """Only the canonical spelling is accepted: the unused low bits of the last character cannot vary."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise LinkRefused("malformed") from None
    if _encode(data) != text:
        raise LinkRefused("malformed")
    return data


def _split(token: str) -> tuple[bytes, bytes]:
    if len(token) > MAX_TOKEN or not _TOKEN.match(token):
        raise LinkRefused("malformed")
    payload_text, mac_text = token.split(".")
    payload, mac = _decode(payload_text), _decode(mac_text)
    if len(mac) != MAC_BYTES:
        raise LinkRefused("malformed")
    return payload, mac


def _parse(payload: bytes) -> LinkClaim:
    """Only reached with a valid signature, so a failure here means a key shared with a different format."""
    try:
        match = _PAYLOAD.match(payload.decode())
    except UnicodeDecodeError:
        match = None
    if match is None:
        raise LinkRefused("malformed")
    return LinkClaim(ticket=int(match[1]), person=match[3], expires=float(match[2]))
