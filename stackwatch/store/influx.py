"""The InfluxDB v1 HTTP API (`/write`, `/query`, `/ping`) on the standard library.

The v1 API is the one InfluxDB 1.x, 2.x (DBRP mapping) and 3.x all serve, and
`influxdb-client` speaks only v2 (STACK-NOTES.md: against 1.6 it loses data
silently). Errors are sorted by what the caller must do with the data:

* `InfluxUnavailable`: keep it and retry (server down, timing out, 5xx, 429);
  `InfluxRefused` is the subset a person must fix (401/403/404): still
  retryable, because the data is fine and rejecting it would strand it.
* `InfluxRejected`: retrying cannot help (400 parse error, field type
  conflict, points beyond the retention policy, 413/422); the server's
  message says why. InfluxDB 1.x writes the good lines of such a batch.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..config.services import InfluxConfig

_READ_ONLY = re.compile(r"^\s*(SELECT(?![\s\S]*\bINTO\b)|SHOW)\b", re.IGNORECASE)
_DROPPED = re.compile(r"dropped=(\d+)")
# A stale keep-alive socket fails like this on the next request; the request never reached the server.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class InfluxError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.message = message
        self.status = status


class InfluxUnavailable(InfluxError):
    """Retryable: the data is fine, the server is not."""


class InfluxRefused(InfluxUnavailable):
    """Authentication, permission or database missing: retry after a person fixes it; never reject the data."""


class InfluxRejected(InfluxError):
    """Permanent for this data."""

    @property
    def dropped(self) -> int | None:
        """Points InfluxDB reported as dropped (`dropped=N`), when it said."""
        match = _DROPPED.search(self.message)
        return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, safe for any name."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def classify(status: int, message: str) -> InfluxError:
    """The error for a non-2xx response; unknown statuses hold the data (retryable) rather than reject it."""
    if status in (400, 413, 422):
        return InfluxRejected(message, status)
    if status in (401, 403, 404):
        return InfluxRefused(message, status)
    return InfluxUnavailable(message, status)


def _error_message(body: bytes, headers: http.client.HTTPMessage) -> str:
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            for key in ("error", "message"):  # 1.x, then 2.x/3.x
                if isinstance(parsed.get(key), str):
                    return str(parsed[key])
    except ValueError:
        pass
    header = headers.get("X-Influxdb-Error")
    if header:
        return str(header)
    return body.decode("utf-8", "replace").strip() or "(no message)"


def _auth_headers(config: InfluxConfig) -> dict[str, str]:
    """None, basic (1.x users) or `Token` (2.x/3.x v1 compatibility); `InfluxConfig` forbids both at once."""
    if config.token is not None:
        return {"Authorization": f"Token {config.token.get_secret_value()}"}
    if config.username is not None:
        password = config.password.get_secret_value() if config.password is not None else ""
        basic = base64.b64encode(f"{config.username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}
    return {}


class InfluxClient:
    """One keep-alive connection, serialised by a lock: share it between threads, but expect them to queue."""

    def __init__(self, config: InfluxConfig) -> None:
        parts = urlsplit(config.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB url must be http(s)://host[:port][/prefix], not {config.url!r}")
        self.url = config.url
        self.database = config.database
        self.retention_policy = config.retention_policy
        self.timeout = config.timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = _auth_headers(config)
        params = {"db": config.database, "precision": "ns"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self._write_path = f"{self._prefix}/write?{urlencode(params)}"
        self._write_headers = {**self._headers, "Content-Type": "text/plain; charset=utf-8"}
        self._config = config
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def with_retention_policy(self, retention_policy: str) -> InfluxClient:
        """A client for the same server, database and credentials whose writes go to `retention_policy`; with its
        own connection, so its writes never queue behind the ingest writer's."""
        return InfluxClient(self._config.model_copy(update={"retention_policy": retention_policy}))

    def __repr__(self) -> str:  # never the credentials
        return f"InfluxClient({self.url!r}, database={self.database!r})"

    # -- API -----------------------------------------------------------------

    def write(self, lines: Sequence[str]) -> None:
        """Returns once InfluxDB acknowledged every line (2xx); raises an `InfluxError` otherwise."""
        if not lines:
            return
        self.write_body("\n".join(lines).encode("utf-8"))

    def write_body(self, body: bytes) -> None:
        status, data, headers = self._request("POST", self._write_path, body, self._write_headers)
        if not 200 <= status < 300:
            raise classify(status, _error_message(data, headers))

    def query(self, q: str, *, epoch: str | None = "ns", database: str | None = None,
              params: Mapping[str, str] | None = None) -> list[Series]:
        """Every series of every statement; an error in any statement raises `InfluxRejected`."""
        series: list[Series] = []
        for result in self.query_results(q, epoch=epoch, database=database, params=params):
            if "error" in result:
                raise InfluxRejected(str(result["error"]), 200)
            for item in result.get("series", []):
                series.append(Series(name=item.get("name", ""), columns=list(item.get("columns", [])),
                                     values=list(item.get("values", [])), tags=dict(item.get("tags", {}))))
        return series

    def query_results(self, q: str, *, epoch: str | None = "ns", database: str | None = None,
                      params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The raw `results` list; GET for read-only statements, POST for the rest (the v1 API's rule)."""
        form = {"q": q, "db": database if database is not None else self.database}
        if epoch:
            form["epoch"] = epoch
        if params:
            form["params"] = json.dumps(dict(params))
        if _READ_ONLY.match(q):
            status, data, headers = self._request("GET", f"{self._prefix}/query?{urlencode(form)}", None,
                                                  self._headers)
        else:
            status, data, headers = self._request(
                "POST", f"{self._prefix}/query", urlencode(form).encode(),
                {**self._headers, "Content-Type": "application/x-www-form-urlencoded"})
        if not 200 <= status < 300:
            raise classify(status, _error_message(data, headers))
        try:
            results = json.loads(data)["results"]
        except (ValueError, KeyError, TypeError) as error:
            raise InfluxUnavailable(f"unreadable /query answer: {data[:200]!r}") from error
        if not isinstance(results, list):
            raise InfluxUnavailable(f"unreadable /query answer: {data[:200]!r}")
        return results

    def ping(self) -> str:
        """The server's version; raises `InfluxUnavailable` when it does not answer."""
        status, data, headers = self._request("GET", f"{self._prefix}/ping", None, self._headers)
        if not 200 <= status < 300:
            raise classify(status, _error_message(data, headers))
        return str(headers.get("X-Influxdb-Version", ""))

    def create_database(self) -> None:
        """Idempotent on 1.x; 2.x/3.x have no such statement and answer with an error, which is raised."""
        self.query(f"CREATE DATABASE {quote_ident(self.database)}", epoch=None, database="")

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    # -- transport -----------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, path: str, body: bytes | None,
                 headers: Mapping[str, str]) -> tuple[int, bytes, http.client.HTTPMessage]:
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.request(method, path, body=body, headers=dict(headers))
                    response = self._conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as error:
                    self._close_locked()
                    if attempt == 1 and reused and isinstance(error, _STALE):
                        continue  # the server closed the idle connection (or restarted): one fresh try
                    raise InfluxUnavailable(f"{method} {self.url}: {error!r}") from error
                if response.will_close:
                    self._close_locked()
                return response.status, data, response.headers
        raise AssertionError("unreachable")
