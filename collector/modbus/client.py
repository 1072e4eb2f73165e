"""The one seam between the poller and the wire, and its pymodbus implementation.

The poller only needs "read this, within this time" and "forget whatever
arrives late", so the interface is that small; unit tests pass a hand-written
fake, production passes `pymodbus_client`.

Why the pymodbus client is wrapped rather than used as is (each a failure
reported against collectors built on it):
- pymodbus closes a TCP connection after `retries + 3` unanswered requests in
  a row, so one dead unit behind a gateway takes the gateway's other units
  down with it (home-assistant/core#134076). Here our own timer cancels the
  request before pymodbus's (longer) one fires, so that counter never moves,
  and the poller backs off the dead unit instead.
- On a serial line a reply that comes after the timeout arrives while the
  master waits for the next exchange (libmodbus#83, the "response from
  unexpected slave" class of bugs). `discard_late_replies` swallows
  everything received until the line has been quiet, and every reply is
  checked against its request (function code, unit, size): one that does
  not match is dropped and the response timeout keeps running, as the
  serial line guide (§2.4.1) asks and as libmodbus (PR #860) and
  simonvetter/modbus (#40) were asked to do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from stackwatch.config.devices import ModbusRtuGateway, ModbusTcpGateway

from .errors import ExceptionReply, LinkError, NoResponse, UnexpectedReply

GatewayConfig = ModbusTcpGateway | ModbusRtuGateway
Values = Sequence[int] | Sequence[bool]


class ModbusClient(Protocol):
    @property
    def shared_line(self) -> bool:
        """True when replies carry no transaction id (RTU framing), so a late reply can pass for the next one."""
        ...

    async def connect(self, timeout: float) -> None:
        """Connect if not connected; raise `LinkError` when that fails."""
        ...

    def close(self) -> None: ...

    async def read(self, function_code: int, unit: int, address: int, count: int, timeout: float) -> Values:
        """Values of FC01–04; raise `NoResponse`, `ExceptionReply`, `UnexpectedReply` or `LinkError`."""
        ...

    async def write(self, function_code: int, unit: int, address: int, value: int, timeout: float) -> None:
        """FC05 (value 0/1) or FC06; the same errors as `read`."""
        ...

    async def discard_late_replies(self, quiet: float) -> None:
        """Drop whatever arrives until nothing has arrived for `quiet` seconds."""
        ...


ClientFactory = Callable[[GatewayConfig], ModbusClient]


class PymodbusClient:
    """`ModbusClient` over pymodbus 3.16's asyncio clients, with retries=0: the poller retries."""

    _MAX_DISCARD_FACTOR = 10  # a line that never falls quiet stops being drained after 10 quiet periods

    def __init__(self, gateway: GatewayConfig) -> None:
        self._shared_line = isinstance(gateway, ModbusRtuGateway) or gateway.framer == "rtu"
        self._last_rx = 0.0
        self._discarding = False
        self.discarded_bytes = 0
        slack = gateway.timeout * 2 + 1.0  # pymodbus's own timer must never fire before ours
        self._client: Any
        if isinstance(gateway, ModbusRtuGateway):
            self.where = gateway.port
            self._client = AsyncModbusSerialClient(
                gateway.port, framer=FramerType.RTU, baudrate=gateway.baudrate, bytesize=gateway.bytesize,
                parity=gateway.parity, stopbits=gateway.stopbits, timeout=slack, retries=0,
                reconnect_delay=0, name=gateway.id, trace_packet=self._trace,
            )
        else:
            self.where = f"{gateway.host}:{gateway.port}"
            self._client = AsyncModbusTcpClient(
                gateway.host, port=gateway.port, framer=FramerType.RTU if self._shared_line else FramerType.SOCKET,
                timeout=slack, retries=0, reconnect_delay=0, name=gateway.id, trace_packet=self._trace,
            )

    @property
    def shared_line(self) -> bool:
        return self._shared_line

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            return data
        self._last_rx = time.monotonic()
        if self._discarding:
            return b""  # the framer sees nothing; the buffer is cleared when discarding ends
        return data

    async def connect(self, timeout: float) -> None:
        if self._client.connected:
            return
        try:
            ok = await asyncio.wait_for(self._client.connect(), timeout)
        except (TimeoutError, OSError) as error:
            raise LinkError(f"cannot connect to {self.where}: {error or 'timeout'}") from None
        if not ok:
            raise LinkError(f"cannot connect to {self.where}")

    def close(self) -> None:
        self._client.close()

    async def read(self, function_code: int, unit: int, address: int, count: int, timeout: float) -> Values:
        await self.connect(timeout)
        method = {
            1: self._client.read_coils, 2: self._client.read_discrete_inputs,
            3: self._client.read_holding_registers, 4: self._client.read_input_registers,
        }[function_code]
        response = await self._exchange(lambda: method(address, count=count, device_id=unit),
                                        function_code, unit, count, timeout)
        if function_code in (3, 4):
            return list(response.registers)
        return list(response.bits)[:count]

    async def write(self, function_code: int, unit: int, address: int, value: int, timeout: float) -> None:
        await self.connect(timeout)
        if function_code == 5:
            call = lambda: self._client.write_coil(address, bool(value), device_id=unit)  # noqa: E731
        elif function_code == 6:
            call = lambda: self._client.write_register(address, value, device_id=unit)  # noqa: E731
        else:
            raise ValueError(f"function code {function_code} is not a single write")
        await self._exchange(call, function_code, unit, None, timeout)

    async def _exchange(self, call: Callable[[], Any], function_code: int, unit: int, count: int | None,
                        timeout: float) -> Any:
        """Send and return the matching reply. On a shared line a reply that does not match is dropped and the
        response timeout keeps running (Modbus over serial line guide, §2.4.1): it is some other exchange's."""
        deadline = time.monotonic() + timeout
        response = await self._execute(call, timeout)
        while (problem := self._mismatch(response, function_code, unit, count)) is not None:
            remaining = deadline - time.monotonic()
            if not self._shared_line or remaining <= 0:
                raise UnexpectedReply(problem)
            response = await self._next_reply(remaining, timeout)
        if response.isError():
            raise ExceptionReply(int(response.exception_code))
        return response

    async def _execute(self, call: Callable[[], Any], timeout: float) -> Any:
        try:
            return await asyncio.wait_for(call(), timeout)
        except TimeoutError:
            raise NoResponse(timeout) from None
        except ConnectionException as error:
            self._client.close()
            raise LinkError(f"{self.where}: {error}") from None
        except ModbusException as error:
            raise UnexpectedReply(f"{self.where}: {error}") from None

    async def _next_reply(self, remaining: float, timeout: float) -> Any:
        """Keep listening without sending again (pymodbus delivers the next frame to `response_future`)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._client.ctx.response_future = future
        try:
            return await asyncio.wait_for(future, remaining)
        except TimeoutError:
            raise NoResponse(timeout) from None

    @staticmethod
    def _mismatch(response: Any, function_code: int, unit: int, count: int | None) -> str | None:
        answered = response.function_code & 0x7F
        if answered != function_code:
            return f"reply is for FC{answered:02d}, FC{function_code:02d} was asked"
        if unit and response.dev_id and response.dev_id != unit:
            return f"reply from unit {response.dev_id}, unit {unit} was asked"
        if count is None or response.isError():
            return None
        if function_code in (3, 4) and len(response.registers) != count:
            return f"reply has {len(response.registers)} registers, {count} were asked"
        if function_code in (1, 2) and len(response.bits) != (count + 7) // 8 * 8:
            return f"reply has {len(response.bits)} bits, {count} were asked"
        return None

    async def discard_late_replies(self, quiet: float) -> None:
        self._discarding = True
        started = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                wait = max(started, self._last_rx) + quiet - now
                if wait <= 0 or now - started > quiet * self._MAX_DISCARD_FACTOR:
                    return
                await asyncio.sleep(wait)
        finally:
            self._discarding = False
            ctx = self._client.ctx
            self.discarded_bytes += len(ctx.recv_buffer)
            ctx.recv_buffer = b""


def pymodbus_client(gateway: GatewayConfig) -> ModbusClient:
    return PymodbusClient(gateway)
