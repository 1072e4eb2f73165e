"""Notification channels against real local servers: an aiosmtpd SMTP server (plain, AUTH, STARTTLS with a
certificate made for the test, implicit TLS, refusals, down) and a fake HTTP provider playing a generic SMS gateway,
Twilio, Aliyun, WeCom, DingTalk and failing, throttling, hung and redirecting gateways."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import re
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alarms.model import Priority
from alarms.notify.channels import HttpSmsSender, SmtpSender, WebhookSender, build_sender
from alarms.notify.model import Message, NoticeKind
from stackwatch.config.notify import HttpSmsChannel, SmtpChannel, WebhookChannel
from stackwatch.localservers import free_port
from tests.integration.fake_gateway import FakeGateway, Recorded, Reply

pytestmark = pytest.mark.integration

MESSAGE = Message(
    kind=NoticeKind.PAGE, priority=Priority.HIGH,
    subject="【高】库房 B2-3 湿度 65 %（限值 60 %）",
    text='库房 B2-3 湿度 65 %，已持续 10 分钟。\n请处理并回复 "ACK 101"。',
    sms='【高】B2-3 湿度 65% "回复 ACK 101"\n第二行',
    html="<p>库房 <b>B2-3</b> 湿度 65 %</p>",
    tickets=(101, 102), link="https://stackwatch.example/ack/abc",
    data={"room": "B2-3", "kind": "overridden by the fixed field"},
)
PHONE = "+8613800138000"


# --- SMTP -------------------------------------------------------------------------------------------------------

class Inbox:
    """An aiosmtpd handler that keeps what it accepts and refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 Ok: queued as TEST1"


def accept_alarms(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alarms", b"s3cret")
    return AuthResult(success=good, handled=False)


@contextmanager
def smtp_server(inbox: Inbox, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mail.test", **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made now: the client trusts it through `ca_file`."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def smtp_channel(port: int, **changes: Any) -> SmtpChannel:
    fields: dict[str, Any] = {"type": "smtp", "id": "mail", "host": "127.0.0.1", "port": port, "security": "none",
                              "sender": "库房监测 <alarms@archive.example>", "timeout": 5}
    return SmtpChannel.model_validate({**fields, **changes})


def parsed(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def canonical(text: str) -> str:
    """MIME text travels with CRLF line ends (RFC 2045 canonical form), also inside base64."""
    return text.replace("\r\n", "\n").rstrip("\n")


def test_plain_smtp_delivers_both_parts_with_chinese_and_ticket_header() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        delivery = SmtpSender(smtp_channel(port)).send(MESSAGE, "duty@archive.example")
    assert (delivery.ok, delivery.retryable, delivery.status) == (True, False, "smtp 250")
    assert "queued as TEST1" in delivery.response
    [(mail_from, rcpt_tos, raw)] = inbox.received
    assert (mail_from, rcpt_tos) == ("alarms@archive.example", ["duty@archive.example"])
    mail = parsed(raw)
    assert mail["Subject"] == MESSAGE.subject
    assert mail["X-Stackwatch-Tickets"] == "101,102"
    assert re.fullmatch(r"<[^@>]+@archive\.example>", mail["Message-ID"])
    assert mail["From"].addresses[0].display_name == "库房监测"
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    assert canonical(plain.get_content()) == MESSAGE.text
    assert canonical(html.get_content()) == MESSAGE.html
    assert raw.isascii()  # Chinese travels encoded: no 8BITMIME needed


def test_without_html_the_mail_is_plain_text_only() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        assert SmtpSender(smtp_channel(port)).send(replace(MESSAGE, html="", tickets=()), "duty@archive.example").ok
    mail = parsed(inbox.received[0][2])
    assert mail.get_content_type() == "text/plain" and mail["X-Stackwatch-Tickets"] is None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_auth_with_the_right_password_delivers_and_a_wrong_one_is_final() -> None:
    inbox = Inbox()
    with smtp_server(inbox, authenticator=accept_alarms, auth_required=True, auth_require_tls=False) as port:
        good = SmtpSender(smtp_channel(port, username="alarms", password="s3cret")).send(MESSAGE, "a@archive.example")
        bad = SmtpSender(smtp_channel(port, username="alarms", password="wrong")).send(MESSAGE, "a@archive.example")
        anonymous = SmtpSender(smtp_channel(port)).send(MESSAGE, "a@archive.example")
    assert good.ok and good.status == "smtp 250"
    assert (bad.ok, bad.retryable, bad.status) == (False, False, "smtp 535")
    assert (anonymous.ok, anonymous.retryable, anonymous.status) == (False, False, "smtp 530")
    assert len(inbox.received) == 1


def test_starttls_with_the_site_ca_then_auth(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls(certificate), require_starttls=True,
                     authenticator=accept_alarms, auth_required=True) as port:
        channel = smtp_channel(port, security="starttls", ca_file=str(certificate[0]), username="alarms",
                               password="s3cret")
        delivery = SmtpSender(channel).send(MESSAGE, "duty@archive.example")
        untrusted = SmtpSender(channel.model_copy(update={"ca_file": None})).send(MESSAGE, "duty@archive.example")
    assert delivery.ok and delivery.status == "smtp 250"
    assert parsed(inbox.received[0][2])["Subject"] == MESSAGE.subject
    assert (untrusted.ok, untrusted.retryable, untrusted.status) == (False, False, "tls")


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=server_tls(certificate)) as port:
        delivery = SmtpSender(smtp_channel(port, security="tls", ca_file=str(certificate[0]))).send(
            MESSAGE, "duty@archive.example")
    assert delivery.ok and len(inbox.received) == 1


def test_starttls_asked_of_a_server_without_it_is_a_configuration_error() -> None:
    with smtp_server(Inbox()) as port:
        delivery = SmtpSender(smtp_channel(port, security="starttls")).send(MESSAGE, "duty@archive.example")
    assert (delivery.ok, delivery.retryable, delivery.status) == (False, False, "smtp unsupported")


def test_recipient_refused_550_is_final_and_450_is_retried() -> None:
    inbox = Inbox()
    inbox.refuse = {"gone@archive.example": "550 5.1.1 <gone@archive.example>: Recipient address rejected",
                    "busy@archive.example": "450 4.2.1 Mailbox busy, try later"}
    with smtp_server(inbox) as port:
        sender = SmtpSender(smtp_channel(port))
        gone, busy = sender.send(MESSAGE, "gone@archive.example"), sender.send(MESSAGE, "busy@archive.example")
    assert (gone.ok, gone.retryable, gone.status) == (False, False, "smtp 550")
    assert "Recipient address rejected" in gone.response
    assert (busy.ok, busy.retryable, busy.status) == (False, True, "smtp 450")
    assert inbox.received == []


def test_server_down_is_retried() -> None:
    delivery = SmtpSender(smtp_channel(free_port())).send(MESSAGE, "duty@archive.example")
    assert (delivery.ok, delivery.retryable, delivery.status) == (False, True, "refused")


# --- HTTP -------------------------------------------------------------------------------------------------------

@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as server:
        yield server


def sms(**fields: Any) -> HttpSmsChannel:
    return HttpSmsChannel.model_validate({"type": "sms-http", "id": "sms", "timeout": 5, **fields})


def webhook(**fields: Any) -> WebhookChannel:
    return WebhookChannel.model_validate({"type": "webhook", "id": "robot", "timeout": 5, **fields})


def test_generic_gateway_gets_the_exact_json_body_headers_and_url(gateway: FakeGateway) -> None:
    gateway.respond("/api/sms", status=200, body={"result": "queued"})
    channel = sms(url=gateway.url + "/api/sms?to={to}&ref={ticket}", method="POST", sender="STACKWATCH",
                  headers={"X-Api-Key": "k-123"},
                  body='{"phone": "{to}", "message": "{text}", "ticket": "{ticket}", "from": "{sender}"}')
    delivery = HttpSmsSender(channel).send(MESSAGE, PHONE)
    assert (delivery.ok, delivery.status) == (True, "http 200") and "queued" in delivery.response
    [request] = gateway.requests
    assert (request.method, request.path) == ("POST", "/api/sms")
    assert request.param("to") == PHONE and request.param("ref") == "101"
    assert request.headers["x-api-key"] == "k-123"
    assert request.headers["content-type"] == "application/json"
    expected = ('{"phone": "+8613800138000", "message": "【高】B2-3 湿度 65% \\"回复 ACK 101\\"\\n第二行", '
                '"ticket": "101", "from": "STACKWATCH"}')
    assert request.text() == expected
    assert request.json()["message"] == MESSAGE.sms


def test_generic_gateway_form_encoded_put(gateway: FakeGateway) -> None:
    gateway.respond("/send", status=204)
    channel = sms(url=gateway.url + "/send", method="PUT", content_type="application/x-www-form-urlencoded",
                  body="dest={to}&msg={text}&t={ticket}")
    assert HttpSmsSender(channel).send(replace(MESSAGE, tickets=()), PHONE).ok
    [request] = gateway.requests
    assert request.method == "PUT"
    assert request.form() == {"dest": PHONE, "msg": MESSAGE.sms, "t": ""}
    assert "%2B86" in request.text()  # a literal + would arrive as a space


def test_twilio_posts_the_form_with_basic_auth(gateway: FakeGateway) -> None:
    path = "/2010-04-01/Accounts/AC0123/Messages.json"
    gateway.respond(path, status=201, body={"sid": "SM1", "status": "queued"})
    channel = sms(preset="twilio", url=gateway.url, account="AC0123", secret="token-9", sender="+15005550006")
    delivery = HttpSmsSender(channel).send(MESSAGE, "+447700900123")
    assert (delivery.ok, delivery.status) == (True, "http 201")
    [request] = gateway.requests
    assert (request.method, request.path) == ("POST", path)
    scheme, _, credentials = request.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(credentials).decode()) == ("Basic", "AC0123:token-9")
    assert request.form() == {"To": "+447700900123", "From": "+15005550006", "Body": MESSAGE.sms}


def test_twilio_invalid_number_is_final(gateway: FakeGateway) -> None:
    gateway.respond("*", status=400, body={"code": 21211, "message": "The 'To' number is not a valid phone number."})
    channel = sms(preset="twilio", url=gateway.url, account="AC0123", secret="token-9", sender="+15005550006")
    delivery = HttpSmsSender(channel).send(MESSAGE, "+4400")
    assert (delivery.ok, delivery.retryable, delivery.status) == (False, False, "http 400")
    assert "21211" in delivery.response


def _aliyun_encode(text: str) -> str:
    """Alibaba's documented rule, byte by byte: only A-Z a-z 0-9 - _ . ~ stay literal; written apart from the
    channel's own so that the two would have to be wrong the same way to agree."""
    unreserved = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    return "".join(chr(byte) if byte in unreserved else f"%{byte:02X}" for byte in text.encode())


def aliyun_verify(request: Recorded, secret: str) -> bool:
    """What Aliyun does on receipt: recompute the signature from the received parameters."""
    params = {name: values[0] for name, values in request.query.items()}
    signature = params.pop("Signature")
    canonical = "&".join(f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{request.method}&%2F&{_aliyun_encode(canonical)}"
    expected = base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(signature, expected)


def aliyun_channel(gateway: FakeGateway) -> HttpSmsChannel:
    return sms(preset="aliyun", url=gateway.url + "/", account="LTAI5tTest", secret="s3cret/+=", sender="库房监测",
               template_code="SMS_271525123")


def test_aliyun_signed_request_is_verified_by_the_server(gateway: FakeGateway) -> None:
    def answer(request: Recorded) -> Reply:
        if not aliyun_verify(request, "s3cret/+="):
            return Reply(400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"})
        return Reply(200, {"Code": "OK", "Message": "OK", "BizId": "9006197469364984^0", "RequestId": "F655A8D5"})

    gateway.respond("/", handler=answer)
    delivery = HttpSmsSender(aliyun_channel(gateway)).send(MESSAGE, PHONE)
    assert (delivery.ok, delivery.status) == (True, "http 200"), delivery
    assert "BizId" in delivery.response
    [request] = gateway.requests
    assert request.method == "GET" and request.body == b""
    assert request.param("Action") == "SendSms" and request.param("Version") == "2017-05-25"
    assert request.param("PhoneNumbers") == "13800138000"
    assert request.param("SignName") == "库房监测" and request.param("TemplateCode") == "SMS_271525123"
    assert json.loads(request.param("TemplateParam")) == {"text": MESSAGE.sms}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", request.param("Timestamp"))
    assert re.fullmatch(r"[0-9a-f-]{36}", request.param("SignatureNonce"))
    assert "+" not in request.raw_query  # spaces and pluses are %20 and %2B, as Aliyun requires


@pytest.mark.parametrize(("code", "retryable"), [
    ("isv.MOBILE_NUMBER_ILLEGAL", False),
    ("isv.SMS_TEMPLATE_ILLEGAL", False),
    ("isv.BUSINESS_LIMIT_CONTROL", True),
    ("Throttling.User", True),
])
def test_aliyun_error_codes_in_a_200(gateway: FakeGateway, code: str, retryable: bool) -> None:
    gateway.respond("/", body={"Code": code, "Message": "…", "RequestId": "R1"})
    delivery = HttpSmsSender(aliyun_channel(gateway)).send(MESSAGE, PHONE)
    assert (delivery.ok, delivery.retryable, delivery.status) == (False, retryable, f"aliyun {code}")


def test_wecom_markdown_and_mention_by_phone(gateway: FakeGateway) -> None:
    gateway.respond("/cgi-bin/webhook/send", body={"errcode": 0, "errmsg": "ok"})
    sender = WebhookSender(webhook(style="wecom", url=gateway.url + "/cgi-bin/webhook/send?key=abc"))
    assert sender.send(MESSAGE, "").ok
    assert sender.send(MESSAGE, PHONE).ok
    group, mention = gateway.wait_for(2)
    assert group.param("key") == "abc" and group.headers["content-type"].startswith("application/json")
    assert group.json()["msgtype"] == "markdown"
    content = group.json()["markdown"]["content"]
    assert MESSAGE.subject in content and MESSAGE.link in content
    assert mention.json()["msgtype"] == "text"
    assert mention.json()["text"]["mentioned_mobile_list"] == ["13800138000"]


@pytest.mark.parametrize(("errcode", "retryable"), [(45009, True), (93000, False)])
def test_wecom_errcode_is_a_failure(gateway: FakeGateway, errcode: int, retryable: bool) -> None:
    gateway.respond("/send", body={"errcode": errcode, "errmsg": "something"})
    delivery = WebhookSender(webhook(style="wecom", url=gateway.url + "/send")).send(MESSAGE, "")
    assert (delivery.ok, delivery.retryable, delivery.status) == (False, retryable, f"errcode {errcode}")


def dingtalk_verify(request: Recorded, secret: str, now_ms: int) -> bool:
    """DingTalk's check: the timestamp within an hour, and the sign its HMAC-SHA256 with the secret."""
    timestamp = int(request.param("timestamp"))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return abs(now_ms - timestamp) < 3_600_000 and request.param("sign") == base64.b64encode(digest).decode()


def test_dingtalk_signed_markdown_with_mention(gateway: FakeGateway) -> None:
    def answer(request: Recorded) -> Reply:
        if not dingtalk_verify(request, "SEC0123abc", int(time.time() * 1000)):
            return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    gateway.respond("/robot/send", handler=answer)
    sender = WebhookSender(webhook(style="dingtalk", url=gateway.url + "/robot/send?access_token=t1",
                                   secret="SEC0123abc"))
    delivery = sender.send(MESSAGE, PHONE)
    assert delivery.ok, delivery
    [request] = gateway.requests
    assert request.param("access_token") == "t1"
    payload = request.json()
    assert payload["msgtype"] == "markdown" and payload["markdown"]["title"] == MESSAGE.subject
    assert payload["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    assert payload["markdown"]["text"].endswith("@13800138000")


def test_dingtalk_wrong_secret_and_too_fast(gateway: FakeGateway) -> None:
    def answer(request: Recorded) -> Reply:
        if not dingtalk_verify(request, "SEC-right", int(time.time() * 1000)):
            return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        return Reply(200, {"errcode": 130101, "errmsg": "send too fast"})

    gateway.respond("/robot/send", handler=answer)
    wrong = WebhookSender(webhook(style="dingtalk", url=gateway.url + "/robot/send", secret="SEC-wrong"))
    fast = WebhookSender(webhook(style="dingtalk", url=gateway.url + "/robot/send", secret="SEC-right"))
    assert _verdict(wrong.send(MESSAGE, "")) == (False, False, "errcode 310000")
    assert _verdict(fast.send(MESSAGE, "")) == (False, True, "errcode 130101")


def test_generic_webhook_posts_the_structured_copy(gateway: FakeGateway) -> None:
    gateway.respond("/hook", status=202)
    channel = webhook(url=gateway.url + "/hook", headers={"Authorization": "Bearer xyz"})
    assert build_sender(channel).send(MESSAGE, "ignored").ok
    [request] = gateway.requests
    assert request.headers["authorization"] == "Bearer xyz"
    assert request.json() == {"room": "B2-3", "kind": "page", "priority": "high", "subject": MESSAGE.subject,
                              "text": MESSAGE.text, "tickets": [101, 102], "link": MESSAGE.link}


def _verdict(delivery: Any) -> tuple[bool, bool, str]:
    return delivery.ok, delivery.retryable, delivery.status


def generic_sms(gateway: FakeGateway, path: str, timeout: float = 5.0) -> HttpSmsSender:
    return HttpSmsSender(sms(url=gateway.url + path, body='{"to": "{to}", "text": "{text}"}', timeout=timeout))


def test_failing_gateway_500_is_retried_and_its_answer_kept(gateway: FakeGateway) -> None:
    gateway.respond("/sms", status=500, body="internal error " + "x" * 2000)
    delivery = generic_sms(gateway, "/sms").send(MESSAGE, PHONE)
    assert _verdict(delivery) == (False, True, "http 500")
    assert delivery.response.startswith("internal error") and len(delivery.response) == 500


def test_rate_limited_gateway_says_when_to_come_back(gateway: FakeGateway) -> None:
    gateway.respond("/sms", status=429, body="slow down", headers={"Retry-After": "7"})
    delivery = generic_sms(gateway, "/sms").send(MESSAGE, PHONE)
    assert _verdict(delivery) == (False, True, "http 429") and delivery.retry_after == 7.0


def test_hung_gateway_times_out_within_about_the_timeout(gateway: FakeGateway) -> None:
    gateway.respond("/sms", delay=5.0)
    started = time.monotonic()
    delivery = generic_sms(gateway, "/sms", timeout=0.5).send(MESSAGE, PHONE)
    elapsed = time.monotonic() - started
    assert _verdict(delivery) == (False, True, "timeout")
    assert 0.4 < elapsed < 1.5
    assert len(gateway.requests) == 1  # it did reach the gateway: a retry may duplicate, never lose


def test_bad_request_400_is_final(gateway: FakeGateway) -> None:
    gateway.respond("/sms", status=400, body='{"error": "unknown field"}')
    assert _verdict(generic_sms(gateway, "/sms").send(MESSAGE, PHONE)) == (False, False, "http 400")


def test_redirect_is_not_followed_and_not_a_success(gateway: FakeGateway) -> None:
    gateway.respond("/old", status=302, headers={"Location": gateway.url + "/new"})
    gateway.respond("/new", status=200)
    assert _verdict(generic_sms(gateway, "/old").send(MESSAGE, PHONE)) == (False, False, "http 302")
    assert [request.path for request in gateway.requests] == ["/old"]


def test_gateway_down_is_retried() -> None:
    channel = sms(url=f"http://127.0.0.1:{free_port()}/sms", body="{text}")
    assert _verdict(HttpSmsSender(channel).send(MESSAGE, PHONE)) == (False, True, "refused")


def test_unconfigured_path_answers_404_and_wait_for_times_out(gateway: FakeGateway) -> None:
    assert _verdict(generic_sms(gateway, "/nowhere").send(MESSAGE, PHONE)) == (False, False, "http 404")
    with pytest.raises(AssertionError, match="expected 2 request"):
        gateway.wait_for(2, timeout=0.2)
    assert urllib.parse.urlsplit(gateway.url).hostname == "127.0.0.1"
