"""The Modbus collector: one task per gateway, all gateways concurrently.

Gateways are independent buses, so they run side by side; within one gateway
`GatewayPoller` keeps to one request at a time. Plans are compiled here, at
construction, so a map that cannot be read (a float wider than a request, an
address 0 with one-based addressing) stops start-up instead of failing at
3 a.m.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from stackwatch.clock import Clock
from stackwatch.config.devices import ModbusDevice
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import ReadingSink, TimestampAllocator

from .client import ClientFactory, pymodbus_client
from .decode import Decoded, decode_point
from .gateway import DeviceRuntime, GatewayPoller, Sleep
from .plan import FUNCTION_CODE
from .stats import DeviceStats, GatewayStats


class ModbusCollector:
    def __init__(self, config: SiteConfig, sink: ReadingSink, clock: Clock,
                 client_factory: ClientFactory = pymodbus_client, *,
                 timestamps: TimestampAllocator | None = None, sleep: Sleep = asyncio.sleep) -> None:
        stamps = timestamps or TimestampAllocator()
        devices: dict[str, list[ModbusDevice]] = {}
        for device in config.devices:
            if isinstance(device, ModbusDevice):
                devices.setdefault(device.gateway, []).append(device)
        self.gateways: dict[str, GatewayPoller] = {
            gateway.id: GatewayPoller(gateway, devices[gateway.id], client_factory, sink, clock, stamps, sleep)
            for gateway in config.gateways if devices.get(gateway.id)
        }
        self._devices: dict[str, tuple[GatewayPoller, DeviceRuntime]] = {
            device_id: (poller, runtime)
            for poller in self.gateways.values() for device_id, runtime in poller.devices.items()
        }
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def gateway_stats(self) -> Mapping[str, GatewayStats]:
        return {gateway_id: poller.stats for gateway_id, poller in self.gateways.items()}

    @property
    def device_stats(self) -> Mapping[str, DeviceStats]:
        return {device_id: runtime.stats for device_id, (_, runtime) in self._devices.items()}

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(poller.run(), name=f"modbus:{gateway_id}")
                       for gateway_id, poller in self.gateways.items()]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for poller in self.gateways.values():
            poller.close()

    async def run_cycle_once(self) -> None:
        """Poll every device once now (down devices keep their back-off), gateways concurrently."""
        await asyncio.gather(*(poller.poll() for poller in self.gateways.values()))

    async def write_register(self, device_id: str, address: int, value: int) -> None:
        """FC06 to a device, `address` in the device's own addressing; raises `ModbusError` on failure."""
        poller, runtime = self._devices[device_id]
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"register value {value} is outside 0..65535")
        await poller.write(runtime, 6, self._wire(runtime.device, address), value)

    async def write_coil(self, device_id: str, address: int, value: bool) -> None:
        """FC05 to a device, `address` in the device's own addressing; raises `ModbusError` on failure."""
        poller, runtime = self._devices[device_id]
        await poller.write(runtime, 5, self._wire(runtime.device, address), int(value))

    async def read_point(self, device_id: str, point_id: str) -> Decoded:
        """Read one configured point now (a control read-back); raises `ModbusError` on failure."""
        poller, runtime = self._devices[device_id]
        point = next((p for p in runtime.device.points if p.id == point_id), None)
        if point is None:
            raise KeyError(f"{device_id} has no point {point_id!r}")
        values = await poller.read(runtime, FUNCTION_CODE[point.table], runtime.device.wire_address(point),
                                   point.width)
        return decode_point(point, values)

    async def read_address(self, device_id: str, table: str, address: int) -> int:
        """One coil or register, `address` in the device's own addressing; raises `ModbusError` on failure."""
        poller, runtime = self._devices[device_id]
        values = await poller.read(runtime, FUNCTION_CODE[table], self._wire(runtime.device, address), 1)
        if len(values) < 1:
            raise ValueError(f"{device_id}: empty answer reading {table} {address}")
        return int(values[0])

    @staticmethod
    def _wire(device: ModbusDevice, address: int) -> int:
        wire = address - 1 if device.addressing == "one-based" else address
        if not 0 <= wire <= 0xFFFF:
            raise ValueError(f"{device.id}: address {address} is not on the wire ({device.addressing})")
        return wire
