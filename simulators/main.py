"""`stackwatch-sim --config site.yaml`: simulated hardware for every device with a `model:` in the site file.

Modbus TCP gateways listen where the site file says the collector will find
them; an RTU gateway's serial port is created as one end of a pseudo-terminal
pair (`<port>` for the collector, `<port>.sim` for the simulator). MQTT
devices publish to the site's broker.

Faults and room events are switched at run time by publishing JSON to
`stackwatch-sim/<site>/control`:
    {"device": "th-b1", "fault": "timeout"}
        Modbus faults: none, timeout, slow, exception:<code>, sentinel, garbage
    {"device": "z2m-th-a101", "fault": "malformed", "on": true}
        MQTT faults: malformed, oversized, offline, duplicate, out-of-order
    {"room": "main-1-paper", "event": "water_leak", "on": true}
        events: fire, pre_alarm, trouble, smoke, water_leak, door_open, motion
    {"room": "main-1-paper", "t_offset": 4, "rh_offset": 15}
        moves the room's climate
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
from paho.mqtt.enums import CallbackAPIVersion

from .modbus_sim import ModbusGatewaySim, SerialPair, make_device
from .mqtt_sim import MqttDeviceSim, MqttSim
from .site import SimSite, read_site

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

    async def start(self) -> None:
        for gateway in self.site.gateways:
            specs = self.site.devices_on(gateway.id)
            if not specs:
                continue
            devices = [
                make_device(s.model, s.unit, self.site.rooms[s.room], self.now, s.options, self.site.rooms)
                for s in specs
            ]
            sim = ModbusGatewaySim(devices, missing_unit="silent", line_time=self.line_time)
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
            self.gateways[gateway.id] = sim
            for spec in specs:
                self._modbus_units[spec.id] = (gateway.id, spec.unit)
            log.info("gateway %s (%s) simulating %d devices", gateway.id, gateway.type, len(devices))
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

    def control(self, command: dict[str, Any]) -> str:
        """Apply one control command; returns what was done (for the log and for tests)."""
        if "device" in command:
            device_id = str(command["device"])
            fault = str(command.get("fault", "none"))
            if device_id in self._modbus_units:
                gateway, unit = self._modbus_units[device_id]
                self.gateways[gateway].set_fault(unit, fault)
                return f"{device_id}: fault {fault}"
            if device_id in self.mqtt_devices:
                self.mqtt_devices[device_id].set_fault(fault, bool(command.get("on", True)))
                return f"{device_id}: fault {fault} {'on' if command.get('on', True) else 'off'}"
            raise ValueError(f"no simulated device {device_id!r}")
        if "room" in command:
            room = self.site.rooms[str(command["room"])]
            if "event" in command:
                room.set_event(str(command["event"]), bool(command.get("on", True)))
            if "t_offset" in command:
                room.t_offset = float(command["t_offset"])
            if "rh_offset" in command:
                room.rh_offset = float(command["rh_offset"])
            return f"room {room.room_id}: {command}"
        raise ValueError("a command names a `device` or a `room`")

    def _start_control(self) -> None:
        topic = f"stackwatch-sim/{self.site.site_id}/control"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"stackwatch-sim-control-{self.site.site_id}")

        def on_connect(c: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
            c.subscribe(topic, qos=1)

        def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
            try:
                log.info("control: %s", self.control(json.loads(message.payload)))
            except (ValueError, KeyError, TypeError) as error:
                log.warning("control message refused: %s (%r)", error, message.payload[:200])

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


def scaled_now(speed: float, start: float | None = None) -> Callable[[], float]:
    """Simulated time: `speed` times faster than the wall clock, from `start` (default: now)."""
    origin_real = time.monotonic()
    origin = time.time() if start is None else start
    return lambda: origin + (time.monotonic() - origin_real) * speed


async def _serve(args: argparse.Namespace) -> None:
    site = SimulatedSite(read_site(args.config), scaled_now(args.speed), mqtt_interval=args.mqtt_interval,
                         line_time=args.line_time)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await site.start()
    log.info(
        "simulators running for site %s; control topic stackwatch-sim/%s/control", site.site.site_id, site.site.site_id
    )
    try:
        await stop.wait()
    finally:
        await site.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackwatch-sim", description="Simulated archive hardware.")
    parser.add_argument("--config", required=True, help="the site YAML file")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--mqtt-interval", type=float, default=10.0, help="simulated seconds between MQTT reports")
    parser.add_argument("--line-time", type=float, default=0.0,
                        help="seconds each Modbus answer spends on the serial line behind its gateway")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(_serve(args))
    return 0
