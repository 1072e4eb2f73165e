"""Counters and availability per gateway and per device, as plain attributes.

/metrics and the benchmark read these directly; they are written only by the
gateway's own task, so they need no lock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DeviceStats:
    device_id: str
    gateway_id: str
    unit: int
    requests: int = 0  # put on the bus, retries included
    responses: int = 0  # answers of any kind, exception replies included
    no_responses: int = 0  # timeouts, lost links, replies that did not match
    exceptions: int = 0
    busy_retries: int = 0
    polls: int = 0  # polls that used the bus
    polls_failed: int = 0  # polls in which the device did not answer
    polls_skipped: int = 0  # polls answered from the down state without touching the bus
    consecutive_failures: int = 0
    available: bool = True  # until a poll fails
    down: bool = False  # polled only every `down_retry`
    retry_at: float = 0.0  # clock time of the next attempt while down
    last_poll_seconds: float = 0.0
    last_error: str = ""

    @property
    def availability(self) -> float:
        """Share of bus polls the device answered."""
        return 1.0 if self.polls == 0 else 1.0 - self.polls_failed / self.polls


@dataclass
class GatewayStats:
    gateway_id: str
    requests: int = 0
    responses: int = 0
    no_responses: int = 0
    exceptions: int = 0
    late_reply_drains: int = 0  # times the line was drained after a timeout
    cycles: int = 0
    last_cycle_seconds: float = 0.0
    max_cycle_seconds: float = 0.0
    connect_failures: int = 0
    available: bool = True  # until a connection attempt fails
    last_error: str = ""
