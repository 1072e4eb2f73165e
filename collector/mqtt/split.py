"""The MQTT collector split over two processes (`mqtt.receiver: process`).

The in-process collector (`MqttCollector`) maps every payload on paho's network
thread and commits readings before acknowledging: paho, mapping, the spool and
the InfluxDB writer then share one interpreter and one core (bench/RESULTS.md).
Here the broker session runs in a receiver process (`collector.mqtt.receiver`)
that commits messages raw and acknowledges them; this process maps the raw rows
into readings and commits them to the reading spool with the id of the last
raw row (`MarkedSink.accept_marked`), then tells the receiver it may delete
those rows.

Guarantees, case by case:
* A message is acknowledged only after its raw row is committed (the receiver's
  `AckBatcher`, as in-process). A redelivery of a message already committed is
  recognised by its key in the raw file's ledger and not committed again.
* A raw row becomes readings exactly once: the readings and the mark commit in
  one SQLite transaction, and mapping resumes after the mark. Killed between the
  two commits, the service maps the row again on restart.
* The readings' timestamps are a function of the raw row: the receiver gives each
  message its own receive time, at least `SPACING_NS` after the previous one, so
  mapping the row again yields identical points (InfluxDB overwrites, never adds).
* Malformed payloads are counted and logged here, as in-process; a raw row that
  cannot even be unpacked (a damaged file) is counted as malformed and skipped.
* The receiver dies with the thread that started it (a supervisor thread living
  as long as the collector); if it ends on its own it is started again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from stackwatch.clock import Clock
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import MarkedSink, TimestampAllocator
from stackwatch.readings import Reading

from .mapping import MapperCounts, MessageMapper
from .problems import MALFORMED
from .rawspool import CorruptRow, RawReader, RawSpool, unpack
from .session import DEFAULT_FLUSH_DELAY

log = logging.getLogger("collector.mqtt")

MAX_ROWS = 64  # raw rows (of up to ack_batch messages each) mapped into one spool commit
# ... and at most about this many messages: after a backlog the receiver writes rows of thousands, and a commit
# of 12,000 messages held 70,000 readings, their lines and their spool row at once (a 25 MB peak, bench/ingest.py).
MAX_MESSAGES = 2_000
STOP_TIMEOUT = 15.0
_SESSION_KEYS = ("connected", "connects", "reconnects", "acked", "accept_failures", "dropped", "session_restarts",
                 "redelivered_skipped")


class SplitMqttCollector(MapperCounts):
    def __init__(self, config: SiteConfig, sink: MarkedSink, clock: Clock, raw_path: str | Path, *,
                 fsync: bool = False, allocator: TimestampAllocator | None = None,
                 flush_delay: float = DEFAULT_FLUSH_DELAY, spawn: bool = True,
                 ledger_from: str | Path | None = None) -> None:
        """`spawn=False` maps only what is in the raw spool already, with no receiver (tests, recovery).
        `ledger_from`: the reading spool, whose message keys (from `mqtt.receiver: thread`) the receiver also
        recognises."""
        if config.mqtt is None:
            raise ValueError("the site file has no `mqtt` broker section")
        self._broker = config.mqtt
        self._clock = clock  # the receiver stamps with the system clock; kept for the collectors' common signature
        self.client_id = self._broker.client_id or f"stackwatch-{config.site.id}"
        self.mapper = MessageMapper(config, allocator)
        self.subscriptions: list[str] = self.mapper.subscriptions
        self._sink = sink
        self.raw_path = Path(raw_path)
        self._fsync = fsync
        self._flush_delay = flush_delay
        self._spawn = spawn
        self._ledger_from = ledger_from
        self._lifecycle = threading.Lock()
        self._pipe = threading.Lock()  # the receiver's stdin
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._consumer: threading.Thread | None = None
        self._reader: RawReader | None = None
        self._mark_name = ""
        self._session: dict[str, Any] = {}
        # Stats: the receiver's session counters (as it last reported them) and this process's mapping.
        self.messages_received = 0  # messages mapped
        self.readings_produced = 0
        self.mapping_errors = 0
        self.receiver_starts = 0
        self.commit_failures = 0  # reading-spool commits that failed (retried: the raw rows stay)
        self.committed_upto = 0  # the receiver's newest raw row
        self.mapped_upto = 0  # the newest raw row whose readings are in the reading spool

    # -- counters under the names /metrics and the benchmark use ---------------------------------

    def _session_count(self, key: str) -> int:
        return int(self._session.get(key, 0))

    @property
    def connected(self) -> bool:
        return bool(self._session.get("connected", False)) and self._process is not None

    @property
    def acked(self) -> int:
        return self._session_count("acked")

    @property
    def connects(self) -> int:
        return self._session_count("connects")

    @property
    def reconnects(self) -> int:
        """Reconnections of the receiver's session (a restarted receiver counts its own from zero)."""
        return self._session_count("reconnects")

    @property
    def session_restarts(self) -> int:
        return self._session_count("session_restarts")

    @property
    def callback_errors(self) -> int:
        return self._session_count("callback_errors") + self.mapping_errors

    @property
    def accept_failures(self) -> int:
        return self._session_count("accept_failures")

    @property
    def dropped(self) -> int:
        return self._session_count("dropped")


    def stats(self) -> dict[str, int | bool]:
        session = {key: self._session_count(key) for key in _SESSION_KEYS}
        return {**session, "connected": self.connected, "messages_received": self.messages_received,
                "readings_produced": self.readings_produced, "callback_errors": self.callback_errors,
                "mapping_errors": self.mapping_errors,
                "malformed": self.malformed, "oversized": self.oversized, "unexpected": self.unexpected,
                "ignored": self.ignored, "receiver_starts": self.receiver_starts,
                "commit_failures": self.commit_failures, "raw_waiting": self.committed_upto - self.mapped_upto}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start mapping what an earlier run left in the raw spool, and the receiver process; returns at once."""
        with self._lifecycle:
            if self._consumer is not None:
                return
            self._stopping.clear()
            RawSpool(self.raw_path, fsync=self._fsync).close()  # the file and its epoch exist before anyone reads
            self._reader = RawReader(self.raw_path)
            self._mark_name = f"mqtt-raw:{self._reader.epoch}"
            self.mapped_upto = self.committed_upto = self._sink.mark(self._mark_name)
            if not self._spawn:
                self._stopping.set()  # map what is there, then end
            self._consumer = threading.Thread(target=self._consume, name="mqtt-mapper", daemon=True)
            self._consumer.start()
            if not self._spawn:
                return
            # The receiver dies with the thread that started it (PR_SET_PDEATHSIG): this one lives until stop().
            self._supervisor = threading.Thread(target=self._supervise, name="mqtt-receiver", daemon=True)
            self._supervisor.start()

    def stop(self) -> None:
        """The receiver commits and acknowledges what it holds and disconnects; everything committed is mapped."""
        with self._lifecycle:
            if self._consumer is None:
                return
            self._stopping.set()
            self._send("stop")
            if self._supervisor is not None:
                self._supervisor.join(STOP_TIMEOUT)
            if self._supervisor is not None and self._supervisor.is_alive():
                log.error("MQTT receiver did not stop within %.0f s; killing it", STOP_TIMEOUT)
                with self._pipe:
                    if self._process is not None:
                        self._process.kill()
                self._supervisor.join()
            self._wake.set()
            assert self._consumer is not None
            self._consumer.join()
            if self._reader is not None:
                self._reader.close()
            self._supervisor = self._consumer = self._reader = None
            self._session["connected"] = False

    # -- the receiver process ----------------------------------------------------------------------

    def _settings(self) -> str:
        broker = self._broker.model_dump(mode="json")
        if self._broker.password is not None:
            broker["password"] = self._broker.password.get_secret_value()
        return json.dumps({
            "broker": broker, "client_id": self.client_id, "subscriptions": self.subscriptions,
            "raw_path": str(self.raw_path), "fsync": self._fsync, "flush_delay": self._flush_delay,
            "release": self.mapped_upto, "parent": os.getpid(),
            "ledger_from": str(self._ledger_from) if self._ledger_from is not None else None,
            "log_level": logging.getLogger().getEffectiveLevel(),
        })

    def _supervise(self) -> None:
        delay = self._broker.reconnect_min
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                with self._pipe:  # stop() sends `stop` under this lock: a receiver is started before it or never
                    if self._stopping.is_set():
                        return
                    process = self._process = subprocess.Popen(
                        [sys.executable, "-m", "collector.mqtt.receiver"], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE)
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(self._settings().encode() + b"\n")
                    process.stdin.flush()
                self.receiver_starts += 1
                log.info("MQTT receiver process %d started (raw spool %s)", process.pid, self.raw_path)
                self._follow(process.stdout)
                code = process.wait()
            except OSError as error:
                code = None
                log.error("MQTT receiver process could not start: %s", error)
            with self._pipe:
                self._process = None
            self._session["connected"] = False
            self._wake.set()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 10 * self._broker.reconnect_max:
                delay = self._broker.reconnect_min
            log.error("MQTT receiver process ended (exit code %s); starting it again in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._broker.reconnect_max)

    def _follow(self, stdout: IO[bytes] | None) -> None:
        assert stdout is not None
        for line in stdout:
            kind, _, rest = line.partition(b" ")
            if kind == b"c":
                self.committed_upto = int(rest)
                self._wake.set()
            elif kind == b"s":
                self._session = json.loads(rest)

    def _send(self, line: str) -> None:
        with self._pipe:
            process = self._process
            if process is None or process.stdin is None:
                return
            try:
                process.stdin.write(line.encode() + b"\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError):  # it has ended; the supervisor sees to it
                pass

    # -- mapping -----------------------------------------------------------------------------------

    def _consume(self) -> None:
        assert self._reader is not None
        reader = self._reader
        while True:
            self._wake.clear()
            finished = self._stopping.is_set() and (self._supervisor is None or not self._supervisor.is_alive())
            try:
                rows = reader.read_after(self.mapped_upto, MAX_ROWS, MAX_MESSAGES)
            except Exception:
                log.exception("MQTT raw spool could not be read")
                rows = []
                finished = finished or self._stopping.wait(1.0)
            if rows:
                if not self._commit(self._map(rows), rows[-1][0]):
                    return  # stopping while the spool refuses: the raw rows wait for the next start
                continue
            if finished:
                return
            self._wake.wait(0.2)

    def _map(self, rows: list[tuple[int, bytes]]) -> list[Reading]:
        readings: list[Reading] = []
        problems, mapper = self.mapper.problems, self.mapper
        for row_id, body in rows:
            try:
                messages = unpack(body)
            except CorruptRow as error:
                problems.report(MALFORMED, f"(raw spool row {row_id})", f"cannot be unpacked: {error}")
                continue
            self.messages_received += len(messages)
            for recv_ns, retain, topic_bytes, payload in messages:
                try:
                    topic = topic_bytes.decode("utf-8")
                except UnicodeDecodeError:
                    problems.report(MALFORMED, "(topic not UTF-8)", repr(topic_bytes[:60]))
                    continue
                try:
                    readings += mapper.map(topic, payload, retain, recv_ns)
                except Exception:  # a bug in mapping must not stop the rows behind this message
                    self.mapping_errors += 1
                    log.exception("MQTT message mapping failed")
        self.readings_produced += len(readings)
        return readings

    def _commit(self, readings: list[Reading], upto: int) -> bool:
        """Readings and mark in one commit; retried while the spool refuses. False: stopping before it took."""
        delay = self._broker.reconnect_min
        mark = (self._mark_name, upto)
        while True:
            try:
                self._sink.accept_marked(readings, mark)
                break
            except Exception as error:
                self.commit_failures += 1
                try:
                    if self._sink.mark(self._mark_name) >= upto:  # committed; a listener after the commit failed
                        log.exception("MQTT readings committed, but passing them on failed")
                        break
                except Exception:
                    pass
                log.error("spool refused MQTT readings (%s: %s); raw messages kept, retrying in %.1f s",
                          type(error).__name__, error, delay)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, self._broker.reconnect_max)
        self.mapped_upto = upto
        self._send(f"release {upto}")
        return True
