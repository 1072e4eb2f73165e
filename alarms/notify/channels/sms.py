"""SMS over HTTP: a gateway described by templates, Twilio, or Alibaba Cloud SMS.

SMS is what wakes the on-call person at night, so each preset speaks its
provider's own protocol (Twilio's form POST, Aliyun's signed RPC GET) instead
of asking every site to hand-write it in a template. Sites with a local
gateway (a GSM modem box, an operator's HTTP API) use `generic`.

The pure parts (template filling, Aliyun's signature) are functions so that
tests can check them against fixed vectors; the nonce and the clock are
injected for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping

from stackwatch.config.notify import HttpSmsChannel

from ..model import Delivery, Message
from .http import HttpCall, HttpResponse, delivery_of, json_answer, perform, refine, with_headers

TWILIO_BASE = "https://api.twilio.com"
ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
_PLACEHOLDER = re.compile(r"\{(to|text|ticket|sender)\}")
_FORM = "application/x-www-form-urlencoded"
# Aliyun's "try later" answers: flow control (per number and minute/hour/day) and its own failures
_ALIYUN_RETRYABLE = ("isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR")


# --- generic templates ---------------------------------------------------------------------------------------

def fill(template: str, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    """Only the four known placeholders are replaced: a JSON body is full of other braces."""
    return _PLACEHOLDER.sub(lambda match: escape(values[match.group(1)]), template)


def json_escape(value: str) -> str:
    """The inside of a JSON string: the template already has the quotes."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def form_escape(value: str) -> str:
    return urllib.parse.quote_plus(value)


def url_escape(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def body_escape(content_type: str) -> Callable[[str], str]:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return json_escape
    if media == _FORM:
        return form_escape
    return str


def template_values(message: Message, address: str, sender: str | None) -> dict[str, str]:
    ticket = str(message.tickets[0]) if message.tickets else ""
    return {"to": address, "text": message.sms, "ticket": ticket, "sender": sender or ""}


def generic_call(config: HttpSmsChannel, message: Message, address: str) -> HttpCall:
    values = template_values(message, address, config.sender)
    url = fill(config.url or "", values, url_escape)
    body = fill(config.body or "", values, body_escape(config.content_type)).encode() if config.body else None
    base = {"Content-Type": config.content_type} if body is not None else {}
    return HttpCall(config.method, url, with_headers(base, config.headers), body)


# --- Twilio --------------------------------------------------------------------------------------------------

def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def twilio_call(config: HttpSmsChannel, message: Message, address: str) -> HttpCall:
    account, secret = config.account or "", _secret(config)
    base = (config.url or TWILIO_BASE).rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{url_escape(account)}/Messages.json"
    body = urllib.parse.urlencode({"To": address, "From": config.sender or "", "Body": message.sms}).encode()
    headers = {"Content-Type": _FORM, "Accept": "application/json", "Authorization": basic_auth(account, secret)}
    return HttpCall("POST", url, with_headers(headers, config.headers), body)


# --- Alibaba Cloud SMS (dysmsapi SendSms, RPC signature version 1.0) ------------------------------------------

def percent_encode(value: str) -> str:
    """RFC 3986 as Aliyun wants it: only A-Z a-z 0-9 - _ . ~ stay; space is %20, never +."""
    return urllib.parse.quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params))


def aliyun_signature(secret: str, params: Mapping[str, str], method: str = "GET") -> str:
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def aliyun_phone(address: str) -> str:
    """Mainland numbers go without +86; others as country code and number, without the +."""
    number = address.strip().replace(" ", "").replace("-", "")
    return number.removeprefix("+86") if number.startswith("+86") else number.removeprefix("+")


def aliyun_params(config: HttpSmsChannel, text: str, address: str, *, nonce: str, timestamp: str) -> dict[str, str]:
    return {
        "AccessKeyId": config.account or "",
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": aliyun_phone(address),
        "RegionId": "cn-hangzhou",
        "SignName": config.sender or "",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "TemplateCode": config.template_code or "",
        "TemplateParam": json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":")),
        "Timestamp": timestamp,
        "Version": "2017-05-25",
    }


def aliyun_call(config: HttpSmsChannel, message: Message, address: str, *, nonce: str, timestamp: str) -> HttpCall:
    params = aliyun_params(config, message.sms, address, nonce=nonce, timestamp=timestamp)
    query = canonical_query(params) + "&Signature=" + percent_encode(aliyun_signature(_secret(config), params))
    endpoint = config.url or ALIYUN_ENDPOINT
    if not urllib.parse.urlsplit(endpoint).path:
        endpoint += "/"  # "http://host:port?…" would be sent as the request target "?…"
    separator = "&" if "?" in endpoint else "?"
    return HttpCall("GET", f"{endpoint}{separator}{query}", with_headers({"Accept": "application/json"},
                                                                          config.headers))


def aliyun_delivery(delivery: Delivery, response: HttpResponse) -> Delivery:
    """Aliyun answers 200 with `Code` "OK" or an error code; 4xx/5xx also carry a `Code` worth keeping."""
    answer = json_answer(response.body)
    code = answer.get("Code") if answer else None
    if code == "OK" and delivery.ok:
        return delivery
    if not isinstance(code, str):
        return delivery if not delivery.ok else refine(delivery, ok=False, retryable=False, status="aliyun no Code")
    retryable = delivery.retryable or code in _ALIYUN_RETRYABLE or code.startswith("Throttling")
    return refine(delivery, ok=False, retryable=retryable, status=f"aliyun {code}")


# --- the channel ---------------------------------------------------------------------------------------------

def _secret(config: HttpSmsChannel) -> str:
    return config.secret.get_secret_value() if config.secret else ""


def _new_nonce() -> str:
    return str(uuid.uuid4())


class HttpSmsSender:
    """`message.sms` to a phone number through the configured gateway."""

    def __init__(self, config: HttpSmsChannel, *, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = _new_nonce) -> None:
        self.id = config.id
        self.config = config
        self._clock = clock
        self._nonce = nonce

    def build(self, message: Message, address: str) -> HttpCall:
        if self.config.preset == "twilio":
            return twilio_call(self.config, message, address)
        if self.config.preset == "aliyun":
            return aliyun_call(self.config, message, address, nonce=self._nonce(),
                               timestamp=aliyun_timestamp(self._clock()))
        return generic_call(self.config, message, address)

    def send(self, message: Message, address: str) -> Delivery:
        try:
            outcome = perform(self.build(message, address), self.config.timeout)
            delivery = delivery_of(outcome, self.config.success_status)
            if self.config.preset == "aliyun" and isinstance(outcome, HttpResponse):
                return aliyun_delivery(delivery, outcome)
            return delivery
        except Exception as error:  # a bug here must not kill the notifier's worker: log it, try the next contact
            return Delivery(ok=False, retryable=False, status="internal error", response=repr(error)[:500])
