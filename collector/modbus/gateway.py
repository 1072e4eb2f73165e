"""One gateway's bus: its devices polled one request at a time, on schedule.

An RS-485 line (or a TCP gateway in front of one) carries one transaction at
a time, so everything on it — polls and control writes — goes through one
lock. The rest of this module is about not letting one bad device cost the
others their readings, the failure reported against Home Assistant
(core#72495, #110013), Telegraf (#11782: one failed slave dropped the whole
gather, and a busy one made it re-read every slave) and node-red-contrib-modbus
(#446):
- a unit that does not answer has its remaining requests skipped for that
  poll, and after `down_after` failed polls it is tried only every
  `down_retry`; meanwhile its points get `comm_failure` readings without
  touching the bus;
- after a timeout on a shared line the line is drained before the next
  request, retries included, and a reply that does not match its request is
  dropped while the timeout keeps running (see `client.py`);
- busy (06) is retried after `busy_backoff` without holding the bus.
Time on the bus (timeouts, pause, back-off) is real time; the schedule
(poll intervals, `down_retry`) and timestamps follow the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from stackwatch.clock import Clock
from stackwatch.config.devices import ModbusDevice
from stackwatch.pipeline import ReadingSink, TimestampAllocator
from stackwatch.readings import Quality, Reading

from .client import ClientFactory, GatewayConfig, ModbusClient, Values
from .decode import decode_bit, decode_registers
from .errors import BUSY, ExceptionReply, ModbusError, NoResponse, UnexpectedReply
from .plan import DevicePlan, ReadRequest, plan_for
from .stats import DeviceStats, GatewayStats

log = logging.getLogger("stackwatch.collector.modbus")

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class DeviceRuntime:
    device: ModbusDevice
    plan: DevicePlan
    stats: DeviceStats
    next_due: float = 0.0


class GatewayPoller:
    def __init__(self, gateway: GatewayConfig, devices: Iterable[ModbusDevice], client_factory: ClientFactory,
                 sink: ReadingSink, clock: Clock, stamps: TimestampAllocator, sleep: Sleep = asyncio.sleep) -> None:
        self.gateway = gateway
        self.stats = GatewayStats(gateway.id)
        self.devices = {
            device.id: DeviceRuntime(device, plan_for(device, gateway), DeviceStats(device.id, gateway.id, device.unit))
            for device in devices
        }
        self._client_factory = client_factory
        self._client: ModbusClient | None = None
        self._sink = sink
        self._clock = clock
        self._stamps = stamps
        self._sleep = sleep
        self._bus = asyncio.Lock()
        self._line_dirty = False  # a shared line after a timeout: an answer may still be on its way
        self._last_request_end = 0.0

    @property
    def client(self) -> ModbusClient:
        """Made on first use: pymodbus clients need the running loop."""
        if self._client is None:
            self._client = self._client_factory(self.gateway)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # ---- schedule -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll each device every `poll_interval` until cancelled."""
        start = self._clock.now()
        for runtime in self.devices.values():
            runtime.next_due = start
        while True:
            now = self._clock.now()
            due = [r for r in self.devices.values() if r.next_due <= now]
            if due:
                try:
                    await self.poll(due)
                except Exception:  # a bug must not end polling for good; say so and go on
                    log.exception("%s: poll cycle failed", self.gateway.id)
                    await self._sleep(1.0)
                for runtime in due:
                    interval = runtime.device.poll_interval
                    runtime.next_due += interval
                    if runtime.next_due <= now:  # fell behind: keep the cadence from now, no burst
                        runtime.next_due = now + interval
            wake = min(r.next_due for r in self.devices.values())
            await self._clock.sleep(max(0.0, wake - self._clock.now()))

    async def poll(self, runtimes: Sequence[DeviceRuntime] | None = None) -> None:
        """One cycle over `runtimes` (default: all devices), one device after the other."""
        runtimes = list(self.devices.values()) if runtimes is None else list(runtimes)
        started = time.monotonic()
        now = self._clock.now()
        if any(not (r.stats.down and now < r.stats.retry_at) for r in runtimes):
            link_error = await self._connect()
        else:
            link_error = None  # every device is resting: no need to touch the gateway
        for runtime in runtimes:
            if link_error is not None:
                self._gateway_unreachable(runtime, link_error)
            else:
                await self._poll_device(runtime)
        if self.gateway.close_after_cycle:
            self.close()
        elapsed = time.monotonic() - started
        self.stats.cycles += 1
        self.stats.last_cycle_seconds = elapsed
        self.stats.max_cycle_seconds = max(self.stats.max_cycle_seconds, elapsed)

    async def _connect(self) -> ModbusError | None:
        try:
            async with self._bus:
                await self.client.connect(self.gateway.timeout)
        except ModbusError as error:
            self.stats.connect_failures += 1
            self.stats.last_error = error.detail
            if self.stats.available:
                log.warning("gateway %s unreachable: %s; its devices get comm_failure readings until it answers",
                            self.gateway.id, error.detail)
            self.stats.available = False
            return error
        if not self.stats.available:
            log.info("gateway %s reachable again", self.gateway.id)
        self.stats.available = True
        return None

    # ---- one device ------------------------------------------------------------------------------------------

    async def _poll_device(self, runtime: DeviceRuntime) -> None:
        stats = runtime.stats
        if stats.down and self._clock.now() < stats.retry_at:
            stats.polls_skipped += 1
            detail = f"device down, not polled: {stats.last_error}"
            self._sink.accept([r for q in runtime.plan.requests for r in self._failed(q, Quality.COMM_FAILURE, detail)])
            return
        retries = 0 if stats.down else self.gateway.retries  # a down device gets one probe, not the full treatment
        started = time.monotonic()
        readings: list[Reading] = []
        silent: ModbusError | None = None
        for request in runtime.plan.requests:
            if silent is not None:
                readings.extend(self._failed(request, silent.quality, f"not polled: {silent.detail}"))
                continue
            try:
                values = await self._read(runtime, request, retries)
            except ModbusError as error:
                readings.extend(self._failed(request, error.quality, error.detail))
                if error.unreachable:
                    silent = error
                continue
            readings.extend(self._decoded(request, values, self._clock.now_ns()))
        stats.polls += 1
        stats.last_poll_seconds = time.monotonic() - started
        self._record(runtime, silent)
        self._sink.accept(readings)

    def _record(self, runtime: DeviceRuntime, error: ModbusError | None) -> None:
        """Availability, with the failure logged once and the recovery once."""
        stats, device = runtime.stats, runtime.device
        if error is None:
            if not stats.available:
                log.info("device %s (gateway %s, unit %d) answers again after %d failed polls",
                         device.id, self.gateway.id, device.unit, stats.consecutive_failures)
            stats.available, stats.down, stats.consecutive_failures = True, False, 0
            return
        stats.polls_failed += 1
        stats.consecutive_failures += 1
        stats.last_error = error.detail
        if stats.available:
            log.warning("device %s (gateway %s, unit %d) not answering: %s; after %d failed polls it is tried "
                        "every %g s", device.id, self.gateway.id, device.unit, error.detail,
                        self.gateway.down_after, self.gateway.down_retry)
        stats.available = False
        if stats.consecutive_failures >= self.gateway.down_after:
            stats.down = True
            stats.retry_at = self._clock.now() + self.gateway.down_retry

    def _gateway_unreachable(self, runtime: DeviceRuntime, error: ModbusError) -> None:
        """Not the device's fault: no down back-off, but its points say why they have no value."""
        detail = f"gateway {self.gateway.id}: {error.detail}"
        self._sink.accept([r for q in runtime.plan.requests for r in self._failed(q, error.quality, detail)])

    # ---- one request -----------------------------------------------------------------------------------------

    async def _read(self, runtime: DeviceRuntime, request: ReadRequest, retries: int) -> Values:
        unit = runtime.device.unit
        return await self._transact(
            runtime.stats, retries,
            lambda: self.client.read(request.function_code, unit, request.address, request.count,
                                     self.gateway.timeout))

    async def read(self, runtime: DeviceRuntime, function_code: int, address: int, count: int) -> Values:
        """One read between two poll requests (a control read-back), with the gateway's retries."""
        unit = runtime.device.unit
        return await self._transact(
            runtime.stats, self.gateway.retries,
            lambda: self.client.read(function_code, unit, address, count, self.gateway.timeout))

    async def write(self, runtime: DeviceRuntime, function_code: int, address: int, value: int) -> None:
        """FC05/FC06 between two poll requests, with the gateway's retries."""
        unit = runtime.device.unit
        await self._transact(
            runtime.stats, self.gateway.retries,
            lambda: self.client.write(function_code, unit, address, value, self.gateway.timeout))

    async def _transact(self, stats: DeviceStats, retries: int,
                        send: Callable[[], Awaitable[Values | None]]) -> Values:
        """Retries after no answer, and after busy (06) a back-off outside the lock so a write may go meanwhile."""
        attempt = busy = 0
        while True:
            async with self._bus:
                try:
                    return await self._on_bus(stats, send)
                except ExceptionReply as error:
                    if error.code != BUSY or busy >= self.gateway.busy_retries:
                        raise
                    busy += 1
                    stats.busy_retries += 1
                except ModbusError:
                    if attempt >= retries:
                        raise
                    attempt += 1
                    continue
            await self._sleep(self.gateway.busy_backoff)

    async def _on_bus(self, stats: DeviceStats, send: Callable[[], Awaitable[Values | None]]) -> Values:
        """One request on the bus (lock held): settle the line, send, count.

        After a timeout on a shared line the unanswered request's reply may
        still arrive, and with no transaction id it could pass for the reply
        to whatever is asked next. So the line is drained first, before
        retries too: a reply later than `timeout` never counts, which keeps
        the timeout the one contract an installer tunes.
        """
        client = self.client
        if self._line_dirty:
            self._line_dirty = False
            self.stats.late_reply_drains += 1
            await client.discard_late_replies(self.gateway.timeout)
        if self.gateway.pause > 0:
            wait = self._last_request_end + self.gateway.pause - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
        stats.requests += 1
        self.stats.requests += 1
        try:
            result = await send()
        except ExceptionReply:
            stats.responses += 1
            stats.exceptions += 1
            self.stats.responses += 1
            self.stats.exceptions += 1
            raise
        except ModbusError as error:
            stats.no_responses += 1
            self.stats.no_responses += 1
            if client.shared_line and isinstance(error, NoResponse | UnexpectedReply):
                self._line_dirty = True
            raise
        finally:
            self._last_request_end = time.monotonic()
        stats.responses += 1
        self.stats.responses += 1
        return result if result is not None else ()

    # ---- readings --------------------------------------------------------------------------------------------

    def _decoded(self, request: ReadRequest, values: Values, now_ns: int) -> list[Reading]:
        readings = []
        stamp = self._stamps.stamp
        for slot in request.slots:
            if request.is_bits:
                decoded = decode_bit(slot.codec, values, slot.offset)
            else:
                decoded = decode_registers(slot.codec, values, slot.offset)
            readings.append(Reading(slot.key, stamp(slot.key, now_ns), decoded.value, decoded.quality, decoded.detail))
        return readings

    def _failed(self, request: ReadRequest, quality: Quality, detail: str) -> list[Reading]:
        now_ns = self._clock.now_ns()
        stamp = self._stamps.stamp
        return [Reading(slot.key, stamp(slot.key, now_ns), None, quality, detail) for slot in request.slots]
