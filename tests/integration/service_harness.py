"""Run the real service and simulators as separate processes, as `make demo` does, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from alarms.journal import Journal
from alarms.model import AlarmEvent, AlarmState
from stackwatch.config.services import InfluxConfig
from stackwatch.localservers import LocalInfluxd, LocalMosquitto, free_port
from stackwatch.store.influx import InfluxClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "district-archive.yaml"
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
        last = check()
    return last


def site_env(tmp_path: Path, influxd: LocalInfluxd, mosquitto: LocalMosquitto) -> dict[str, str]:
    """The example site's ports and folders, moved to free ones under `tmp_path`."""
    (tmp_path / "serial").mkdir(exist_ok=True)
    return {
        **os.environ,
        "STACKWATCH_STATE_DIR": str(tmp_path / "state"),
        "STACKWATCH_SERIAL_DIR": str(tmp_path / "serial"),
        "STACKWATCH_INFLUX_PORT": str(influxd.port),
        "STACKWATCH_MQTT_PORT": str(mosquitto.port),
        "STACKWATCH_PORT_GW_MAIN": str(free_port()),
        "STACKWATCH_PORT_COMET": str(free_port()),
        "STACKWATCH_PORT_IO": str(free_port()),
        "STACKWATCH_PORT_GW_ANNEX": str(free_port()),
        "STACKWATCH_API_PORT": str(free_port()),
    }


class Process:
    """A child process with its output in a log file, for the failure message."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def service(config: Path, env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, "-m", "stackwatch", "run", "--config", str(config)], env, log)


def simulators(config: Path, env: dict[str, str], log: Path, mqtt_interval: float = 1.0) -> Process:
    return Process(
        [sys.executable, "-m", "simulators", "--config", str(config), "--mqtt-interval", str(mqtt_interval)], env, log
    )


@contextmanager
def running(*processes: Process) -> Iterator[None]:
    started: list[Process] = []
    try:
        for process in processes:
            started.append(process.start())
            time.sleep(0.3)
        yield
    finally:
        for process in reversed(started):
            process.stop()


def control(mosquitto: LocalMosquitto, site: str = "district-archive", **command: object) -> None:
    """Switch a simulator fault, event or scenario through the simulators' control topic."""
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.publish(f"stackwatch-sim/{site}/control", json.dumps(command), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def influx(server: LocalInfluxd, database: str = "stackwatch") -> InfluxClient:
    return InfluxClient(InfluxConfig(url=server.url, database=database))


ON_DELAY = 3.0


def fast_site(folder: Path, control_interval: str | None = None) -> Path:
    """The example archive with alarm delays short enough for a test (the rules are the same); `control_interval`
    shortens the control loops' cycle (e.g. "3s") for tests that watch them act."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["alarms"] = {"defaults": {"limit_on_delay": f"{ON_DELAY}s", "limit_off_delay": "2s"},
                      "priorities": {"critical": {"realarm": "5m"}, "high": {"realarm": "5m"}}}
    if control_interval is not None:
        data["control"]["interval"] = control_interval
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Archive:
    folder: Path
    config: Path
    env: dict[str, str]
    influxd: LocalInfluxd
    mosquitto: LocalMosquitto
    service: Process
    sim: Process

    @property
    def journal_path(self) -> Path:
        return self.folder / "state" / "alarms.db"

    def journal(self) -> Journal:
        return Journal(self.journal_path, readonly=True)

    def control(self, **command: Any) -> None:
        control(self.mosquitto, **command)

    def events(self, alarm: str) -> list[AlarmEvent]:
        if not self.journal_path.exists():
            return []
        journal = self.journal()
        try:
            return journal.events(alarm=alarm)
        finally:
            journal.close()

    def state(self, alarm: str) -> AlarmState | None:
        if not self.journal_path.exists():
            return None
        journal = self.journal()
        try:
            status = journal.statuses().get(alarm)
            return status.state if status else None
        finally:
            journal.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stackwatch", *args, "--config", str(self.config)],
                              env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=30)

    def diagnostics(self) -> str:
        return f"--- service\n{self.service.output()}\n--- sim\n{self.sim.output()}"


def start_archive(folder: Path, control_interval: str | None = None) -> Archive:
    """influxd, mosquitto, the simulators and the service on the example archive with short alarm delays."""
    folder.mkdir(parents=True, exist_ok=True)
    influxd = LocalInfluxd(folder / "influxd")
    influxd.start()
    mosquitto = LocalMosquitto(folder / "mosquitto")
    mosquitto.start()
    env = site_env(folder, influxd, mosquitto)
    config = fast_site(folder, control_interval)
    archive = Archive(folder, config, env, influxd, mosquitto, service(config, env, folder / "service.log"),
                      simulators(config, env, folder / "sim.log"))
    archive.sim.start()
    time.sleep(0.5)
    archive.service.start()
    return archive


def stop_archive(archive: Archive) -> None:
    archive.service.stop()
    archive.sim.stop()
    archive.mosquitto.stop()
    archive.influxd.stop()
