"""The durable `ReadingSink`: readings become line protocol and land in the spool in one commit.

`accept` returns only after the commit, which is what lets the MQTT path
acknowledge a message to the broker afterwards. A spool failure (disk full)
is raised: the caller must then not acknowledge. A reading that cannot be
encoded is never raised: an unknown point is skipped and counted (config and
source disagree; nothing to store it under), and an unencodable value is
stored as a `bad` reading saying so, since bad data is kept, not dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from ..catalog import PointCatalog
from ..readings import Quality, Reading
from .spool import Spool

log = logging.getLogger(__name__)
_WARN_AT_MOST = 100  # distinct unknown points logged; the counter keeps counting


class SpoolSink:
    def __init__(self, spool: Spool, catalog: PointCatalog, on_append: Callable[[], None] | None = None) -> None:
        self.spool = spool
        self.catalog = catalog
        self.on_append = on_append
        self._lock = threading.Lock()
        self.lines_appended = 0
        self.unknown_points = 0
        self.unencodable = 0
        self._warned: set[str] = set()

    def seen(self, message_keys: Sequence[bytes]) -> set[bytes]:
        return self.spool.seen(message_keys)

    def accept(self, readings: Sequence[Reading]) -> None:
        self.accept_messages(readings, ())

    def mark(self, name: str) -> int:
        return self.spool.mark(name)

    def accept_marked(self, readings: Sequence[Reading], mark: tuple[str, int]) -> None:
        """`accept`, setting a mark in the same commit (also when no reading is left to store)."""
        self._commit(readings, (), mark)

    def accept_messages(self, readings: Sequence[Reading], message_keys: Sequence[bytes]) -> None:
        """`accept`, recording the keys of the messages the readings came from in the same commit."""
        self._commit(readings, message_keys, None)

    def _commit(self, readings: Sequence[Reading], message_keys: Sequence[bytes],
                mark: tuple[str, int] | None) -> None:
        encode = self.catalog.encode
        lines: list[str] = []
        unknown: list[str] = []
        unencodable = 0
        for reading in readings:
            try:
                lines.append(encode(reading))
            except KeyError:
                unknown.append(reading.point)
            except (ValueError, TypeError, OverflowError) as error:
                unencodable += 1
                lines.append(encode(Reading(reading.point, reading.ts_ns, None, Quality.BAD,
                                            f"unencodable value {reading.value!r}: {error}"[:500])))
        if lines or message_keys or mark is not None:
            self.spool.append(lines, message_keys, mark)
        with self._lock:
            self.lines_appended += len(lines)
            self.unknown_points += len(unknown)
            self.unencodable += unencodable
            new = [point for point in unknown if point not in self._warned][:_WARN_AT_MOST - len(self._warned)]
            self._warned.update(new)
        for point in new:
            log.warning("reading for unknown point %r skipped (not in the configured catalog)", point)
        if lines and self.on_append is not None:
            self.on_append()
