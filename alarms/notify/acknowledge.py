"""Acknowledging from the message itself: a signed link, or a reply carrying the ticket and the person's PIN.

The link names its person and expires; it is checked by signature, so it
cannot be forged or stretched. A reply is matched to a person by the number
or address it came from and must carry that person's PIN: a stranger who
learns a ticket number cannot silence a fire. Every reply is journaled with
its outcome; five wrong PINs from one sender within an hour lock that sender
out for the hour.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

from api.model import Audit
from stackwatch.config.notify import NotifyConfig

from . import links
from .store import NotifyStore

log = logging.getLogger("stackwatch.notify")
AckGroup = Callable[[int, str, str], str]  # (ticket, who, comment) → what happened; raises ValueError if refused
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = 3600.0
_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    text: str  # for the person: shown on the page, or the body of an SMS/e-mail answer
    ticket: int | None = None
    person: str = ""


def _phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return digits[-11:] if len(digits) >= 11 else digits  # +86 138… and 138… are one number


def _address(text: str) -> str:
    return parseaddr(text)[1].strip().lower() or text.strip().lower()


class Acknowledger:
    def __init__(self, settings: NotifyConfig, secret: bytes, store: NotifyStore, acknowledge: AckGroup,
                 audit: Audit | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self.secret = secret
        self.store = store
        self.acknowledge = acknowledge
        self._failures: dict[str, deque[float]] = {}
        self._by_sender: dict[str, str] = {}
        for person in settings.people:
            for contact in person.contacts:
                self._by_sender[_phone(contact.address) if "@" not in contact.address
                                else _address(contact.address)] = person.id

    # --- links --------------------------------------------------------------------------------------------------

    def check_link(self, token: str, now: float) -> Outcome:
        """What a link would do, without doing it (the page a phone shows before the button)."""
        try:
            claim = links.verify(self.secret, token, now)
        except links.LinkRefused as refusal:
            return Outcome(False, f"link refused: {refusal}")
        return Outcome(True, f"acknowledge ticket #{claim.ticket} as {claim.person}", claim.ticket, claim.person)

    def by_link(self, token: str, now: float, comment: str = "", remote: str = "") -> Outcome:
        checked = self.check_link(token, now)
        if not checked.ok or checked.ticket is None:
            log.warning("acknowledge link refused: %s", checked.text)
            self._audit("?", "alarm.acknowledge.refused", "", checked.text, "link", remote)
            return checked
        try:
            result = self.acknowledge(checked.ticket, checked.person, comment or "acknowledged from the message link")
        except ValueError as refusal:
            return Outcome(False, str(refusal), checked.ticket, checked.person)
        self._audit(checked.person, "alarm.acknowledge", f"#{checked.ticket}", comment, "link", remote, result)
        return Outcome(True, result, checked.ticket, checked.person)

    def _audit(self, actor: str, action: str, target: str, reason: str, via: str, remote: str,
               result: str = "") -> None:
        if self.audit is not None:
            self.audit.append(actor, action, target, detail={"via": via, "result": result}, reason=reason,
                              remote=remote)

    # --- replies ------------------------------------------------------------------------------------------------

    def by_reply(self, via: str, sender: str, text: str, now: float) -> Outcome:
        """An SMS or e-mail answer such as `ACK 123 4567` or `确认 123 4567`: ticket, then PIN."""
        key = _address(sender) if via == "email" else _phone(sender)
        person_id = self._by_sender.get(key, "")
        if self._locked(key, now):
            return self._answer(now, via, sender, person_id, None, "refused: too many wrong PINs", text, False)
        if not person_id:
            return self._answer(now, via, sender, "", None, "refused: unknown sender", text, False)
        numbers = _NUMBERS.findall(text)
        if len(numbers) < 2:
            return self._answer(now, via, sender, person_id, None, "refused: send the ticket number and your PIN",
                                text, False)
        ticket, pin = int(numbers[0]), numbers[-1]
        person = next(p for p in self.settings.people if p.id == person_id)
        expected = person.pin.get_secret_value() if person.pin is not None else ""
        if not expected or not hmac.compare_digest(pin.encode(), expected.encode()):
            self._failures.setdefault(key, deque()).append(now)
            log.warning("reply from %s (%s) with a wrong PIN for ticket #%d refused", sender, person_id, ticket)
            return self._answer(now, via, sender, person_id, ticket, "refused: wrong PIN", text, False)
        try:
            result = self.acknowledge(ticket, person_id, f"acknowledged by {via} reply")
        except ValueError as refusal:
            return self._answer(now, via, sender, person_id, ticket, f"refused: {refusal}", text, False)
        return self._answer(now, via, sender, person_id, ticket, result, text, True)

    def _locked(self, key: str, now: float) -> bool:
        failures = self._failures.get(key)
        if not failures:
            return False
        while failures and now - failures[0] > LOCKOUT_WINDOW:
            failures.popleft()
        return len(failures) >= LOCKOUT_FAILURES

    def _answer(self, now: float, via: str, sender: str, person: str, ticket: int | None, outcome: str, text: str,
                ok: bool) -> Outcome:
        self.store.reply(now, via, sender, person, ticket, outcome, text)
        self._audit(person or "?", "alarm.acknowledge" if ok else "alarm.acknowledge.refused",
                    f"#{ticket}" if ticket is not None else "", "" if ok else outcome, via, sender, outcome)
        return Outcome(ok, outcome, ticket, person)
