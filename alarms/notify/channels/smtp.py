"""E-mail through the site's SMTP server.

The SMTP conversation is driven step by step (MAIL, RCPT, DATA) instead of
`send_message`, so that the server's final reply ("250 2.0.0 Ok: queued as
4Bc…") reaches the delivery log: with the queue id the mail administrator can
follow a page that "never arrived". A 4xx reply means "not now" and is
retried; a 5xx means "never" (an unknown mailbox, a wrong password) and the
notifier moves on to the person's next contact.
"""

from __future__ import annotations

import email.policy
import email.utils
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from stackwatch.config.notify import SmtpChannel

from ..model import Delivery, Message
from .http import RESPONSE_CHARS

# 7bit: a Chinese body goes out base64/quoted-printable, so no server needs 8BITMIME to carry it
_BUILD_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def envelope_sender(sender: str) -> str:
    return email.utils.parseaddr(sender)[1] or sender


def build_email(sender: str, message: Message, address: str) -> EmailMessage:
    mail = EmailMessage(policy=_BUILD_POLICY)
    mail["From"] = sender
    mail["To"] = address
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.formatdate(localtime=True)
    domain = envelope_sender(sender).rpartition("@")[2] or "stackwatch.invalid"
    mail["Message-ID"] = email.utils.make_msgid(domain=domain)  # a domain given: no slow getfqdn() lookup
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: holiday auto-replies stay away from the reply parser
    if message.tickets:
        mail["X-Stackwatch-Tickets"] = ",".join(str(ticket) for ticket in message.tickets)
    if message.language:
        mail["Content-Language"] = message.language
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _needs_smtputf8(*addresses: str) -> bool:
    return not all(address.isascii() for address in addresses)


def _reply_delivery(code: int, reply: bytes | str) -> Delivery:
    """250 is the only "accepted" for the final DATA; a MAIL or RCPT failure never arrives here as 250."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return Delivery(ok=code == 250, retryable=400 <= code < 500, status=f"smtp {code}", response=text[:RESPONSE_CHARS])


def failure_delivery(error: BaseException) -> Delivery:
    """Every way the conversation can end early, judged by whether trying again could help."""
    if isinstance(error, smtplib.SMTPResponseException):  # AUTH, MAIL, DATA refused: the server's own code
        return _reply_delivery(error.smtp_code, error.smtp_error)
    status, retryable = _classify(error)
    return Delivery(ok=False, retryable=retryable, status=status,
                    response=f"{type(error).__name__}: {error}"[:RESPONSE_CHARS])


def _classify(error: BaseException) -> tuple[str, bool]:
    if isinstance(error, ConnectionRefusedError):
        return "refused", True
    if isinstance(error, TimeoutError):  # socket.timeout is its alias
        return "timeout", True
    if isinstance(error, ssl.SSLCertVerificationError):
        return "tls", False  # the certificate will not verify on the next try either
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "error", True
    if isinstance(error, smtplib.SMTPException):  # checked before OSError, its base class
        return "smtp unsupported", False  # no STARTTLS, no AUTH, no usable AUTH mechanism: configuration
    if isinstance(error, OSError):
        return "error", True  # resets, DNS, TLS handshakes: the network may come back
    return "internal error", False


class SmtpSender:
    def __init__(self, config: SmtpChannel) -> None:
        self.id = config.id
        self.config = config

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.security == "tls":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=self._tls_context())
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        if config.security == "starttls":
            try:
                smtp.starttls(context=self._tls_context())  # raises SMTPNotSupportedError if not offered
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        if self.config.username:
            password = self.config.password.get_secret_value() if self.config.password else ""
            smtp.login(self.config.username, password)

    def _transact(self, smtp: smtplib.SMTP, message: Message, address: str) -> Delivery:
        mail = build_email(self.config.sender, message, address)
        sender = envelope_sender(self.config.sender)
        utf8 = _needs_smtputf8(sender, address)  # a display name is RFC 2047-encoded instead
        if utf8 and not smtp.has_extn("smtputf8"):
            return Delivery(ok=False, retryable=False, status="smtp unsupported",
                            response="a non-ASCII address needs SMTPUTF8, which the server does not offer")
        payload = mail.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
        code, reply = smtp.mail(sender, ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else [])
        if code != 250:
            return _reply_delivery(code, reply)
        code, reply = smtp.rcpt(address)
        if code not in (250, 251):
            return _reply_delivery(code, reply)
        code, reply = smtp.data(payload)
        return _reply_delivery(code, reply)

    def send(self, message: Message, address: str) -> Delivery:
        return self.session(lambda smtp: self._transact(smtp, message, address))

    def session(self, transact: Callable[[smtplib.SMTP], Delivery]) -> Delivery:
        """Connect (TLS or STARTTLS), greet, log in, run `transact`, quit; every failure becomes the Delivery."""
        try:
            smtp = self._connect()
        except Exception as error:
            return failure_delivery(error)
        try:
            smtp.ehlo_or_helo_if_needed()
            self._login(smtp)
            return transact(smtp)
        except Exception as error:  # SMTP, socket and TLS errors all end in the delivery log, never in the notifier
            return failure_delivery(error)
        finally:
            _quit(smtp)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
