"""A fake HTTP provider on 127.0.0.1: SMS gateway, Twilio, Aliyun, chat robot, webhook receiver — whatever a test
makes it answer.

Real sockets and a real HTTP server (stdlib `ThreadingHTTPServer`), so a channel is tested with its own
`urllib` stack, timeouts included; nothing is mocked. Every request is recorded when it arrives (before any
configured delay), so a test can also wait for a request that the channel gave up on.

    with FakeGateway() as gateway:
        gateway.respond("/sms", status=200, body={"ok": True})
        gateway.respond("/slow", delay=3.0)
        gateway.respond("/aliyun/", handler=lambda request: Reply(200, {"Code": "OK"}))
        ...                                   # point a channel at gateway.url + "/sms"
        [request] = gateway.wait_for(1)
        assert request.method == "POST" and request.json()["to"] == "+8613800138000"

A path that was not configured answers 404, unless `respond("*", ...)` set a fallback.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One request as the gateway saw it; header names in lower case."""

    method: str
    path: str  # without the query
    raw_query: str  # as sent, still percent-encoded
    query: dict[str, list[str]]  # decoded, blank values kept
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def param(self, name: str) -> str:
        """The single value of a query parameter (KeyError if absent)."""
        [value] = self.query[name]
        return value

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {name: values[-1] for name, values in urllib.parse.parse_qs(self.text(), keep_blank_values=True).items()}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str | bytes | dict[str, Any] | list[Any] = ""  # a dict or list is sent as JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than a channel's timeout plays a hung gateway

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body, ensure_ascii=False).encode(), "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


Responder = Callable[[Recorded], Reply]
_NOT_CONFIGURED = Reply(404, "no reply configured for this path")


class FakeGateway:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Condition()
        self._requests: list[Recorded] = []
        self._replies: dict[str, Responder] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeGateway:
        self._server = ThreadingHTTPServer((self._host, 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-gateway",
                                        daemon=True)  # a short poll: stop() returns at once, not after 0.5 s
        self._thread.start()
        return self

    def stop(self) -> None:
        """Also wakes handlers still sleeping out a delay, so no thread outlives the test."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: `gateway.url + "/path"`."""
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return f"http://{self._host}:{self._server.server_address[1]}"

    # --- configuring answers -------------------------------------------------------------------------------

    def respond(self, path: str, status: int = 200, body: str | bytes | dict[str, Any] | list[Any] = "", *,
                delay: float = 0.0, headers: Mapping[str, str] | None = None,
                handler: Responder | None = None) -> None:
        """Answer requests to `path` (exact, without the query; "*" for any other path). A `handler` computes
        the reply from the request instead, e.g. to check a signature the way the real provider would."""
        fixed = Reply(status, body, dict(headers or {}), delay)
        with self._lock:
            self._replies[path] = handler if handler is not None else (lambda _request: fixed)

    # --- what was received ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """All requests so far, once there are at least `count`; AssertionError after `timeout` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} request(s) within {timeout} s, got {len(self._requests)}")
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- used by the handler -------------------------------------------------------------------------------

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            responder = self._replies.get(request.path) or self._replies.get("*")
        return responder(request) if responder is not None else _NOT_CONFIGURED

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _handler_class(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            reply = gateway._record(self._recorded())
            gateway._sleep(reply.delay)
            body, content_type = reply.encoded()
            try:
                self.send_response(reply.status)
                names = {name.lower() for name in reply.headers}
                if "content-type" not in names:
                    self.send_header("Content-Type", content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): that is what a delay is for
            self.close_connection = True

        def _recorded(self) -> Recorded:
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            return Recorded(
                method=self.command, path=parts.path, raw_query=parts.query,
                query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"", at=time.monotonic(),
            )

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
