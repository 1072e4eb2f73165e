"""What the notifier hands to a channel, and what a channel answers.

A channel knows nothing of alarms: it gets a rendered `Message` and an
address and says how the delivery went. Everything a provider answered is
kept in `Delivery.response` for the delivery log (inspectors ask "was the
on-call person really told?").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from ..model import Priority


class NoticeKind(enum.StrEnum):
    PAGE = "page"  # raised (or reactivated): someone must act
    REPEAT = "repeat"  # still unacknowledged after the priority's interval
    ESCALATION = "escalation"  # nobody acknowledged: the next level
    ACKNOWLEDGED = "acknowledged"  # notice to those paged: someone took it
    RETURNED = "returned"  # notice to those paged: back to normal
    SUMMARY = "summary"  # a flood: one message instead of many


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered message; each channel takes the form it can carry."""

    kind: NoticeKind
    priority: Priority
    subject: str  # e-mail subject, chat title
    text: str  # plain text: e-mail body, chat robots, generic webhooks
    sms: str  # at most two SMS segments (306 GSM-7 or 134 UCS-2 characters)
    html: str = ""  # e-mail alternative body
    tickets: tuple[int, ...] = ()  # the alarms' ticket numbers (a reply names one)
    link: str = ""  # the acknowledge link, signed for this recipient
    language: str = "zh"
    data: dict[str, object] = field(default_factory=dict)  # structured copy for generic JSON webhooks


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    retryable: bool  # a timeout, 5xx or 429: try again later; a 4xx: try the next contact instead
    status: str  # short outcome: "smtp 250", "http 500", "timeout", "refused"
    response: str = ""  # what the provider said (first 500 characters)
    retry_after: float | None = None  # seconds, when the provider said (HTTP Retry-After)


class Sender(Protocol):
    """A channel. `send` blocks (the notifier calls it on a worker thread) and never raises."""

    id: str

    def send(self, message: Message, address: str) -> Delivery: ...
