"""A Modbus gateway hosting simulated devices by unit id, over TCP or RTU.

Served by pymodbus's own `ModbusTcpServer`/`ModbusSerialServer`, with two
replacements, both so the simulator behaves like hardware:
- the datastore is a `ModbusServerContext` subclass that asks the devices
  (`old_simulator = True` makes pymodbus call it directly);
- the request handler answers each request with *its own* unit id and
  transaction id. pymodbus's handler reads them from `last_pdu` after the
  datastore await, so a slow device's late answer would go out stamped as
  the reply to the next request, which no real device does. It also lets a
  device answer any exception code (vendor codes included) or stay silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Literal, cast

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import ModbusIOException, NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.transaction import TransactionManager

from .device import Refused, Silent, SimulatedDevice
from .faults import Fault

MissingUnit = Literal["silent", "exception"]
GATEWAY_TARGET_FAILED = 0x0B


class _Context(ModbusServerContext):
    """The gateway's devices as pymodbus's datastore. Not calling the deprecated base `__init__` is deliberate."""

    def __init__(self, gateway: ModbusGatewaySim) -> None:
        self.old_simulator = True
        self.simdevices: list[Any] = []
        self._gateway = gateway

    def _device(self, device_id: int) -> SimulatedDevice:
        device = self._gateway.devices.get(device_id)
        if device is None:
            raise NoSuchIdException(f"no unit {device_id}")
        return device

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> list[int]:
        device = self._device(device_id)
        if func_code in (5, 6, 15, 16):
            return device.peek(func_code, address, count)  # the read-back of a write
        return await device.read(func_code, address, count)

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: Sequence[int] | Sequence[bool]) -> None:
        await self._device(device_id).write(func_code, address, [int(v) for v in values])

    def device_ids(self) -> list[int]:
        return list(self._gateway.devices)


class _Handler(ServerRequestHandler):
    """One task per request, answered with the request's own ids (see module docstring)."""

    def __init__(self, owner: Any, sim: ModbusGatewaySim) -> None:
        init: Any = super().__init__  # pymodbus leaves it untyped
        init(owner, owner.trace_packet, owner.trace_pdu, owner.trace_connect)
        self._sim = sim

    def _send(self, response: ExceptionResponse | Any, where: Any) -> None:
        send: Any = self.server_send
        send(response, where)

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        try:
            used: int = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:
            response = ExceptionResponse(exc.fcode or 0, ExcCodes.ILLEGAL_FUNCTION, device_id=exc.dev_id,
                                         transaction=exc.transaction_id)
            self._send(response, addr)
            return len(data)
        request, where = self.last_pdu, self.last_addr
        if request is not None:
            self._sim.track(self.loop.create_task(self._answer(request, where)))
        return used

    async def _answer(self, request: Any, where: Any) -> None:
        try:
            response = await request.datastore_update(self.server.context, request.dev_id)
        except Silent:
            return
        except NoSuchIdException:
            if self._sim.missing_unit == "silent":
                return
            response = ExceptionResponse(request.function_code, GATEWAY_TARGET_FAILED)
        except Refused as refusal:
            response = ExceptionResponse(request.function_code, refusal.code)
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        if self._sim.line_time > 0:
            await asyncio.sleep(self._sim.line_time)
        if self.transport is not None:
            self._send(response, where)


class _TcpServer(ModbusTcpServer):
    sim: ModbusGatewaySim

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.sim)


class _SerialServer(ModbusSerialServer):
    sim: ModbusGatewaySim

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.sim)


class ModbusGatewaySim:
    """Several simulated devices behind one TCP gateway or on one RTU line.

    `missing_unit`: what a request for an absent unit gets. On a serial line
    nobody answers ("silent"); TCP gateways usually answer exception 0x0B
    ("exception").
    """

    def __init__(self, devices: Iterable[SimulatedDevice] = (), *, missing_unit: MissingUnit = "silent",
                 line_time: float = 0.0) -> None:
        self.devices: dict[int, SimulatedDevice] = {}
        self.missing_unit: MissingUnit = missing_unit
        # Seconds each answer takes on the RS-485 line behind a gateway (a 9600-baud exchange is about 20 ms);
        # 0 answers as fast as loopback allows.
        self.line_time = line_time
        self._server: _TcpServer | _SerialServer | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        for device in devices:
            self.add(device)

    def add(self, device: SimulatedDevice) -> SimulatedDevice:
        if device.unit in self.devices:
            raise ValueError(f"unit {device.unit} is already {self.devices[device.unit]!r}")
        self.devices[device.unit] = device
        return device

    def remove(self, unit: int) -> None:
        del self.devices[unit]

    def __getitem__(self, unit: int) -> SimulatedDevice:
        return self.devices[unit]

    def set_fault(self, unit: int, fault: str | Fault, delay: float | None = None) -> None:
        self.devices[unit].set_fault(fault, delay)

    @property
    def requests(self) -> int:
        """Requests addressed to hosted devices (the benchmark's count)."""
        return sum(device.requests for device in self.devices.values())

    def requests_by_unit(self) -> dict[int, int]:
        return {unit: device.requests for unit, device in self.devices.items()}

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0,
                        framer: Literal["socket", "rtu"] = "socket") -> int:
        """Listen; port 0 picks a free one. Returns the port."""
        server = _TcpServer(_Context(self), framer=FramerType(framer), address=(host, port),
                            ignore_missing_devices=True)
        await self._serve(server)
        listener = cast(asyncio.Server, server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])
        return self.port

    async def start_rtu(self, serial_path: str, baudrate: int = 9600, parity: str = "N", bytesize: int = 8,
                        stopbits: int = 1) -> None:
        server = _SerialServer(_Context(self), framer=FramerType.RTU, port=serial_path, baudrate=baudrate,
                               parity=parity, bytesize=bytesize, stopbits=stopbits, ignore_missing_devices=True)
        await self._serve(server)

    async def _serve(self, server: _TcpServer | _SerialServer) -> None:
        if self._server is not None:
            raise RuntimeError("this gateway is already serving")
        server.sim = self
        await server.serve_forever(background=True)
        self._server = server

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a reference to a request in progress (a slow answer), so that `stop` can cancel it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        for task in list(self._tasks):
            task.cancel()
        shutdown: Any = server.shutdown
        await shutdown()
