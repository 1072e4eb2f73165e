"""The devices of shared/domain/devices.md, each producing its registers from a room.

Addresses are wire (zero-based) addresses. Values marked (unconfirmed) were
not found in a primary source and are named constants so they can be
corrected in one place.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

from simulators.climate import LOADS
from simulators.room import RoomModel, RoomState

from .device import ILLEGAL_ADDRESS, Now, Refused, SimulatedDevice, int16


def float32_low_word_first(value: float) -> tuple[int, int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return low, high


def absolute_humidity(temperature: float, humidity: float) -> float:
    """g/m³ from T (°C) and RH (%), Magnus form over water."""
    vapour_hpa = humidity / 100.0 * 6.112 * math.exp(17.62 * temperature / (243.12 + temperature))
    return 216.7 * vapour_hpa / (273.15 + temperature)


class XyMd02(SimulatedDevice):
    """SHT20 RS-485 module: FC04 int16 T and uint16 RH, config in FC03 0x0101–0x0104.

    Options: `divisor` 10 (default) or 100; `variant` "clone" for units with
    T at 0x0000, RH at 0x0001 and negatives as raw ≥ 10000.
    Writing the correction registers moves the readings, as on the device.
    """

    model = "xy-md02"
    OPTIONS = frozenset({"divisor", "variant"})
    TEMPERATURE = 0x0001
    HUMIDITY = 0x0002
    CLONE_TEMPERATURE = 0x0000
    CLONE_HUMIDITY = 0x0001
    CLONE_NEGATIVE = 10000
    ADDRESS, BAUD, T_CORRECTION, RH_CORRECTION = 0x0101, 0x0102, 0x0103, 0x0104
    SENSOR_FAULT = 0x7FFF  # (unconfirmed) what a unit with a failed SHT20 reads

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.divisor = int(self.options.get("divisor", 10))
        if self.divisor not in (10, 100):
            raise ValueError("xy-md02 divisor is 10 or 100")
        self.clone = self.options.get("variant", "standard") == "clone"
        self.t_address = self.CLONE_TEMPERATURE if self.clone else self.TEMPERATURE
        self.rh_address = self.CLONE_HUMIDITY if self.clone else self.HUMIDITY
        self.blocks = {4: [(self.t_address, self.rh_address + 1)], 3: [(self.ADDRESS, self.RH_CORRECTION + 1)]}
        self.holding = {self.ADDRESS: unit, self.BAUD: 9600, self.T_CORRECTION: 0, self.RH_CORRECTION: 0}

    def _correction(self, address: int) -> float:
        raw = self.holding[address]
        return (raw - 0x10000 if raw & 0x8000 else raw) / 10.0

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        if table == 3:
            return self.holding
        t = (state.temperature + self._correction(self.T_CORRECTION)) * self.divisor
        rh = (state.humidity + self._correction(self.RH_CORRECTION)) * self.divisor
        t_raw = (self.CLONE_NEGATIVE + round(-t) if t < 0 else round(t)) if self.clone else int16(t)
        return {self.t_address: t_raw, self.rh_address: max(0, min(0xFFFF, round(rh)))}

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        if table == 3:
            return self.holding
        return {self.t_address: self.SENSOR_FAULT, self.rh_address: self.SENSOR_FAULT}


class VaisalaHmp110(SimulatedDevice):
    """FC03 only: float32 low word first, and int16 ×100 copies with range sentinels."""

    model = "vaisala-hmp110"
    OPTIONS = frozenset({"registers"})  # float or int16: it serves both; the option picks the collector's points
    RH, T, TD, AH = 0x0000, 0x0002, 0x0008, 0x000E
    RH_INT = 0x0100  # (unconfirmed)
    T_INT = 0x0101  # (unconfirmed)
    AT_OR_ABOVE_MAX, NOT_AVAILABLE, AT_OR_BELOW_MIN = 0x7FFF, 0x8000, 0x8001

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.blocks = {3: [(0x0000, 0x0020), (0x0100, 0x0110)]}

    @classmethod
    def scaled_int(cls, value: float) -> int:
        raw = round(value * 100)
        if raw >= 0x7FFF:
            return cls.AT_OR_ABOVE_MAX
        if raw <= -0x7FFF:
            return cls.AT_OR_BELOW_MIN
        return raw & 0xFFFF

    def _registers(self, rh: float, t: float, td: float, ah: float, rh_int: int, t_int: int) -> dict[int, int]:
        words: dict[int, int] = {}
        for address, value in ((self.RH, rh), (self.T, t), (self.TD, td), (self.AH, ah)):
            words[address], words[address + 1] = float32_low_word_first(value)
        words[self.RH_INT], words[self.T_INT] = rh_int, t_int
        return words

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        t, rh = state.temperature, state.humidity
        return self._registers(rh, t, state.dew_point, absolute_humidity(t, rh),
                               self.scaled_int(rh), self.scaled_int(t))

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        nan = math.nan  # "missing data is a quiet NaN, not an exception"
        return self._registers(nan, nan, nan, nan, self.NOT_AVAILABLE, self.NOT_AVAILABLE)


class CometT3510(SimulatedDevice):
    """Modbus TCP transmitter, FC03 int16 ×10: T 0x0031, RH 0x0032, dew point 0x0035."""

    model = "comet-t3510"
    T, RH, DEW_POINT = 0x0031, 0x0032, 0x0035
    SENSOR_ERROR = -9999  # (unconfirmed) Comet's error value for a failed probe

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.blocks = {3: [(0x0030, 0x0040)]}

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        return {self.T: int16(state.temperature * 10), self.RH: int16(state.humidity * 10),
                self.DEW_POINT: int16(state.dew_point * 10)}

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        error = int16(self.SENSOR_ERROR)
        return {self.T: error, self.RH: error, self.DEW_POINT: error}


class MoxaE1210(SimulatedDevice):
    """16 digital inputs: FC02 bits 0–15 and FC04 0x0030 as a mask. DI0 door contact open, DI1 motion.

    `inputs` can be set by a test or scenario for the other channels.
    """

    model = "moxa-e1210"
    DOOR_OPEN, MOTION = 0, 1
    MASK = 0x0030

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.blocks = {2: [(0, 16)], 4: [(self.MASK, self.MASK + 1)]}
        self.inputs = [False] * 16

    def _bits(self, state: RoomState) -> list[bool]:
        bits = list(self.inputs)
        bits[self.DOOR_OPEN] = bits[self.DOOR_OPEN] or state.door_open
        bits[self.MOTION] = bits[self.MOTION] or state.motion
        return bits

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        bits = self._bits(state)
        if table == 2:
            return {index: int(bit) for index, bit in enumerate(bits)}
        return {self.MASK: sum(1 << index for index, bit in enumerate(bits) if bit)}


class NotifierFireGateway(SimulatedDevice):
    """One holding register per zone from `first_address` (options `zones`, default 8, and `first_address`).

    Zone N follows the fire / pre_alarm / trouble of the N-th room of option
    `zone_rooms` (comma-separated ids, looked up in `rooms`); without it zone
    1 follows the device's room. `zone_words` overrides any zone's word.
    """

    model = "notifier-fire-gateway"
    OPTIONS = frozenset({"zones", "first_address", "zone_rooms"})
    PRE_ALARM, TROUBLE, ACTIVE, ENABLED = 1 << 14, 1 << 13, 1 << 11, 1 << 10
    FIRE = 0x10  # lower byte, meaningful with ACTIVE
    NO_DATA = 0xFFFF  # (unconfirmed) what the gateway sends for a node it lost

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.zones = int(self.options.get("zones", 8))
        self.first_address = int(self.options.get("first_address", 0))
        if not 1 <= self.zones <= 125:
            raise ValueError("zones is 1..125")
        names = [n.strip() for n in str(self.options.get("zone_rooms", "")).split(",") if n.strip()]
        unknown = [n for n in names if n not in self.rooms]
        if unknown:
            raise ValueError(f"zone_rooms names room {unknown[0]!r}, which was not passed in `rooms`")
        if len(names) > self.zones:
            raise ValueError(f"zone_rooms names {len(names)} rooms for {self.zones} zones")
        self.zone_rooms: dict[int, RoomModel] = (
            {zone: self.rooms[name] for zone, name in enumerate(names, start=1)} if names else {1: room})
        self.blocks = {3: [(self.first_address, self.first_address + self.zones)]}
        self.zone_words: dict[int, int] = {}

    def zone_word(self, zone: int, state: RoomState | None) -> int:
        if zone in self.zone_words:
            return self.zone_words[zone]
        word = self.ENABLED
        if state is not None:
            if state.fire:
                word |= self.ACTIVE | self.FIRE
            if state.pre_alarm:
                word |= self.PRE_ALARM
            if state.trouble:
                word |= self.TROUBLE
        return word

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        now = self.now()
        states = {zone: (state if room is self.room else room.state(now)) for zone, room in self.zone_rooms.items()}
        return {self.first_address + zone - 1: self.zone_word(zone, states.get(zone))
                for zone in range(1, self.zones + 1)}

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        return {self.first_address + zone: self.NO_DATA for zone in range(self.zones)}


class RleSeahawk(SimulatedDevice):
    """Leak controller, FC04 30001–30005 (wire 0–4); config FC03 40001 threshold, 40016 alarm delay.

    Options: `cable_length` (default 30), `units` (0 m, 1 ft; default 0), `leak_distance` (default 12).
    `cable_break` and `contamination` can be set by a test or scenario.
    """

    model = "rle-seahawk"
    OPTIONS = frozenset({"cable_length", "units", "leak_distance"})
    STATUS, DISTANCE, UNITS, CURRENT, CABLE_LENGTH = 0, 1, 2, 3, 4
    LEAK, CABLE_BREAK, CONTAMINATION, SUMMARY = 1, 2, 4, 8
    THRESHOLD, ALARM_DELAY = 0, 15
    LEAK_CURRENT, DRY_CURRENT = 250, 3  # µA
    NO_READING = 0xFFFF  # (unconfirmed)

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.blocks = {4: [(0, 5)], 3: [(0, 16)]}
        self.holding = {address: 0 for address in range(16)}
        self.holding[self.THRESHOLD] = 120
        self.holding[self.ALARM_DELAY] = 10
        self.cable_break = False
        self.contamination = False

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        if table == 3:
            return self.holding
        status = (self.LEAK if state.water_leak else 0) | (self.CABLE_BREAK if self.cable_break else 0)
        status |= self.CONTAMINATION if self.contamination else 0
        if status:
            status |= self.SUMMARY
        return {
            self.STATUS: status,
            self.DISTANCE: int(self.options.get("leak_distance", 12)) if state.water_leak else 0,
            self.UNITS: int(self.options.get("units", 0)),
            self.CURRENT: self.LEAK_CURRENT if state.water_leak else self.DRY_CURRENT,
            self.CABLE_LENGTH: int(self.options.get("cable_length", 30)),
        }

    def sentinel_table(self, table: int, state: RoomState) -> Mapping[int, int]:
        values = dict(self.table(table, state))
        if table == 4:
            values[self.DISTANCE] = values[self.CURRENT] = self.NO_READING
        return values


class Adam6060(SimulatedDevice):
    """Advantech ADAM-6060 class relay module: DI0–DI5 at FC02 (and FC01) 0–5, relays RL0–RL5 as coils 16–21.

    Options (the wiring): `relay0`..`relay5` name the load each relay switches in the room (one of
    `simulators.climate.LOADS`); `feedback0`..`feedback5` the relay whose load's running contact is wired to
    that DI (default: DI n ← load n); `feedback_delay` seconds before a DI follows (default 2).
    A load runs while its relay is on and the unit is healthy; under `ignore-commands` (or `:N` for relay N)
    and `tripped` a relay still reads back what was written, but its load does not run and its DI stays 0.
    """

    model = "adam-6060"
    CHANNELS = 6
    FIRST_RELAY = 16  # devices.md: "relay/DO coils from addr 16"
    DEFAULT_FEEDBACK_DELAY = 2.0
    OPTIONS = frozenset({f"relay{n}" for n in range(CHANNELS)} | {f"feedback{n}" for n in range(CHANNELS)}
                        | {"feedback_delay"})

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.loads: dict[int, str] = {}
        for relay in range(self.CHANNELS):
            load = self.options.get(f"relay{relay}")
            if load in (None, ""):
                continue
            if load not in LOADS:
                raise ValueError(f"adam-6060 relay{relay}: {load!r} is not a load; one of {', '.join(LOADS)}")
            self.loads[relay] = str(load)
        self.feedback = [int(self.options.get(f"feedback{n}", n)) for n in range(self.CHANNELS)]
        if any(not 0 <= relay < self.CHANNELS for relay in self.feedback):
            raise ValueError(f"adam-6060 feedbackN names a relay 0..{self.CHANNELS - 1}")
        self.feedback_delay = float(self.options.get("feedback_delay", self.DEFAULT_FEEDBACK_DELAY))
        if self.feedback_delay < 0:
            raise ValueError("adam-6060 feedback_delay cannot be negative")
        relays = (self.FIRST_RELAY, self.FIRST_RELAY + self.CHANNELS)
        self.blocks = {1: [(0, self.CHANNELS), relays], 2: [(0, self.CHANNELS)]}
        self.coils = {self.FIRST_RELAY + relay: False for relay in range(self.CHANNELS)}
        # per relay: (since, running) in time order, so a DI shows what ran `feedback_delay` seconds ago
        self._runs: list[list[tuple[float, bool]]] = [[(-math.inf, False)] for _ in range(self.CHANNELS)]
        physics = room.physics
        if physics is not None:
            for relay, load in self.loads.items():
                physics.wire(load, self.source(relay))

    def source(self, relay: int) -> str:
        return f"{self.model}:{self.unit}:relay{relay}"

    def relay(self, relay: int) -> bool:
        return bool(self.coils[self.FIRST_RELAY + relay])

    def load_running(self, relay: int) -> bool:
        """Whether the load on `relay` runs now: its relay is on and the unit follows its commands."""
        return self.relay(relay) and not self.fault.ignores(relay)

    def running_at(self, relay: int, at: float) -> bool:
        runs = self._runs[relay]
        for since, running in reversed(runs):
            if since <= at:
                return running
        return False

    def _sync(self) -> None:
        now = self.now()
        physics = self.room.physics
        for relay in range(self.CHANNELS):
            running = self.load_running(relay)
            runs = self._runs[relay]
            if runs[-1][1] == running:
                continue
            runs.append((now, running))
            del runs[:-16]  # a DI needs only the last few seconds
            if physics is not None and relay in self.loads:
                physics.set_load(self.loads[relay], running, now, self.source(relay))

    def written(self, table: int, address: int, count: int) -> None:
        self._sync()

    def fault_changed(self) -> None:
        self._sync()

    def inputs(self) -> list[bool]:
        """DI0–DI5: the running contact of the load each is wired to, `feedback_delay` seconds late."""
        at = self.now() - self.feedback_delay
        return [self.running_at(relay, at) for relay in self.feedback]

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        inputs = {channel: int(bit) for channel, bit in enumerate(self.inputs())}
        if table == 2:
            return inputs
        return {**inputs, **{address: int(on) for address, on in self.coils.items()}}


class HvacController(SimulatedDevice):
    """(unconfirmed) generic map of a precision air-conditioner (CRAC) controller.

    Holding 0 run command (0/1), holding 1 set-point ×10 (int16 °C; refused with exception 03 outside
    10.0–30.0 °C). Input 0 supply-air and 1 return-air temperature ×10 (int16), input 2 status bits (bit 0
    running, 1 compressor on, 2 fault), input 3 the set-point in effect ×10. It starts running at the room's
    set-point. Under `ignore-commands` writes are accepted and read back but running and the set-point in
    effect keep what they were; `tripped` stops the unit and sets the fault bit.
    """

    model = "hvac-controller"
    RUN, SETPOINT = 0, 1  # holding
    SUPPLY, RETURN, STATUS, SETPOINT_ACTIVE = 0, 1, 2, 3  # input
    RUNNING, COMPRESSOR, FAULT = 1 << 0, 1 << 1, 1 << 2
    SETPOINT_MIN, SETPOINT_MAX = 100, 300  # ×10 °C (unconfirmed)
    ILLEGAL_VALUE = 0x03
    # Supply air leaves the coil this many K from the return per K/h the unit moves the room: a CRAC cooling at
    # its full 1.5 K/h blows air about 9 K colder than it takes in (typical 8–12 K across the coil).
    SUPPLY_SPREAD = 6.0
    COMPRESSOR_BAND = 0.2  # K above the set-point before the compressor runs

    def __init__(self, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                 rooms: Mapping[str, RoomModel] | None = None) -> None:
        super().__init__(unit, room, now, options, rooms)
        self.blocks = {3: [(self.RUN, self.SETPOINT + 1)], 4: [(self.SUPPLY, self.SETPOINT_ACTIVE + 1)]}
        setpoint = min(self.SETPOINT_MAX, max(self.SETPOINT_MIN, round(room.t_set * 10)))
        self.holding = {self.RUN: 1, self.SETPOINT: setpoint}
        self.effective: tuple[bool, int] = (True, setpoint)  # (running, set-point ×10) the unit acts on
        self._sync()

    @property
    def source(self) -> str:
        return f"{self.model}:{self.unit}"

    @property
    def setpoint_active(self) -> float:
        return self.effective[1] / 10.0

    def check_write(self, table: int, address: int, values: list[int]) -> None:
        for offset, value in enumerate(values):
            if address + offset == self.SETPOINT:
                raw = value - 0x10000 if value & 0x8000 else value
                if not self.SETPOINT_MIN <= raw <= self.SETPOINT_MAX:
                    raise Refused(self.ILLEGAL_VALUE)
            elif address + offset == self.RUN and value not in (0, 1):
                raise Refused(self.ILLEGAL_VALUE)
            elif address + offset not in self.holding:
                raise Refused(ILLEGAL_ADDRESS)

    def _sync(self) -> None:
        if self.fault.kind == "tripped":
            self.effective = (False, self.effective[1])
        elif not self.fault.ignores():
            raw = self.holding[self.SETPOINT]
            self.effective = (bool(self.holding[self.RUN]), raw - 0x10000 if raw & 0x8000 else raw)
        physics = self.room.physics
        if physics is not None:
            physics.set_hvac(self.effective[0], self.setpoint_active, self.now(), self.source)

    def written(self, table: int, address: int, count: int) -> None:
        self._sync()

    def fault_changed(self) -> None:
        self._sync()

    def table(self, table: int, state: RoomState) -> Mapping[int, int]:
        if table == 3:
            return self.holding
        running, setpoint = self.effective
        physics = self.room.physics
        if physics is not None:
            rate = physics.hvac_rates.get(self.source, 0.0) if running else 0.0
            cooling = running and rate < 0.0
        else:  # a room without physics: the unit cools whenever the room is warmer than its set-point
            cooling = running and state.temperature > self.setpoint_active + self.COMPRESSOR_BAND
            rate = -1.0 if cooling else 0.0
        status = (self.RUNNING if running else 0) | (self.COMPRESSOR if cooling else 0)
        status |= self.FAULT if self.fault.kind == "tripped" else 0
        return {
            self.SUPPLY: int16((state.temperature + rate * self.SUPPLY_SPREAD) * 10),
            self.RETURN: int16(state.temperature * 10),
            self.STATUS: status,
            self.SETPOINT_ACTIVE: setpoint & 0xFFFF,
        }


MODELS: dict[str, type[SimulatedDevice]] = {
    cls.model: cls for cls in (XyMd02, VaisalaHmp110, CometT3510, MoxaE1210, NotifierFireGateway, RleSeahawk,
                               Adam6060, HvacController)
}
ACTUATOR_MODELS = frozenset({Adam6060.model, HvacController.model})  # a room with one of these gets physics


def make_device(model: str, unit: int, room: RoomModel, now: Now, options: Mapping[str, Any] | None = None,
                rooms: Mapping[str, RoomModel] | None = None) -> SimulatedDevice:
    """A device by model name; `options` are the site file's `model_options`, `rooms` the other rooms it reports."""
    try:
        cls = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown device model {model!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls(unit, room, now, options, rooms)
