"""Actuator writes and read-backs through the Modbus collector, so control shares each gateway's bus lock."""

from __future__ import annotations

from collector.modbus.poller import ModbusCollector
from stackwatch.readings import Quality

from .plan import ActuatorPlan


class ReadBackError(Exception):
    """The read-back point gave no usable value (sensor fault, sentinel)."""


class ModbusActuatorIO:
    def __init__(self, collector: ModbusCollector) -> None:
        self.collector = collector

    async def write(self, actuator: ActuatorPlan, raw: int) -> None:
        spec = actuator.spec
        if spec.table == "coil":
            await self.collector.write_coil(actuator.device, spec.address, bool(raw))
        else:
            await self.collector.write_register(actuator.device, spec.address, raw)

    async def read_back(self, actuator: ActuatorPlan) -> float:
        spec = actuator.spec
        if spec.readback is None:
            return actuator.decode(await self.collector.read_address(actuator.device, spec.table, spec.address))
        decoded = await self.collector.read_point(actuator.device, spec.readback)
        if decoded.quality is not Quality.GOOD or decoded.value is None or isinstance(decoded.value, str):
            raise ReadBackError(f"{actuator.device}.{spec.readback} read {decoded.quality.value}"
                                + (f" ({decoded.detail})" if decoded.detail else ""))
        return float(decoded.value)
