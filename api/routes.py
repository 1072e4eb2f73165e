"""Read routes: the site, its rooms with their current state, devices, points, history and the live stream."""

# No `from __future__ import annotations`: FastAPI must see the route annotations, which name local
# dependency aliases, as objects.
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, StreamingResponse

from alarms.model import AlarmDefinition, AlarmStatus

from .history import parse_time
from .model import Principal
from .schemas import (
    DeviceDetail,
    DeviceSummary,
    HistorySeries,
    PointReading,
    RoomDetail,
    RoomHistory,
    RoomView,
    SiteView,
    documented,
    errors,
)
from .services import ApiServices
from .views import points_by_room, reading_view, room_view

Require = Callable[[str], Any]
Aggregation = Literal["raw", "1m", "1h", "1d"]


def _alarm_snapshot(services: ApiServices, room: str | None = None) -> list[tuple[AlarmDefinition, AlarmStatus]]:
    if services.alarm_service is None:
        return []
    return services.alarm_service.shown(room)


def _window(start: str | None, end: str | None, now: float, default: float) -> tuple[float, float]:
    try:
        until = parse_time(end) if end else now
        since = parse_time(start) if start else until - default
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    if since >= until:
        raise HTTPException(422, "`from` must be before `to`")
    return since, until


def build_router(services: ApiServices, require: Require) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 422))
    reader = Annotated[Principal, Depends(require("read"))]
    config, catalog = services.config, services.catalog
    rooms = {room.id: room for room in config.rooms}
    room_points = points_by_room(catalog)
    devices = {device.id: device for device in config.devices}

    @router.get("/site", tags=["site"], response_model=SiteView)
    def site(_: reader) -> dict[str, Any]:
        """The site, its buildings and their rooms."""
        return {"id": config.site.id, "name": config.site.name, "timezone": config.site.timezone,
                "buildings": [{"id": b.id, "name": b.name, "floors": b.floors,
                               "rooms": [r.id for r in config.rooms if r.building == b.id]} for b in config.buildings]}

    @router.get("/rooms", tags=["site"], responses=documented(list[RoomView]))
    def list_rooms(_: reader, building: str | None = None) -> JSONResponse:
        """Every room with its profile, limits (and their sources), current climate, states and alarm status."""
        latest, alarms, now = services.live.snapshot(), _alarm_snapshot(services), services.now()
        return JSONResponse([room_view(room, room_points.get(room.id, []), latest, now, alarms)
                             for room in config.rooms if building is None or room.building == building])

    @router.get("/rooms/{room_id}", tags=["site"], responses={**documented(RoomDetail), **errors(404)})
    def get_room(room_id: str, _: reader) -> JSONResponse:
        room = rooms.get(room_id)
        if room is None:
            raise HTTPException(404, f"no room {room_id!r}")
        points, now = room_points.get(room_id, []), services.now()
        latest = {info.key: reading for info in points if (reading := services.live.get(info.key)) is not None}
        view = room_view(room, points, latest, now, _alarm_snapshot(services, room_id))
        view["points"] = [reading_view(info, latest.get(info.key), now) for info in points]
        return JSONResponse(view)

    @router.get("/devices", tags=["site"], response_model=list[DeviceSummary])
    def list_devices(_: reader) -> list[dict[str, Any]]:
        return [{"id": d.id, "protocol": d.protocol, "model": d.model, "room": d.room,
                 "points": [f"{d.id}.{p.id}" for p in d.points]} for d in config.devices]

    @router.get("/devices/{device_id}", tags=["site"], response_model=DeviceDetail, responses=errors(404))
    def get_device(device_id: str, _: reader) -> dict[str, Any]:
        device = devices.get(device_id)
        if device is None:
            raise HTTPException(404, f"no device {device_id!r}")
        latest, now = services.live.snapshot(), services.now()
        return {"id": device.id, "protocol": device.protocol, "model": device.model, "room": device.room,
                "calibration_due": device.calibration_due,
                "points": [reading_view(info, latest.get(info.key), now) for info in catalog
                           if info.device == device_id]}

    @router.get("/points/{point_key}", tags=["site"], responses={**documented(PointReading), **errors(404)})
    def get_point(point_key: str, _: reader) -> JSONResponse:
        """The latest reading of one point (`device.point`), its quality and age."""
        if point_key not in catalog:
            raise HTTPException(404, f"no point {point_key!r}")
        return JSONResponse(reading_view(catalog[point_key], services.live.get(point_key), services.now()))

    @router.get("/points/{point_key}/history", tags=["history"],
                responses={**documented(HistorySeries), **errors(404, 503)})
    def point_history(point_key: str, _: reader,
                      start: Annotated[str | None, Query(alias="from", description="ISO 8601 with zone")] = None,
                      end: Annotated[str | None, Query(alias="to", description="ISO 8601 with zone")] = None,
                      agg: Aggregation = "1h") -> JSONResponse:
        """Values of one point between `from` and `to` (default the last 24 h): raw, or mean/min/max per bucket."""
        if point_key not in catalog:
            raise HTTPException(404, f"no point {point_key!r}")
        if services.history is None:
            raise HTTPException(503, "history needs InfluxDB")
        since, until = _window(start, end, services.now(), 86400.0)
        try:
            series = services.history.point(point_key, since, until, agg)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return JSONResponse(dataclasses.asdict(series))

    @router.get("/rooms/{room_id}/history", tags=["history"], responses={**documented(RoomHistory), **errors(404, 503)})
    def room_history(room_id: str, _: reader, quantity: Literal["temperature", "humidity"] = "humidity",
                     start: Annotated[str | None, Query(alias="from", description="ISO 8601 with zone")] = None,
                     end: Annotated[str | None, Query(alias="to", description="ISO 8601 with zone")] = None,
                     agg: Aggregation = "1h") -> JSONResponse:
        """One quantity of a room, one series per sensor, with the room's limits for drawing the bands."""
        room = rooms.get(room_id)
        if room is None:
            raise HTTPException(404, f"no room {room_id!r}")
        if services.history is None:
            raise HTTPException(503, "history needs InfluxDB")
        since, until = _window(start, end, services.now(), 86400.0)
        try:
            series = services.history.room(room_id, quantity, since, until, agg)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        view = room_view(room, [], {}, services.now(), [])
        return JSONResponse({"room": room_id, "quantity": quantity, "from": since, "to": until, "agg": agg,
                             "limits": view["limits"], "series": [dataclasses.asdict(s) for s in series]})

    @router.get("/stream", tags=["live"], response_class=StreamingResponse, responses={200: {
        "description": "`event: readings` with a JSON list of changed points (each a reading: point, ts, value, "
                       "quality, detail), `event: alarm` with one alarm event (as in an alarm's journal), "
                       "`: ping` comments",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    def stream(_: reader, readings: bool = True) -> StreamingResponse:
        """Server-sent events: `readings` (changed points, about once a second) and `alarm` (each transition)."""
        return StreamingResponse(services.feed.stream(readings=readings), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
