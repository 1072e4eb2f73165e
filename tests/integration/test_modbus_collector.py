"""The collector against the device simulators over real Modbus: TCP, RTU over TCP, and RTU on a pty pair.

Point configs are written here from shared/domain/devices.md, as an installer
would; expected values come from the room model at the clock's instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from collector.modbus import ModbusCollector, NoResponse, PymodbusClient
from collector.modbus.decode import shortest_float32
from simulators.modbus_sim import ModbusGatewaySim, SerialPair, SimulatedDevice, make_device
from simulators.room import RoomModel, RoomState
from stackwatch.clock import ManualClock
from stackwatch.config import parse_config
from stackwatch.config.devices import ModbusTcpGateway
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import ListSink
from stackwatch.readings import Quality, Reading

pytestmark = pytest.mark.integration

TIMEOUT = 0.2

# ---- the maps, as a site file would state them ----

XY_MD02 = [
    {"id": "t", "table": "input", "address": 0x0001, "type": "int16", "scale": 0.1, "sentinels": [0x7FFF]},
    {"id": "rh", "table": "input", "address": 0x0002, "type": "uint16", "scale": 0.1, "sentinels": [0x7FFF]},
    {"id": "address", "table": "holding", "address": 0x0101},
    {"id": "baud", "table": "holding", "address": 0x0102},
]
XY_CLONE = [
    {"id": "t", "table": "input", "address": 0x0000, "type": "uint16", "scale": 0.1, "negative_above": 10000},
    {"id": "rh", "table": "input", "address": 0x0001, "type": "uint16", "scale": 0.1},
]
HMP_SENTINELS = [0x7FFF, 0x8000, 0x8001]
HMP110 = [
    {"id": "rh", "table": "holding", "address": 0x0000, "type": "float32", "word_order": "little"},
    {"id": "t", "table": "holding", "address": 0x0002, "type": "float32", "word_order": "little"},
    {"id": "td", "table": "holding", "address": 0x0008, "type": "float32", "word_order": "little"},
    {"id": "ah", "table": "holding", "address": 0x000E, "type": "float32", "word_order": "little"},
    {"id": "rh_int", "table": "holding", "address": 0x0100, "type": "int16", "scale": 0.01,
     "sentinels": HMP_SENTINELS},
    {"id": "t_int", "table": "holding", "address": 0x0101, "type": "int16", "scale": 0.01,
     "sentinels": HMP_SENTINELS},
]
COMET = [
    {"id": "t", "table": "holding", "address": 0x0031, "type": "int16", "scale": 0.1},
    {"id": "rh", "table": "holding", "address": 0x0032, "type": "int16", "scale": 0.1},
    {"id": "td", "table": "holding", "address": 0x0035, "type": "int16", "scale": 0.1},
]
MOXA = [
    {"id": "door_open", "table": "discrete", "address": 0},
    {"id": "motion", "table": "discrete", "address": 1},
    {"id": "di2", "table": "discrete", "address": 2},
    {"id": "inputs", "table": "input", "address": 0x0030},
]
FIRE = [
    {"id": "zone1_fire", "table": "holding", "address": 0, "mask": 0x08FF, "equals": 0x0810},
    {"id": "zone1_pre_alarm", "table": "holding", "address": 0, "bit": 14},
    {"id": "zone1_trouble", "table": "holding", "address": 0, "bit": 13},
    {"id": "zone1_enabled", "table": "holding", "address": 0, "bit": 10},
    {"id": "zone2_fire", "table": "holding", "address": 1, "mask": 0x08FF, "equals": 0x0810},
    {"id": "zone4_status", "table": "holding", "address": 3},
]
SEAHAWK = [  # one-based, as the manual prints 30001–30005
    {"id": "leak", "table": "input", "address": 1, "bit": 0},
    {"id": "cable_break", "table": "input", "address": 1, "bit": 1},
    {"id": "contamination", "table": "input", "address": 1, "bit": 2},
    {"id": "summary", "table": "input", "address": 1, "bit": 3},
    {"id": "distance", "table": "input", "address": 2},
    {"id": "units", "table": "input", "address": 3},
    {"id": "current", "table": "input", "address": 4},
    {"id": "cable_length", "table": "input", "address": 5},
]


def f32(value: float) -> float:
    """What a float32 register pair carries for `value`, as the shortest decimal of that float32."""
    return shortest_float32(float(struct.unpack(">f", struct.pack(">f", value))[0]))


def tenth(value: float) -> float:
    return round(value * 10) / 10


def hundredth(value: float) -> float:
    return round(value * 100) / 100


def absolute_humidity(t: float, rh: float) -> float:
    return 216.7 * (rh / 100 * 6.112 * math.exp(17.62 * t / (243.12 + t))) / (273.15 + t)


Expect = Callable[[RoomState, int], Any]
EXPECTED: dict[str, dict[str, Expect]] = {
    "xy-md02": {"t": lambda s, _: tenth(s.temperature), "rh": lambda s, _: tenth(s.humidity),
                "address": lambda _, unit: unit, "baud": lambda *_: 9600},
    "xy-clone": {"t": lambda s, _: tenth(s.temperature), "rh": lambda s, _: tenth(s.humidity)},
    "vaisala-hmp110": {"rh": lambda s, _: f32(s.humidity), "t": lambda s, _: f32(s.temperature),
                       "td": lambda s, _: f32(s.dew_point),
                       "ah": lambda s, _: pytest.approx(absolute_humidity(s.temperature, s.humidity), rel=1e-5),
                       "rh_int": lambda s, _: hundredth(s.humidity), "t_int": lambda s, _: hundredth(s.temperature)},
    "comet-t3510": {"t": lambda s, _: tenth(s.temperature), "rh": lambda s, _: tenth(s.humidity),
                    "td": lambda s, _: tenth(s.dew_point)},
    "moxa-e1210": {"door_open": lambda s, _: s.door_open, "motion": lambda s, _: s.motion,
                   "di2": lambda *_: False, "inputs": lambda s, _: int(s.door_open) | int(s.motion) << 1},
    "notifier-fire-gateway": {
        "zone1_fire": lambda s, _: s.fire, "zone1_pre_alarm": lambda s, _: s.pre_alarm,
        "zone1_trouble": lambda s, _: s.trouble, "zone1_enabled": lambda *_: True,
        "zone2_fire": lambda *_: False, "zone4_status": lambda *_: 0x0400},
    "rle-seahawk": {"leak": lambda s, _: s.water_leak, "cable_break": lambda *_: False,
                    "contamination": lambda *_: False, "summary": lambda s, _: s.water_leak,
                    "distance": lambda s, _: 12 if s.water_leak else 0, "units": lambda *_: 0,
                    "current": lambda s, _: 250 if s.water_leak else 3, "cable_length": lambda *_: 30},
}
POINTS = {"xy-md02": XY_MD02, "xy-clone": XY_CLONE, "vaisala-hmp110": HMP110, "comet-t3510": COMET,
          "moxa-e1210": MOXA, "notifier-fire-gateway": FIRE, "rle-seahawk": SEAHAWK}


class Bench:
    """Rooms, simulated devices and the matching site config, on one clock."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.rooms = {"stack": RoomModel("stack", t_set=18.0, rh_set=50.0),
                      "cold": RoomModel("cold", t_set=-18.0, rh_set=35.0)}  # film cold store: negative values
        self.devices: list[tuple[dict[str, Any], SimulatedDevice, str]] = []

    def add(self, device_id: str, kind: str, unit: int, room: str = "stack", **fields: Any) -> SimulatedDevice:
        model = "xy-md02" if kind == "xy-clone" else kind
        options: dict[str, Any] = {"variant": "clone"} if kind == "xy-clone" else {}
        if kind == "notifier-fire-gateway":
            options["zones"] = 4
        sim = make_device(model, unit, self.rooms[room], self.clock.now, options)
        config = {"id": device_id, "protocol": "modbus", "gateway": "gw", "unit": unit, "room": room,
                  "points": POINTS[kind], **({"addressing": "one-based"} if kind == "rle-seahawk" else {}), **fields}
        self.devices.append((config, sim, kind))
        return sim

    def config(self, gateway: dict[str, Any]) -> SiteConfig:
        return SiteConfig.model_validate({
            "site": {"id": "s"}, "buildings": [{"id": "b"}],
            "rooms": [{"id": r, "building": "b", "profile": "paper"} for r in self.rooms],
            "gateways": [{"id": "gw", "timeout": TIMEOUT, **gateway}], "devices": [c for c, _, _ in self.devices],
        })

    def check(self, readings: dict[str, Reading], device_ids: set[str] | None = None) -> None:
        """Every point of the devices: one good reading with the value the room has now."""
        for config, sim, kind in self.devices:
            if device_ids is not None and config["id"] not in device_ids:
                continue
            state = sim.room.state(self.clock.now())
            for point in config["points"]:
                reading = readings[f"{config['id']}.{point['id']}"]
                assert reading.quality is Quality.GOOD, (reading, kind)
                assert reading.value == EXPECTED[kind][point["id"]](state, sim.unit), (reading, kind, state)


@contextlib.asynccontextmanager
async def serve(bench: Bench, transport: str, tmp_path: Path, **gateway: Any) -> AsyncIterator[
        tuple[ModbusGatewaySim, ModbusCollector, ListSink]]:
    sim = ModbusGatewaySim(sim for _, sim, _ in bench.devices)
    pair = None
    if transport == "rtu":
        pair = SerialPair(tmp_path / "line-sim", tmp_path / "line-collector").start()
        await sim.start_rtu(str(pair.link_a), baudrate=19200)
        gateway = {"type": "modbus-rtu", "port": str(pair.link_b), "baudrate": 19200, **gateway}
    else:
        framer = "rtu" if transport == "tcp-rtu" else "socket"
        port = await sim.start_tcp("127.0.0.1", 0, framer=framer)
        gateway = {"type": "modbus-tcp", "host": "127.0.0.1", "port": port, "framer": framer, **gateway}
    sink = ListSink()
    collector = ModbusCollector(bench.config(gateway), sink, bench.clock)
    try:
        yield sim, collector, sink
    finally:
        await collector.stop()
        await sim.stop()
        if pair is not None:
            pair.stop()


async def cycle(collector: ModbusCollector, sink: ListSink, clock: ManualClock, advance: float = 10.0,
                ) -> dict[str, Reading]:
    await clock.advance(advance)
    before = len(sink.readings)
    await collector.run_cycle_once()
    return {r.point: r for r in sink.readings[before:]}


def every_model(bench: Bench) -> None:
    bench.add("xy", "xy-md02", 1)
    bench.add("xy-cold", "xy-md02", 2, room="cold")
    bench.add("clone-cold", "xy-clone", 3, room="cold")
    bench.add("hmp", "vaisala-hmp110", 4)
    bench.add("comet-cold", "comet-t3510", 5, room="cold")
    bench.add("io", "moxa-e1210", 6)
    bench.add("fire", "notifier-fire-gateway", 7)
    bench.add("leak", "rle-seahawk", 8)


@pytest.mark.parametrize("transport", ["tcp", "tcp-rtu", "rtu"])
async def test_every_point_of_every_model(transport: str, tmp_path: Path) -> None:
    bench = Bench()
    every_model(bench)
    async with serve(bench, transport, tmp_path) as (sim, collector, sink):
        readings = await cycle(collector, sink, bench.clock)
        assert len(readings) == sum(len(c["points"]) for c, _, _ in bench.devices)
        bench.check(readings)
        assert readings["xy-cold.t"].value < 0 and readings["clone-cold.t"].value < 0  # type: ignore[operator]

        for event in ("fire", "pre_alarm", "trouble", "water_leak", "door_open", "motion"):
            bench.rooms["stack"].set_event(event, True)
        readings = await cycle(collector, sink, bench.clock, advance=3600)
        bench.check(readings)
        assert readings["fire.zone1_fire"].value is True and readings["leak.current"].value == 250

        plan_requests = sum(len(p.devices[d].plan.requests) for p in collector.gateways.values() for d in p.devices)
        assert sim.requests == 2 * plan_requests  # nothing retried, nothing read twice
        assert plan_requests == 12  # xy 2 + 2, clone 1, hmp 2, comet 1, io 2, fire 1, leak 1


@pytest.mark.parametrize(
    ("fault", "quality", "detail"),
    [
        ("timeout", Quality.COMM_FAILURE, "no response within 0.2 s"),
        ("slow", Quality.COMM_FAILURE, "no response within 0.2 s"),
        ("exception:2", Quality.BAD, "exception 0x02 illegal data address"),
        ("exception:4", Quality.BAD, "exception 0x04 server device failure"),
        ("exception:6", Quality.COMM_FAILURE, "exception 0x06 server device busy"),
        ("exception:0x0A", Quality.COMM_FAILURE, "exception 0x0A gateway path unavailable"),
        ("exception:0x0B", Quality.COMM_FAILURE, "exception 0x0B gateway target device failed to respond"),
        ("exception:0x80", Quality.BAD, "exception 0x80 vendor-specific"),
    ],
)
async def test_fault_gives_its_quality_and_spares_the_neighbours(fault: str, quality: Quality, detail: str,
                                                                tmp_path: Path) -> None:
    bench = Bench()
    bench.add("xy", "xy-md02", 1)
    faulty = bench.add("hmp", "vaisala-hmp110", 2)
    bench.add("comet", "comet-t3510", 3)
    async with serve(bench, "tcp", tmp_path, retries=0, busy_retries=1, busy_backoff=0.01) as (_, collector, sink):
        faulty.set_fault(fault, delay=0.4)
        readings = await cycle(collector, sink, bench.clock)
        first_request = [r for k, r in readings.items() if k in ("hmp.rh", "hmp.t", "hmp.td", "hmp.ah")]
        assert len(first_request) == 4
        for reading in first_request:
            assert (reading.value, reading.quality, reading.detail) == (None, quality, detail)
        assert readings["hmp.t_int"].quality is quality  # failed too, or not polled after a comm failure
        bench.check(readings, {"xy", "comet"})

        faulty.set_fault("none")
        readings = await cycle(collector, sink, bench.clock)
        bench.check(readings)


async def test_sensor_fault_sentinels_are_bad(tmp_path: Path) -> None:
    bench = Bench()
    xy = bench.add("xy", "xy-md02", 1)
    hmp = bench.add("hmp", "vaisala-hmp110", 2)
    async with serve(bench, "tcp", tmp_path) as (_, collector, sink):
        xy.set_fault("sentinel")
        hmp.set_fault("sentinel")
        readings = await cycle(collector, sink, bench.clock)
        for key, detail in [("xy.t", "sentinel 0x7FFF"), ("xy.rh", "sentinel 0x7FFF"), ("hmp.rh", "NaN"),
                            ("hmp.t", "NaN"), ("hmp.rh_int", "sentinel 0x8000"), ("hmp.t_int", "sentinel 0x8000")]:
            assert (readings[key].value, readings[key].quality, readings[key].detail) == (None, Quality.BAD, detail)
        assert readings["xy.baud"].quality is Quality.GOOD


async def test_garbage_is_never_passed_off_as_the_room(tmp_path: Path) -> None:
    bench = Bench()
    xy = bench.add("xy", "xy-md02", 1, points=[
        {**XY_MD02[0], "valid_min": -40, "valid_max": 125}, {**XY_MD02[1], "valid_min": 0, "valid_max": 100}])
    async with serve(bench, "tcp", tmp_path) as (_, collector, sink):
        xy.set_fault("garbage")
        seen = []
        for _ in range(5):
            readings = await cycle(collector, sink, bench.clock)
            seen += [readings["xy.t"], readings["xy.rh"]]
        state = bench.rooms["stack"].state(bench.clock.now())
        assert all(r.quality in (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD) for r in seen)
        assert any(r.quality is not Quality.GOOD for r in seen)
        assert not all(r.value == tenth(state.humidity) for r in seen[1::2])


async def test_dead_and_slow_devices_do_not_cost_the_others_on_one_rtu_bus(tmp_path: Path) -> None:
    bench = Bench()
    bench.add("xy-1", "xy-md02", 1)
    dead = bench.add("dead", "vaisala-hmp110", 2)
    bench.add("hmp-3", "vaisala-hmp110", 3)
    slow = bench.add("slow-cold", "xy-md02", 4, room="cold")  # a mix-up would show: −18 °C where +18 °C belongs
    bench.add("xy-5", "xy-md02", 5)
    bench.add("comet-6", "comet-t3510", 6)
    healthy = {"xy-1", "hmp-3", "xy-5", "comet-6"}
    async with serve(bench, "rtu", tmp_path, retries=1, down_after=2, down_retry=60) as (sim, collector, sink):
        dead.set_fault("timeout")
        slow.set_fault("slow", delay=0.7)  # later than both attempts and the drains: answers come while others talk
        durations = []
        for _ in range(3):
            started = time.monotonic()
            readings = await cycle(collector, sink, bench.clock)
            durations.append(time.monotonic() - started)
            bench.check(readings, healthy)
            for key in ("dead.rh", "dead.t_int", "slow-cold.t", "slow-cold.baud"):
                assert readings[key].quality is Quality.COMM_FAILURE and readings[key].value is None
        assert readings["slow-cold.t"].detail.startswith("device down, not polled")
        stats = collector.device_stats
        assert stats["dead"].down and stats["slow-cold"].down
        assert sim[2].requests == sim[4].requests == 4  # 2 polls × (1 + 1 retry); the third poll left them alone
        assert all(stats[d].available and stats[d].polls_failed == 0 for d in healthy)
        assert collector.gateway_stats["gw"].late_reply_drains >= 2
        assert durations[2] < durations[0] / 3  # resting devices cost the bus nothing


@pytest.mark.parametrize("transport", ["rtu", "tcp-rtu", "tcp"])
async def test_an_answer_after_the_timeout_is_never_taken_for_the_next_one(transport: str, tmp_path: Path) -> None:
    bench = Bench()
    sluggish = bench.add("sluggish-cold", "xy-md02", 1, room="cold")
    bench.add("xy-2", "xy-md02", 2)  # the same map: a reply taken for the wrong request would look plausible
    async with serve(bench, transport, tmp_path, retries=1) as (sim, collector, sink):
        sluggish.set_fault("slow", delay=0.3)  # 0.1 s after the 0.2 s timeout, i.e. within the next exchange
        for _ in range(2):
            readings = await cycle(collector, sink, bench.clock)
            bench.check(readings, {"xy-2"})
            assert all(readings[f"sluggish-cold.{p}"].quality is Quality.COMM_FAILURE for p in ("t", "rh", "baud"))
        assert sim[1].requests == 2 * 2  # 2 polls × (attempt + retry) of its first request
        assert collector.gateway_stats["gw"].late_reply_drains == (4 if transport != "tcp" else 0)


async def test_absent_unit_behind_a_tcp_gateway(tmp_path: Path) -> None:
    bench = Bench()
    bench.add("xy", "xy-md02", 1)
    async with serve(bench, "tcp", tmp_path) as (sim, collector, sink):
        sim.remove(1)
        sim.missing_unit = "exception"
        readings = await cycle(collector, sink, bench.clock)
        assert readings["xy.t"].quality is Quality.COMM_FAILURE
        assert readings["xy.t"].detail == "exception 0x0B gateway target device failed to respond"


async def test_write_moves_the_reading_over_rtu(tmp_path: Path) -> None:
    bench = Bench()
    bench.add("xy", "xy-md02", 1)
    async with serve(bench, "rtu", tmp_path) as (_, collector, sink):
        before = await cycle(collector, sink, bench.clock, advance=0)
        await collector.write_register("xy", 0x0103, 10)  # temperature correction +1.0 °C
        after = await cycle(collector, sink, bench.clock, advance=0)
        assert after["xy.t"].value == pytest.approx(before["xy.t"].value + 1.0)  # type: ignore[operator]


SITE_WITH_MODELS = """
site: {id: s}
buildings: [{id: b}]
rooms:
  - {id: stack, building: b, profile: paper}
  - {id: cold, building: b, profile: film-master}
gateways:
  - {type: modbus-tcp, id: gw, host: 127.0.0.1, port: PORT, timeout: 0.2}
devices:
  - {id: xy, protocol: modbus, model: xy-md02, gateway: gw, unit: 1, room: stack}
  - {id: hmp, protocol: modbus, model: vaisala-hmp110, gateway: gw, unit: 2, room: cold}
  - {id: fire, protocol: modbus, model: notifier-fire-gateway, gateway: gw, unit: 3, room: stack,
     model_options: {zones: 2, zone_rooms: "stack,cold"}}
  - {id: leak, protocol: modbus, model: rle-seahawk, gateway: gw, unit: 4, room: stack}
  - id: io
    protocol: modbus
    model: moxa-e1210
    gateway: gw
    unit: 5
    room: stack
    use_points: [di0, di1]
    points: [{id: di0, quantity: door_open}, {id: di1, quantity: motion}]
"""


async def test_model_library_configs_read_the_simulated_devices(tmp_path: Path) -> None:
    pytest.importorskip("collector.models")
    clock = ManualClock()
    rooms = {"stack": RoomModel("stack"), "cold": RoomModel("cold", t_set=-18.0, rh_set=35.0)}
    rooms["cold"].set_event("fire", True)
    rooms["stack"].set_event("door_open", True)
    sim = ModbusGatewaySim([
        make_device("xy-md02", 1, rooms["stack"], clock.now),
        make_device("vaisala-hmp110", 2, rooms["cold"], clock.now),
        make_device("notifier-fire-gateway", 3, rooms["stack"], clock.now,
                    {"zones": 2, "zone_rooms": "stack,cold"}, rooms=rooms),
        make_device("rle-seahawk", 4, rooms["stack"], clock.now),
        make_device("moxa-e1210", 5, rooms["stack"], clock.now),
    ])
    port = await sim.start_tcp()
    sink = ListSink()
    collector = ModbusCollector(parse_config(SITE_WITH_MODELS.replace("PORT", str(port))), sink, clock)
    try:
        await collector.run_cycle_once()
    finally:
        await collector.stop()
        await sim.stop()
    readings = {r.point: r for r in sink.readings}
    assert all(r.quality is Quality.GOOD for r in readings.values()), [r for r in readings.values()
                                                                        if r.quality is not Quality.GOOD]
    stack, cold = rooms["stack"].state(clock.now()), rooms["cold"].state(clock.now())
    assert readings["xy.temperature"].value == tenth(stack.temperature)
    assert readings["hmp.temperature"].value == f32(cold.temperature)
    assert readings["fire.zone1_fire"].value is False and readings["fire.zone2_fire"].value is True
    assert readings["leak.leak"].value is False and readings["leak.cable_length"].value == 30
    assert readings["io.di0"].value is True and readings["io.di1"].value is False


# ---- the pymodbus adapter against a raw server that puts stray frames on the line ----

def crc16(frame: bytes) -> bytes:
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def rtu(unit: int, function_code: int, registers: list[int]) -> bytes:
    body = bytes([unit, function_code, 2 * len(registers)]) + b"".join(r.to_bytes(2, "big") for r in registers)
    return body + crc16(body)


@contextlib.asynccontextmanager
async def raw_rtu_over_tcp(replies: list[bytes]) -> AsyncIterator[int]:
    """Answers every request with `replies`, 20 ms apart: strays first, then (maybe) the real one."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                await reader.readexactly(8)
                for reply in replies:
                    await asyncio.sleep(0.02)
                    writer.write(reply)
                    await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def rtu_gateway(port: int) -> ModbusTcpGateway:
    return ModbusTcpGateway(type="modbus-tcp", id="raw", host="127.0.0.1", port=port, framer="rtu", timeout=0.3)


@pytest.mark.parametrize("stray", [
    rtu(1, 4, [0x1111, 0x2222]),  # the same unit, another function: a late answer to an earlier request
    rtu(9, 3, [0x1111, 0x2222]),  # another unit
    rtu(1, 3, [0x1111]),  # the same unit and function, but the size of another request
], ids=["same-unit-other-function", "other-unit", "other-size"])
async def test_a_stray_reply_is_dropped_and_the_real_one_still_taken(stray: bytes) -> None:
    async with raw_rtu_over_tcp([stray, rtu(1, 3, [0x0131, 0x0222])]) as port:
        client = PymodbusClient(rtu_gateway(port))
        try:
            assert await client.read(3, 1, 0x0001, 2, 0.3) == [0x0131, 0x0222]
        finally:
            client.close()


async def test_only_stray_replies_is_no_response() -> None:
    async with raw_rtu_over_tcp([rtu(1, 4, [0x1111, 0x2222])]) as port:
        client = PymodbusClient(rtu_gateway(port))
        try:
            with pytest.raises(NoResponse):
                await client.read(3, 1, 0x0001, 2, 0.3)
        finally:
            client.close()
