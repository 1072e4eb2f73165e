"""Hold received messages until their readings are durable, then acknowledge them to the broker.

This is what makes QoS 1 lossless: a message is acknowledged only after
`sink.accept` returned for its readings, so a crash or a failing spool leaves
it unacknowledged and the broker delivers it again.

Messages are committed in batches (one spool commit for many messages) by a
flusher thread, so paho's network thread keeps reading while SQLite commits;
a timer of a few milliseconds flushes the tail. Each batch belongs to one
broker session: after a disconnect the broker redelivers whatever was not
acknowledged, so held messages are dropped and a batch from an older session
is never acknowledged on a newer one (packet ids would not mean the same).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from stackwatch.pipeline import MessageSink

T = TypeVar("T")  # what a message became: its readings, or (in the receiver process) the raw message itself
T_contra = TypeVar("T_contra", contravariant=True)

log = logging.getLogger("collector.mqtt")


class ItemSink(Protocol[T_contra]):
    """Where held messages are committed: a `ReadingSink`, or anything that is also a `MessageSink` (ledger)."""

    def accept(self, items: Sequence[T_contra], /) -> None: ...


@dataclass(slots=True)
class _Held(Generic[T]):
    mid: int
    qos: int
    readings: Sequence[T]
    key: bytes = b""  # identifies the message across a redelivery (see message_key)
    dup: bool = False  # the broker says it may have delivered this message before


class AckBatcher(Generic[T]):
    def __init__(self, sink: ItemSink[T], ack: Callable[[int, int], object], *, batch_size: int, delay: float,
                 on_failure: Callable[[Exception], None], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._ack = ack
        self._batch_size = batch_size
        self._delay = delay
        self._on_failure = on_failure
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._pending: list[_Held[T]] = []
        self._first_at = 0.0
        self._generation = 0
        self._open = False  # a session is up and its messages may be acknowledged
        self._running = False
        self._thread: threading.Thread | None = None
        self.batches = 0  # sink commits that succeeded
        self.acked = 0  # messages acknowledged to the broker
        self.readings_accepted = 0
        self.failures = 0  # sink.accept raised
        self.dropped = 0  # received but never acknowledged: the broker delivers them again
        self.redelivered_skipped = 0  # redelivered messages already in the spool: acknowledged, not stored again

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name="mqtt-ack-batcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush and acknowledge what is held, then end the flusher thread."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def open_session(self) -> None:
        self._new_generation(open_=True)

    def close_session(self) -> None:
        self._new_generation(open_=False)

    def _new_generation(self, open_: bool) -> None:
        with self._cond:
            self._generation += 1
            self.dropped += len(self._pending)
            self._pending = []
            self._open = open_

    def add(self, mid: int, qos: int, readings: Sequence[T], key: bytes = b"", dup: bool = False) -> bool:
        """Hold a message for acknowledgement; False (dropped, to be redelivered) when no session may ack it."""
        with self._cond:
            if not (self._open and self._running):
                self.dropped += 1
                return False
            if not self._pending:
                self._first_at = self._monotonic()
            self._pending.append(_Held(mid, qos, readings, key, dup))
            if len(self._pending) == 1 or len(self._pending) >= self._batch_size:
                self._cond.notify()
            return True

    @property
    def held(self) -> int:
        return len(self._pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._pending:
                        wait = self._first_at + self._delay - self._monotonic()
                        if not self._running or len(self._pending) >= self._batch_size or wait <= 0:
                            break
                        self._cond.wait(wait)
                    elif not self._running:
                        return
                    else:
                        self._cond.wait()
                batch, self._pending = self._pending, []
                generation = self._generation
            try:
                self._flush(batch, generation)
            except Exception:  # the flusher must outlive any bug below it
                log.exception("MQTT acknowledgement batch failed")

    def _flush(self, batch: list[_Held[T]], generation: int) -> None:
        ledger = cast(Any, self._sink) if isinstance(self._sink, MessageSink) else None
        skipped: set[bytes] = set()
        try:
            if ledger is not None:
                redelivered = [held.key for held in batch if held.dup and held.key]
                skipped = ledger.seen(redelivered) if redelivered else set()
        except Exception as error:
            self._refused(batch, generation, error)
            return
        readings = [reading for held in batch if held.key not in skipped for reading in held.readings]
        keys = [held.key for held in batch if held.key and held.readings and held.key not in skipped]
        if readings:
            try:
                if ledger is not None:
                    ledger.accept_messages(readings, keys)
                else:
                    self._sink.accept(readings)
            except Exception as error:
                self._refused(batch, generation, error)
                return
        with self._cond:
            self.redelivered_skipped += len(skipped)
            if generation != self._generation:  # the session ended while the spool committed
                self.dropped += len(batch)
                return
            for held in batch:
                self._ack(held.mid, held.qos)
            self.acked += len(batch)
            self.batches += 1
            self.readings_accepted += len(readings)

    def _refused(self, batch: list[_Held[T]], generation: int, error: Exception) -> None:
        """The spool refused: acknowledge nothing, end the session so the broker redelivers."""
        with self._cond:
            self.failures += 1
            self.dropped += len(batch)
            if generation == self._generation:
                self._generation += 1
                self.dropped += len(self._pending)
                self._pending = []
                self._open = False
        self._on_failure(error)


def message_key(topic: bytes, payload: bytes, mid: int) -> bytes:
    """Identity of one delivery: a redelivery keeps topic, payload and packet id (MQTT 3.1.1 §4.4)."""
    digest = hashlib.blake2b(topic, digest_size=16)
    digest.update(b"\0")
    digest.update(payload)
    digest.update(mid.to_bytes(4, "big"))
    return digest.digest()
