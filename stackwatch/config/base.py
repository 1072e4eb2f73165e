"""Shared pieces of the config model: strict base class, durations, identifiers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `30`, `2.5`, `"500ms"`, `"10s"`, `"5m"`, `"2h"` or `"1d"`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10s', '5m', '2h'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; use seconds or '500ms', '10s', '5m', '2h', '1d'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or a string like '10s', '5m', '2h'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def clock_time(value: str, *, end_of_day: bool = False) -> str:
    """A time of day `HH:MM` (site zone); `24:00` too where it ends a period."""
    if not (_CLOCK.match(value) or (end_of_day and value == "24:00")):
        raise ValueError(f"{value!r} is not a time like 07:30 (a time of day, HH:MM)")
    return value


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|min|h|d)?\s*$"},
            ],
            "description": "Seconds, or a number with a unit: ms, s, m, h, d.",
        }
    ),
]

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Letters, digits, '-', '_', '.'; starts with a letter or digit; at most 64.",
    ),
]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a site file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
