"""MQTT sensors as their ecosystems publish them (Zigbee2MQTT, Tasmota, Shelly), driven by a room model.

Written from shared/domain/devices.md, not from stackwatch's config or code, so
that the collector is tested against an independent stand-in for the hardware.
Each device turns the room's state at an instant of the injected clock into the
exact topics and payloads the real device sends; `MqttSim` publishes them
through one paho client. Faults are switched per device at run time.

A device's `topic` is its own name in its ecosystem (Zigbee2MQTT friendly name,
Tasmota topic, Shelly id), from which the model builds its real topics, as a
site file does for a device with `model:`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from .room import RoomModel, RoomState

FAULTS = ("malformed", "oversized", "offline", "duplicate", "out-of-order")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _pressure(at: float) -> float:
    """Barometric pressure wanders slowly; rooms do not drive it."""
    return 1013.0 + 6.0 * math.sin(at / 43_200.0)


@dataclass(frozen=True)
class _Model:
    state: Callable[[MqttDeviceSim, RoomState, float], list[Message]]
    availability: Callable[[MqttDeviceSim, bool], Message] | None
    plain: bool = False  # payloads are plain numbers, not JSON


# Zigbee2MQTT -------------------------------------------------------------------------------------------------

def _z2m_topic(device: MqttDeviceSim) -> str:
    return f"{device.options.get('base_topic', 'zigbee2mqtt')}/{device.topic}"


def _z2m_availability(device: MqttDeviceSim, online: bool) -> Message:
    word = "online" if online else "offline"
    payload = word.encode() if device.options.get("legacy_availability") else _json({"state": word})
    return Message(f"{_z2m_topic(device)}/availability", payload, retain=True)


def _z2m(keys: Callable[[MqttDeviceSim, RoomState, float], dict[str, Any]]) -> _Model:
    def state(device: MqttDeviceSim, room: RoomState, at: float) -> list[Message]:
        document = {"battery": 97, "voltage": 3015, "linkquality": 120, **keys(device, room, at), **device.values}
        return [Message(_z2m_topic(device), _json(dict(sorted(document.items()))))]
    return _Model(state, _z2m_availability)


def _th_keys(_device: MqttDeviceSim, room: RoomState, at: float) -> dict[str, Any]:
    return {"temperature": round(room.temperature, 2), "humidity": round(room.humidity, 2),
            "pressure": round(_pressure(at), 1)}


def _leak_keys(_device: MqttDeviceSim, room: RoomState, _at: float) -> dict[str, Any]:
    return {"water_leak": room.water_leak, "battery_low": False}


def _door_keys(_device: MqttDeviceSim, room: RoomState, _at: float) -> dict[str, Any]:
    return {"contact": not room.door_open}  # true = closed


def _smoke_keys(_device: MqttDeviceSim, room: RoomState, _at: float) -> dict[str, Any]:
    smoke = room.smoke or room.fire
    return {"smoke": smoke, "smoke_density": 9 if smoke else 0, "battery_low": False, "tamper": False, "test": False}


# Tasmota -----------------------------------------------------------------------------------------------------

def _tasmota_state(device: MqttDeviceSim, room: RoomState, at: float) -> list[Message]:
    sensor = str(device.options.get("sensor", "AM2301"))
    zone = ZoneInfo(str(device.options.get("timezone", "UTC")))
    local = datetime.fromtimestamp(at, UTC).astimezone(zone).replace(tzinfo=None)
    readings: dict[str, Any] = {"Temperature": round(room.temperature, 1), "Humidity": round(room.humidity, 1)}
    document: dict[str, Any] = {"Time": local.isoformat(timespec="seconds")}
    if sensor.upper().startswith("BME"):
        readings["Pressure"] = round(_pressure(at), 1)
        document.update({sensor: readings, "PressureUnit": "hPa"})
    else:
        document[sensor] = readings
    document["TempUnit"] = "C"
    return [Message(f"tele/{device.topic}/SENSOR", _json(document))]


def _tasmota_lwt(device: MqttDeviceSim, online: bool) -> Message:
    return Message(f"tele/{device.topic}/LWT", b"Online" if online else b"Offline", retain=True)


# Shelly ------------------------------------------------------------------------------------------------------

def _shelly_gen1_base(device: MqttDeviceSim) -> str:
    return f"{device.options.get('prefix', 'shellies')}/{device.topic}"


def _shelly_gen1_state(device: MqttDeviceSim, room: RoomState, _at: float) -> list[Message]:
    base = f"{_shelly_gen1_base(device)}/sensor"
    return [
        Message(f"{base}/temperature", f"{room.temperature:.2f}".encode()),
        Message(f"{base}/humidity", f"{room.humidity:.1f}".encode()),
        Message(f"{base}/battery", str(device.values.get("battery", 92)).encode()),
        Message(f"{base}/error", str(device.values.get("error", 0)).encode()),
    ]


def _shelly_gen1_online(device: MqttDeviceSim, online: bool) -> Message:
    return Message(f"{_shelly_gen1_base(device)}/online", b"true" if online else b"false", retain=True)


def _shelly_gen2_state(device: MqttDeviceSim, room: RoomState, at: float) -> list[Message]:
    t = round(room.temperature, 1)
    params = {
        "ts": round(at, 2),
        "devicepower:0": {"id": 0, "battery": {"V": 5.91, "percent": device.values.get("battery", 88)},
                          "external": {"present": False}},
        "humidity:0": {"id": 0, "rh": round(room.humidity, 1)},
        "temperature:0": {"id": 0, "tC": t, "tF": round(t * 9 / 5 + 32, 1)},
    }
    document = {"src": device.topic, "dst": f"{device.topic}/events", "method": "NotifyFullStatus", "params": params}
    return [Message(f"{device.topic}/events/rpc", _json(document))]


def _shelly_gen2_online(device: MqttDeviceSim, online: bool) -> Message:
    return Message(f"{device.topic}/online", b"true" if online else b"false", retain=True)


MODELS: dict[str, _Model] = {
    "z2m-aqara-th": _z2m(_th_keys),
    "z2m-aqara-leak": _z2m(_leak_keys),
    "z2m-aqara-door": _z2m(_door_keys),
    "z2m-aqara-smoke": _z2m(_smoke_keys),
    "tasmota-sensor": _Model(_tasmota_state, _tasmota_lwt),
    "shelly-ht-gen1": _Model(_shelly_gen1_state, _shelly_gen1_online, plain=True),
    "shelly-ht-gen2": _Model(_shelly_gen2_state, _shelly_gen2_online),
}


# Faults ------------------------------------------------------------------------------------------------------

def _wrong_types(node: Any) -> Any:
    """Same shape, every number and state replaced by text: valid JSON that no point can read."""
    if isinstance(node, dict):
        return {key: _wrong_types(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_wrong_types(value) for value in node]
    if isinstance(node, bool):
        return "maybe"
    if isinstance(node, int | float):
        return "n/a"
    return node


def _malformed(message: Message, variant: int, plain: bool) -> Message:
    if plain:
        payloads = [b"n/a", b"\xff\xfe\x00\x81", b"[1, 2"]
        return Message(message.topic, payloads[variant % 3])
    if variant % 3 == 0:
        return Message(message.topic, message.payload[: max(1, len(message.payload) // 2)])  # truncated JSON
    if variant % 3 == 1:
        return Message(message.topic, _json(_wrong_types(json.loads(message.payload))))
    return Message(message.topic, b"\x00\xff\xfe\x80\x81junk\x00" * 4)


def _oversized(message: Message, size: int, plain: bool) -> Message:
    if plain:
        return Message(message.topic, b"0" * size)
    document = json.loads(message.payload)
    document["padding"] = "x" * size
    return Message(message.topic, _json(document))


class MqttDeviceSim:
    """One device: what it publishes at an instant, with its faults applied."""

    def __init__(self, model: str, topic: str, room: RoomModel, now: Callable[[], float],
                 options: Mapping[str, Any] | None = None) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown MQTT model {model!r}; known: {', '.join(sorted(MODELS))}")
        if not topic or ("/" in topic and model.startswith(("tasmota", "shelly"))):
            raise ValueError(f"{model}: topic is the device's own name (Tasmota topic, Shelly id), not {topic!r}")
        self.model = model
        self.topic = topic
        self.room = room
        self.now = now
        self.options: dict[str, Any] = dict(options or {})
        self.values: dict[str, Any] = {}  # device-level keys that override the payload (battery_low, test...)
        self.faults: set[str] = set()
        self._spec = MODELS[model]
        self._variant = 0
        self._silent = False  # an offline notice went out; the next online cycle announces recovery

    def set_fault(self, name: str, on: bool = True) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        (self.faults.add if on else self.faults.discard)(name)

    def set(self, **values: Any) -> None:
        """Device-level values the room does not decide: `battery_low=True`, `test=True`, `error=1`."""
        self.values.update(values)

    def availability(self, online: bool) -> Message | None:
        return self._spec.availability(self, online) if self._spec.availability else None

    def state_messages(self, at: float) -> list[Message]:
        """The device's normal messages for the room as it is at `at`, without faults."""
        return self._spec.state(self, self.room.state(at), at)

    def messages(self, at: float | None = None) -> list[Message]:
        """One publishing cycle as of `at` (default `now()`), faults applied."""
        online = self.availability(True)
        if "offline" in self.faults:
            if self._silent:
                return []
            self._silent = True
            offline = self.availability(False)
            return [offline] if offline else []
        out: list[Message] = []
        if self._silent and online is not None:
            out.append(online)
        self._silent = False
        at = self.now() if at is None else at
        normal = self.state_messages(at)
        if "out-of-order" in self.faults:
            lag = float(self.options.get("out_of_order_lag", 60.0))
            normal = normal + self.state_messages(at - lag)  # an older reading after the newer one
        if "malformed" in self.faults:
            normal = [_malformed(m, self._variant, self._spec.plain) for m in normal]
            self._variant += 1
        elif "oversized" in self.faults:
            size = int(self.options.get("oversized_bytes", 70_000))
            normal = [_oversized(m, size, self._spec.plain) for m in normal]
        if "duplicate" in self.faults:
            normal = [m for m in normal for _ in range(2)]
        return out + normal


class MqttSim:
    """One paho connection publishing every device's messages each `interval` of the injected clock.

    Confirmation is tracked by message id from `on_publish` rather than with
    paho's MQTTMessageInfo, whose status stays "no connection" for a message
    queued while the broker was away even after paho re-sends it.
    """

    def __init__(self, host: str, port: int, devices: Iterable[MqttDeviceSim] = (), *,
                 interval: float = 60.0, now: Callable[[], float] = time.time, client_id: str = "stackwatch-sim",
                 qos: int = 1, username: str | None = None, password: str | None = None,
                 reconnect_delay: float = 0.2) -> None:
        self.host, self.port = host, port
        self.devices: list[MqttDeviceSim] = list(devices)
        self.interval = interval
        self.now = now
        self.qos = qos
        self.published = 0  # handed to the client
        self.confirmed = 0  # acknowledged by the broker (QoS 1) or written out (QoS 0)
        self._cond = threading.Condition()
        self._outstanding: dict[int, int] = {}  # message id -> publishes not yet confirmed
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=MQTTProtocolVersion.MQTTv311)
        if username is not None:
            self._client.username_pw_set(username, password)
        # paho annotates int; its back-off arithmetic takes floats (Client._reconnect_wait).
        self._client.reconnect_delay_set(cast(int, reconnect_delay), cast(int, max(reconnect_delay, 2.0)))
        self._client.on_publish = self._on_publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def add(self, device: MqttDeviceSim) -> MqttDeviceSim:
        self.devices.append(device)
        return device

    def set_fault(self, name: str, on: bool = True, devices: Sequence[MqttDeviceSim] | None = None) -> None:
        for device in self.devices if devices is None else devices:
            device.set_fault(name, on)

    def connect(self, timeout: float = 5.0) -> None:
        """Connect and announce every device online (retained), as devices do when they join."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        self.wait_connected(timeout)
        for device in self.devices:
            online = device.availability(True)
            if online is not None:
                self.publish(online)
        self.flush(timeout)

    def wait_connected(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._client.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no MQTT connection to {self.host}:{self.port} within {timeout}s")
            time.sleep(0.005)

    def close(self) -> None:
        self.stop()
        try:
            self.flush(2.0)
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def publish(self, message: Message) -> None:
        """Hand one message to paho; QoS 1 messages published while disconnected go out on reconnection."""
        info = self._client.publish(message.topic, message.payload, qos=self.qos, retain=message.retain)
        with self._cond:
            self.published += 1
            self._count(info.mid, +1)

    def publish_once(self, wait: bool = True, timeout: float = 10.0, at: float | None = None) -> int:
        """Publish one cycle of every device as of `at` (default: now); with `wait`, return once confirmed."""
        count = 0
        for device in self.devices:
            for message in device.messages(at):
                self.publish(message)
                count += 1
        if wait:
            self.flush(timeout)
        return count

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the broker confirmed every message published so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._outstanding, timeout):
                raise TimeoutError(f"{sum(self._outstanding.values())} message(s) not confirmed within {timeout}s")

    def start(self, poll: float = 0.01) -> None:
        """Publish in the background every `interval` of the injected clock (checked every `poll` real seconds)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(poll,), name="mqtt-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, poll: float) -> None:
        due = self.now()
        while not self._stop.is_set():
            now = self.now()
            if now >= due:
                # The latest cycle due, on the grid: after a jump of the clock, one cycle rather than a burst.
                due += math.floor((now - due) / self.interval) * self.interval
                self.publish_once(wait=False, at=due)  # as of the scheduled instant: exact, jitter-free cycles
                due += self.interval
            self._stop.wait(poll)

    def _count(self, mid: int, change: int) -> None:
        left = self._outstanding.get(mid, 0) + change  # the confirmation may come before publish() returns
        if left:
            self._outstanding[mid] = left
        else:
            self._outstanding.pop(mid, None)
            self._cond.notify_all()

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _properties: Any) -> None:
        with self._cond:
            self.confirmed += 1
            self._count(mid, -1)

    def __enter__(self) -> MqttSim:
        self.connect()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
