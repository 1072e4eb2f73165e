"""The MQTT receiver process: the broker session alone, committing raw messages before acknowledging them.

`python -m collector.mqtt.receiver`, started by `SplitMqttCollector`
(`mqtt.receiver: process`). paho's network thread then shares its interpreter
with nothing but the acknowledgement flusher: no payload mapping, no line
protocol, no InfluxDB writer. The session rules are those of the in-process
collector (`MqttSession`: QoS 1, persistent session, acknowledged only after
the commit, reconnect with back-off, a refused commit ends the session so the
broker redelivers); the commit is of raw messages (`RawSpool`), and the
message ledger that recognises a redelivery after a crash is in that file.

Protocol with the service, one text line each:
  stdin  first line: JSON settings; then `release <id>` (rows mapped, may go) and `stop`.
         End of input means the service is gone: the receiver exits at once.
  stdout `c <id>` after each commit, `s <json>` session counters (every 0.25 s and at exit).
  stderr log records.
The receiver also asks Linux to kill it when the thread that started it ends
(PR_SET_PDEATHSIG), so a SIGKILLed service leaves no receiver holding its session.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from stackwatch.config.services import MqttBroker
from stackwatch.store.spool import ledger_keys

from .acks import message_key
from .client import ClientFactory, paho_client
from .rawspool import RawMessage, RawSpool
from .session import DEFAULT_FLUSH_DELAY, MqttSession

log = logging.getLogger("collector.mqtt.receiver")

SPACING_NS = 1000  # receive times at least this far apart: a message's readings never reach the next one's stamps
STATS_INTERVAL = 0.25
_PR_SET_PDEATHSIG = 1


class RawSink:
    """The receiver's sink: raw messages into the raw spool, with their ledger keys, in one commit."""

    def __init__(self, spool: RawSpool, committed: Callable[[int], None]) -> None:
        self.spool = spool
        self._committed = committed
        self.release_upto = 0  # rows the service has mapped: deleted with the next commit

    def accept(self, items: Sequence[RawMessage], /) -> None:
        self.accept_messages(items, ())

    def accept_messages(self, items: Sequence[RawMessage], message_keys: Sequence[bytes]) -> None:
        self._committed(self.spool.append(items, message_keys, self.release_upto))

    def seen(self, message_keys: Sequence[bytes]) -> set[bytes]:
        return self.spool.seen(message_keys)


class RawReceiver(MqttSession[RawMessage]):
    def __init__(self, broker: MqttBroker, client_id: str, subscriptions: list[str], sink: RawSink,
                 client_factory: ClientFactory = paho_client, *, flush_delay: float = DEFAULT_FLUSH_DELAY,
                 time_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(broker, client_id, subscriptions, sink, client_factory, flush_delay=flush_delay)
        self._time_ns = time_ns
        self._last_ns = 0

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            self.messages_received += 1
            now = self._time_ns()
            if now < self._last_ns + SPACING_NS:
                now = self._last_ns + SPACING_NS
            self._last_ns = now
            topic: bytes = message._topic
            payload = bytes(message.payload)
            mid = int(message.mid)
            self._batcher.add(mid, message.qos, (RawMessage(now, bool(message.retain), topic, payload),),
                              message_key(topic, payload, mid), bool(message.dup))
        except Exception:
            self.callback_errors += 1
            log.exception("MQTT message could not be held for acknowledgement")


class _Lines:
    """Whole lines to the service, from any thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, line: str) -> None:
        with self._lock:
            try:
                self._stream.write(line.encode() + b"\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # the service is gone; stdin's end will end us
                pass


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: end of stdin still ends us, a little later
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main() -> int:
    # The service decides when we stop (Ctrl-C and SIGTERM reach the whole process group): `stop` on stdin,
    # or its end. Stopping on a signal of our own could drop the session before the service's last mapping.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings: dict[str, Any] = json.loads(sys.stdin.readline())
    _die_with_parent(int(settings["parent"]))
    logging.basicConfig(stream=sys.stderr, level=settings.get("log_level", logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = _Lines(sys.stdout.buffer)
    spool = RawSpool(settings["raw_path"], fsync=bool(settings["fsync"]))
    if settings.get("ledger_from"):  # messages committed in `thread` mode before a switch: known when redelivered
        spool.preload_keys(ledger_keys(settings["ledger_from"]))
    sink = RawSink(spool, lambda row: out.send(f"c {row}"))
    sink.release_upto = int(settings["release"])
    receiver = RawReceiver(MqttBroker.model_validate(settings["broker"]), settings["client_id"],
                           list(settings["subscriptions"]), sink, flush_delay=float(settings["flush_delay"]))
    done = threading.Event()

    def report() -> None:
        while not done.wait(STATS_INTERVAL):
            out.send("s " + json.dumps(receiver.session_stats()))

    threading.Thread(target=report, name="receiver-stats", daemon=True).start()
    receiver.start()
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "release":
            sink.release_upto = max(sink.release_upto, int(argument))
        elif command == "stop":
            break
    else:  # end of input: the service died (or closed us without a word); nothing held needs us
        os._exit(0)
    receiver.stop()
    done.set()
    out.send("s " + json.dumps(receiver.session_stats()))
    spool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
