"""Modbus devices, from the register maps in shared/domain/devices.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .library import DeviceModel, Fragment, Options, register

DEVICES_MD = "shared/domain/devices.md"
VAISALA_INT16_RH = 0x0100  # (unconfirmed) integer register addresses of the HMP110 class
VAISALA_INT16_T = 0x0101
VAISALA_SENTINELS = [0x7FFF, 0x8000, 0x8001]  # ≥ max, not available, ≤ min


def _xy_md02(options: Options, _device: Mapping[str, Any]) -> Fragment:
    scale = 0.1 if int(options["divisor"]) == 10 else 0.01
    clone = options["variant"] == "clone"
    temperature: Fragment = {
        "id": "temperature",
        "quantity": "temperature",
        "unit": "°C",
        "table": "input",
        "address": 0x0000 if clone else 0x0001,
        "type": "uint16" if clone else "int16",
        "scale": scale,
        "valid_min": -40,
        "valid_max": 125,
    }
    if clone:
        temperature["negative_above"] = 10000
    return {
        "addressing": "zero-based",
        "points": [
            temperature,
            {
                "id": "humidity",
                "quantity": "humidity",
                "unit": "%",
                "table": "input",
                "address": 0x0001 if clone else 0x0002,
                "type": "uint16",
                "scale": scale,
                "valid_min": 0,
                "valid_max": 100,
            },
        ],
    }


register(
    DeviceModel(
        name="xy-md02",
        protocol="modbus",
        title="XY-MD02 / SHT20 RS-485 temperature-humidity module",
        source=f"{DEVICES_MD} (XY-MD02 datasheet): FC04 0x0001 int16 ÷10 T, 0x0002 uint16 ÷10 RH",
        build=_xy_md02,
        options={"divisor": 10, "variant": "standard"},
        notes="RTU, address 1, 9600 8N1 (many ship 8E1). divisor: 10 or 100. variant: clone = T at 0x0000, "
        "RH at 0x0001, negatives as raw ≥ 10000.",
    )
)


def _vaisala_hmp110(options: Options, _device: Mapping[str, Any]) -> Fragment:
    if options["registers"] == "int16":
        points: list[Fragment] = [
            {
                "id": "humidity",
                "quantity": "humidity",
                "unit": "%",
                "table": "holding",
                "address": VAISALA_INT16_RH,
                "type": "int16",
                "scale": 0.01,
                "sentinels": VAISALA_SENTINELS,
                "valid_min": 0,
                "valid_max": 100,
            },
            {
                "id": "temperature",
                "quantity": "temperature",
                "unit": "°C",
                "table": "holding",
                "address": VAISALA_INT16_T,
                "type": "int16",
                "scale": 0.01,
                "sentinels": VAISALA_SENTINELS,
                "valid_min": -40,
                "valid_max": 80,
            },
        ]
    else:

        def floating(point_id: str, quantity: str, unit: str, address: int) -> Fragment:
            return {
                "id": point_id,
                "quantity": quantity,
                "unit": unit,
                "table": "holding",
                "address": address,
                "type": "float32",
                "word_order": "little",
                "nan_is_bad": True,
            }

        points = [
            {**floating("humidity", "humidity", "%", 0x0000), "valid_min": 0, "valid_max": 100},
            {**floating("temperature", "temperature", "°C", 0x0002), "valid_min": -40, "valid_max": 80},
            floating("dew_point", "dew_point", "°C", 0x0008),
            floating("absolute_humidity", "absolute_humidity", "g/m³", 0x000E),
        ]
    return {"addressing": "zero-based", "points": points}


register(
    DeviceModel(
        name="vaisala-hmp110",
        protocol="modbus",
        title="Vaisala HMP110 / HMP4 class humidity-temperature probe",
        source=f"{DEVICES_MD}: FC03 float32 least-significant word first; RH 0x0000, T 0x0002, Td 0x0008, a 0x000E",
        build=_vaisala_hmp110,
        options={"registers": "float"},
        notes="19200 8N2, address 240; missing data is a quiet NaN (quality bad). registers: float (default) or "
        "int16 (×0.01 with sentinels 0x7FFF/0x8000/0x8001; addresses 0x0100/0x0101 unconfirmed).",
    )
)


def _comet(_options: Options, _device: Mapping[str, Any]) -> Fragment:
    return {
        "addressing": "zero-based",
        "points": [
            {
                "id": "temperature",
                "quantity": "temperature",
                "unit": "°C",
                "table": "holding",
                "address": 0x0031,
                "type": "int16",
                "scale": 0.1,
                "valid_min": -30,
                "valid_max": 80,
            },
            {
                "id": "humidity",
                "quantity": "humidity",
                "unit": "%",
                "table": "holding",
                "address": 0x0032,
                "type": "int16",
                "scale": 0.1,
                "valid_min": 0,
                "valid_max": 100,
            },
            {
                "id": "dew_point",
                "quantity": "dew_point",
                "unit": "°C",
                "table": "holding",
                "address": 0x0035,
                "type": "int16",
                "scale": 0.1,
            },
        ],
    }


register(
    DeviceModel(
        name="comet-t3510",
        protocol="modbus",
        title="Comet T3510 / T7510 Modbus TCP transmitter",
        source=f"{DEVICES_MD}: FC03 int ×10: T 0x0031, RH 0x0032, dew point 0x0035",
        build=_comet,
        notes="Modbus TCP port 502, any unit id, at most 2 clients (poll from one collector).",
    )
)


def _moxa_e1210(_options: Options, _device: Mapping[str, Any]) -> Fragment:
    return {
        "addressing": "zero-based",
        "points": [{"id": f"di{n}", "quantity": "digital_input", "table": "discrete", "address": n} for n in range(16)],
    }


register(
    DeviceModel(
        name="moxa-e1210",
        protocol="modbus",
        title="Moxa ioLogik E1210 16 digital inputs (doors, motion, dampers)",
        source=f"{DEVICES_MD}: FC02 addr 0–15 = DI0–DI15 (1 = ON)",
        build=_moxa_e1210,
        notes="Name what each input is wired to: points: [{id: di0, quantity: door_open}], use_points: [di0, ...].",
    )
)

_FIRE = 0x0810  # bit 11 (active) with lower byte 0x10 (fire alarm)


def _fire_gateway(options: Options, device: Mapping[str, Any]) -> Fragment:
    zones = int(options["zones"])
    first = int(options["first_address"])
    if not 1 <= zones <= 256:
        raise ValueError("option zones must be 1 to 256")
    rooms = [r.strip() for r in str(options["zone_rooms"]).split(",") if r.strip()]
    if len(rooms) > zones:
        raise ValueError(f"zone_rooms names {len(rooms)} rooms for {zones} zones")
    points: list[Fragment] = []
    for index in range(zones):
        zone = index + 1
        address = first + index
        room = {"room": rooms[index]} if index < len(rooms) else {}
        points += [
            {
                "id": f"zone{zone}_fire",
                "quantity": "fire",
                "table": "holding",
                "address": address,
                "type": "uint16",
                "mask": 0x08FF,
                "equals": _FIRE,
                **room,
            },
            {
                "id": f"zone{zone}_pre_alarm",
                "quantity": "fire_pre_alarm",
                "table": "holding",
                "address": address,
                "type": "uint16",
                "bit": 14,
                **room,
            },
            {
                "id": f"zone{zone}_trouble",
                "quantity": "fire_trouble",
                "table": "holding",
                "address": address,
                "type": "uint16",
                "bit": 13,
                **room,
            },
            {
                "id": f"zone{zone}_disabled",
                "quantity": "fire_zone_disabled",
                "table": "holding",
                "address": address,
                "type": "uint16",
                "bit": 9,
                **room,
            },
            {
                "id": f"zone{zone}_status",
                "quantity": "fire_zone_status",
                "table": "holding",
                "address": address,
                "type": "uint16",
                **room,
            },
        ]
    return {"addressing": "zero-based", "points": points}


register(
    DeviceModel(
        name="notifier-fire-gateway",
        protocol="modbus",
        title="Notifier / Honeywell-style fire panel Modbus gateway (one register per zone)",
        source=f"{DEVICES_MD}: upper byte bits 14 pre-alarm, 13 trouble, 11 active, 9 disabled; "
        "lower byte 0x10 fire alarm when bit 11 is set",
        build=_fire_gateway,
        options={"zones": 8, "first_address": 0, "zone_rooms": ""},
        notes="Unit id selects the panel node. zone_rooms: comma-separated room ids, zone 1 first. "
        "zoneN_status keeps the raw word for audit.",
    )
)


def _rle_seahawk(_options: Options, _device: Mapping[str, Any]) -> Fragment:
    def status_bit(point_id: str, quantity: str, bit: int) -> Fragment:
        return {"id": point_id, "quantity": quantity, "table": "input", "address": 1, "type": "uint16", "bit": bit}

    return {
        "addressing": "one-based",
        "points": [
            status_bit("leak", "water_leak", 0),
            status_bit("cable_break", "leak_cable_break", 1),
            status_bit("contamination", "leak_contamination", 2),
            status_bit("summary_alarm", "leak_summary_alarm", 3),
            {"id": "leak_distance", "quantity": "leak_distance", "table": "input", "address": 2, "type": "uint16"},
            {
                "id": "distance_units",
                "quantity": "leak_distance_units",
                "table": "input",
                "address": 3,
                "type": "uint16",
            },
            {
                "id": "leak_current",
                "quantity": "leak_current",
                "unit": "µA",
                "table": "input",
                "address": 4,
                "type": "uint16",
            },
            {"id": "cable_length", "quantity": "leak_cable_length", "table": "input", "address": 5, "type": "uint16"},
        ],
    }


register(
    DeviceModel(
        name="rle-seahawk",
        protocol="modbus",
        title="RLE SeaHawk / LD-series water-leak controller",
        source=f"{DEVICES_MD}: FC04 30001 status bits (b0 leak, b1 cable break, b2 contamination, b3 summary), "
        "30002 distance, 30003 units (1 ft, 0 m), 30004 current µA, 30005 cable length",
        build=_rle_seahawk,
        notes="Register numbers as the manual prints them (one-based).",
    )
)


ADAM_CHANNELS = 6
ADAM_FIRST_RELAY = 16  # devices.md: "relay/DO coils from addr 16"
ADAM_LOADS = ("dehumidifier", "humidifier", "air_handling", "damper", "valve", "heater", "cooler")
ADAM_SETTLE = 3.0  # s a load's running contact may take beyond `feedback_delay` to follow its relay


def _adam_6060(options: Options, _device: Mapping[str, Any]) -> Fragment:
    loads: dict[int, str] = {}
    for relay in range(ADAM_CHANNELS):
        load = str(options[f"relay{relay}"] or "")
        if load and load not in ADAM_LOADS:
            raise ValueError(f"option relay{relay}: {load!r} is not a load; one of {', '.join(ADAM_LOADS)}")
        if load:
            loads[relay] = load
    feedback = [int(options[f"feedback{n}"]) for n in range(ADAM_CHANNELS)]
    if any(not 0 <= relay < ADAM_CHANNELS for relay in feedback):
        raise ValueError(f"options feedbackN name a relay 0..{ADAM_CHANNELS - 1}")
    delay = float(options["feedback_delay"])
    if delay < 0:
        raise ValueError("option feedback_delay cannot be negative")
    points: list[Fragment] = [
        {"id": f"di{n}", "quantity": "digital_input", "table": "discrete", "address": n} for n in range(ADAM_CHANNELS)
    ]
    points += [
        {"id": f"relay{n}", "quantity": "relay", "table": "coil", "address": ADAM_FIRST_RELAY + n}
        for n in range(ADAM_CHANNELS)
    ]
    actuators: list[Fragment] = []
    for relay in range(ADAM_CHANNELS):
        actuator: Fragment = {"id": f"relay{relay}", "kind": "switch", "table": "coil",
                              "address": ADAM_FIRST_RELAY + relay}
        contacts = [n for n, wired in enumerate(feedback) if wired == relay]
        if relay in loads and contacts:  # the load's running contact proves it runs; else the coil is read back
            actuator |= {"readback": f"di{contacts[0]}", "settle": delay + ADAM_SETTLE}
        actuators.append(actuator)
    return {"addressing": "zero-based", "points": points, "actuators": actuators}


register(
    DeviceModel(
        name="adam-6060",
        protocol="modbus",
        title="Advantech ADAM-6060 class relay module: 6 digital inputs, 6 relays (dehumidifiers, AHU, dampers)",
        source=f"{DEVICES_MD}: DIs from addr 0 (FC01/02), relay/DO coils from addr 16",
        build=_adam_6060,
        options={**{f"relay{n}": "" for n in range(ADAM_CHANNELS)}, **{f"feedback{n}": n for n in range(ADAM_CHANNELS)},
                 "feedback_delay": 2.0},
        notes="Points di0–di5 (FC02 0–5) and relay0–relay5 (coils 16–21, FC05/FC15 write); actuators relay0–relay5. "
        f"relayN: the load relay N switches ({', '.join(ADAM_LOADS)}); feedbackN: the relay whose load's running "
        "contact is wired to DI N (default N); a relay with a load and a contact is read back on that DI, within "
        "feedback_delay (default 2 s) + 3 s. Own `actuators:` replace the model's.",
    )
)

HVAC_SETPOINT_MIN, HVAC_SETPOINT_MAX = 10.0, 30.0  # °C the controller accepts (unconfirmed)


def _hvac_controller(_options: Options, _device: Mapping[str, Any]) -> Fragment:
    def temperature(point_id: str, quantity: str, address: int) -> Fragment:
        return {"id": point_id, "quantity": quantity, "unit": "°C", "table": "input", "address": address,
                "type": "int16", "scale": 0.1, "valid_min": -20, "valid_max": 60}

    def status(point_id: str, quantity: str, bit: int) -> Fragment:
        return {"id": point_id, "quantity": quantity, "table": "input", "address": 2, "type": "uint16", "bit": bit}

    return {
        "addressing": "zero-based",
        "points": [
            {"id": "run", "quantity": "run_command", "table": "holding", "address": 0, "type": "uint16"},
            {"id": "setpoint", "quantity": "temperature_setpoint", "unit": "°C", "table": "holding", "address": 1,
             "type": "int16", "scale": 0.1},
            temperature("supply_temperature", "supply_temperature", 0),
            temperature("return_temperature", "return_temperature", 1),
            status("running", "running", 0),
            status("compressor", "compressor_running", 1),
            status("fault", "unit_fault", 2),
            {"id": "setpoint_active", "quantity": "temperature_setpoint_active", "unit": "°C", "table": "input",
             "address": 3, "type": "int16", "scale": 0.1},
        ],
        "actuators": [
            {"id": "run", "kind": "switch", "table": "holding", "address": 0, "type": "uint16", "readback": "running",
             "settle": 30.0},
            {"id": "setpoint", "kind": "setpoint", "table": "holding", "address": 1, "type": "int16", "scale": 0.1,
             "min": HVAC_SETPOINT_MIN, "max": HVAC_SETPOINT_MAX, "readback": "setpoint_active"},
        ],
    }


register(
    DeviceModel(
        name="hvac-controller",
        protocol="modbus",
        title="Precision air-conditioner (CRAC) controller, (unconfirmed) generic map",
        source="(unconfirmed) generic map: holding 0 run, 1 set-point ×10 (10.0–30.0 °C, else exception 03); "
        "input 0 supply, 1 return air ×10, 2 status (b0 running, b1 compressor, b2 fault), 3 set-point in effect ×10",
        build=_hvac_controller,
        notes="Check the unit's own manual: vendors' maps differ. Actuators run (read back on `running`) and "
        "setpoint (°C, 10–30, read back on `setpoint_active`). Supply and return air are not room temperature "
        "(quantities supply_temperature, return_temperature): they raise no room climate alarms.",
    )
)
