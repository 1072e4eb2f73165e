"""Writing to actuators and proving each write: the state machine behind every command.

A command is journaled before it goes on the wire. After 2 s, and then every
2 s until the actuator's `settle` time, its read-back must agree (a running
contact, the set-point in effect); a mismatch is written again at once, a
failed write again after `settle`, and after `retries` the actuator is failed
with a control alarm, tried again every minute, and cleared when a later
write is proven. This is how a unit that accepts a command and does not run
is caught.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from alarms.ruleset import CONTROL_FAILED

from .controller import Desired
from .plan import ActuatorPlan, ControlPlan

log = logging.getLogger("stackwatch.control")

FAILED_RETRY = 60.0  # a failed actuator is tried again this often, so it recovers by itself when the unit does
EARLY_CHECK = 2.0  # read back this soon and then this often until `settle`: most units answer long before it

# (ts, kind, room, target, value, source, who, reason, detail): the runtime's journal and events
Log = Callable[[float, str, str, str, "float | None", str, str, str, "dict[str, Any] | None"], None]


class ActuatorIO(Protocol):
    async def write(self, actuator: ActuatorPlan, raw: int) -> None:
        """Raise on failure (Modbus exception, no answer)."""
        ...

    async def read_back(self, actuator: ActuatorPlan) -> float:
        """The engineering value that proves the command; raise if it cannot be read."""
        ...



def command_failed_alarm(actuator: str) -> str:
    return CONTROL_FAILED.format(actuator=actuator)



@dataclass(slots=True)
class Track:
    """What the runtime last commanded an actuator and whether the unit is known to follow."""

    commanded: float | None = None
    source: str = ""
    reason: str = ""
    state: str = "unknown"  # unknown | pending | verified | retry | failed
    attempts: int = 0
    due: float = 0.0
    deadline: float = 0.0  # the read-back must agree by then (issued + settle)
    issued_at: float = 0.0
    readback: float | None = None
    detail: str = ""
    alarm: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"commanded": self.commanded, "source": self.source, "reason": self.reason, "state": self.state,
                "attempts": self.attempts, "issued_at": self.issued_at or None, "readback": self.readback,
                "detail": self.detail, "alarm": self.alarm}



class CommandWriter:
    def __init__(self, plan: ControlPlan, io: ActuatorIO, log_row: Log, alarm: Callable[[str, bool], None],
                 changed: Callable[[str], None], interval: float) -> None:
        self.plan = plan
        self.io = io
        self._log = log_row
        self._alarm = alarm
        self._changed = changed  # a room whose units moved: the runtime saves it
        self.interval = interval
        self.tracks = {name: Track() for name in plan.actuators}

    def next_due(self) -> float:
        dues = [t.due for t in self.tracks.values() if t.state in ("pending", "retry", "failed")]
        return min(dues) if dues else math.inf

    async def command(self, desired: Desired, now: float) -> None:
        """Write what a loop, an operator or an interlock wants, unless the unit already has it (or a retry is due)."""
        track = self.tracks[desired.actuator]
        changed = track.commanded is None or abs(track.commanded - desired.value) > 1e-9
        retry_due = track.state in ("retry", "failed") and now >= track.due
        if not changed and not retry_due:
            if track.source != desired.source:
                track.source, track.reason = desired.source, desired.reason
            return
        if changed:
            track.attempts = 0
        await self._write(desired.actuator, desired.value, desired.source, desired.reason, now)

    async def _write(self, name: str, value: float, source: str, reason: str, now: float) -> None:
        actuator = self.plan.actuators[name]
        track = self.tracks[name]
        track.commanded, track.source, track.reason, track.issued_at = value, source, reason, now
        self._changed(actuator.room)
        try:
            raw = actuator.encode(value)
        except ValueError as error:  # the loop asked for what the unit may not get: never sent
            track.state, track.detail = "failed", str(error)
            self._log(now, "failed", actuator.room, name, value, source, "", reason, {"error": str(error)})
            self._set_failed(name, True)
            return
        self._log(now, "command", actuator.room, name, value, source, "", reason, {"raw": raw,
                                                                                   "attempt": track.attempts})
        try:
            await self.io.write(actuator, raw)
        except Exception as error:  # Modbus exception or no answer: journaled, retried, then an alarm
            track.attempts += 1
            track.detail = f"write failed: {error}"
            self._log(now, "write_error", actuator.room, name, value, source, "", reason, {"error": str(error)})
            self._after_failure(name, now)
            return
        settle = actuator.spec.settle
        track.state, track.detail = "pending", ""
        track.deadline, track.due = now + settle, now + min(settle, EARLY_CHECK)

    def _after_failure(self, name: str, now: float, back_off: bool = True) -> None:
        """Retry (at once after a mismatch, after `settle` when the bus failed), then fail with an alarm."""
        actuator, track = self.plan.actuators[name], self.tracks[name]
        if track.attempts > actuator.spec.retries:
            if track.state != "failed":
                self._log(now, "failed", actuator.room, name, track.commanded, track.source, "", track.detail,
                          {"attempts": track.attempts})
                log.error("%s: command %s failed after %d attempts: %s", name, track.commanded, track.attempts,
                          track.detail)
            track.state, track.due = "failed", now + max(FAILED_RETRY, self.interval)
            self._set_failed(name, True)
        else:
            track.state, track.due = "retry", now + (actuator.spec.settle if back_off else 0.0)

    async def verify_due(self, now: float) -> None:
        """Read back what is due and write again what is due for a retry."""
        for name, track in self.tracks.items():
            if track.state == "pending" and now >= track.due:
                await self._verify(name, now)
            if track.state in ("retry", "failed") and now >= track.due and track.commanded is not None:
                await self._write(name, track.commanded, track.source, track.reason, now)

    async def _verify(self, name: str, now: float) -> None:
        actuator, track = self.plan.actuators[name], self.tracks[name]
        assert track.commanded is not None
        try:
            readback = await self.io.read_back(actuator)
        except Exception as error:
            track.attempts += 1
            track.detail = f"read-back failed: {error}"
            self._log(now, "mismatch", actuator.room, name, track.commanded, track.source, "", track.reason,
                      {"error": str(error)})
            self._after_failure(name, now)
            return
        track.readback = readback
        if not actuator.agrees(track.commanded, readback) and now < track.deadline:
            track.due = min(track.deadline, now + EARLY_CHECK)  # still within the unit's settle time
            return
        if actuator.agrees(track.commanded, readback):
            was_failed = track.alarm
            track.state, track.attempts, track.detail = "verified", 0, ""
            self._log(now, "recovered" if was_failed else "verified", actuator.room, name, track.commanded,
                      track.source, "", track.reason, {"readback": readback})
            self._set_failed(name, False)
            return
        track.attempts += 1
        track.detail = f"read-back {readback:g}, commanded {track.commanded:g}"
        self._log(now, "mismatch", actuator.room, name, track.commanded, track.source, "", track.reason,
                  {"readback": readback})
        self._after_failure(name, now, back_off=False)

    def _set_failed(self, name: str, failed: bool) -> None:
        self.tracks[name].alarm = failed
        self._alarm(command_failed_alarm(name), failed)
