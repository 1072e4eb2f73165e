"""Chat robots (WeCom, DingTalk) and generic JSON webhooks.

A robot posts to a group, so the address is not needed to reach anyone; when
it is a phone number (or a chat user id) the robot @-mentions that person, so
their phone rings instead of the group merely scrolling. Both robots answer
200 with an `errcode`: a non-zero one is a failure the HTTP status hides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Callable

from stackwatch.config.notify import WebhookChannel

from ..model import Delivery, Message
from .http import HttpCall, HttpResponse, delivery_of, json_answer, perform, refine, with_headers

_PHONE = re.compile(r"^\+?\d[\d -]{5,18}\d$")
_JSON = {"Content-Type": "application/json; charset=utf-8"}
WECOM_RATE_LIMITED = 45009  # "api freq out of limit": 20 messages a minute per robot
DINGTALK_TOO_FAST = 130101  # "send too fast": 20 messages a minute per robot


def looks_like_phone(address: str) -> bool:
    return bool(_PHONE.match(address.strip()))


def mobile(address: str) -> str:
    """WeCom and DingTalk know members by their mainland number: 13800138000, not +86 138-0013-8000."""
    digits = re.sub(r"[^\d]", "", address)
    return digits.removeprefix("86") if address.strip().startswith("+86") else digits


def _body(message: Message) -> str:
    return f"{message.text}\n\n[{message.link}]({message.link})" if message.link else message.text


# --- WeCom (企业微信群机器人) ----------------------------------------------------------------------------------

def wecom_payload(message: Message, address: str) -> dict[str, object]:
    """Markdown reads best, but only a text message can @-mention by phone number."""
    address = address.strip()
    if address and looks_like_phone(address):
        text = f"{message.subject}\n{message.text}" + (f"\n{message.link}" if message.link else "")
        return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": [mobile(address)]}}
    content = f"**{message.subject}**\n{_body(message)}"
    if address:
        content += f"\n<@{address}>"  # a WeCom user id
    return {"msgtype": "markdown", "markdown": {"content": content}}


# --- DingTalk (钉钉自定义机器人) -------------------------------------------------------------------------------

def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value, already URL-encoded: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def dingtalk_payload(message: Message, address: str) -> dict[str, object]:
    """DingTalk only rings a mentioned member whose @number also appears in the text."""
    address = address.strip()
    at: dict[str, object]
    text, at = _body(message), {"isAtAll": False}
    if address and looks_like_phone(address):
        text, at = f"{text}\n\n@{mobile(address)}", {"atMobiles": [mobile(address)], "isAtAll": False}
    elif address:
        text, at = f"{text}\n\n@{address}", {"atUserIds": [address], "isAtAll": False}
    return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}, "at": at}


# --- generic -------------------------------------------------------------------------------------------------

def generic_payload(message: Message) -> dict[str, object]:
    """The structured copy, with the fixed fields last so a receiver can rely on them."""
    return {**message.data, "kind": message.kind.value, "priority": message.priority.value,
            "subject": message.subject, "text": message.text, "tickets": list(message.tickets),
            "link": message.link}


def errcode_delivery(delivery: Delivery, response: HttpResponse, retry_codes: tuple[int, ...]) -> Delivery:
    answer = json_answer(response.body)
    code = answer.get("errcode") if answer else None
    if not delivery.ok or code == 0:
        return delivery
    if not isinstance(code, int):
        return refine(delivery, ok=False, retryable=False, status="no errcode")
    return refine(delivery, ok=False, retryable=code in retry_codes, status=f"errcode {code}")


# --- the channel ---------------------------------------------------------------------------------------------

class WebhookSender:
    def __init__(self, config: WebhookChannel, *, clock: Callable[[], float] = time.time) -> None:
        self.id = config.id
        self.config = config
        self._clock = clock

    def build(self, message: Message, address: str) -> HttpCall:
        url, payload = self.config.url, generic_payload(message)
        if self.config.style == "wecom":
            payload = wecom_payload(message, address)
        elif self.config.style == "dingtalk":
            secret = self.config.secret.get_secret_value() if self.config.secret else None
            url, payload = dingtalk_url(url, secret, int(self._clock() * 1000)), dingtalk_payload(message, address)
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
        return HttpCall("POST", url, with_headers(_JSON, self.config.headers), body)

    def send(self, message: Message, address: str) -> Delivery:
        try:
            outcome = perform(self.build(message, address), self.config.timeout)
            delivery = delivery_of(outcome)
            if self.config.style == "generic" or not isinstance(outcome, HttpResponse):
                return delivery
            retry = (WECOM_RATE_LIMITED,) if self.config.style == "wecom" else (DINGTALK_TOO_FAST,)
            return errcode_delivery(delivery, outcome, retry)
        except Exception as error:  # a bug here must not kill the notifier's worker: log it, try the next contact
            return Delivery(ok=False, retryable=False, status="internal error", response=repr(error)[:500])
