"""Control benchmark: a simulated month per room, stackwatch's loops against a plain humidistat.

    .venv/bin/python bench/control.py [--days 30] [--cycle 60]

Each room runs twice on the same weather and the same sensor noise, in the
simulators' closed-loop physics (simulators/climate.py), with the CRAC held at
the room's temperature target:
- **stackwatch**: the room's control loop exactly as the service runs it
  (control/controller.py: hysteresis, 10-minute minimum run and rest times);
- **baseline**: a thermostat-style humidistat on each unit, checked every
  cycle: the dehumidifier runs while RH > target, the humidifier while
  RH < target − 3 % (the same switch-on point as stackwatch's), no hysteresis,
  no minimum times.
Figures per room: share of minutes with the room's RH inside target ± band,
the worst calendar day's RH range (the daily-fluctuation rule), unit starts
and unit-hours (an energy proxy). The target: in-band share at least the
baseline's with at least 30 % fewer starts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from control.controller import ClimateInput, RoomController  # noqa: E402
from control.plan import ControlPlan  # noqa: E402
from simulators.climate import PRESETS, ClimatePhysics, Weather  # noqa: E402
from stackwatch.catalog import PointCatalog  # noqa: E402
from stackwatch.config import parse_config  # noqa: E402

START = 1_780_272_000.0  # 2026-06-01T00:00:00Z
DRY_WINTER = Weather("dry-winter", t_mean=4.0, t_swing=4.0, rh_mean=45.0, rh_swing=15.0)
WEATHER = {  # a month of weather per room: weeks of each preset in turn
    "humid": [PRESETS["humid-week"]],
    "changeable": [PRESETS["humid-week"], PRESETS["temperate"], DRY_WINTER, PRESETS["temperate"]],
    "dry": [DRY_WINTER, PRESETS["temperate"]],
}
ROOMS = [  # room, profile, RH target, band, temperature target and band, weather
    ("paper-basement", "paper", 50.0, 5.0, 18.0, 2.0, "humid"),
    ("special", "special", 50.0, 5.0, 17.0, 2.0, "changeable"),
    ("film-master", "film-master", 40.0, 5.0, 14.0, 1.0, "humid"),
    ("tapes", "magnetic", 50.0, 5.0, 18.0, 2.0, "dry"),
]
SITE = """
site: {{id: bench, timezone: UTC}}
buildings: [{{id: b}}]
rooms: [{{id: {room}, building: b, profile: {profile}}}]
gateways: [{{type: modbus-tcp, id: g, host: 127.0.0.1}}]
devices:
  - {{id: th, protocol: modbus, model: xy-md02, gateway: g, unit: 1, room: {room}}}
  - {{id: io, protocol: modbus, model: adam-6060, gateway: g, unit: 2, room: {room},
      model_options: {{relay0: dehumidifier, relay1: humidifier}}}}
  - {{id: crac, protocol: modbus, model: hvac-controller, gateway: g, unit: 3, room: {room}}}
control:
  rooms:
    - room: {room}
      humidity: {{target: {rh}, band: {band}, hysteresis: 3, dehumidifiers: [io.relay0], humidifiers: [io.relay1],
                 min_on: 10m, min_off: 10m}}
      temperature: {{target: {t}, band: {t_band}, setpoint: crac.setpoint, run: crac.run}}
"""
LOAD = {"io.relay0": "dehumidifier", "io.relay1": "humidifier"}


@dataclass
class Result:
    in_band: float
    worst_day_range: float
    starts: int
    unit_hours: float


def run(room: str, profile: str, rh_target: float, band: float, t_target: float, t_band: float, weather: str,
        strategy: str, days: int, cycle: float) -> Result:
    config = parse_config(SITE.format(room=room, profile=profile, rh=rh_target, band=band, t=t_target,
                                      t_band=t_band), "bench")
    plan = ControlPlan.from_config(config, PointCatalog.from_config(config))
    controller = RoomController(plan.rooms[room], plan.actuators, "UTC")
    weeks = WEATHER[weather]
    physics = ClimatePhysics(room, temperature=t_target, humidity=rh_target, weather=weeks[0], start=START)
    physics.set_hvac(True, t_target, START)
    noise = random.Random(7)  # the same sensor noise for both strategies
    inside = total = 0
    per_day: dict[int, list[float]] = defaultdict(list)
    now = START
    for step in range(int(days * 86400 / cycle)):
        now = START + (step + 1) * cycle
        week = int((now - START) // (7 * 86400))
        if physics.weather is not weeks[week % len(weeks)]:
            physics.set_weather(weeks[week % len(weeks)], now)
        physics.advance(now)
        rh_true = physics.humidity
        total += 1
        inside += abs(rh_true - rh_target) <= band
        per_day[int((now - START) // 86400)].append(rh_true)
        rh = round(rh_true + noise.gauss(0.0, 0.15), 1)  # an RH sensor's resolution and noise
        temperature = round(physics.temperature + noise.gauss(0.0, 0.05), 1)
        if strategy == "stackwatch":
            for desired in controller.step(ClimateInput(temperature), ClimateInput(rh), {}, now):
                if desired.actuator in LOAD:
                    physics.set_load(LOAD[desired.actuator], bool(desired.value), now, desired.actuator)
                elif desired.actuator == "crac.setpoint":
                    physics.set_hvac(True, desired.value, now)
        else:
            physics.set_load("dehumidifier", rh > rh_target, now, "io.relay0")
            physics.set_load("humidifier", rh < rh_target - 3.0, now, "io.relay1")
    worst = max(max(values) - min(values) for values in per_day.values())
    return Result(inside / total, worst, physics.starts["dehumidifier"] + physics.starts["humidifier"],
                  physics.run_hours["dehumidifier"] + physics.run_hours["humidifier"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cycle", type=float, default=60.0, help="control cycle, s (the baseline checks as often)")
    args = parser.parse_args()
    print(f"{args.days} simulated days per room, {args.cycle:g} s cycle, dehumidifier + humidifier per room")
    print(f"{'room':16} {'weather':10} {'strategy':10} {'in band':>8} {'worst day':>10} {'starts':>7} "
          f"{'unit-h':>7}")
    ok = True
    started = time.perf_counter()
    for room, profile, rh, band, t, t_band, weather in ROOMS:
        results = {strategy: run(room, profile, rh, band, t, t_band, weather, strategy, args.days, args.cycle)
                   for strategy in ("baseline", "stackwatch")}
        for strategy, result in results.items():
            print(f"{room:16} {weather:10} {strategy:10} {result.in_band:8.2%} {result.worst_day_range:8.1f} % "
                  f"{result.starts:7d} {result.unit_hours:7.0f}")
        ours, base = results["stackwatch"], results["baseline"]
        fewer = 1 - ours.starts / base.starts if base.starts else 0.0
        verdict = ours.in_band >= base.in_band - 1e-9 and fewer >= 0.30
        ok = ok and verdict
        print(f"{'':16} {'':10} {'→':10} starts {fewer:.1%} fewer, in band {ours.in_band - base.in_band:+.2%}: "
              f"{'meets' if verdict else 'MISSES'} the target")
    print(f"wall time {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
