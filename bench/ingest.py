"""Collection benchmark (issue #2). Prints figures; record them in bench/RESULTS.md.

    .venv/bin/python bench/ingest.py                    # all parts
    .venv/bin/python bench/ingest.py --part mqtt --messages 100000

(a) MQTT → InfluxDB: readings per second through the whole path (paho, mapping, spool commit, acknowledgement,
    writer, InfluxDB), against two references measured in the same run: InfluxDB's raw line-protocol write rate,
    and a bare paho subscriber's receive rate for the same messages on the same broker. Two feeds (`--feed`):
    backlog, the messages queued on the broker for each consumer's persistent session first, then drained (the
    consumers at their fastest, the publisher not timed); live, one publisher sending while the consumer receives,
    each consumer in a process of its own (STACK-NOTES' reference for the 17k ceiling; timed from the first
    publish to the last message received or reading stored). Six readings per message, as a Zigbee2MQTT Aqara
    sensor sends. 1667 devices → 10,002 points.
(b) Modbus: requests per poll cycle against the minimum for the configured maps, and the cycle time for 200
    simulated devices on 10 gateways (the simulators in their own process) against the slowest gateway alone.
(c) Peak memory (max RSS) of the collecting process in (a), with 10,002 points configured.

`--receiver thread|process` overrides the site's `mqtt.receiver`. `--alarms both` (the default) runs (a) twice:
the collection path alone, with the alarm engine stopped and its listener taken off the reading hub (the issue's
figure), and as `stackwatch run` runs it, the engine evaluating every reading; (c) is judged on the second.
Environment: BENCH_NO_FREEZE=1 leaves the heap unfrozen (`settle_heap`), BENCH_DEFAULT_MALLOC=1 glibc's malloc
untuned (`tune_allocator`); BENCH_TIMELINE, BENCH_TRACEMALLOC, BENCH_PROFILE, BENCH_SPOOL_ONLY: see README,
Benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.influx_raw import make_lines, raw_write_rate  # noqa: E402
from stackwatch.clock import SystemClock  # noqa: E402
from stackwatch.config import parse_config  # noqa: E402
from stackwatch.localservers import LocalInfluxd, LocalMosquitto, free_port  # noqa: E402

READINGS_PER_MESSAGE = 6


# ---------------------------------------------------------------- (a) MQTT → InfluxDB

def mqtt_site(devices: int, mqtt_port: int, influx_url: str, state: Path, ack_batch: int,
              receiver: str | None = None) -> dict[str, Any]:
    extra = [{"id": "voltage", "quantity": "voltage", "unit": "mV", "path": "voltage"},
             {"id": "linkquality", "quantity": "linkquality", "path": "linkquality"}]
    return {
        "site": {"id": "bench"}, "buildings": [{"id": "b"}],
        "rooms": [{"id": f"r{n}", "building": "b", "profile": "paper"} for n in range(20)],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": "stackwatch-bench", "ack_batch": ack_batch,
                 **({"receiver": receiver} if receiver else {})},
        "storage": {"influxdb": {"url": influx_url, "database": "bench_path", "flush_interval": 0.1},
                    "spool": {"path": "spool.db"}},
        "state_dir": str(state),
        "devices": [{"id": f"th{n}", "protocol": "mqtt", "model": "z2m-aqara-th", "topic": f"d{n}",
                     "model_options": {"base_topic": "bench"}, "room": f"r{n % 20}", "points": extra}
                    for n in range(devices)],
    }


def payload(n: int) -> bytes:
    return json.dumps({"temperature": 18 + (n % 400) / 100, "humidity": 45 + (n % 300) / 100,
                       "pressure": 1001.5, "battery": 97, "voltage": 3005, "linkquality": 120}).encode()


def publish(port: int, devices: int, messages: int, prefix: str = "bench") -> float:
    """Queue `messages` QoS-1 messages on the broker; returns seconds taken."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    done = threading.Semaphore(0)
    client.on_publish = lambda *_: done.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    for n in range(messages):
        client.publish(f"{prefix}/d{n % devices}", payload(n), qos=1)
    for _ in range(messages):
        done.acquire(timeout=60)
    seconds = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return seconds


def bare_subscriber(port: int, messages: int | None) -> float:
    """A plain paho QoS-1 subscriber on a persistent session; with `messages`, time draining that many."""
    received = 0
    first = last = 0.0
    finished = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received, first, last
        received += 1
        if received == 1:
            first = time.perf_counter()
        if messages is not None and received >= messages:
            last = time.perf_counter()
            finished.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("bench/+", qos=1)
    started = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if messages is None:
        time.sleep(1.0)
    else:
        finished.wait(300)
    client.disconnect()
    client.loop_stop()
    return (last or time.perf_counter()) - started


def bare_subscriber_live(port: int, devices: int, messages: int) -> tuple[float, float]:
    """STACK-NOTES' reference: one publisher → broker → one bare subscriber at the same time, as sensors send live.

    Returns (seconds from the first publish to the last message received, the publisher's own seconds). Its
    topics have a prefix of the same length that the path's session does not subscribe to, so that nothing queues
    for the path meanwhile; and the backlog subscriber's session is ended, so that nothing queues for it later.
    """
    ending = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True)
    ended = threading.Event()
    ending.on_connect = lambda *_: ended.set()
    ending.connect("127.0.0.1", port)
    ending.loop_start()
    ended.wait(10)
    ending.disconnect()
    ending.loop_stop()
    ready = Path(tempfile.mkdtemp(prefix="bench-bare-")) / "ready"
    child = subprocess.Popen([sys.executable, __file__, "--bare-live", str(port), str(messages), str(ready)],
                             stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    started_wall = time.time()
    publisher_seconds = publish(port, devices, messages, prefix="bare1")
    out, _ = child.communicate(timeout=300)
    return float(out.strip().splitlines()[-1]) - started_wall, publisher_seconds


def bare_live_child(port: int, messages: int, ready: Path) -> float:
    """The bare subscriber in a process of its own, as the path's consumer is: the wall time of the last message."""
    received = 0
    last = 0.0
    finished = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received, last
        received += 1
        if received >= messages:
            last = time.time()
            finished.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare-live", clean_session=True)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("bare1/+", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    ready.write_text("subscribed")
    finished.wait(300)
    client.disconnect()
    client.loop_stop()
    return last or time.time()


async def collect(config_path: Path, expect: int | None) -> dict[str, Any]:
    """The service's collection path (MQTT collector → hub → spool → writer → InfluxDB), in this process."""
    from stackwatch.heap import settle_heap, tune_allocator
    from stackwatch.service import Service

    service = Service(parse_config(config_path.read_text()), config_path)  # the parts `stackwatch run` uses
    spool, writer, mqtt = service.spool, service.writer, service.mqtt
    assert mqtt is not None
    spool_only = os.environ.get("BENCH_SPOOL_ONLY") == "1"  # upper bound: no InfluxDB writer in this process
    if os.environ.get("BENCH_DEFAULT_MALLOC") != "1":
        tune_allocator()  # as Service.start does first
    if not spool_only:
        await writer.start()
    started = time.perf_counter()
    cpu_start = _own_cpu()
    spike: list[tuple[float, float]] = [(0.0, 0.0)]
    if os.environ.get("BENCH_TIMELINE"):
        def watch() -> None:
            while True:
                now_mb = status_mb("VmRSS")
                if now_mb > spike[0][0]:
                    spike[0] = (now_mb, time.perf_counter() - started)
                time.sleep(0.005)

        threading.Thread(target=watch, daemon=True).start()
        print(f"rss at start {status_mb('VmRSS'):.0f} MB", file=sys.stderr)
    gc_time = [0.0, 0.0]  # seconds in the cyclic collector, start of the current collection

    def gc_timer(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(gc_timer)
    if os.environ.get("BENCH_ALARMS") == "1":  # as `stackwatch run`: every reading also goes through the rules
        service.alarms.start()
    else:  # the collection path alone
        service.hub.remove_listener(service.alarms)
    if os.environ.get("BENCH_NO_FREEZE") != "1":
        settle_heap()  # as Service.start does before it starts the collectors
    start_snapshot = None
    if os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        start_snapshot = tracemalloc.take_snapshot()  # what the run adds is printed at the end
    mqtt.start()
    ready_file = os.environ.get("BENCH_READY_FILE")  # live feed: the parent publishes once we are connected
    if ready_file:
        while not mqtt.connected:
            await asyncio.sleep(0.01)
        Path(ready_file).write_text("connected")
    if expect is None:  # only make the persistent session and its subscriptions
        while not mqtt.connected:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
    else:
        def done() -> bool:
            return (spool.depth() if spool_only else writer.lines_written) >= expect

        timeline: list[tuple[float, int, int, int, int]] = []
        next_sample = 0.0
        while not done() and time.perf_counter() - started < 600:
            await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            if elapsed >= next_sample:
                timeline.append((round(elapsed, 2), mqtt.acked, writer.lines_written, spool.depth(),
                                 round(status_mb("VmRSS"))))
                next_sample += 0.25
        if os.environ.get("BENCH_TIMELINE"):
            print(json.dumps(timeline), file=sys.stderr)
    seconds = time.perf_counter() - started
    finished_wall = time.time()
    cpu = _own_cpu() - cpu_start
    receiver_cpu = _receiver_cpu(mqtt)
    gc.callbacks.remove(gc_timer)
    if os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        from stackwatch.heap import release_free_memory

        before_trim = status_mb("VmRSS")
        gc.collect()
        release_free_memory()
        print(f"rss {before_trim:.0f} MB, after gc + malloc_trim {status_mb('VmRSS'):.0f} MB", file=sys.stderr)
        current, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc current {current >> 20} MB, peak {peak >> 20} MB", file=sys.stderr)
        end_snapshot = tracemalloc.take_snapshot()
        for stat in end_snapshot.statistics("lineno")[:5]:
            print(stat, file=sys.stderr)
        if start_snapshot is not None:
            print("grown during the run:", file=sys.stderr)
            for diff in end_snapshot.compare_to(start_snapshot, "lineno")[:12]:
                print(f"  {diff}", file=sys.stderr)
        maps: list[tuple[int, str]] = []
        mapping = ""
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                mapping = line
            elif line.startswith("Rss:"):
                maps.append((int(line.split()[1]), mapping))
        for kb, where in sorted(maps, reverse=True)[:8]:
            print(f"smaps {kb // 1024} MB {where[:110]}", file=sys.stderr)
    peak_while_collecting = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if os.environ.get("BENCH_TIMELINE"):
        in_use, at_most = sqlite_mb()
        print(f"SQLite memory {in_use:.1f} MB in use, {at_most:.1f} MB at most", file=sys.stderr)
        print(f"highest RSS seen {spike[0][0]:.0f} MB at {spike[0][1]:.3f} s", file=sys.stderr)
    mqtt.stop()
    peak_after_mqtt_stop = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if os.environ.get("BENCH_ALARMS") == "1":
        service.alarms.stop()
    if not spool_only:
        await writer.stop()
    spool.close()
    if os.environ.get("BENCH_TIMELINE"):
        print(f"peak while collecting {peak_while_collecting:.0f} MB, after mqtt.stop {peak_after_mqtt_stop:.0f} MB, "
              f"after writer.stop + spool.close {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
              file=sys.stderr)
    return {"seconds": seconds, "finished_wall": finished_wall, "lines_written": writer.lines_written,
            "acked": mqtt.acked,
            "max_rss_mb": peak_rss_mb(), "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu": cpu, "receiver_cpu": receiver_cpu, "gc_seconds": gc_time[0],
            "alarm_queue_max": service.alarms.most_queued, "alarm_queue_waits": service.alarms.waits}


def _receiver_cpu(mqtt: Any) -> tuple[float, float] | None:
    """CPU seconds and peak RSS (MB) of the MQTT receiver process (`mqtt.receiver: process`); None in thread mode.

    It starts with the collection, so its total is what the timed path cost it.
    """
    process = getattr(mqtt, "_process", None)
    if process is None:
        return None
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), status_mb("VmHWM", process.pid)


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory line of /proc/PID/status in MB: `VmRSS` (now) or `VmHWM` (peak)."""
    return int(Path(f"/proc/{pid}/status").read_text().split(f"{field}:")[1].split()[0]) / 1024


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM).

    Not getrusage's ru_maxrss: on Linux that keeps the high-water mark of the
    address space replaced by exec, which for a child started by subprocess
    (vfork) is the parent's: 150 MB of benchmark parent reported as ours.
    """
    return status_mb("VmHWM")


def sqlite_mb() -> tuple[float, float]:
    """What SQLite itself holds for every connection of this process (page caches, statements): now, at most."""
    library = ctypes.CDLL("libsqlite3.so.0")
    library.sqlite3_memory_used.restype = library.sqlite3_memory_highwater.restype = ctypes.c_int64
    return library.sqlite3_memory_used() / 2**20, library.sqlite3_memory_highwater(0) / 2**20


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread, also those that have ended
    return usage.ru_utime + usage.ru_stime


def process_cpu(server: LocalInfluxd | LocalMosquitto) -> float:
    """CPU seconds (user + system) a local server has used so far."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child_live(config_path: Path, expect: int, alarms: bool, port: int, devices: int) -> dict[str, Any]:
    """The path with the publisher running at the same time: timed from the first publish to the last reading stored."""
    ready = config_path.parent / "child-ready"
    ready.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_ALARMS": "1" if alarms else "0", "BENCH_READY_FILE": str(ready)}
    args = [sys.executable, __file__, "--child", str(config_path), "--expect", str(expect)]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    started_wall = time.time()
    publisher_seconds = publish(port, devices, expect // READINGS_PER_MESSAGE)
    out, err = child.communicate(timeout=900)
    if child.returncode:
        raise RuntimeError(f"the collecting child failed:\n{err[-3000:]}")
    result = dict(json.loads(out.strip().splitlines()[-1]))
    result["seconds"] = result["finished_wall"] - started_wall
    result["publisher_seconds"] = publisher_seconds
    return result


def run_child(config_path: Path, expect: int | None, alarms: bool = False) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", str(config_path)]
    profile = os.environ.get("BENCH_PROFILE")  # e.g. /tmp/profile.txt: record the collecting child with py-spy
    if profile and expect is not None:
        args = ["py-spy", "record", "--gil", "--threads", "--subprocesses", "--format", "raw", "-o", profile, "--",
                *args]
    if expect is not None:
        args += ["--expect", str(expect)]
    env = {**os.environ, "BENCH_ALARMS": "1" if alarms else "0"}
    result = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    if os.environ.get("BENCH_TIMELINE") or os.environ.get("BENCH_TRACEMALLOC"):
        print(result.stderr[-3000:])
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


VARIANTS = {"off": (False,), "on": (True,), "both": (False, True)}


FEEDS = {"backlog": ("backlog",), "live": ("live",), "both": ("backlog", "live")}


def bench_mqtt(messages: int, devices: int, work: Path, inflight: int, ack_batch: int, receiver: str | None,
               alarms: str, feed: str = "both") -> None:
    influxd = LocalInfluxd(work / "influxd")
    mosquitto = LocalMosquitto(work / "mosquitto", max_inflight=inflight)
    influxd.start()
    mosquitto.start()
    try:
        config_path = work / "bench-mqtt.yaml"
        site = mqtt_site(devices, mosquitto.port, influxd.url, work / "state", ack_batch, receiver)
        config_path.write_text(yaml.safe_dump(site))
        parsed = parse_config(config_path.read_text())
        assert parsed.mqtt is not None
        receiver = parsed.mqtt.receiver  # the site file's default unless --receiver says
        points = len(parsed.devices) * READINGS_PER_MESSAGE
        readings = messages * READINGS_PER_MESSAGE

        run_child(config_path, None)  # the collector's persistent session and subscriptions
        bare_subscriber(mosquitto.port, None)
        raw_rate: float | None = None
        print(f"(a) MQTT → InfluxDB, {messages:,} messages × {READINGS_PER_MESSAGE} readings, {points:,} points; "
              f"mosquitto max_inflight_messages {inflight}, ack_batch {ack_batch}, mqtt.receiver {receiver}")
        runs = 0
        for feed_kind in FEEDS[feed]:
            if feed_kind == "backlog":
                queued = publish(mosquitto.port, devices, messages)
                bare_rate = messages / bare_subscriber(mosquitto.port, messages)
                print(f"  feed: backlog. The messages are queued on the broker first ({queued:.1f} s, not timed), "
                      "then each consumer drains them")
            else:
                bare_seconds, publisher_seconds = bare_subscriber_live(mosquitto.port, devices, messages)
                bare_rate = messages / bare_seconds
                print("  feed: live. One publisher sends while the consumer receives (STACK-NOTES' reference, "
                      f"about 17k messages/s); the publisher alone took {publisher_seconds:.1f} s")
            print(f"    bare paho subscriber: {bare_rate:,.0f} messages/s")
            for with_alarms in VARIANTS[alarms]:
                if feed_kind == "backlog" and runs:
                    publish(mosquitto.port, devices, messages)  # the same messages again for this variant
                stored_before = 0 if os.environ.get("BENCH_SPOOL_ONLY") == "1" or not runs else influxd_count(
                    influxd.url)
                runs += 1
                before = {name: process_cpu(server) for name, server in (("mosquitto", mosquitto),
                                                                          ("influxd", influxd))}
                if feed_kind == "backlog":
                    path = run_child(config_path, readings, with_alarms)
                else:
                    path = run_child_live(config_path, readings, with_alarms, mosquitto.port, devices)
                servers_cpu = {name: process_cpu(server) - before[name]
                               for name, server in (("mosquitto", mosquitto), ("influxd", influxd))}
                if raw_rate is None:
                    raw = raw_write_rate(influxd.url, "bench_raw", lines=make_lines(readings, series=points))
                    raw_rate = raw.per_second
                    print(f"    InfluxDB raw write:   {raw_rate:,.0f} points/s")
                _print_path(path, with_alarms, readings, raw_rate, bare_rate, servers_cpu, points,
                            0 if os.environ.get("BENCH_SPOOL_ONLY") == "1"
                            else influxd_count(influxd.url) - stored_before)
    finally:
        mosquitto.stop()
        influxd.stop()


def _print_path(path: dict[str, Any], with_alarms: bool, readings: int, raw_rate: float, bare_rate: float,
                servers_cpu: dict[str, float], points: int, stored: int) -> None:
    path_rate = readings / path["seconds"]
    what = ("as `stackwatch run`: the alarm engine evaluates every reading" if with_alarms
            else "the collection path alone (alarm engine stopped)")
    print(f"  {what}")
    print(f"    stackwatch path:      {path_rate:,.0f} readings/s = {path_rate / READINGS_PER_MESSAGE:,.0f} "
          f"messages/s ({path['seconds']:.1f} s; {stored:,} readings in InfluxDB)")
    print(f"    ratios: path/raw InfluxDB = {path_rate / raw_rate:.2f} (target ≥ 0.3); "
          f"path/bare subscriber = {path_rate / READINGS_PER_MESSAGE / bare_rate:.2f} (target ≥ 0.7)")
    receiver_figures = path.get("receiver_cpu")
    receiver_cpu = "" if receiver_figures is None else f" + receiver process {receiver_figures[0]:.1f}"
    publisher = f"; the publisher took {path['publisher_seconds']:.1f} s" if "publisher_seconds" in path else ""
    print(f"    CPU seconds while the path ran: stackwatch {path['cpu']:.1f}{receiver_cpu}, "
          + ", ".join(f"{name} {cpu:.1f}" for name, cpu in servers_cpu.items())
          + f"; cyclic garbage collection in the collecting process {path['gc_seconds']:.2f} s{publisher}")
    queue = (f"; alarm hand-over: at most {path['alarm_queue_max']:,} readings queued, "
             f"{path['alarm_queue_waits']} waits" if with_alarms else "")
    print(f"(c) peak memory of the collecting process: {path['max_rss_mb']:.0f} MB with {points:,} points "
          f"(target ≤ 150 MB; VmHWM)"
          + ("" if receiver_figures is None else f"; the receiver process {receiver_figures[1]:.0f} MB")
          + queue)
    if stored != readings:
        print(f"    !! InfluxDB holds {stored:,} readings, expected {readings:,}")


def influxd_count(url: str) -> int:
    from stackwatch.config.services import InfluxConfig
    from stackwatch.store.influx import InfluxClient

    client = InfluxClient(InfluxConfig(url=url, database="bench_path"))
    total = 0
    for series in client.query('SELECT count("quality") FROM /.*/'):
        total += int(series.values[0][1])
    return total


# ---------------------------------------------------------------- (b) Modbus

GATEWAY_MIX = (
    [("xy-md02", {})] * 6 + [("vaisala-hmp110", {})] * 4 + [("comet-t3510", {})] * 3
    + [("moxa-e1210", {})] * 3 + [("notifier-fire-gateway", {})] * 2 + [("rle-seahawk", {})] * 2)


def modbus_site(gateways: int, work: Path) -> dict[str, Any]:
    site: dict[str, Any] = {
        "site": {"id": "bench-modbus"}, "buildings": [{"id": "b"}],
        "rooms": [{"id": "r", "building": "b", "profile": "paper"}], "state_dir": str(work / "state-modbus"),
        "gateways": [], "devices": [],
    }
    for g in range(gateways):
        site["gateways"].append({"type": "modbus-tcp", "id": f"gw{g}", "host": "127.0.0.1", "port": free_port(),
                                 "timeout": 1.0})
        for unit, (model, options) in enumerate(GATEWAY_MIX, start=1):
            site["devices"].append({"id": f"gw{g}-u{unit}", "protocol": "modbus", "model": model,
                                    "gateway": f"gw{g}", "unit": unit, "room": "r", "model_options": options})
    return site


async def _modbus_figures(config_path: Path, rounds: int) -> dict[str, Any]:
    from collector.modbus.plan import Limits, minimum_requests
    from collector.modbus.poller import ModbusCollector
    from stackwatch.config.devices import ModbusDevice
    from stackwatch.pipeline import ListSink

    config = parse_config(config_path.read_text())
    gateways = {g.id: g for g in config.gateways}
    minimum = sum(minimum_requests(d, Limits.of(gateways[d.gateway])) for d in config.devices
                  if isinstance(d, ModbusDevice))
    points = sum(len(d.points) for d in config.devices)
    collector = ModbusCollector(config, ListSink(), SystemClock())
    await collector.run_cycle_once()  # connect everything
    before = sum(s.requests for s in collector.gateway_stats.values())
    await collector.run_cycle_once()
    per_cycle = sum(s.requests for s in collector.gateway_stats.values()) - before

    concurrent = []
    for _ in range(rounds):
        started = time.perf_counter()
        await collector.run_cycle_once()
        concurrent.append(time.perf_counter() - started)
    alone: dict[str, float] = {}
    for gateway_id, poller in collector.gateways.items():
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await poller.poll()
            times.append(time.perf_counter() - started)
        alone[gateway_id] = statistics.median(times)
    await collector.stop()
    return {"devices": len(config.devices), "gateways": len(gateways), "points": points, "minimum": minimum,
            "per_cycle": per_cycle, "cycle": statistics.median(concurrent), "alone": alone,
            "serial_sum": sum(alone.values())}


def bench_modbus(gateways: int, work: Path, rounds: int, line_time: float) -> None:
    config_path = work / "bench-modbus.yaml"
    config_path.write_text(yaml.safe_dump(modbus_site(gateways, work)))
    sim = subprocess.Popen([sys.executable, "-m", "simulators", "--config", str(config_path), "--log-level",
                            "WARNING", "--line-time", str(line_time)], cwd=ROOT)
    try:
        time.sleep(2.0)
        figures = asyncio.run(_modbus_figures(config_path, rounds))
    finally:
        sim.terminate()
        sim.wait(10)
    slowest = max(figures["alone"].values())
    line = f"{line_time * 1000:.0f} ms serial line time per answer" if line_time else "no line time (loopback)"
    print(f"(b) Modbus: {figures['devices']} devices on {figures['gateways']} TCP gateways, {figures['points']} "
          f"points, simulators in their own process, {line}")
    print(f"    requests per cycle: {figures['per_cycle']} (minimum for the maps: {figures['minimum']}; "
          f"one request per point would be {figures['points']})")
    print(f"    cycle time, gateways concurrently: {figures['cycle'] * 1000:.0f} ms (median of {rounds})")
    print(f"    slowest gateway alone: {slowest * 1000:.0f} ms; all gateways one after another: "
          f"{figures['serial_sum'] * 1000:.0f} ms")
    print(f"    ratio cycle/slowest gateway = {figures['cycle'] / slowest:.2f} (target ≤ 1.5)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "mqtt", "modbus"], default="all")
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=1667)
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--line-time", type=float, nargs="+", default=[0.02, 0.0],
                        help="serial line time per Modbus answer behind each gateway (9600 baud: about 0.02 s)")
    parser.add_argument("--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)")
    parser.add_argument("--ack-batch", type=int, default=16, help="the collector's ack_batch")
    parser.add_argument("--receiver", choices=["thread", "process"],
                        help="mqtt.receiver (default: the site file's default): map on paho's thread, or a receiver "
                        "process spooling raw messages")
    parser.add_argument("--alarms", choices=list(VARIANTS), default="both",
                        help="run the collection path with the alarm engine stopped (off), running as in `stackwatch "
                        "run` (on), or one after the other (both)")
    parser.add_argument("--feed", choices=list(FEEDS), default="both",
                        help="backlog: messages queued on the broker first, then drained by each consumer; live: one "
                        "publisher sends while the consumer receives, as STACK-NOTES measured its 17k ceiling; both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bare-live", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        tracemalloc.start()
    if args.bare_live:
        print(bare_live_child(int(args.bare_live[0]), int(args.bare_live[1]), Path(args.bare_live[2])))
        return 0
    if args.child:
        print(json.dumps(asyncio.run(collect(Path(args.child), args.expect))))
        return 0
    print(f"stackwatch ingest benchmark — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="stackwatch-bench-") as folder:
        work = Path(folder)
        if args.part in ("all", "mqtt"):
            bench_mqtt(args.messages, args.devices, work, args.inflight, args.ack_batch, args.receiver,
                       args.alarms, args.feed)
        if args.part in ("all", "modbus"):
            for line_time in args.line_time:
                bench_modbus(args.gateways, work, args.rounds, line_time)
    return 0


if __name__ == "__main__":
    sys.exit(main())
