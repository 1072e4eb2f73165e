"""Start a private influxd or mosquitto on a free loopback port, with its data in a given folder.

Used by the tests, the demo and the benchmarks, so that all three run the real
servers the same way (STACK-NOTES.md: Debian's influxdb 1.6 and mosquitto 2.0
start nothing by themselves and must be bound to 127.0.0.1).
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

_HANDED_OUT: set[int] = set()
_QUIET_PORTS = (20000, 32768)  # below Linux's default ephemeral range (32768-60999)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nobody listens on, outside the kernel's ephemeral range.

    A port from `bind(0)` is an ephemeral one: between handing it out and the
    child binding it, any outgoing connection in the test run may be given the
    same port by the kernel, and the child then fails with "address already in
    use" (seen once in CI). Ports below the ephemeral range are never given to
    outgoing connections, and no port is handed out twice in one process.
    """
    ephemeral_low, ephemeral_high = _ephemeral_range()
    low, high = _QUIET_PORTS
    high = min(high, ephemeral_low)
    for _ in range(200 if high > low and ephemeral_high >= low else 0):
        port = random.randrange(low, high)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
    _HANDED_OUT.add(chosen)
    return chosen


def _find(binary: str, *extra: str) -> str:
    found = shutil.which(binary) or next((p for p in extra if os.path.exists(p)), None)
    if found is None:
        raise FileNotFoundError(f"{binary} is not installed (make installs it: apt-get install influxdb mosquitto)")
    return found


class LocalServer:
    """A child process with start/stop/kill that keeps its port across restarts."""

    name = "server"

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.folder / f"{self.name}.log"
        self._port_is_ours = port is None
        self._started = False  # until the first start nobody knows our ports yet, so they may move

    def choose_new_ports(self) -> None:
        """Called when a port we chose was taken before the child could bind it."""
        if self._port_is_ours:
            self.port = free_port()

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 15.0) -> None:
        """Start the child and wait until it serves.

        If a port we chose ourselves was taken in the meantime, the first start
        moves to fresh ports (up to three times); once started, a server keeps
        its port across restarts, since clients already know it.
        """
        if self.process is not None and self.process.poll() is None:
            return
        for attempt in range(4):
            written = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._launch(timeout)
            except RuntimeError:
                own_output = self.log_path.read_bytes()[written:].decode(errors="replace")
                taken = "address already in use" in own_output.lower()
                if self._started or attempt == 3 or not taken:
                    raise
                self.choose_new_ports()
                continue
            self._started = True
            return

    def _launch(self, timeout: float) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(
                    f"{self.name} exited at start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}"
                )
            if self.ready():
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} not ready on port {self.port} after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class LocalInfluxd(LocalServer):
    """`auth=(user, password)` turns on `auth-enabled` and creates that user as admin at first start."""

    name = "influxd"

    def __init__(self, folder: Path, port: int | None = None, auth: tuple[str, str] | None = None) -> None:
        super().__init__(folder, port)
        self.rpc_port = free_port()
        self.auth = auth

    def choose_new_ports(self) -> None:
        super().choose_new_ports()
        self.rpc_port = free_port()

    def start(self, timeout: float = 15.0) -> None:
        super().start(timeout)
        if self.auth is not None:
            self._create_admin()

    def _create_admin(self, timeout: float = 10.0) -> None:
        """Retried: just after start influxd may answer the statement with an error in a 200 (meta not ready)."""
        user, password = self.auth or ("", "")
        quoted_password = password.replace("\\", "\\\\").replace("'", "\\'")
        statement = f"CREATE USER \"{user}\" WITH PASSWORD '{quoted_password}' WITH ALL PRIVILEGES"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/query",
            data=urllib.parse.urlencode({"q": statement}).encode(),
            headers={"Authorization": f"Basic {token}"},
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    answer = response.read().decode()
            except urllib.error.HTTPError as error:
                if error.code == 401:  # the admin exists with another password (changed since): leave it
                    return
                answer = error.read().decode()
            if '"error"' not in answer:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"influxd did not create user {user!r}: {answer}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        config = self.folder / "influxdb.conf"
        data = self.folder
        config.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{data / "meta"}"
[data]
  dir = "{data / "data"}"
  wal-dir = "{data / "wal"}"
  query-log-enabled = false
  trace-logging-enabled = false
[coordinator]
  log-queries-after = "0s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  log-enabled = false
[logging]
  level = "warn"
""")
        return [_find("influxd", "/usr/bin/influxd"), "-config", str(config)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as response:
                return bool(response.status == 204)
        except (urllib.error.URLError, OSError):
            return False


class LocalMosquitto(LocalServer):
    """mosquitto with persistence, so queued QoS-1 messages survive a broker restart.

    max_queued_messages is raised from mosquitto's default of 100: with the
    default, a collector down for more than a few seconds loses messages at
    the broker. Real deployments need the same setting (README, MQTT).
    """

    name = "mosquitto"

    def __init__(self, folder: Path, port: int | None = None, max_inflight: int = 20) -> None:
        super().__init__(folder, port)
        self.max_inflight = max_inflight

    def command(self) -> list[str]:
        config = self.folder / "mosquitto.conf"
        config.write_text(f"""
listener {self.port} 127.0.0.1
allow_anonymous true
user root
persistence true
persistence_location {self.folder}/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages {self.max_inflight}
message_size_limit 1048576
log_type error
log_type warning
""")
        return [_find("mosquitto", "/usr/sbin/mosquitto"), "-c", str(config)]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.3):
                return True
        except OSError:
            return False
