"""Report routes (inspector, admin): the environmental compliance report as JSON or CSV."""

# No `from __future__ import annotations`: FastAPI must see the route annotations, which name local
# dependency aliases, as objects.
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from reports.cli import render
from reports.gather import from_services, gather

from .history import parse_time
from .model import Principal
from .schemas import ComplianceReport
from .services import ApiServices

Require = Callable[[str], Any]


def build_report_router(services: ApiServices, require: Require) -> APIRouter:
    router = APIRouter(prefix="/api/v1/reports")
    inspector = Annotated[Principal, Depends(require("reports"))]

    @router.get("/compliance", tags=["reports"], responses={200: {"model": ComplianceReport, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON, CSV with `format=csv`, PDF with `format=pdf` (charts; `lang=zh` or `en`)"}})
    def compliance(_: inspector,
                   start: Annotated[str, Query(alias="from", description="ISO 8601 with zone, or now-30d")],
                   end: Annotated[str | None, Query(alias="to", description="ISO 8601 with zone")] = None,
                   room: Annotated[list[str] | None, Query(description="room ids; default every room")] = None,
                   format: Literal["json", "csv", "pdf"] = "json",
                   lang: Annotated[Literal["zh", "en"], Query(description="language of the PDF")] = "en") -> Response:
        """Per room: share of time within limits, min/mean/max, excursions, daily fluctuation, completeness,
        TWPI/EMC/mould risk, every alarm with its acknowledgement; the audit chain's state and the config hash."""
        if services.history is None:
            raise HTTPException(503, "reports need InfluxDB")
        now = services.now()
        try:
            since = parse_time(start, now)
            until = parse_time(end, now) if end else now
            report = gather(services.config, from_services(services), since, until, rooms=room, generated=now)
        except KeyError as error:
            raise HTTPException(404, str(error)) from None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        if format == "pdf":
            from reports.pdf import FontUnavailable, report_pdf  # reportlab (7 MB) loaded on the first PDF

            try:
                pdf = report_pdf(report, services.history, lang)
            except FontUnavailable as error:
                raise HTTPException(503, str(error)) from None
            return Response(pdf, media_type="application/pdf",
                            headers={"Content-Disposition": 'inline; filename="compliance.pdf"'})
        if format == "csv":
            return PlainTextResponse(render(report, "csv"), media_type="text/csv")
        return JSONResponse(report)

    return router
