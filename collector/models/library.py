"""The device model library: real devices' register maps and payload mappings as config fragments.

A device in the site file says `model: <name>` and gets the model's points;
anything it states itself wins (a point with the same id is merged field by
field, new ids are added, `use_points` keeps a subset). A device that is not in
the library is written out in full in the config instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Options = Mapping[str, Any]
Fragment = dict[str, Any]


@dataclass(frozen=True)
class DeviceModel:
    name: str
    protocol: str  # "modbus" | "mqtt"
    title: str
    source: str  # where the map comes from (shared/domain/devices.md, vendor manual)
    build: Callable[[Options, Mapping[str, Any]], Fragment]
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""


MODELS: dict[str, DeviceModel] = {}


def register(model: DeviceModel) -> DeviceModel:
    if model.name in MODELS:
        raise ValueError(f"model {model.name!r} registered twice")
    MODELS[model.name] = model
    return model


def _merge_points(base: list[Fragment], own: list[Any]) -> list[Any]:
    merged = {point["id"]: dict(point) for point in base}
    order = [point["id"] for point in base]
    extra: list[Any] = []
    for point in own:
        if isinstance(point, dict) and point.get("id") in merged:
            merged[point["id"]].update(point)
        else:
            extra.append(point)
    return [merged[key] for key in order] + extra


def expand_device(device: dict[str, Any]) -> dict[str, Any]:
    """The device with its model's fragment merged in; ValueError/KeyError name the problem."""
    name = device.get("model")
    model = MODELS.get(str(name))
    if model is None:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    protocol = device.get("protocol")
    if protocol is not None and protocol != model.protocol:
        raise ValueError(
            f"model {model.name!r} is a {model.protocol} device, but the device says protocol {protocol!r}"
        )
    given = device.get("model_options") or {}
    if not isinstance(given, dict):
        raise ValueError("model_options must be a mapping")
    unknown = sorted(set(given) - set(model.options))
    if unknown:
        known = ", ".join(sorted(model.options)) or "none"
        raise ValueError(f"model {model.name!r} has no option {unknown[0]!r} (its options: {known})")
    options = {**model.options, **given}
    fragment = model.build(options, device)
    result: dict[str, Any] = {**fragment, **{k: v for k, v in device.items() if k not in ("points", "topic")}}
    result["protocol"] = model.protocol
    if "topic" in fragment:
        result["topic"] = fragment["topic"]
    elif "topic" in device:
        result["topic"] = device["topic"]
    own_points = device.get("points") or []
    if not isinstance(own_points, list):
        raise ValueError("points must be a list")
    points = _merge_points(fragment.get("points", []), own_points)
    keep = device.get("use_points")
    if keep is not None:
        ids = {p.get("id") for p in points if isinstance(p, dict)}
        missing = [k for k in keep if k not in ids]
        if missing:
            raise ValueError(f"use_points names {missing[0]!r}, which model {model.name!r} does not have")
        points = [p for p in points if not isinstance(p, dict) or p.get("id") in keep]
    result["points"] = points
    return result


def describe_models() -> list[dict[str, Any]]:
    """For `stackwatch models`: name, protocol, title, options and where the map comes from."""
    return [
        {
            "name": m.name,
            "protocol": m.protocol,
            "title": m.title,
            "options": dict(m.options),
            "source": m.source,
            "notes": m.notes,
        }
        for m in sorted(MODELS.values(), key=lambda m: (m.protocol, m.name))
    ]
