"""Scenarios: the situations the monitoring exists for, played on the simulators' clock.

A scenario is switched by a control command, e.g.
`{"scenario": "hvac-failure", "room": "main-1-paper", "on": true}`, sent on
the control topic or listed in a script at a simulated time. Climate scenarios
become effects of the room model, computed from the sim clock and the instants
they were switched, so every device in the room (and a test) sees the same
value at the same instant, and a fast clock (`--speed`) plays an afternoon's
HVAC failure in minutes. Event scenarios switch the room events the devices
already show; `gateway-down` silences every Modbus device behind one gateway.
`humid-week` changes the outdoor weather of a room with physics (one with
actuators, simulators/climate.py) to a plum-rain week; the room's own
physics then carries the damp in, as fast as its envelope and its
dehumidifiers let it. A unit that ignores its commands is a device fault
(`{"device": ..., "fault": "ignore-commands"}`, simulators/modbus/faults.py).

Never imports service code: what a scenario does is what the hardware would do.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .climate import DEFAULT_WEATHER, weather_preset
from .room import RoomModel

HVAC_FAILURE = "hvac-failure"
HUMID_WEEK = "humid-week"
FLAPPING_HUMIDITY = "flapping-humidity"
GATEWAY_DOWN = "gateway-down"
ROOM_EVENTS = {"fire-in-room": "fire", "water-leak": "water_leak", "door-forced": "door_open"}


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario acts on, the parameters a command may override (with defaults), and those it must give."""

    target: str  # the command key naming what it acts on: "room" or "gateway"
    params: Mapping[str, float]
    help: str
    required: frozenset[str] = frozenset()


SCENARIOS: dict[str, ScenarioSpec] = {
    HVAC_FAILURE: ScenarioSpec(
        "room", {"rh_rate": 20.0, "rh_peak": 25.0, "t_rate": 2.0, "t_peak": 5.0},
        "air handling stops: RH climbs rh_rate %/h to +rh_peak, T t_rate K/h to +t_peak; off ramps back"),
    FLAPPING_HUMIDITY: ScenarioSpec(
        "room", {"around": 0.0, "amplitude": 1.0, "period": 20.0, "noise": 0.1},
        "RH hovers across `around`: triangle ± amplitude, period in sim s, ± noise; off: normal again",
        required=frozenset({"around"})),
    "fire-in-room": ScenarioSpec("room", {}, "the room's fire event: fire panel zone in fire, smoke detector smoke"),
    "water-leak": ScenarioSpec("room", {}, "the room's water_leak event"),
    "door-forced": ScenarioSpec("room", {}, "the room's door opens (door_open event)"),
    GATEWAY_DOWN: ScenarioSpec("gateway", {}, "every Modbus device behind the gateway times out; off answers again"),
    HUMID_WEEK: ScenarioSpec(
        "room", {}, "outdoors turns to a plum-rain week (26–31 °C, 80–95 %RH) for a room with actuators (physics); "
        "off: temperate weather again"),
}
_COMMAND_KEYS = frozenset({"scenario", "on"})


def describe() -> str:
    """One entry per scenario, for `--help`: the command, what it does, its parameters."""
    lines = []
    for name, spec in SCENARIOS.items():
        lines.append(f'  {{"scenario": "{name}", "{spec.target}": ID, "on": true|false}}')
        lines.append(f"      {spec.help}")
        if spec.params:
            lines.append("      keys: " + ", ".join(key if key in spec.required else f"{key} (default {default:g})"
                                                    for key, default in spec.params.items()))
    return "\n".join(lines)


# ---- commands ----


@dataclass(frozen=True)
class ScenarioCommand:
    name: str
    target: str  # the room or gateway id
    on: bool
    params: dict[str, float]  # only those the command gave; defaults are applied when switching


def parse_command(command: Mapping[str, Any]) -> ScenarioCommand:
    """Check a scenario command completely before anything is switched, so a refused command changes nothing."""
    name = str(command.get("scenario"))
    spec = SCENARIOS.get(name)
    if spec is None:
        raise ValueError(f"unknown scenario {command.get('scenario')!r}; known: {', '.join(SCENARIOS)}")
    target = command.get(spec.target)
    if not isinstance(target, str) or not target:
        raise ValueError(f"scenario {name} needs a {spec.target!r} id")
    unknown = set(command) - _COMMAND_KEYS - {spec.target} - set(spec.params)
    if unknown:
        known = ", ".join(spec.params) or "none"
        raise ValueError(f"scenario {name}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; parameters: {known}")
    on = switch_flag(command)
    missing = spec.required - set(command) if on else set()
    if missing:
        raise ValueError(f"scenario {name} needs {', '.join(sorted(missing))}")
    params = {key: _number(name, key, command[key]) for key in spec.params if key in command}
    return ScenarioCommand(name, target, on, params)


def switch_flag(command: Mapping[str, Any]) -> bool:
    """`on` defaults to true; a string such as "false" is refused rather than read as true."""
    on = command.get("on", True)
    if isinstance(on, bool):
        return on
    if isinstance(on, int) and on in (0, 1):
        return bool(on)
    raise ValueError(f"`on` is true or false, not {on!r}")


def _number(scenario: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"scenario {scenario}: {key} is a number, not {value!r}")
    return float(value)


# ---- climate effects ----


@dataclass(frozen=True)
class Ramp:
    """A drift from `start` toward `target` at `rate` per hour, begun at `since`; it stays at the target."""

    rate: float
    target: float
    since: float
    start: float = 0.0

    def level(self, now: float) -> float:
        step = self.rate * max(0.0, now - self.since) / 3600.0
        if self.start <= self.target:
            return min(self.target, self.start + step)
        return max(self.target, self.start - step)


@dataclass(frozen=True)
class HvacFailure:
    """Heat and damp building up while the air handling is off, or draining away after it is back."""

    on: bool
    temperature: Ramp
    humidity_rise: Ramp

    def offsets(self, now: float) -> tuple[float, float]:
        return self.temperature.level(now), self.humidity_rise.level(now)

    def humidity(self, now: float) -> float | None:
        return None


@dataclass(frozen=True)
class FlappingHumidity:
    """RH hovering at a level, as a sensor does at a limit: it crosses the level twice in every period."""

    around: float
    amplitude: float
    period: float
    noise: float
    since: float

    def offsets(self, now: float) -> tuple[float, float]:
        return 0.0, 0.0

    def humidity(self, now: float) -> float | None:
        phase = ((now - self.since) / self.period) % 1.0
        wave = 1.0 - abs(4.0 * ((phase + 0.25) % 1.0) - 2.0)  # 0 at the start, +1 at a quarter, -1 at 3/4
        jitter = self.noise * (0.6 * math.sin(now * 1.7) + 0.4 * math.sin(now * 4.3 + 1.0))  # |jitter| <= noise
        return self.around + self.amplitude * wave + jitter


def switch_room_scenario(room: RoomModel, command: ScenarioCommand, now: float) -> str:
    """Switch a room scenario at sim time `now`; returns what was done, for the log."""
    if command.name in ROOM_EVENTS:
        room.set_event(ROOM_EVENTS[command.name], command.on, now)
        return f"room {room.room_id}: {command.name} {'on' if command.on else 'off'}"
    if command.name == HVAC_FAILURE:
        return _switch_hvac(room, command, now)
    if command.name == FLAPPING_HUMIDITY:
        return _switch_flapping(room, command, now)
    if command.name == HUMID_WEEK:
        return _switch_weather(room, command, now)
    raise ValueError(f"scenario {command.name} does not act on a room")


def _switch_hvac(room: RoomModel, command: ScenarioCommand, now: float) -> str:
    """Both ways start from the drift reached so far, so switching never makes the room jump."""
    previous = room.effect(HVAC_FAILURE, now)
    previous = previous if isinstance(previous, HvacFailure) else None
    t_now, rh_now = previous.offsets(now) if previous else (0.0, 0.0)
    if not command.on and t_now == rh_now == 0.0:
        if previous is not None:
            room.set_effect(HVAC_FAILURE, None, now)
        return f"room {room.room_id}: {HVAC_FAILURE} off (nothing to recover from)"
    defaults = SCENARIOS[HVAC_FAILURE].params
    if previous is not None and not command.on:  # recovery keeps the rates it failed at unless told otherwise
        defaults = {**defaults, "t_rate": previous.temperature.rate, "rh_rate": previous.humidity_rise.rate}
    p = {**defaults, **command.params}
    if p["t_rate"] <= 0 or p["rh_rate"] <= 0:
        raise ValueError(f"{HVAC_FAILURE}: t_rate and rh_rate are positive (per hour)")
    t_target, rh_target = (p["t_peak"], p["rh_peak"]) if command.on else (0.0, 0.0)
    room.set_effect(HVAC_FAILURE, HvacFailure(command.on, Ramp(p["t_rate"], t_target, now, t_now),
                                              Ramp(p["rh_rate"], rh_target, now, rh_now)), now)
    return (f"room {room.room_id}: {HVAC_FAILURE} {'on' if command.on else 'off'} at {now:.0f}: "
            f"T {t_now:+.2f} → {t_target:+g} K at {p['t_rate']:g} K/h, "
            f"RH {rh_now:+.2f} → {rh_target:+g} % at {p['rh_rate']:g} %/h")


def _switch_flapping(room: RoomModel, command: ScenarioCommand, now: float) -> str:
    if not command.on:
        room.set_effect(FLAPPING_HUMIDITY, None, now)
        return f"room {room.room_id}: {FLAPPING_HUMIDITY} off"
    p = {**SCENARIOS[FLAPPING_HUMIDITY].params, **command.params}
    if p["period"] <= 0 or p["amplitude"] < 0 or p["noise"] < 0:
        raise ValueError(f"{FLAPPING_HUMIDITY}: period is positive, amplitude and noise not negative")
    if not 0.0 <= p["around"] <= 100.0:
        raise ValueError(f"{FLAPPING_HUMIDITY}: around is an RH, 0..100")
    effect = FlappingHumidity(p["around"], p["amplitude"], p["period"], p["noise"], now)
    room.set_effect(FLAPPING_HUMIDITY, effect, now)
    return (f"room {room.room_id}: {FLAPPING_HUMIDITY} on at {now:.0f}: RH {p['around']:g} ± {p['amplitude']:g} "
            f"every {p['period']:g} s")


def _switch_weather(room: RoomModel, command: ScenarioCommand, now: float) -> str:
    """The weather keeps the room's zone (its warmest hour); the physics carries the change in from `now`."""
    if room.physics is None:
        raise ValueError(f"scenario {HUMID_WEEK}: room {room.room_id} has no physics (no actuator devices); "
                         "its climate does not answer to the weather")
    warmest = room.physics.weather.warmest_hour
    weather = weather_preset(HUMID_WEEK if command.on else DEFAULT_WEATHER)
    room.physics.set_weather(replace(weather, warmest_hour=warmest), now)
    return f"room {room.room_id}: weather {weather.name} from {now:.0f}"


# ---- scripts ----


@dataclass(frozen=True)
class Step:
    at: float  # sim seconds after the script starts
    command: dict[str, Any]


def parse_script(data: Any) -> list[Step]:
    """Check every step up front: a typo should stop the run at once, not an hour of sim time into it."""
    if not isinstance(data, list):
        raise ValueError("a script is a list of steps {at: <sim seconds after start>, ...command...}")
    steps = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or "at" not in item:
            raise ValueError(f"script step {number}: a mapping with `at` and a command, not {item!r}")
        at = item["at"]
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < math.inf:
            raise ValueError(f"script step {number}: `at` is sim seconds after start (>= 0), not {at!r}")
        command = {key: value for key, value in item.items() if key != "at"}
        if "scenario" in command:
            try:
                parse_command(command)
            except ValueError as error:
                raise ValueError(f"script step {number}: {error}") from None
        elif not {"device", "room"} & set(command):
            raise ValueError(f"script step {number}: the command names a `scenario`, `device` or `room`")
        steps.append(Step(float(at), command))
    return sorted(steps, key=lambda step: step.at)  # stable: steps at the same time keep their order


class _ScriptLoader(yaml.SafeLoader):
    """YAML with only true/false as booleans (as YAML 1.2): YAML 1.1 reads the key `on:` as True."""


_BOOL = "tag:yaml.org,2002:bool"
_ScriptLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScriptLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_script(path: str | Path) -> list[Step]:
    """A YAML or JSON file (JSON being YAML) holding the list of steps."""
    return parse_script(yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ScriptLoader))  # a SafeLoader


Control = Callable[[dict[str, Any]], str]


class ScriptPlayer:
    """Applies a script's steps once the sim clock has passed their times; call `play` as often as convenient."""

    def __init__(self, steps: Iterable[Step], control: Control, start: float) -> None:
        self.start = start
        self.control = control
        self.pending = deque(sorted(steps, key=lambda step: step.at))

    @property
    def finished(self) -> bool:
        return not self.pending

    def next_due(self) -> float | None:
        """The sim time of the next step, or None when all are played."""
        return self.start + self.pending[0].at if self.pending else None

    def play(self, now: float) -> list[str]:
        """Apply every step due by `now`, in order; returns what each did."""
        done = []
        while self.pending and self.start + self.pending[0].at <= now:
            done.append(self.control(self.pending.popleft().command))
        return done


async def run_script(steps: Iterable[Step], control: Control, now: Callable[[], float], *, speed: float = 1.0,
                     start: float | None = None,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> list[str]:
    """Play a script on the sim clock `now` (running `speed` times real time) from `start` (default: now)."""
    player = ScriptPlayer(steps, control, now() if start is None else start)
    done: list[str] = []
    while True:
        done += player.play(now())
        due = player.next_due()
        if due is None:
            return done
        wait = due - now()
        if wait > 0:
            await sleep(wait / speed)
