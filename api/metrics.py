"""Prometheus text exposition (version 0.0.4), written by hand: a few dozen lines spare a dependency."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sample:
    name: str  # stackwatch_…; counters end in _total
    value: float
    help: str = ""
    kind: str = "gauge"  # gauge | counter
    labels: dict[str, str] = field(default_factory=dict)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def exposition(samples: Iterable[Sample]) -> str:
    """One HELP and TYPE line per metric name, then its samples, in the order first seen."""
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    lines: list[str] = []
    for name, group in by_name.items():
        lines.append(f"# HELP {name} {group[0].help or name}")
        lines.append(f"# TYPE {name} {group[0].kind}")
        for sample in group:
            labels = ",".join(f'{key}="{_label_value(value)}"' for key, value in sorted(sample.labels.items()))
            lines.append(f"{name}{{{labels}}} {_number(sample.value)}" if labels else f"{name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"
