"""The poller against a hand-written fake client: retries, busy, qualities, back-off, logging, late replies."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from collector.modbus import ModbusCollector
from collector.modbus.client import GatewayConfig, Values
from collector.modbus.errors import ExceptionReply, LinkError, NoResponse
from stackwatch.clock import ManualClock
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import ListSink
from stackwatch.readings import Quality, Reading

TIMEOUT = "timeout"


class FakeClient:
    """A bus in memory. `script[unit]` lists outcomes per request ("timeout", an exception code, or None for
    an answer); `dead` units never answer. On a shared line a unit in `late` answers after the timeout, and
    that answer is taken as the next request's unless the poller discards late replies first."""

    def __init__(self, tables: dict[int, dict[int, int]], *, shared_line: bool = False) -> None:
        self.tables = tables
        self.script: dict[int, list[int | str | None]] = {}
        self.dead: set[int] = set()
        self.late: set[int] = set()
        self.connect_error: str | None = None
        self.requests: list[tuple[int, int, int, int]] = []  # (unit, fc, address, count)
        self.writes: list[tuple[int, int, int, int]] = []
        self.discards = 0
        self.closes = 0
        self.in_flight = self.max_in_flight = 0
        self.delay = 0.0
        self._shared_line = shared_line
        self._pending_late: list[int] | None = None

    @property
    def shared_line(self) -> bool:
        return self._shared_line

    async def connect(self, timeout: float) -> None:
        if self.connect_error:
            raise LinkError(self.connect_error)

    def close(self) -> None:
        self.closes += 1

    def _values(self, unit: int, address: int, count: int) -> list[int]:
        return [self.tables[unit].get(a, 0) for a in range(address, address + count)]

    async def read(self, function_code: int, unit: int, address: int, count: int, timeout: float) -> Values:
        self.requests.append((unit, function_code, address, count))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            late, self._pending_late = self._pending_late, None
            if unit in self.late and self._shared_line:
                self._pending_late = self._values(unit, address, count)  # this answer, too, comes a window late
            if late is not None:  # a sloppy line: the earlier answer arrives now, whoever was asked
                return late[:count] + [0] * (count - len(late))
            outcome = self.script.get(unit, []).pop(0) if self.script.get(unit) else None
            if unit in self.dead or unit in self.late or outcome == TIMEOUT:
                raise NoResponse(timeout)
            if isinstance(outcome, int):
                raise ExceptionReply(outcome)
            return self._values(unit, address, count)
        finally:
            self.in_flight -= 1

    async def write(self, function_code: int, unit: int, address: int, value: int, timeout: float) -> None:
        self.writes.append((unit, function_code, address, value))
        self.tables[unit][address] = value

    async def discard_late_replies(self, quiet: float) -> None:
        self.discards += 1
        self._pending_late = None


def site(devices: list[dict[str, Any]], gateways: list[dict[str, Any]] | None = None, **options: Any) -> SiteConfig:
    gateway = {"type": "modbus-tcp", "id": "gw", "host": "127.0.0.1", "timeout": 0.2, **options}
    return SiteConfig.model_validate({
        "site": {"id": "s"}, "buildings": [{"id": "b"}],
        "rooms": [{"id": "r", "building": "b", "profile": "paper"}],
        "gateways": gateways or [gateway], "devices": devices,
    })


def xy(device_id: str, unit: int, gateway: str = "gw", **fields: Any) -> dict[str, Any]:
    """An XY-MD02-like device: T and RH in one request, the baud rate in a second."""
    return {"id": device_id, "protocol": "modbus", "gateway": gateway, "unit": unit, "room": "r", "points": [
        {"id": "t", "table": "holding", "address": 1, "type": "int16", "scale": 0.1},
        {"id": "rh", "table": "holding", "address": 2, "scale": 0.1},
        {"id": "baud", "table": "holding", "address": 0x102},
    ], **fields}


def table(t: float, rh: float) -> dict[int, int]:
    return {1: round(t * 10) & 0xFFFF, 2: round(rh * 10), 0x102: 9600}


class Harness:
    def __init__(self, config: SiteConfig, clients: dict[str, FakeClient]) -> None:
        self.clock = ManualClock()
        self.sink = ListSink()
        self.sleeps: list[float] = []
        self.clients = clients

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(0)

        self.collector = ModbusCollector(config, self.sink, self.clock, self.factory, sleep=sleep)

    def factory(self, gateway: GatewayConfig) -> FakeClient:
        return self.clients[gateway.id]

    async def cycle(self, advance: float = 10.0) -> dict[str, Reading]:
        """One cycle; the readings of it by point key."""
        before = len(self.sink.readings)
        await self.collector.run_cycle_once()
        await self.clock.advance(advance)
        new = self.sink.readings[before:]
        by_key = {r.point: r for r in new}
        assert len(by_key) == len(new), "one reading per point per cycle"
        return by_key


def harness(devices: list[dict[str, Any]], tables: dict[int, dict[int, int]], *, shared_line: bool = False,
            **options: Any) -> tuple[Harness, FakeClient]:
    client = FakeClient(tables, shared_line=shared_line)
    return Harness(site(devices, **options), {"gw": client}), client


async def test_good_poll_decodes_every_point_with_unique_timestamps() -> None:
    h, client = harness([xy("a", 1), xy("b", 2)], {1: table(30.5, 54.6), 2: table(-20.5, 40.0)})
    first = await h.cycle(advance=0)
    assert {k: (r.value, r.quality) for k, r in first.items()} == {
        "a.t": (30.5, Quality.GOOD), "a.rh": (54.6, Quality.GOOD), "a.baud": (9600, Quality.GOOD),
        "b.t": (-20.5, Quality.GOOD), "b.rh": (40.0, Quality.GOOD), "b.baud": (9600, Quality.GOOD)}
    assert client.requests == [(1, 3, 1, 2), (1, 3, 0x102, 1), (2, 3, 1, 2), (2, 3, 0x102, 1)]
    assert {r.ts_ns for r in first.values()} == {h.clock.now_ns()}
    second = await h.cycle(advance=0)  # same clock instant: stamps must still differ per point
    assert all(second[k].ts_ns == first[k].ts_ns + 1 for k in first)


async def test_timeout_is_retried() -> None:
    h, client = harness([xy("a", 1)], {1: table(20, 50)}, retries=1)
    client.script[1] = [TIMEOUT]
    readings = await h.cycle()
    assert readings["a.t"].quality is Quality.GOOD and readings["a.t"].value == 20.0
    assert h.collector.device_stats["a"].requests == 3
    assert h.collector.device_stats["a"].available


async def test_timeouts_beyond_retries_give_comm_failure_for_every_point() -> None:
    h, client = harness([xy("a", 1)], {1: table(20, 50)}, retries=2)
    client.dead.add(1)
    readings = await h.cycle()
    assert len(client.requests) == 3  # first request tried 1 + 2 times; the second never sent
    for key in ("a.t", "a.rh"):
        assert (readings[key].value, readings[key].quality) == (None, Quality.COMM_FAILURE)
        assert readings[key].detail == "no response within 0.2 s"
    assert readings["a.baud"].quality is Quality.COMM_FAILURE
    assert readings["a.baud"].detail == "not polled: no response within 0.2 s"


async def test_busy_is_retried_after_backoff() -> None:
    h, client = harness([xy("a", 1)], {1: table(20, 50)}, busy_retries=3, busy_backoff=0.25)
    client.script[1] = [6, 6]
    readings = await h.cycle()
    assert readings["a.t"].quality is Quality.GOOD
    assert h.sleeps == [0.25, 0.25]
    assert h.collector.device_stats["a"].busy_retries == 2


async def test_busy_beyond_its_retries_is_a_comm_failure_not_bad_data() -> None:
    h, client = harness([xy("a", 1)], {1: table(20, 50)}, busy_retries=1, busy_backoff=0.01)
    client.script[1] = [6, 6]
    readings = await h.cycle()
    assert readings["a.t"].quality is Quality.COMM_FAILURE
    assert readings["a.t"].detail == "exception 0x06 server device busy"
    assert readings["a.baud"].quality is Quality.GOOD  # the device answered: its other request still goes


@pytest.mark.parametrize(
    ("code", "quality", "detail"),
    [
        (0x01, Quality.BAD, "exception 0x01 illegal function"),
        (0x02, Quality.BAD, "exception 0x02 illegal data address"),
        (0x03, Quality.BAD, "exception 0x03 illegal data value"),
        (0x04, Quality.BAD, "exception 0x04 server device failure"),
        (0x80, Quality.BAD, "exception 0x80 vendor-specific"),
        (0x0A, Quality.COMM_FAILURE, "exception 0x0A gateway path unavailable"),
        (0x0B, Quality.COMM_FAILURE, "exception 0x0B gateway target device failed to respond"),
    ],
)
async def test_exception_codes_map_to_qualities(code: int, quality: Quality, detail: str) -> None:
    h, client = harness([xy("a", 1)], {1: table(20, 50)})
    client.script[1] = [code]
    readings = await h.cycle()
    for key in ("a.t", "a.rh"):
        assert (readings[key].value, readings[key].quality, readings[key].detail) == (None, quality, detail)
    stats = h.collector.device_stats["a"]
    if quality is Quality.BAD:  # the device is there; only that register is wrong
        assert readings["a.baud"].quality is Quality.GOOD
        assert stats.available
    else:  # the path to it is gone: no point asking for the rest
        assert readings["a.baud"].detail.startswith("not polled: exception")
        assert not stats.available


async def test_dead_device_backs_off_without_costing_the_others(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stackwatch.collector.modbus")
    h, client = harness([xy("a", 1), xy("dead", 2), xy("c", 3)],
                        {1: table(20, 50), 2: table(0, 0), 3: table(21, 51)},
                        retries=1, down_after=2, down_retry=30)
    client.dead.add(2)
    for _ in range(2):
        readings = await h.cycle(advance=10)
        assert readings["a.t"].value == 20.0 and readings["c.t"].value == 21.0
    stats = h.collector.device_stats["dead"]
    assert stats.down and stats.polls_failed == 2
    asked = sum(1 for unit, *_ in client.requests if unit == 2)
    assert asked == 4  # 2 polls × (1 + 1 retry) on its first request only

    readings = await h.cycle(advance=10)  # t = 20 s: resting, the bus is not touched
    assert sum(1 for unit, *_ in client.requests if unit == 2) == asked
    assert readings["dead.t"].quality is Quality.COMM_FAILURE
    assert readings["dead.t"].detail == "device down, not polled: no response within 0.2 s"
    assert readings["a.t"].quality is readings["c.t"].quality is Quality.GOOD
    assert stats.polls_skipped == 1

    await h.cycle(advance=10)  # t = 30 s: still resting (retry due at 20 + 30)
    await h.cycle(advance=20)  # t = 40 s
    readings = await h.cycle(advance=10)  # t = 60 s ≥ 50 s: one probe, no retries
    assert sum(1 for unit, *_ in client.requests if unit == 2) == asked + 1

    client.dead.clear()
    await h.clock.advance(30)
    readings = await h.cycle()
    assert readings["dead.t"].quality is Quality.GOOD
    assert not stats.down and stats.available and stats.consecutive_failures == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "dead" in r.getMessage()]
    recoveries = [r for r in caplog.records if r.levelno == logging.INFO and "answers again" in r.getMessage()]
    assert len(warnings) == 1 and len(recoveries) == 1
    assert stats.availability == pytest.approx(1 / 4)  # 4 bus polls, 1 answered


async def test_failure_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stackwatch.collector.modbus")
    h, client = harness([xy("a", 1)], {1: table(20, 50)}, retries=0, down_after=100)
    client.dead.add(1)
    for _ in range(5):
        await h.cycle()
    client.dead.clear()
    for _ in range(3):
        await h.cycle()
    client.dead.add(1)
    await h.cycle()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "stackwatch.collector.modbus"]
    assert messages == [
        ("WARNING", "device a (gateway gw, unit 1) not answering: no response within 0.2 s; "
                    "after 100 failed polls it is tried every 30 s"),
        ("INFO", "device a (gateway gw, unit 1) answers again after 5 failed polls"),
        ("WARNING", "device a (gateway gw, unit 1) not answering: no response within 0.2 s; "
                    "after 100 failed polls it is tried every 30 s"),
    ]


async def test_unreachable_gateway(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stackwatch.collector.modbus")
    h, client = harness([xy("a", 1), xy("b", 2)], {1: table(20, 50), 2: table(20, 50)}, down_after=1)
    client.connect_error = "cannot connect to 127.0.0.1:502: refused"
    for _ in range(3):
        readings = await h.cycle()
    assert len(readings) == 6 and all(r.quality is Quality.COMM_FAILURE for r in readings.values())
    assert readings["b.rh"].detail == "gateway gw: cannot connect to 127.0.0.1:502: refused"
    assert not h.collector.device_stats["a"].down  # not the device's fault: no back-off when the gateway returns
    client.connect_error = None
    readings = await h.cycle()
    assert all(r.quality is Quality.GOOD for r in readings.values())
    messages = [r.getMessage() for r in caplog.records if r.name == "stackwatch.collector.modbus"]
    assert len(messages) == 2 and "unreachable" in messages[0] and "reachable again" in messages[1]
    assert h.collector.gateway_stats["gw"].connect_failures == 3


async def test_late_reply_is_discarded_on_a_shared_line() -> None:
    # unit 2 answers after the timeout; a master that does not drain would give unit 3 unit 2's values
    h, client = harness([xy("a", 1), xy("slow", 2), xy("c", 3)],
                        {1: table(20, 50), 2: table(99.9, 99.9), 3: table(21, 51)}, shared_line=True, retries=0)
    client.late.add(2)
    readings = await h.cycle()
    assert (readings["c.t"].value, readings["c.rh"].value) == (21.0, 51.0)
    assert readings["slow.t"].quality is Quality.COMM_FAILURE
    assert client.discards == 1
    assert h.collector.gateway_stats["gw"].late_reply_drains == 1


async def test_a_late_answer_never_counts_not_even_for_the_retry() -> None:
    # a reply later than the timeout is drained before the retry as well: the timeout stays the one contract
    h, client = harness([xy("a", 1), xy("slow", 2), xy("c", 3)],
                        {1: table(20, 50), 2: table(-18.5, 35), 3: table(21, 51)}, shared_line=True, retries=1)
    client.late.add(2)
    readings = await h.cycle()
    assert readings["slow.t"].quality is Quality.COMM_FAILURE
    assert (readings["c.t"].value, readings["c.rh"].value, readings["c.baud"].value) == (21.0, 51.0, 9600)
    assert client.discards == 2  # before the retry and before unit 3
    assert client.requests.count((2, 3, 1, 2)) == 2


async def test_the_fake_line_would_mix_replies_without_the_drain() -> None:
    """Guards the test above: the fake really does hand a late reply to the next request."""
    client = FakeClient({2: table(99.9, 99.9), 3: table(21, 51)}, shared_line=True)
    client.late.add(2)
    with pytest.raises(NoResponse):
        await client.read(3, 2, 1, 2, 0.2)
    assert await client.read(3, 3, 1, 2, 0.2) == [999, 999]


async def test_no_drain_on_tcp_where_transaction_ids_match_replies() -> None:
    h, client = harness([xy("a", 1), xy("b", 2)], {1: table(20, 50), 2: table(21, 51)}, retries=0)
    client.script[1] = [TIMEOUT]
    await h.cycle()
    assert client.discards == 0


async def test_one_request_at_a_time_per_gateway_gateways_concurrently() -> None:
    gateways = [{"type": "modbus-tcp", "id": g, "host": "127.0.0.1", "timeout": 1.0} for g in ("g1", "g2")]
    devices = [xy(f"{g}-{u}", u, gateway=g) for g in ("g1", "g2") for u in (1, 2, 3)]
    clients = {g: FakeClient({u: table(20, 50) for u in (1, 2, 3)}) for g in ("g1", "g2")}
    for client in clients.values():
        client.delay = 0.02
    h = Harness(site(devices, gateways), clients)
    started = time.monotonic()
    await h.collector.run_cycle_once()
    elapsed = time.monotonic() - started
    assert all(c.max_in_flight == 1 and len(c.requests) == 6 for c in clients.values())
    assert elapsed < 6 * 0.02 * 1.8  # the two gateways overlapped: 6 requests' time, not 12


async def test_schedule_follows_each_device_poll_interval() -> None:
    h, client = harness([xy("fast", 1, poll_interval=10), xy("slow", 2, poll_interval=30)],
                        {1: table(20, 50), 2: table(21, 51)})
    await h.collector.start()
    await h.clock.advance(65, step=5)  # the poll due at 60 s gets until 65 s to finish
    await h.collector.stop()
    polls = {unit: sum(1 for u, _, a, _ in client.requests if u == unit and a == 1) for unit in (1, 2)}
    assert polls == {1: 7, 2: 3}  # t = 0, 10, …, 60 and t = 0, 30, 60
    assert h.collector.device_stats["fast"].polls == 7


async def test_close_after_cycle_and_pause() -> None:
    h, client = harness([xy("a", 1), xy("b", 2)], {1: table(20, 50), 2: table(21, 51)},
                        close_after_cycle=True, pause=0.05)
    await h.cycle()
    await h.cycle()
    assert client.closes == 2
    assert len(h.sleeps) >= 3 and all(0 < s <= 0.05 for s in h.sleeps)


async def test_writes_go_through_the_bus_in_the_device_addressing() -> None:
    h, client = harness([xy("a", 1, addressing="one-based")], {1: table(20, 50)})
    await h.collector.write_register("a", 0x104, 15)
    assert client.writes == [(1, 6, 0x103, 15)]
    await h.collector.write_coil("a", 1, True)
    assert client.writes[-1] == (1, 5, 0, 1)
    with pytest.raises(ValueError):
        await h.collector.write_register("a", 0, 1)


def test_unreadable_map_stops_start_up() -> None:
    device = xy("a", 1)
    device["points"].append({"id": "f", "table": "holding", "address": 10, "type": "float32"})
    with pytest.raises(ValueError, match="do not fit"):
        Harness(site([device], max_registers=1), {"gw": FakeClient({})})

