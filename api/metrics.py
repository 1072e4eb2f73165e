"""Prometheus text exposition (version 0.0.4), written by hand: a few dozen lines spare a dependency."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from alarms.model import AlarmState, AlarmStatus, Priority


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


def alarm_samples(statuses: Iterable[AlarmStatus]) -> list[Sample]:
    """Alarms not normal and waiting for an acknowledgement, by priority (the service's and `stackwatch api`'s)."""
    statuses = list(statuses)
    samples = []
    for priority in Priority:
        active = [s for s in statuses if s.priority is priority and s.state is not AlarmState.NORMAL]
        samples.append(Sample("stackwatch_alarms_not_normal", len(active), "Alarms not normal, by priority.",
                              labels={"priority": priority.value}))
        samples.append(Sample("stackwatch_alarms_unacknowledged", sum(1 for s in active if s.state.unacknowledged),
                              "Alarms waiting for an acknowledgement.", labels={"priority": priority.value}))
    return samples
