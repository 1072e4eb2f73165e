"""Every configured point with its place in the site and its pre-escaped InfluxDB series key.

Built once at start from the config; sources and sinks look points up by the
global key `<device>.<point>`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config.model import SiteConfig
from .readings import Quality, Reading
from .store.lineprotocol import escape_string, series_key

STATE_MEASUREMENT = "state"
_QUALITY_FIELD = {quality: f'quality="{quality.value}"' for quality in Quality}
_isfinite = math.isfinite


@dataclass(frozen=True, slots=True)
class PointInfo:
    key: str
    device: str
    point: str
    quantity: str
    unit: str
    room: str
    building: str
    is_state: bool
    expected_interval: float | None
    series: str  # escaped `measurement,tags` prefix of its lines

    @property
    def measurement(self) -> str:
        return STATE_MEASUREMENT if self.is_state else self.quantity


def point_key(device: str, point: str) -> str:
    return f"{device}.{point}"


class PointCatalog:
    def __init__(self, site: str, points: Iterable[PointInfo]) -> None:
        self.site = site
        self._points = {info.key: info for info in points}

    @classmethod
    def from_config(cls, config: SiteConfig) -> PointCatalog:
        buildings = {room.id: room.building for room in config.rooms}
        infos = []
        for device in config.devices:
            default_interval = getattr(device, "poll_interval", None)
            for point in device.points:
                room = point.room or device.room
                quantity = point.quantity_name
                measurement = STATE_MEASUREMENT if point.is_state else quantity
                tags = {"site": config.site.id, "building": buildings[room], "room": room,
                        "device": device.id, "point": point.id}
                if point.is_state:
                    tags["quantity"] = quantity
                interval = point.expected_interval or default_interval
                infos.append(PointInfo(
                    key=point_key(device.id, point.id), device=device.id, point=point.id, quantity=quantity,
                    unit=point.unit, room=room, building=buildings[room], is_state=point.is_state,
                    expected_interval=interval, series=series_key(measurement, tags),
                ))
        return cls(config.site.id, infos)

    def __getitem__(self, key: str) -> PointInfo:
        return self._points[key]

    def __contains__(self, key: object) -> bool:
        return key in self._points

    def __iter__(self) -> Iterator[PointInfo]:
        return iter(self._points.values())

    def __len__(self) -> int:
        return len(self._points)

    def encode(self, reading: Reading) -> str:
        """The reading as one line: `value` (float, or boolean for states) and `quality` (string).

        The hot path of ingest: the quality field is pre-formatted and a plain float skips the
        conversion; the output is the same as formatting each part afresh.
        """
        info = self._points[reading.point]
        value = reading.value
        quality = reading.quality
        detail = f',detail="{escape_string(reading.detail)}"' if reading.detail else ""
        if value is None or (isinstance(value, float) and not _isfinite(value)):
            field = _QUALITY_FIELD[Quality.BAD if quality is Quality.GOOD else quality]
            return f"{info.series} {field}{detail} {reading.ts_ns}"
        if info.is_state:
            text = "true" if value else "false"
        elif value.__class__ is float:
            text = repr(value)
        elif isinstance(value, str):
            text = f'"{escape_string(value)}"'
        else:
            text = repr(float(value))
        return f"{info.series} value={text},{_QUALITY_FIELD[quality]}{detail} {reading.ts_ns}"
