"""One configured MQTT point, compiled: where its value is and how raw JSON or text becomes a value.

Conversion never raises for bad input from a device; it reports the problem
instead, so one wrong key costs one BAD reading, not the message or the thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stackwatch.config.points import MqttPoint
from stackwatch.readings import Value

from .jsonpath import Steps, compile_path

# Sensible spellings of a state when the point gives no `states` of its own (compared lower-case).
DEFAULT_BOOL_STATES: dict[str, bool] = {
    "on": True, "off": False, "true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
}


class WrongType(ValueError):
    """The device sent a value this point cannot be read from (text for a number, a list...)."""


def _short(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class PointRule:
    key: str
    path: Steps | None  # None: the whole payload is the value
    kind: str  # number | bool | text
    scale: float
    offset: float
    invert: bool
    valid_min: float | None
    valid_max: float | None
    states: dict[str, bool | float]  # keys lower-case
    key_only: str | None  # the path is one key: the hot path skips the generic walk
    ranged: bool  # valid_min or valid_max is set

    @classmethod
    def compile(cls, key: str, point: MqttPoint) -> PointRule:
        states = {name.strip().lower(): value for name, value in point.states.items()}
        if point.type == "bool":
            states = {**DEFAULT_BOOL_STATES, **states}
        try:
            path = None if point.path is None else compile_path(point.path)
        except ValueError as error:
            raise ValueError(f"point {key}: {error}") from None
        key_only = path[0] if path is not None and len(path) == 1 and isinstance(path[0], str) else None
        return cls(key=key, path=path, kind=point.type, scale=point.scale, offset=point.offset, invert=point.invert,
                   valid_min=point.valid_min, valid_max=point.valid_max, states=states, key_only=key_only,
                   ranged=point.valid_min is not None or point.valid_max is not None)

    def convert(self, raw: object) -> Value:
        """The point's value from a JSON value or the payload text; WrongType if it cannot be one.

        NaN and infinities come back as float NaN (a sensor's way of saying "no reading": ESPHome
        sends `nan`); the caller stores them as BAD.
        """
        kind = self.kind
        if kind == "number" and (type(raw) is float or type(raw) is int):  # the common case, first
            try:
                number = float(raw)
            except OverflowError:  # an integer too large for a float
                raise WrongType(f"number out of range: {_short(raw)}") from None
            if number - number != 0.0:  # NaN or infinite
                return math.nan
            if self.scale != 1.0 or self.offset != 0.0:
                number = number * self.scale + self.offset
            return number
        if type(raw) is str:
            mapped = self.states.get(raw.strip().lower()) if self.states else None
            if mapped is not None:
                return self._finish_state(mapped)
        if kind == "number":
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise WrongType(f"expected a number, got {_short(raw)}")
            try:
                number = float(raw)
            except (ValueError, OverflowError):
                raise WrongType(f"expected a number, got {_short(raw)}") from None
            if not math.isfinite(number):
                return math.nan
            if self.scale != 1.0 or self.offset != 0.0:
                number = number * self.scale + self.offset
            return number
        if kind == "bool":
            if isinstance(raw, bool):
                return raw != self.invert
            if isinstance(raw, int | float) and raw in (0, 1):
                return bool(raw) != self.invert
            raise WrongType(f"expected a state, got {_short(raw)}")
        if isinstance(raw, str):
            return raw
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return str(raw)
        raise WrongType(f"expected text, got {_short(raw)}")

    def _finish_state(self, mapped: bool | float) -> Value:
        if self.kind == "bool":
            return bool(mapped) != self.invert
        if self.kind == "number":
            return float(mapped)
        return mapped

    def out_of_range(self, value: Value) -> bool:
        if not self.ranged or not isinstance(value, float):
            return False
        return (self.valid_min is not None and value < self.valid_min) or (
            self.valid_max is not None and value > self.valid_max)
