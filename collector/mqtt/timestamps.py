"""Devices' own timestamps: ISO text with or without a zone, epoch seconds, epoch milliseconds.

A device's time is honoured so that a message queued at the broker while the
collector was down keeps the instant it was measured. Naive ISO times (Tasmota
sends local time with no zone) are read in a configured zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from stackwatch.config.devices import TimestampSpec

from .jsonpath import Steps, compile_path

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadTimestamp(ValueError):
    """The payload's timestamp is there but cannot be read."""


@dataclass(frozen=True, slots=True)
class TimestampRule:
    path: Steps
    format: str  # iso | epoch_s | epoch_ms
    zone: tzinfo

    @classmethod
    def compile(cls, spec: TimestampSpec, site_zone: str) -> TimestampRule:
        return cls(path=compile_path(spec.path), format=spec.format, zone=ZoneInfo(spec.naive_zone or site_zone))

    def to_ns(self, raw: object) -> int:
        """UTC nanoseconds since the epoch; BadTimestamp when `raw` is not a time in this rule's format."""
        if self.format == "iso":
            if not isinstance(raw, str):
                raise BadTimestamp(f"expected ISO text, got {raw!r:.40}")
            try:
                moment = datetime.fromisoformat(raw.strip())
            except ValueError:
                raise BadTimestamp(f"not an ISO time: {raw!r:.40}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.zone)
            return ((moment - _EPOCH) // _MICROSECOND) * 1000
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise BadTimestamp(f"expected a number, got {raw!r:.40}")
        try:
            number = float(raw)
        except (ValueError, OverflowError):
            raise BadTimestamp(f"not a number: {raw!r:.40}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise BadTimestamp(f"not a finite time: {raw!r:.40}")
        micros = number * (1e6 if self.format == "epoch_s" else 1e3)
        return round(micros) * 1000
