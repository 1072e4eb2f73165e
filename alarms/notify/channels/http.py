"""One HTTP exchange for every HTTP channel, and how its outcome becomes a `Delivery`.

SMS gateways and chat robots differ in what they send, not in how a failure is
judged: a timeout or a 5xx may pass, so the notifier retries; a 4xx will not,
so it moves on to the person's next contact. Keeping that judgement here makes
it the same for every provider.

`urllib` rather than `http.client`: it honours the usual `https_proxy` and
`no_proxy` variables, which a site behind a proxy needs to reach a cloud SMS
service. Redirects are refused: a POST redirected becomes a GET without its
body, and the gateway's 200 would log a page that nobody received.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..model import Delivery

RESPONSE_CHARS = 500  # what the delivery log keeps of a provider's answer
_BODY_LIMIT = 256 * 1024  # no provider answer worth reading is longer; a runaway one must not fill memory
ANY_2XX: Collection[int] = range(200, 300)
_PERMANENT = ("tls", "invalid")


@dataclass(frozen=True, slots=True)
class HttpCall:
    """A request built but not sent: what the unit tests check without a network."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: str = ""


@dataclass(frozen=True, slots=True)
class HttpFailure:
    """No HTTP answer at all: `kind` is "timeout", "refused", "tls", "invalid" (the URL) or "error"."""

    kind: str
    detail: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx, judged like any other status


_OPENER = urllib.request.build_opener(_NoRedirect())


def http_request(
    method: str, url: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None,
    timeout: float = 10.0,
) -> HttpResponse | HttpFailure:
    """Never raises: a channel must turn every failure into a `Delivery` for the log."""
    try:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        with _OPENER.open(request, timeout=timeout) as answer:
            return _response(answer.status, answer.headers.items(), answer.read(_BODY_LIMIT))
    except urllib.error.HTTPError as error:
        with error:
            return _response(error.code, error.headers.items() if error.headers else (), _read_quietly(error))
    except ValueError as error:  # a URL that cannot be right: no retry will fix the configuration
        return HttpFailure("invalid", str(error))
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        return _failure(error)


def perform(call: HttpCall, timeout: float) -> HttpResponse | HttpFailure:
    return http_request(call.method, call.url, headers=call.headers, body=call.body, timeout=timeout)


def with_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The configured headers win, compared without case: `content-type` replaces `Content-Type`."""
    overridden = {name.lower() for name in extra}
    return {**{k: v for k, v in base.items() if k.lower() not in overridden}, **extra}


def json_answer(body: str) -> dict[str, object] | None:
    """Chat robots and Aliyun report failures inside a 200; None when the answer is not a JSON object."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(_BODY_LIMIT)
    except OSError:
        return b""


def _response(status: int, headers: Iterable[tuple[str, str]], raw: bytes) -> HttpResponse:
    names = {name.lower(): value for name, value in headers}
    return HttpResponse(status, names, _decode(raw, names.get("content-type", "")))


def _decode(raw: bytes, content_type: str) -> str:
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _failure(error: OSError | http.client.HTTPException) -> HttpFailure:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):  # socket.timeout is its alias
        return HttpFailure("timeout", str(reason) or "timed out")
    if isinstance(reason, ConnectionRefusedError):
        return HttpFailure("refused", str(reason))
    if isinstance(reason, ssl.SSLCertVerificationError):
        return HttpFailure("tls", str(reason))
    return HttpFailure("error", f"{type(reason).__name__}: {reason}")


def delivery_of(outcome: HttpResponse | HttpFailure, success: Collection[int] = ANY_2XX) -> Delivery:
    """The judgement shared by all HTTP channels; providers that answer 200 with an error code refine it."""
    if isinstance(outcome, HttpFailure):
        # a certificate that does not verify, or a malformed URL, will not be better on the next try
        return Delivery(ok=False, retryable=outcome.kind not in _PERMANENT, status=outcome.kind,
                        response=outcome.detail[:RESPONSE_CHARS])
    status, text = f"http {outcome.status}", outcome.body[:RESPONSE_CHARS]
    if outcome.status in success:
        return Delivery(ok=True, retryable=False, status=status, response=text)
    retryable = outcome.status in (408, 429) or outcome.status >= 500
    retry_after = retry_after_seconds(outcome.headers.get("retry-after")) if retryable else None
    return Delivery(ok=False, retryable=retryable, status=status, response=text, retry_after=retry_after)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` is either seconds or an HTTP date (RFC 9110 §10.2.3); both become seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def refine(delivery: Delivery, *, ok: bool, retryable: bool, status: str) -> Delivery:
    """A provider that said 200 but meant "no": keep its answer, change the verdict."""
    return Delivery(ok=ok, retryable=retryable, status=status, response=delivery.response,
                    retry_after=delivery.retry_after)
