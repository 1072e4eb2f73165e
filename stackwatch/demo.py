"""`make demo`: a simulated district archive with real InfluxDB, mosquitto, Modbus and MQTT devices, and the dashboard.

Starts influxd and mosquitto (private, on loopback), the device simulators and
the service as child processes, prints where to look, shows the latest value
of every room every few seconds, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .localservers import LocalInfluxd, LocalMosquitto

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "district-archive.yaml"
STATE = ROOT / "demo-state"
INFLUX_PORT = int(os.environ.get("STACKWATCH_INFLUX_PORT", "18086"))
MQTT_PORT = int(os.environ.get("STACKWATCH_MQTT_PORT", "18830"))
API_PORT = int(os.environ.get("STACKWATCH_API_PORT", "18080"))


def _latest_by_room(url: str) -> list[tuple[str, str, float]]:
    query = ('SELECT last("value") FROM "temperature","humidity" WHERE time > now() - 5m '
             'GROUP BY "room"')
    address = f"{url}/query?" + urllib.parse.urlencode({"db": "stackwatch", "q": query})
    with urllib.request.urlopen(address, timeout=5) as response:
        body = json.load(response)
    rows = []
    for series in body["results"][0].get("series", []):
        rows.append((series["tags"]["room"], series["name"], float(series["values"][0][1])))
    return sorted(rows)


def _active_alarms(journal_path: Path) -> list[str]:
    from alarms.journal import Journal
    from alarms.model import AlarmState

    if not journal_path.exists():
        return []
    journal = Journal(journal_path, readonly=True)
    try:
        statuses = [s for s in journal.statuses().values() if s.state is not AlarmState.NORMAL]
    finally:
        journal.close()
    statuses.sort(key=lambda s: (s.priority.rank, s.key))
    return [f"ALARM #{s.occurrence} {s.priority.value} {s.state.value}: {s.key}" for s in statuses]


def main() -> int:
    STATE.mkdir(exist_ok=True)
    env = {**os.environ, "STACKWATCH_STATE_DIR": str(STATE),  # the example's default: the CLI finds the journal
           "STACKWATCH_SERIAL_DIR": str(STATE / "serial"),
           "STACKWATCH_INFLUX_PORT": str(INFLUX_PORT), "STACKWATCH_MQTT_PORT": str(MQTT_PORT),
           "STACKWATCH_API_PORT": str(API_PORT)}
    (STATE / "serial").mkdir(exist_ok=True)
    influxd = LocalInfluxd(STATE / "influxd", port=INFLUX_PORT)
    mosquitto = LocalMosquitto(STATE / "mosquitto", port=MQTT_PORT)
    children: list[subprocess.Popen[bytes]] = []
    try:
        influxd.start()
        mosquitto.start()
        python = sys.executable
        simulators = subprocess.Popen([python, "-m", "simulators", "--config", str(CONFIG)], env=env)
        children.append(simulators)
        time.sleep(1.0)
        service = subprocess.Popen([python, "-m", "stackwatch", "run", "--config", str(CONFIG)], env=env)
        children.append(service)
        print(f"""
stackwatch demo: a simulated district archive (2 buildings, 8 stack rooms, 19 devices)
  InfluxDB   {influxd.url}  (database 'stackwatch'; try: influx -port {INFLUX_PORT} -database stackwatch)
  MQTT       127.0.0.1:{MQTT_PORT}  (mosquitto_sub -p {MQTT_PORT} -t '#' -v)
  config     {CONFIG}
  alarms     .venv/bin/stackwatch alarms list --config {CONFIG}
             (journal {STATE / "alarms.db"}; states on MQTT stackwatch/district-archive/alarms/#)
  scenarios  mosquitto_pub -p {MQTT_PORT} -t stackwatch-sim/district-archive/control \\
               -m '{{"scenario": "fire-in-room", "room": "main-1-paper"}}'
             (also hvac-failure, flapping-humidity, water-leak, door-forced, gateway-down; "on": false ends one)
  control    main-b1-paper's dehumidifier, humidifier and CRAC are driven by stackwatch: its room view on the
             dashboard, or curl the API's /api/v1/control; make it work with
               -m '{{"scenario": "humid-week", "room": "main-b1-paper"}}'   (plum-rain weather outside)
             a fire there (fire-in-room) stops the CRAC and stays latched until you reset the room
  DASHBOARD  http://127.0.0.1:{API_PORT}/
             user admin, password in {STATE / "admin-password"} (written at the first start)
  API        http://127.0.0.1:{API_PORT}/docs  (OpenAPI; /healthz, /readyz, /metrics)
Values and active alarms are also shown below.
Ctrl-C stops everything.
""", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(10)
            try:
                rows = _latest_by_room(influxd.url)
            except OSError as error:
                print(f"(InfluxDB not answering: {error})")
                continue
            print(time.strftime("%H:%M:%S"), "  ".join(f"{room} {name[:1].upper()}={value:.1f}"
                                                         for room, name, value in rows), flush=True)
            for line in _active_alarms(STATE / "alarms.db"):
                print(f"          {line}", flush=True)
        print("a child process ended; stopping the demo", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        mosquitto.stop()
        influxd.stop()


if __name__ == "__main__":
    sys.exit(main())
