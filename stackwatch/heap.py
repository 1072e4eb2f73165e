"""Process-wide memory settings of the long-running service: the C allocator and the cyclic collector.

Measured in bench/ingest.py (a burst) and bench/memory_day.py (a simulated day);
each function says what it bought there.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from typing import Any

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters in glibc's malloc.h
_MMAP_THRESHOLD = 128 * 1024


def tune_allocator() -> None:
    """Keep glibc's malloc from holding on to memory the service has already freed.

    A burst (a broker handing over a night's backlog) passes through large
    short-lived buffers: spool rows, request bodies, batches of readings. By
    default glibc raises its mmap threshold after the first such buffer is
    freed, so later ones come from the heap and stay behind as fragments, and
    each busy thread gets its own arena (up to 16 on 2 cores). A fixed 128 KiB
    threshold (big buffers go back to the system when freed) and two arenas
    lowered the collecting process's peak in bench/ingest.py from 164-176 MB
    to 148-154 MB at first, and from 139 to 132-135 MB once the bursts
    themselves were bounded; throughput unchanged beyond the run-to-run noise.
    Does nothing where the C library is not glibc.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim`), once a minute from the status task.

    An alarm storm (3,667 alarms at once in bench/memory_day.py) passes
    thousands of event payloads and MQTT packets through malloc; freed, their
    pages stayed with the process: 152 MB a day on, against 142 MB when trimmed.
    A trim takes well under a millisecond. Does nothing where the C library is not glibc.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def settle_heap() -> None:
    """Move everything built so far (site, catalog, rule set, routes, app) out of the cyclic collector's reach.

    Those objects live as long as the service, yet every full collection walked
    them all: with 10,000 points, 1.6-1.7 s of a 6 s MQTT benchmark run went to
    collections (bench/ingest.py). Frozen, they are skipped (gc.freeze); new garbage
    is collected as before.
    """
    gc.collect()
    gc.freeze()


@functools.cache
def _glibc() -> Any:
    """glibc with the two malloc calls used here, or None elsewhere (musl, macOS): the settings are optional."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
