"""The one record every source produces and every consumer reads.

A reading never hides a failure: a device that did not answer still yields a
reading for each of its points, with no value and a quality saying why.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

Value = float | int | bool | str | None


class Quality(enum.StrEnum):
    """How far a reading can be trusted (ARCHITECTURE.md, "Readings and quality")."""

    GOOD = "good"
    UNCERTAIN = "uncertain"  # outside the sensor's physical range, battery low
    BAD = "bad"  # sensor fault sentinel, decode error
    COMM_FAILURE = "comm_failure"  # the device did not answer
    STALE = "stale"  # no update within the point's expected interval

    @property
    def usable(self) -> bool:
        """Whether rules, control and reports may use the value as a measurement."""
        return self in (Quality.GOOD, Quality.UNCERTAIN)


class Reading(NamedTuple):
    """One value of one point at one instant (a named tuple: made tens of thousands of times a second).

    `point` is the global point key `<device>.<point>`; `ts_ns` is UTC
    nanoseconds since the epoch, fixed when the reading is accepted so that a
    re-send after a crash writes the identical InfluxDB point (idempotent).
    `detail` carries the reason for a non-good quality (exception code, sentinel).
    """

    point: str
    ts_ns: int
    value: Value
    quality: Quality = Quality.GOOD
    detail: str = ""
