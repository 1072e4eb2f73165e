"""`stackwatch-sim --config site.yaml [--script SCRIPT]`: simulated hardware for every device with a `model:`.

Modbus TCP gateways listen where the site file says the collector will find
them; an RTU gateway's serial port is created as one end of a pseudo-terminal
pair (`<port>` for the collector, `<port>.sim` for the simulator). MQTT
devices publish to the site's broker.

Faults, room events and scenarios are switched at run time by publishing JSON
to `stackwatch-sim/<site>/control` (a refused command is logged and ignored):
    {"device": "th-b1", "fault": "timeout"}
        Modbus faults: none, timeout, slow, exception:<code>, sentinel, garbage;
        actuators (adam-6060, hvac-controller) also ignore-commands[:relay] (writes read back, the unit
        does not follow) and tripped (the unit stops, with its fault bit)
    {"device": "z2m-th-a101", "fault": "malformed", "on": true}
        MQTT faults: malformed, oversized, offline, duplicate, out-of-order
    {"room": "main-1-paper", "event": "water_leak", "on": true}
        events: fire, pre_alarm, trouble, smoke, water_leak, door_open, motion
    {"room": "main-1-paper", "t_offset": 4, "rh_offset": 15}
        moves the room's climate
    {"scenario": "hvac-failure", "room": "main-1-paper", "on": true}
        RH climbs rh_rate (20) %/h to +rh_peak (25), T t_rate (2) K/h to +t_peak (5); off ramps back
    {"scenario": "flapping-humidity", "room": "main-1-paper", "around": 60, "amplitude": 1, "period": 20}
        RH hovers across `around` (triangle, period in sim seconds, ± noise 0.1); off returns to normal
    {"scenario": "fire-in-room" | "water-leak" | "door-forced", "room": "main-1-paper", "on": true}
        the room's fire / water_leak / door_open event
    {"scenario": "gateway-down", "gateway": "gw-main", "on": true}
        every Modbus device behind the gateway times out; off answers again
    {"scenario": "humid-week", "room": "main-1-paper", "on": true}
        a room with actuators (physics) gets a plum-rain week outdoors; off: temperate again
Scenario parameters (rh_rate, rh_peak, t_rate, t_peak; around, amplitude,
period, noise) are optional keys of the command; "on" defaults to true.

`--script FILE` plays a YAML or JSON list of commands at simulated times
(seconds after start, on the `--speed` clock), e.g.
    - {at: 0, scenario: hvac-failure, room: main-1-paper}
    - {at: 3600, scenario: hvac-failure, room: main-1-paper, on: false}
    - {at: 4000, device: th-b1, fault: timeout}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from .modbus_sim import ModbusGatewaySim, SerialPair, make_device
from .mqtt_sim import MqttDeviceSim, MqttSim
from .room import RoomModel
from .scenarios import (
    GATEWAY_DOWN,
    SCENARIOS,
    Step,
    describe,
    load_script,
    parse_command,
    run_script,
    switch_flag,
    switch_room_scenario,
)
from .site import SimGatewaySpec, SimSite, read_site

log = logging.getLogger("simulators")


class SimulatedSite:
    """Every simulated gateway and publisher of one site, and the control channel that switches their faults."""

    def __init__(self, site: SimSite, now: Callable[[], float], mqtt_interval: float = 10.0,
                 line_time: float = 0.0) -> None:
        self.site = site
        self.line_time = line_time
        self.now = now
        self.mqtt_interval = mqtt_interval
        self.gateways: dict[str, ModbusGatewaySim] = {}
        self.pairs: list[SerialPair] = []
        self.mqtt: MqttSim | None = None
        self.mqtt_devices: dict[str, MqttDeviceSim] = {}
        self._modbus_units: dict[str, tuple[str, int]] = {}
        self._control: paho.Client | None = None

    def prepare(self) -> None:
        """Build every gateway's devices without opening a port, so commands can be tried without a network."""
        self.site.attach_physics()  # rooms with actuators answer to them (simulators/climate.py)
        for gateway in self.site.gateways:
            specs = self.site.devices_on(gateway.id)
            if not specs or gateway.id in self.gateways:
                continue
            devices = [
                make_device(s.model, s.unit, self.site.rooms[s.room], self.now, s.options, self.site.rooms)
                for s in specs
            ]
            self.gateways[gateway.id] = ModbusGatewaySim(devices, missing_unit="silent", line_time=self.line_time)
            for spec in specs:
                self._modbus_units[spec.id] = (gateway.id, spec.unit)

    async def start(self) -> None:
        self.prepare()
        for gateway in self.site.gateways:
            if gateway.id in self.gateways:
                await self._serve_gateway(gateway, self.gateways[gateway.id])
        if self.site.mqtt_host is not None:
            self.mqtt = MqttSim(
                self.site.mqtt_host,
                self.site.mqtt_port,
                interval=self.mqtt_interval,
                now=self.now,
                client_id=f"stackwatch-sim-{self.site.site_id}",
            )
            for spec in self.site.mqtt_devices:
                options = dict(spec.options)
                if spec.model == "tasmota-sensor":  # a Tasmota is set to local time: the site's zone
                    options.setdefault("timezone", self.site.timezone)
                device = MqttDeviceSim(spec.model, spec.topic or spec.id, self.site.rooms[spec.room], self.now, options)
                self.mqtt.add(device)
                self.mqtt_devices[spec.id] = device
            if self.mqtt_devices:
                self.mqtt.connect()
                self.mqtt.start()
                log.info("publishing %d MQTT devices every %.0f s", len(self.mqtt_devices), self.mqtt_interval)
            self._start_control()

    async def _serve_gateway(self, gateway: SimGatewaySpec, sim: ModbusGatewaySim) -> None:
        if gateway.type == "modbus-rtu":
            link = Path(gateway.serial_port)
            link.parent.mkdir(parents=True, exist_ok=True)
            pair = SerialPair(link, Path(f"{link}.sim")).start()
            self.pairs.append(pair)
            await sim.start_rtu(
                f"{link}.sim",
                baudrate=gateway.baudrate,
                parity=gateway.parity,
                stopbits=gateway.stopbits,
                bytesize=gateway.bytesize,
            )
        else:
            await sim.start_tcp(gateway.host, gateway.port, framer="rtu" if gateway.framer == "rtu" else "socket")
        log.info("gateway %s (%s) simulating %d devices", gateway.id, gateway.type, len(sim.devices))

    def control(self, command: dict[str, Any]) -> str:
        """Apply one control command; returns what was done (for the log and for tests).

        Raises ValueError for a command that cannot be applied; it then has changed nothing.
        """
        if not isinstance(command, dict):
            raise ValueError(f"a command is a JSON object, not {command!r}")
        if "scenario" in command:
            return self._scenario(command)
        if "device" in command:
            return self._device_fault(command)
        if "room" in command:
            return self._room_command(command)
        raise ValueError("a command names a `scenario`, a `device` or a `room`")

    def control_logged(self, command: dict[str, Any], source: str = "control") -> str:
        """`control` for commands from outside (topic, script): a bad one is logged and ignored, not fatal."""
        try:
            done = self.control(command)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("%s command refused: %s (%r)", source, error, command)
            return f"refused: {error}"
        log.info("%s: %s", source, done)
        return done

    def _device_fault(self, command: dict[str, Any]) -> str:
        device_id = str(command["device"])
        fault = str(command.get("fault", "none"))
        if device_id in self._modbus_units:
            gateway, unit = self._modbus_units[device_id]
            self.gateways[gateway].set_fault(unit, fault)
            return f"{device_id}: fault {fault}"
        if device_id in self.mqtt_devices:
            on = switch_flag(command)
            self.mqtt_devices[device_id].set_fault(fault, on)
            return f"{device_id}: fault {fault} {'on' if on else 'off'}"
        raise ValueError(f"no simulated device {device_id!r}")

    def _room_command(self, command: dict[str, Any]) -> str:
        room = self._room(str(command["room"]))
        offsets = {key: _number(key, command[key]) for key in ("t_offset", "rh_offset") if key in command}
        if "event" in command:
            # refuses an unknown event before setting
            room.set_event(str(command["event"]), switch_flag(command), self.now())
        room.t_offset = offsets.get("t_offset", room.t_offset)
        room.rh_offset = offsets.get("rh_offset", room.rh_offset)
        return f"room {room.room_id}: {command}"

    def _room(self, room_id: str) -> RoomModel:
        if room_id not in self.site.rooms:
            raise ValueError(f"no room {room_id!r} in site {self.site.site_id}; rooms: {', '.join(self.site.rooms)}")
        return self.site.rooms[room_id]

    def _scenario(self, command: dict[str, Any]) -> str:
        """Scenarios are switched at the sim clock's instant, which their effects are computed from."""
        scenario = parse_command(command)
        if scenario.name == GATEWAY_DOWN:
            return self._gateway_down(scenario.target, scenario.on)
        return switch_room_scenario(self._room(scenario.target), scenario, self.now())

    def _gateway_down(self, gateway_id: str, down: bool) -> str:
        if gateway_id not in self.gateways:
            known = ", ".join(self.gateways) or "none"
            if any(g.id == gateway_id for g in self.site.gateways):
                raise ValueError(f"gateway {gateway_id!r} has no simulated devices (gateways simulated: {known})")
            raise ValueError(f"no gateway {gateway_id!r} in site {self.site.site_id} (gateways simulated: {known})")
        sim = self.gateways[gateway_id]
        for unit in sim.devices:
            sim.set_fault(unit, "timeout" if down else "none")
        return f"gateway {gateway_id}: {'down' if down else 'up'} (units {', '.join(map(str, sorted(sim.devices)))})"

    def _start_control(self) -> None:
        topic = f"stackwatch-sim/{self.site.site_id}/control"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"stackwatch-sim-control-{self.site.site_id}")

        def on_connect(c: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
            c.subscribe(topic, qos=1)

        def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
            try:
                command = json.loads(message.payload)
            except ValueError as error:
                log.warning("control message refused: %s (%r)", error, message.payload[:200])
                return
            self.control_logged(command)

        client.on_connect = on_connect
        client.on_message = on_message
        assert self.site.mqtt_host is not None
        client.connect(self.site.mqtt_host, self.site.mqtt_port)
        client.loop_start()
        self._control = client

    async def stop(self) -> None:
        if self._control is not None:
            self._control.disconnect()
            self._control.loop_stop()
        if self.mqtt is not None and self.mqtt_devices:
            self.mqtt.close()
        for sim in self.gateways.values():
            await sim.stop()
        for pair in self.pairs:
            pair.stop()


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} is a number, not {value!r}") from None


def scaled_now(speed: float, start: float | None = None) -> Callable[[], float]:
    """Simulated time: `speed` times faster than the wall clock, from `start` (default: now)."""
    origin_real = time.monotonic()
    origin = time.time() if start is None else start
    return lambda: origin + (time.monotonic() - origin_real) * speed


def script_problems(site: SimSite, steps: list[Step]) -> list[str]:
    """Ids a script names that the site lacks: found before the run, not an hour of sim time into it."""
    simulated = {gateway.id for gateway in site.gateways if site.devices_on(gateway.id)}
    known = {"room": set(site.rooms), "gateway": simulated, "device": {device.id for device in site.devices}}
    problems = []
    for step in steps:
        command = step.command  # parse_script made sure it names its target
        if "scenario" in command:
            kind = SCENARIOS[str(command["scenario"])].target
        else:
            kind = "device" if "device" in command else "room"
        if command[kind] not in known[kind]:
            problems.append(f"at {step.at:g}: no simulated {kind} {command[kind]!r} in site {site.site_id}")
    return problems


async def _serve(args: argparse.Namespace, sim_site: SimSite, script: list[Step] | None) -> None:
    site = SimulatedSite(sim_site, scaled_now(args.speed), mqtt_interval=args.mqtt_interval, line_time=args.line_time)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await site.start()
    log.info(
        "simulators running for site %s; control topic stackwatch-sim/%s/control", site.site.site_id, site.site.site_id
    )
    player = None if script is None else asyncio.create_task(_play(site, script, args.speed))
    try:
        await stop.wait()
    finally:
        if player is not None:
            player.cancel()
        await site.stop()


async def _play(site: SimulatedSite, script: list[Step], speed: float) -> None:
    """The script's clock starts once the hardware is up, so `at: 0` reaches a collector that can see it."""
    log.info("script: %d steps over %.0f sim seconds", len(script), script[-1].at if script else 0.0)
    await run_script(script, lambda command: site.control_logged(command, "script"), site.now, speed=speed)
    log.info("script: finished; simulators keep running")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stackwatch-sim", description="Simulated archive hardware.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios (control topic stackwatch-sim/<site>/control, or --script steps):\n" + describe()
        + "\n\nscript: a YAML/JSON list of {at: <sim seconds after start>, ...command...}, e.g.\n"
        "  - {at: 0, scenario: hvac-failure, room: main-1-paper}\n"
        "  - {at: 3600, scenario: hvac-failure, room: main-1-paper, on: false}")
    parser.add_argument("--config", required=True, help="the site YAML file")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--mqtt-interval", type=float, default=10.0, help="simulated seconds between MQTT reports")
    parser.add_argument("--line-time", type=float, default=0.0,
                        help="seconds each Modbus answer spends on the serial line behind its gateway")
    parser.add_argument("--script", help="YAML/JSON list of control commands to apply at sim times (see below)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed is positive")
    sim_site = read_site(args.config)
    try:
        script = None if args.script is None else load_script(args.script)
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.error(f"--script {args.script}: {error}")
    problems = script_problems(sim_site, script or [])
    if problems:
        parser.error(f"--script {args.script}: " + "; ".join(problems))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(_serve(args, sim_site, script))
    return 0
