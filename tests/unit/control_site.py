"""A small controlled site for the control tests: one paper room, a relay module and a CRAC controller."""

from __future__ import annotations

from control.plan import ControlPlan
from stackwatch.catalog import PointCatalog
from stackwatch.config import parse_config
from stackwatch.config.model import SiteConfig

SITE = """
site: {id: s, timezone: UTC}
buildings: [{id: a}]
rooms:
  - {id: r1, building: a, profile: paper}
gateways:
  - {type: modbus-tcp, id: g1, host: 127.0.0.1}
devices:
  - id: th1
    protocol: modbus
    gateway: g1
    unit: 1
    room: r1
    points:
      - {id: temperature, table: input, address: 1, type: int16, scale: 0.1}
      - {id: humidity, table: input, address: 2, scale: 0.1}
  - id: fire1
    protocol: modbus
    gateway: g1
    unit: 2
    room: r1
    points:
      - {id: zone1, quantity: fire, table: discrete, address: 0}
      - {id: leak1, quantity: water_leak, table: discrete, address: 1}
  - id: io1
    protocol: modbus
    gateway: g1
    unit: 3
    room: r1
    points:
      - {id: di0, quantity: digital_input, table: discrete, address: 0}
      - {id: relay0, quantity: relay, table: coil, address: 16}
    actuators:
      - {id: dh, kind: switch, table: coil, address: 16, readback: di0}
      - {id: hum, kind: switch, table: coil, address: 17}
      - {id: damper, kind: switch, table: coil, address: 18}
      - {id: valve, kind: switch, table: coil, address: 19}
  - id: crac1
    protocol: modbus
    gateway: g1
    unit: 4
    room: r1
    points:
      - {id: setpoint_active, table: input, address: 3, type: int16, scale: 0.1}
    actuators:
      - {id: run, kind: switch, table: holding, address: 0}
      - {id: setpoint, kind: setpoint, table: holding, address: 1, type: int16, scale: 0.1, min: 14, max: 24,
         readback: setpoint_active, tolerance: 0.1}
control:
  interval: 30s
  rooms:
    - room: r1
      humidity: {target: 50, band: 5, hysteresis: 3, dehumidifiers: [io1.dh], humidifiers: [io1.hum],
                 min_on: 10m, min_off: 10m}
      temperature: {target: 18, setpoint: crac1.setpoint, run: crac1.run, max_step: 0.5, step_interval: 15m,
                    periods: [{name: night, from: "20:00", to: "06:00", target: 17}]}
      interlocks: {air_handling: [crac1.run], dampers: [io1.damper], leak_valves: [io1.valve]}
"""


def site(text: str = SITE) -> SiteConfig:
    return parse_config(text, "site.yaml")


def plan(config: SiteConfig | None = None) -> ControlPlan:
    config = config or site()
    return ControlPlan.from_config(config, PointCatalog.from_config(config))
