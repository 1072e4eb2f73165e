"""Notification channels without a network: Aliyun's and DingTalk's signatures against published and
independently computed values, template escaping, the requests each preset builds, and the table that turns an
HTTP or SMTP outcome into a `Delivery` (the real servers are in tests/integration)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import urllib.parse
from typing import Any

import pytest

from alarms.model import Priority
from alarms.notify.channels import HttpSmsSender, SmtpSender, WebhookSender, build_sender
from alarms.notify.channels.http import (
    HttpFailure,
    HttpResponse,
    delivery_of,
    http_request,
    retry_after_seconds,
    with_headers,
)
from alarms.notify.channels.sms import (
    aliyun_delivery,
    aliyun_phone,
    aliyun_signature,
    aliyun_timestamp,
    fill,
    form_escape,
    json_escape,
    percent_encode,
)
from alarms.notify.channels.smtp import build_email, failure_delivery
from alarms.notify.channels.webhook import (
    dingtalk_payload,
    dingtalk_sign,
    dingtalk_url,
    errcode_delivery,
    generic_payload,
    looks_like_phone,
    wecom_payload,
)
from alarms.notify.model import Delivery, Message, NoticeKind
from stackwatch.config.notify import HttpSmsChannel, SmtpChannel, WebhookChannel

MESSAGE = Message(
    kind=NoticeKind.PAGE, priority=Priority.CRITICAL, subject="【紧急】B1 库房漏水",
    text='B1 库房漏水传感器报警。\n回复 "ACK 7" 确认。', sms='B1 漏水 "ACK 7"\n第二行 \\ 反斜杠',
    html="<p>漏水</p>", tickets=(7, 8), link="https://sw.example/ack/t0k", data={"room": "B1"},
)
NONCE, NOW = "0f3c9a5e-5b1e-4a0b-9a57-3f1d2c4b5a69", 1_760_000_000.0  # 2025-10-09T08:53:20Z


def sms(**fields: Any) -> HttpSmsChannel:
    return HttpSmsChannel.model_validate({"type": "sms-http", "id": "sms", **fields})


# --- Aliyun -----------------------------------------------------------------------------------------------------

def documented_encode(text: str) -> str:
    """Alibaba's rule, byte by byte: A-Z a-z 0-9 - _ . ~ stay, everything else is %XY of its UTF-8 bytes."""
    unreserved = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    return "".join(chr(byte) if byte in unreserved else f"%{byte:02X}" for byte in text.encode())


def documented_signature(secret: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{documented_encode(k)}={documented_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = "GET&%2F&" + documented_encode(canonical)
    return base64.b64encode(hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


# The worked example of Alibaba's RPC signature documentation (ECS DescribeRegions, secret "testsecret"), and the
# SendSms example of the SMS documentation (secret "testSecret"): both published with their signatures.
DESCRIBE_REGIONS = {
    "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
}
SEND_SMS = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


@pytest.mark.parametrize(("secret", "params", "published"), [
    ("testsecret", DESCRIBE_REGIONS, "OLeaidS1JvxuMvnyHOwuJ+uX5qY="),
    ("testSecret", SEND_SMS, "zJDF+Lrzhj/ThnlvIToysFRq6t4="),
])
def test_aliyun_signature_matches_the_published_examples(secret: str, params: dict[str, str], published: str) -> None:
    assert aliyun_signature(secret, params) == published
    assert documented_signature(secret, params) == published  # the test's own reading of the rule agrees


@pytest.mark.parametrize(("text", "encoded"), [
    ("a b", "a%20b"), ("*", "%2A"), ("~-_.", "~-_."), ("/=&+", "%2F%3D%26%2B"), ("湿", "%E6%B9%BF"),
    ('{"text":"x"}', "%7B%22text%22%3A%22x%22%7D"),
])
def test_percent_encoding_is_rfc3986(text: str, encoded: str) -> None:
    assert percent_encode(text) == encoded == documented_encode(text)


def aliyun_sender() -> HttpSmsSender:
    config = sms(preset="aliyun", account="LTAI5tExample", secret="k3y/with+odd=chars", sender="库房监测",
                 template_code="SMS_1234")
    return HttpSmsSender(config, clock=lambda: NOW, nonce=lambda: NONCE)


def test_aliyun_request_with_fixed_nonce_and_clock_is_signed_as_documented() -> None:
    call = aliyun_sender().build(MESSAGE, "+86 138-0013-8000")
    parts = urllib.parse.urlsplit(call.url)
    assert (call.method, parts.scheme, parts.netloc, parts.path) == ("GET", "https", "dysmsapi.aliyuncs.com", "/")
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    signature = params.pop("Signature")
    assert params == {
        "AccessKeyId": "LTAI5tExample", "Action": "SendSms", "Format": "JSON", "PhoneNumbers": "13800138000",
        "RegionId": "cn-hangzhou", "SignName": "库房监测", "SignatureMethod": "HMAC-SHA1", "SignatureNonce": NONCE,
        "SignatureVersion": "1.0", "TemplateCode": "SMS_1234", "TemplateParam": json.dumps(
            {"text": MESSAGE.sms}, ensure_ascii=False, separators=(",", ":")),
        "Timestamp": "2025-10-09T08:53:20Z", "Version": "2017-05-25",
    }
    assert signature == documented_signature("k3y/with+odd=chars", params)
    assert call.body is None


def test_aliyun_endpoint_override_keeps_a_path() -> None:
    config = sms(preset="aliyun", url="http://127.0.0.1:9", account="a", secret="s", sender="x", template_code="T")
    call = HttpSmsSender(config, clock=lambda: NOW, nonce=lambda: NONCE).build(MESSAGE, "13800138000")
    assert call.url.startswith("http://127.0.0.1:9/?AccessKeyId=a&")


@pytest.mark.parametrize(("address", "number"), [
    ("+8613800138000", "13800138000"), ("13800138000", "13800138000"), ("+86 138 0013 8000", "13800138000"),
    ("+85261234567", "85261234567"),
])
def test_aliyun_phone_numbers(address: str, number: str) -> None:
    assert aliyun_phone(address) == number


def test_aliyun_timestamp_is_utc() -> None:
    assert aliyun_timestamp(0) == "1970-01-01T00:00:00Z"
    assert aliyun_timestamp(NOW) == "2025-10-09T08:53:20Z"


OK_200 = Delivery(ok=True, retryable=False, status="http 200")


@pytest.mark.parametrize(("delivery", "body", "verdict"), [
    (OK_200, '{"Code": "OK", "BizId": "1^0"}', (True, False, "http 200")),
    (OK_200, '{"Code": "isv.MOBILE_NUMBER_ILLEGAL"}', (False, False, "aliyun isv.MOBILE_NUMBER_ILLEGAL")),
    (OK_200, '{"Code": "isv.BUSINESS_LIMIT_CONTROL"}', (False, True, "aliyun isv.BUSINESS_LIMIT_CONTROL")),
    (OK_200, '{"Code": "Throttling.User"}', (False, True, "aliyun Throttling.User")),
    (OK_200, "<html>proxy page</html>", (False, False, "aliyun no Code")),
    (Delivery(False, False, "http 400"), '{"Code": "SignatureDoesNotMatch"}',
     (False, False, "aliyun SignatureDoesNotMatch")),
    (Delivery(False, True, "http 503"), "Service Unavailable", (False, True, "http 503")),
])
def test_aliyun_answers(delivery: Delivery, body: str, verdict: tuple[bool, bool, str]) -> None:
    judged = aliyun_delivery(delivery, HttpResponse(200, {}, body))
    assert (judged.ok, judged.retryable, judged.status) == verdict


# --- DingTalk and WeCom -----------------------------------------------------------------------------------------

def test_dingtalk_sign_as_documented() -> None:
    secret, timestamp = "SECa1b2c3d4e5f6", 1_700_000_000_123
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    expected = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    assert dingtalk_sign(secret, timestamp) == expected
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=T", secret, timestamp)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query == {"access_token": "T", "timestamp": str(timestamp), "sign": base64.b64encode(digest).decode()}


def test_dingtalk_without_secret_leaves_the_url_alone() -> None:
    assert dingtalk_url("https://x/robot/send?access_token=T", None, 1) == "https://x/robot/send?access_token=T"


def test_dingtalk_signs_with_the_injected_clock() -> None:
    channel = WebhookChannel(type="webhook", id="dd", style="dingtalk", url="https://x/send", secret="SECk")
    call = WebhookSender(channel, clock=lambda: 1_700_000_000.5).build(MESSAGE, "")
    assert call.url == f"https://x/send?timestamp=1700000000500&sign={dingtalk_sign('SECk', 1_700_000_000_500)}"


@pytest.mark.parametrize(("address", "phone"), [
    ("+8613800138000", True), ("138 0013 8000", True), ("zhangsan", False), ("", False), ("+86", False),
])
def test_phone_detection(address: str, phone: bool) -> None:
    assert looks_like_phone(address) is phone


def test_dingtalk_mentions_a_phone_or_a_user_id() -> None:
    by_phone = dingtalk_payload(MESSAGE, "+8613800138000")
    assert by_phone["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    assert by_phone["markdown"] == {"title": MESSAGE.subject,
                                    "text": f"{MESSAGE.text}\n\n[{MESSAGE.link}]({MESSAGE.link})\n\n@13800138000"}
    assert dingtalk_payload(MESSAGE, "manager01")["at"] == {"atUserIds": ["manager01"], "isAtAll": False}
    assert dingtalk_payload(MESSAGE, "")["at"] == {"isAtAll": False}


def test_wecom_markdown_for_the_group_text_to_ring_a_phone() -> None:
    group = wecom_payload(MESSAGE, "")
    assert group["msgtype"] == "markdown"
    link = f"[{MESSAGE.link}]({MESSAGE.link})"
    assert group["markdown"] == {"content": f"**{MESSAGE.subject}**\n{MESSAGE.text}\n\n{link}"}
    ring = wecom_payload(MESSAGE, "+8613800138000")
    assert ring == {"msgtype": "text", "text": {"content": f"{MESSAGE.subject}\n{MESSAGE.text}\n{MESSAGE.link}",
                                                "mentioned_mobile_list": ["13800138000"]}}
    assert wecom_payload(MESSAGE, "LiSi")["markdown"]["content"].endswith("\n<@LiSi>")  # type: ignore[index]


@pytest.mark.parametrize(("body", "verdict"), [
    ('{"errcode": 0, "errmsg": "ok"}', (True, False, "http 200")),
    ('{"errcode": 45009, "errmsg": "api freq out of limit"}', (False, True, "errcode 45009")),
    ('{"errcode": 93000, "errmsg": "invalid webhook url"}', (False, False, "errcode 93000")),
    ("ok", (False, False, "no errcode")),
])
def test_robot_errcodes(body: str, verdict: tuple[bool, bool, str]) -> None:
    judged = errcode_delivery(OK_200, HttpResponse(200, {}, body), (45009,))
    assert (judged.ok, judged.retryable, judged.status) == verdict


def test_generic_webhook_payload_keeps_the_fixed_fields_authoritative() -> None:
    message = Message(kind=NoticeKind.RETURNED, priority=Priority.LOW, subject="s", text="t", sms="",
                      data={"room": "B1", "subject": "not this"})
    assert generic_payload(message) == {"room": "B1", "kind": "returned", "priority": "low", "subject": "s",
                                        "text": "t", "tickets": [], "link": ""}


# --- generic SMS templates --------------------------------------------------------------------------------------

def test_json_escaping_of_quotes_newlines_backslashes_and_chinese() -> None:
    template = '{"to": "{to}", "text": "{text}", "meta": {"ticket": "{ticket}"}, "keep": "{other}"}'
    values = {"to": "+8613800138000", "text": MESSAGE.sms, "ticket": "7", "sender": ""}
    body = fill(template, values, json_escape)
    assert body == ('{"to": "+8613800138000", "text": "B1 漏水 \\"ACK 7\\"\\n第二行 \\\\ 反斜杠", '
                    '"meta": {"ticket": "7"}, "keep": "{other}"}')
    assert json.loads(body)["text"] == MESSAGE.sms


def test_form_encoding() -> None:
    body = fill("to={to}&text={text}", {"to": "+86 138", "text": "a&b=c 湿度", "ticket": "", "sender": ""},
                form_escape)
    assert body == "to=%2B86+138&text=a%26b%3Dc+%E6%B9%BF%E5%BA%A6"
    assert urllib.parse.parse_qs(body) == {"to": ["+86 138"], "text": ["a&b=c 湿度"]}


def test_generic_request_fills_url_body_and_headers() -> None:
    config = sms(url="https://gw.example/send?to={to}&t={ticket}", body="{sender}: {text}", content_type="text/plain",
                 sender="SW", headers={"content-type": "text/plain; charset=utf-8", "X-Key": "k"})
    call = HttpSmsSender(config).build(MESSAGE, "+8613800138000")
    assert call.url == "https://gw.example/send?to=%2B8613800138000&t=7"
    assert call.body == f"SW: {MESSAGE.sms}".encode()
    assert call.headers == {"content-type": "text/plain; charset=utf-8", "X-Key": "k"}  # configured wins, any case


def test_twilio_request() -> None:
    config = sms(preset="twilio", account="AC1", secret="tok", sender="+15005550006")
    call = HttpSmsSender(config).build(MESSAGE, "+447700900123")
    assert (call.method, call.url) == ("POST", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json")
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"AC1:tok").decode()
    assert urllib.parse.parse_qs((call.body or b"").decode()) == {
        "To": ["+447700900123"], "From": ["+15005550006"], "Body": [MESSAGE.sms]}


def test_with_headers_replaces_without_regard_to_case() -> None:
    assert with_headers({"Content-Type": "a", "Accept": "b"}, {"content-TYPE": "c"}) == {"Accept": "b",
                                                                                         "content-TYPE": "c"}


# --- HTTP outcomes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "verdict"), [
    (HttpResponse(200, {}, "ok"), (True, False, "http 200", None)),
    (HttpResponse(204), (True, False, "http 204", None)),
    (HttpResponse(302), (False, False, "http 302", None)),
    (HttpResponse(400, {}, "bad"), (False, False, "http 400", None)),
    (HttpResponse(401), (False, False, "http 401", None)),
    (HttpResponse(404), (False, False, "http 404", None)),
    (HttpResponse(408), (False, True, "http 408", None)),
    (HttpResponse(429, {"retry-after": "7"}), (False, True, "http 429", 7.0)),
    (HttpResponse(429), (False, True, "http 429", None)),
    (HttpResponse(500), (False, True, "http 500", None)),
    (HttpResponse(503, {"retry-after": "120"}), (False, True, "http 503", 120.0)),
    (HttpResponse(400, {"retry-after": "7"}), (False, False, "http 400", None)),
    (HttpFailure("timeout", "timed out"), (False, True, "timeout", None)),
    (HttpFailure("refused", "[Errno 111]"), (False, True, "refused", None)),
    (HttpFailure("error", "gaierror"), (False, True, "error", None)),
    (HttpFailure("tls", "certificate verify failed"), (False, False, "tls", None)),
    (HttpFailure("invalid", "unknown url type"), (False, False, "invalid", None)),
])
def test_http_outcome_table(outcome: HttpResponse | HttpFailure, verdict: tuple[bool, bool, str, float | None]) -> None:
    delivery = delivery_of(outcome)
    assert (delivery.ok, delivery.retryable, delivery.status, delivery.retry_after) == verdict


def test_success_status_is_the_channels_list() -> None:
    assert not delivery_of(HttpResponse(202), [200]).ok
    assert delivery_of(HttpResponse(202), [200, 202]).ok


def test_response_keeps_500_characters() -> None:
    assert len(delivery_of(HttpResponse(500, {}, "x" * 2000)).response) == 500


def test_retry_after_as_an_http_date() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 30) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 + 30) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_malformed_url_is_a_failure_not_an_exception() -> None:
    assert http_request("POST", "not a url", body=b"x").kind == "invalid"  # type: ignore[union-attr]


# --- SMTP -------------------------------------------------------------------------------------------------------

def test_email_headers_and_parts() -> None:
    mail = build_email("库房监测 <alarms@archive.example>", MESSAGE, "duty@archive.example")
    raw = mail.as_bytes(policy=email.policy.SMTP)
    assert raw.isascii()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == MESSAGE.subject and parsed["X-Stackwatch-Tickets"] == "7,8"
    assert parsed["Message-ID"].endswith("@archive.example>") and parsed["Auto-Submitted"] == "auto-generated"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(("error", "verdict"), [
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), (False, "smtp 535")),
    (smtplib.SMTPSenderRefused(553, b"sender not allowed", "a@b"), (False, "smtp 553")),
    (smtplib.SMTPDataError(451, b"4.3.0 try later"), (True, "smtp 451")),
    (smtplib.SMTPResponseException(421, b"closing"), (True, "smtp 421")),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), (False, "smtp unsupported")),
    (smtplib.SMTPException("No suitable authentication method found."), (False, "smtp unsupported")),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), (True, "error")),
    (ConnectionRefusedError(111, "Connection refused"), (True, "refused")),
    (TimeoutError("timed out"), (True, "timeout")),
    (socket.gaierror(-2, "Name or service not known"), (True, "error")),
    (ssl.SSLCertVerificationError("certificate verify failed"), (False, "tls")),
])
def test_smtp_failure_table(error: BaseException, verdict: tuple[bool, str]) -> None:
    delivery = failure_delivery(error)
    assert not delivery.ok and (delivery.retryable, delivery.status) == verdict


# --- dispatch ---------------------------------------------------------------------------------------------------

def test_build_sender_by_channel_type() -> None:
    smtp = SmtpChannel(type="smtp", id="mail", host="mail.example", sender="a@archive.example")
    gateway = sms(id="gw", url="https://gw.example/send", body="{text}")
    robot = WebhookChannel(type="webhook", id="wecom", style="wecom", url="https://qyapi.example/send?key=k")
    senders = [build_sender(channel) for channel in (smtp, gateway, robot)]
    assert [type(sender) for sender in senders] == [SmtpSender, HttpSmsSender, WebhookSender]
    assert [sender.id for sender in senders] == ["mail", "gw", "wecom"]
