"""The control runtime: readings in, commands out over Modbus, every write read back.

Runs in the service's event loop. The loops step every `control.interval`;
a reading that changes a fire or leak state wakes them at once, so a fire
stops the room's air handling within the poll that saw it. Each command is
journaled with its reason before it is written; after the unit's `settle`
time its read-back must agree, else the write is repeated `retries` times and
then a control alarm is raised (and cleared when a later read-back agrees).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alarms.ruleset import CONTROL_INPUT, CONTROL_INTERLOCK
from stackwatch.clock import Clock
from stackwatch.config.control import RoomControl
from stackwatch.readings import Quality, Reading
from stackwatch.store.lineprotocol import encode_line

from .commands import ActuatorIO, CommandWriter
from .controller import AUTO, INTERLOCK, MANUAL, ClimateInput, Desired, Override, RoomController, loop_target
from .interlocks import InterlockState
from .interlocks import reset as reset_interlock
from .journal import ControlJournal
from .loops import SetpointState, UnitState
from .plan import ControlPlan

log = logging.getLogger("stackwatch.control")

COMMAND_POLL = 0.5  # s between looks at the command table (actions through `stackwatch api`)


class ControlRefused(Exception):
    """An operator's request the runtime will not carry out; the message says why."""


AlarmSetter = Callable[[str, bool], None]


def input_alarm(room: str, loop: str) -> str:
    return CONTROL_INPUT.format(room=room, loop=loop)


def interlock_alarm(room: str) -> str:
    return CONTROL_INTERLOCK.format(room=room)


class ControlRuntime:
    def __init__(self, plan: ControlPlan, io: ActuatorIO, clock: Clock, journal_path: str | Path, *,
                 interval: float = 30.0, input_max_age: float = 300.0, max_override: float = 7 * 86400.0,
                 alarms: AlarmSetter | None = None, events: Callable[[Sequence[str]], None] | None = None,
                 site: str = "", buildings: Mapping[str, str] | None = None) -> None:
        self.plan = plan
        self.io = io
        self.clock = clock
        self.interval = interval
        self.input_max_age = input_max_age
        self.max_override = max_override
        self.journal = ControlJournal(journal_path)
        self._alarms = alarms
        self._events = events
        self._site = site
        self._buildings = dict(buildings or {})
        self.rooms = {room: RoomController(room_plan, plan.actuators, plan.timezone)
                      for room, room_plan in plan.rooms.items()}
        self.writer = CommandWriter(plan, io, self._log, self._alarm, self._dirty_room, interval)
        self.tracks = self.writer.tracks
        self.overrides = self.journal.overrides()
        self._restore()
        self._latest: dict[str, Reading] = {}
        self._read = frozenset(plan.watched | {key for room in plan.rooms.values()
                                               for key in room.temperature_points + room.humidity_points})
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._command_task: asyncio.Task[None] | None = None
        self._step_lock: asyncio.Lock | None = None
        self._alarm_state: dict[str, bool] = {}
        self._holding_since: dict[tuple[str, str], float] = {}
        self._dirty: set[str] = set()  # rooms whose units or set-point moved this step: saved at its end
        self.cycles = 0

    # --- readings in ------------------------------------------------------------------------------------------

    def __call__(self, readings: Sequence[Reading]) -> None:
        """A hub listener: keep the newest reading per point; a fire or leak state change wakes the loops now."""
        wake = False
        watched, read = self.plan.watched, self._read
        with self._lock:
            latest = self._latest
            for reading in readings:
                if reading.point not in read:  # the hub carries every point of the site: keep the loops' own
                    continue
                current = latest.get(reading.point)
                if current is not None and reading.ts_ns < current.ts_ns:
                    continue
                latest[reading.point] = reading
                if reading.point in watched and (current is None or _true(current) != _true(reading)):
                    wake = True
        if wake and self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                self._loop.call_soon_threadsafe(self._wake.set)

    def _climate(self, points: Sequence[str], now: float) -> ClimateInput:
        values, problems = [], []
        with self._lock:
            readings = [self._latest.get(point) for point in points]
        for point, reading in zip(points, readings, strict=True):
            if reading is None:
                problems.append(f"{point}: no reading yet")
            elif reading.quality is not Quality.GOOD or not isinstance(reading.value, int | float) \
                    or isinstance(reading.value, bool) or not math.isfinite(reading.value):
                problems.append(f"{point}: {reading.quality.value}" + (f" ({reading.detail})" if reading.detail
                                                                        else ""))
            elif now - reading.ts_ns / 1e9 > self.input_max_age:
                problems.append(f"{point}: last good reading {now - reading.ts_ns / 1e9:.0f} s old")
            else:
                values.append(float(reading.value))
        if not points:
            return ClimateInput(None, "no sensor in the room")
        if not values:
            return ClimateInput(None, "; ".join(problems))
        return ClimateInput(sum(values) / len(values))

    def _active(self, points: Sequence[str]) -> list[str]:
        with self._lock:
            return [point for point in points if (r := self._latest.get(point)) is not None and _true(r)]

    # --- the loop -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._step_lock = asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="control")
        self._command_task = asyncio.create_task(self._commands(), name="control-commands")

    async def stop(self) -> None:
        for task in (self._task, self._command_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._command_task = None
        self._save_all()
        self.journal.close()

    def poke(self) -> None:
        """Step soon (an override or reset just changed what the loops should do); safe from any thread."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        next_step = self.clock.now()
        while True:
            now = self.clock.now()
            if now >= next_step:
                next_step = now + self.interval
            try:
                await self.step()
            except Exception:  # a bug in one step must not end control for good
                log.exception("control step failed")
            wait = min(next_step, self._next_due()) - self.clock.now()
            self._wake.clear()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._real(wait))

    def _real(self, seconds: float) -> float:
        """Clock seconds as wall seconds (a scaled clock runs faster); ManualClock tests call step() directly."""
        factor = getattr(self.clock, "factor", 1.0)
        return max(0.001, seconds / factor)

    def _next_due(self) -> float:
        return self.writer.next_due()

    async def step(self) -> None:
        """Expire overrides, fold in safety states, decide, write, verify: one pass over every room."""
        lock = self._step_lock or asyncio.Lock()
        async with lock:
            now = self.clock.now()
            self._expire(now)
            wanted: list[Desired] = []
            for room, controller in self.rooms.items():
                room_plan = self.plan.rooms[room]
                changes = controller.observe_safety(self._active(room_plan.fire_points),
                                                    self._active(room_plan.leak_points), now)
                for change in changes:
                    self._log(now, "interlock", room, room, None, INTERLOCK, "", change,
                              {"state": controller.interlock.as_dict()})
                    log.warning("%s: %s", room, change)
                self._alarm(interlock_alarm(room), controller.interlock.latched or controller.interlock.leak_latched)
                temperature = self._climate(room_plan.temperature_points, now)
                humidity = self._climate(room_plan.humidity_points, now)
                wanted += controller.step(temperature, humidity, self.overrides, now)
                for loop, status in controller.loops.items():
                    self._input_alarm(room, loop, status.mode == "hold", now)
                if changes:
                    self._save(room)
            wanted.sort(key=lambda d: d.source != INTERLOCK)  # safety first on the wire
            for desired in wanted:
                await self.writer.command(desired, now)
            await self.writer.verify_due(self.clock.now())
            for room in self._dirty:
                self._save(room)
            self._dirty.clear()
            self.journal.save_snapshot(now, self.status())
            self.cycles += 1

    def _dirty_room(self, room: str) -> None:
        self._dirty.add(room)

    def _input_alarm(self, room: str, loop: str, holding: bool, now: float) -> None:
        """A loop without a good reading holds at once, but alarms only after `input_max_age` of it: the first
        poll after a start, or one missed poll, is no fault."""
        key = (room, loop)
        if not holding:
            self._holding_since.pop(key, None)
            self._alarm(input_alarm(room, loop), False)
            return
        since = self._holding_since.setdefault(key, now)
        if now - since >= self.input_max_age:
            self._alarm(input_alarm(room, loop), True)

    def _alarm(self, key: str, active: bool) -> None:
        if self._alarm_state.get(key, False) == active:
            return
        self._alarm_state[key] = active
        if self._alarms is not None:
            try:
                self._alarms(key, active)
            except Exception:
                log.exception("control alarm %s could not be %s", key, "raised" if active else "cleared")

    # --- operators ------------------------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """What an operator may put in manual: every actuator, and every room's loops as `<room>/<loop>`."""
        names = list(self.plan.actuators)
        for room, controller in self.rooms.items():
            names += [loop_target(room, loop) for loop in controller.loops]
        return names

    def set_override(self, target: str, value: float | None, who: str, reason: str, seconds: float) -> Override:
        now = self.clock.now()
        if not reason.strip():
            raise ControlRefused("a manual override needs a reason")
        if not 0 < seconds <= self.max_override:
            raise ControlRefused(f"an override lasts more than 0 s and at most {self.max_override:g} s")
        actuator = self.plan.actuators.get(target)
        if actuator is not None:
            if value is None:
                raise ControlRefused(f"{target} is an actuator: give the value to hold")
            try:
                actuator.encode(value)
            except ValueError as error:
                raise ControlRefused(str(error)) from None
            room = actuator.room
        elif target in self.targets():
            if value is not None:
                raise ControlRefused(f"{target} is a loop: manual holds its units as they are (no value)")
            room = target.split("/", 1)[0]
        else:
            raise KeyError(target)
        override = Override(target, value, who, reason.strip(), now, now + seconds)
        self.journal.save_override(override)
        self._log(now, "override", room, target, value, MANUAL, who, override.reason, {"until": override.until})
        self.overrides = {**self.overrides, target: override}
        self.poke()
        return override

    def clear_override(self, target: str, who: str, reason: str = "") -> Override:
        override = self.overrides.get(target)
        if override is None:
            if target not in self.targets():
                raise KeyError(target)
            raise ControlRefused(f"{target} is not in manual")
        self._end_override(override, self.clock.now(), who, reason or "back to automatic")
        self.poke()
        return override

    def _end_override(self, override: Override, now: float, who: str, reason: str) -> None:
        self.journal.drop_override(override.target)
        room = self.plan.actuators[override.target].room if override.target in self.plan.actuators \
            else override.target.split("/", 1)[0]
        self._log(now, "override_end", room, override.target, override.value, AUTO, who, reason,
                  {"since": override.since, "until": override.until, "set_by": override.who})
        overrides = dict(self.overrides)
        overrides.pop(override.target, None)
        self.overrides = overrides

    def _expire(self, now: float) -> None:
        for override in list(self.overrides.values()):
            if override.until <= now:
                self._end_override(override, now, "system", "override expired: back to automatic")
                log.info("%s: manual override by %s expired", override.target, override.who)

    def reset(self, room: str, who: str, reason: str) -> str:
        controller = self.rooms.get(room)
        if controller is None:
            raise KeyError(room)
        refusal = reset_interlock(controller.interlock)
        if refusal is not None:
            raise ControlRefused(refusal)
        now = self.clock.now()
        self._log(now, "reset", room, room, None, MANUAL, who, reason or "interlock reset",
                  {"state": controller.interlock.as_dict()})
        self._save(room)
        self.poke()
        return f"{room}: interlock reset by {who}; loops resume"

    def apply(self, action: str, target: str, who: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """One operator action by name (the API's and another process's way in); raises ControlRefused/KeyError."""
        reason = str(args.get("reason") or "")
        if action == "override":
            value = args.get("value")
            override = self.set_override(target, None if value is None else float(value), who, reason,
                                         float(args.get("seconds") or 0))
            return {"message": f"{target} in manual until the override expires", "override": override_view(override)}
        if action == "release":
            self.clear_override(target, who, reason)
            return {"message": f"{target} back to automatic"}
        if action == "reset":
            return {"message": self.reset(target, who, reason)}
        raise ControlRefused(f"unknown control action {action!r}")

    async def act(self, action: str, target: str, who: str, args: Mapping[str, Any]) -> dict[str, Any]:
        return self.apply(action, target, who, args)

    def _run_commands(self) -> None:
        """Apply what `stackwatch api` (another process) wrote to the journal's command table."""
        commands = self.journal.commands
        for command in commands.take_pending():
            try:
                result = self.apply(command.action, command.target, command.actor, command.args)
            except KeyError:
                status, answer = "unknown", f"no actuator, loop or room {command.target!r}"
            except ControlRefused as refusal:
                status, answer = "refused", str(refusal)
            except Exception as error:  # a malformed command must not stop the others
                log.exception("control command %d failed", command.id)
                status, answer = "refused", f"could not apply: {error}"
            else:
                status, answer = "done", json.dumps(result)
            commands.finish(command.id, status, answer, self.clock.now())

    async def _commands(self) -> None:
        while True:
            try:
                self._run_commands()
            except Exception:
                log.exception("control command table unreadable")
            await asyncio.sleep(COMMAND_POLL)

    # --- state for the API and a restart ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        rooms = []
        for room, controller in self.rooms.items():
            room_plan = self.plan.rooms[room]
            roles = actuator_roles(room_plan.control)
            rooms.append({
                "room": room,
                "interlock": controller.interlock.as_dict() | {"awaiting_reset": controller.interlock.awaiting_reset},
                "loops": {loop: {"mode": s.mode, "target": s.target, "band": list(s.band) if s.band else None,
                                 "period": s.period, "measured": s.measured, "problem": s.problem,
                                 "override": override_view(self.overrides.get(loop_target(room, loop)))}
                          for loop, s in controller.loops.items()},
                "actuators": [{"id": name, "kind": self.plan.actuators[name].spec.kind,
                               "role": roles.get(name, ""),
                               "min": self.plan.actuators[name].spec.min,
                               "max": self.plan.actuators[name].spec.max,
                               "modes": self.plan.actuators[name].spec.modes,
                               "device": self.plan.actuators[name].device,
                               **self.tracks[name].as_dict(),
                               "on_since": _finite(controller.units[name].since) if name in controller.units
                               else None,
                               "starts": controller.units[name].starts if name in controller.units else None,
                               "override": override_view(self.overrides.get(name))}
                              for name in room_plan.control.actuators()],
            })
        return {"now": now, "interval": self.interval, "rooms": rooms}

    def _save(self, room: str) -> None:
        controller = self.rooms[room]
        self.journal.save_room(room, {
            "interlock": controller.interlock.as_dict(),
            "units": {name: {"on": unit.on, "since": _finite(unit.since), "starts": unit.starts}
                      for name, unit in controller.units.items()},
            "setpoint": {"value": controller.setpoint.value, "stepped_at": _finite(controller.setpoint.stepped_at),
                         "trim": controller.setpoint.trim},
            "commanded": {name: self.tracks[name].commanded for name in controller.plan.control.actuators()},
        })

    def _save_all(self) -> None:
        for room in self.rooms:
            self._save(room)

    def _restore(self) -> None:
        for room, data in self.journal.rooms().items():
            controller = self.rooms.get(room)
            if controller is None:
                continue
            controller.interlock = InterlockState.from_dict(data.get("interlock", {}))
            for name, unit in data.get("units", {}).items():
                if name in controller.units:
                    since = unit.get("since")
                    controller.units[name] = UnitState(unit.get("on"), -math.inf if since is None else since,
                                                       int(unit.get("starts", 0)))
            setpoint = data.get("setpoint", {})
            stepped = setpoint.get("stepped_at")
            controller.setpoint = SetpointState(setpoint.get("value"), -math.inf if stepped is None else stepped,
                                                float(setpoint.get("trim", 0.0)))
            # What was commanded before the restart is unproven now: the first step writes it again and reads back.

    def _log(self, ts: float, kind: str, room: str, target: str, value: float | None, source: str, who: str,
             reason: str, detail: dict[str, Any] | None = None) -> None:
        row = self.journal.log(ts, kind, room, target, value, source, who, reason, detail)
        if self._events is None:
            return
        fields: dict[str, float | int | bool | str] = {"message": reason or kind, "seq": row,
                                                       "title": f"{target}: {kind}" + (
                                                           f" {value:g}" if value is not None else "")}
        if value is not None and math.isfinite(value):
            fields["value"] = float(value)
        if who:
            fields["actor"] = who
        tags = {"site": self._site, "building": self._buildings.get(room, ""), "room": room, "alarm": target,
                "cause": "control", "priority": "control", "kind": kind}
        try:
            self._events([encode_line("events", tags, fields, int(ts) * 1_000_000_000
                                      + round((ts % 1) * 1e6) * 1000 + row % 1000)])
        except Exception:  # the journal holds it; the chart annotation is a convenience
            log.exception("control event %d not written to InfluxDB", row)


def actuator_roles(control: RoomControl) -> dict[str, str]:
    """What each actuator is to the room (the first role wins when one serves two, e.g. a CRAC's run command)."""
    roles: dict[str, str] = {}
    if control.humidity is not None:
        roles.update({name: "dehumidifier" for name in control.humidity.dehumidifiers})
        roles.update({name: "humidifier" for name in control.humidity.humidifiers})
    if control.temperature is not None:
        roles.setdefault(control.temperature.setpoint, "temperature_setpoint")
        if control.temperature.run is not None:
            roles.setdefault(control.temperature.run, "air_handling")
    for role, names in (("air_handling", control.interlocks.air_handling), ("damper", control.interlocks.dampers),
                        ("leak_valve", control.interlocks.leak_valves)):
        for name in names:
            roles.setdefault(name, role)
    return roles


def _true(reading: Reading) -> bool:
    """A safety state reads true only from a good reading: a comm failure is not a fire (the alarms say so)."""
    return reading.quality is Quality.GOOD and bool(reading.value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def override_view(override: Override | None) -> dict[str, Any] | None:
    """An override as the API shows it (None: automatic)."""
    return None if override is None else override.as_dict()
