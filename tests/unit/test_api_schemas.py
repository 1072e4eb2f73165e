"""The OpenAPI document describes what the routes really answer: every GET route's body, fetched from the real
app, validates against the model the route declares (models forbid unknown keys, so a key added to a view and
not to `api.schemas` fails here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

from api.app import create_app
from api.audit import AuditTrail
from api.auth import UserStore, make_auth
from api.services import ApiServices
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from stackwatch.readings import Quality, Reading
from tests.unit.test_api_routes import NOW, SITE, History, Runtime

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALARM = "th1.rh:high"
# One concrete request (or more) per GET route; a new GET route must be added here, or the coverage test fails.
REQUESTS: dict[str, list[str]] = {
    "/api/v1/site": ["/api/v1/site"],
    "/api/v1/rooms": ["/api/v1/rooms", "/api/v1/rooms?building=main"],
    "/api/v1/rooms/{room_id}": ["/api/v1/rooms/r1", "/api/v1/rooms/r2"],
    "/api/v1/devices": ["/api/v1/devices"],
    "/api/v1/devices/{device_id}": ["/api/v1/devices/th1", "/api/v1/devices/panel"],
    "/api/v1/points/{point_key}": ["/api/v1/points/th1.rh", "/api/v1/points/panel.z1", "/api/v1/points/th1.t"],
    "/api/v1/points/{point_key}/history": ["/api/v1/points/th1.rh/history",
                                           "/api/v1/points/th1.rh/history?agg=raw&from=2026-01-01T07:00:00Z"],
    "/api/v1/rooms/{room_id}/history": ["/api/v1/rooms/r1/history?quantity=temperature"],
    "/api/v1/alarms": ["/api/v1/alarms", "/api/v1/alarms?state=past&since=2025-12-31T00:00:00Z"],
    "/api/v1/alarms/{target:path}": [f"/api/v1/alarms/{ALARM}"],
    "/api/v1/alarm-performance": ["/api/v1/alarm-performance"],
    "/api/v1/audit": ["/api/v1/audit"],
    "/api/v1/reports/compliance": ["/api/v1/reports/compliance?from=2026-01-01T00:00:00%2B08:00"],
    "/api/v1/auth/me": ["/api/v1/auth/me"],
    "/api/v1/users": ["/api/v1/users"],
    "/api/v1/users/{name}": ["/api/v1/users/admin"],
    "/api/v1/users/{name}/apikeys": ["/api/v1/users/admin/apikeys"],
    "/healthz": ["/healthz"],
    "/readyz": ["/readyz"],
}
NOT_JSON = {"/api/v1/stream", "/metrics", "/ack/{token}"}  # event stream, Prometheus text, HTML page


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, dict[str, str]]:
    folder = tmp_path_factory.mktemp("schemas")
    audit = AuditTrail(folder / "audit.db")
    users = UserStore(folder / "users.db", audit=audit, hasher=CHEAP)
    users.add_user("admin", "admin", "a-long-enough-password")
    users.create_api_key("admin", "schema test")
    token = users.login("admin", "a-long-enough-password", "127.0.0.1")
    runtime, live = Runtime(folder), LiveState()
    at = round((NOW + 50) * 1e9)
    live([Reading("th1.t", at, 19.5), Reading("th1.rh", at, 58.0),
          Reading("panel.z1", at, None, Quality.COMM_FAILURE, "no response within 0.5 s")])
    runtime.engine.process([Reading("th1.rh", at, 58.0)], NOW + 50)
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=live, now=lambda: NOW + 60,
                           alarms=runtime, history=History(), audit=audit,
                           health=lambda: {"influxdb": {"ok": True, "detail": ""}, "spool": {"ok": True, "depth": 3}})
    config = ApiConfig()
    auth = make_auth(users, config)
    app = create_app(config, services, auth.require, extra_routers=(auth.router, auth.users_router))
    client = TestClient(app, raise_server_exceptions=False)
    client.post(f"/api/v1/alarms/{ALARM}/acknowledge", json={"comment": "seen"},
                headers={"Authorization": f"Bearer {token}"})
    return client, {"Authorization": f"Bearer {token}"}


def declared(route: APIRoute) -> Any:
    """The model a route names for its 200 body: `response_model`, or `responses={200: {"model": …}}`."""
    if route.response_model is not None:
        return route.response_model
    return route.responses.get(200, {}).get("model")


def validate(model: Any, body: Any) -> None:
    if isinstance(model, type) and issubclass(model, BaseModel):
        model.model_validate(body)
    else:  # list[Model], unions of them
        TypeAdapter(model).validate_python(body)


def get_routes(client: TestClient) -> dict[str, APIRoute]:
    """Every GET route by its full path (included routers' routes with their prefix)."""
    routes = client.app.routes  # type: ignore[attr-defined]
    return {context.path: context.route for context in iter_route_contexts(routes)
            if isinstance(context.route, APIRoute) and "GET" in (context.methods or ())}


def test_every_json_get_route_declares_a_model_and_is_exercised_here(served: Any) -> None:
    routes = get_routes(served[0])
    assert set(routes) - NOT_JSON == set(REQUESTS)
    for path in REQUESTS:
        assert declared(routes[path]) is not None, f"{path} documents no 200 body"


@pytest.mark.parametrize("path", sorted(REQUESTS))
def test_each_answer_validates_against_its_declared_model(served: Any, path: str) -> None:
    client, headers = served
    model = declared(get_routes(client)[path])
    for url in REQUESTS[path]:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, (url, answer.text)
        validate(model, answer.json())


def test_error_answers_have_the_documented_problem_shape(served: Any) -> None:
    from api.schemas import Problem

    client, headers = served
    for url, status in (("/api/v1/rooms/nowhere", 404), ("/api/v1/alarms?limit=0", 422),
                        ("/api/v1/points/th1.rh/history?from=yesterday", 422), ("/api/v1/rooms", 401)):
        answer = client.get(url, headers=headers if status != 401 else {})
        assert answer.status_code == status
        Problem.model_validate(answer.json())


def test_the_document_describes_every_2xx_body(served: Any) -> None:
    document = served[0].get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not re.fullmatch(r"2\d\d", status) or status == "204":
                    continue
                content = response.get("content")
                assert content, (method, path, status)
                for media, body in content.items():
                    assert body.get("schema"), (method, path, status, media)  # `{}` is "anything": not a description


def test_the_stream_and_metrics_say_what_they_send(served: Any) -> None:
    document = served[0].get("/openapi.json").json()["paths"]
    assert "text/event-stream" in document["/api/v1/stream"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in document["/metrics"]["get"]["responses"]["200"]["content"]


def test_readiness_failing_is_documented_too(tmp_path: Path) -> None:
    from api.schemas import Readiness

    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(), now=lambda: NOW,
                           health=lambda: {"influxdb": {"ok": False, "detail": "connection refused"}},
                           readiness_scope="what this process can see")
    client = TestClient(create_app(ApiConfig(), services, lambda _permission: lambda: None))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert Readiness.model_validate(answer.json()).scope == "what this process can see"


def test_every_422_is_documented_as_the_problem_the_app_answers(served: Any) -> None:
    document = served[0].get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer and "content" in answer:
                schema = answer["content"]["application/json"]["schema"]
                assert "Problem" in json.dumps(schema), (method, path, schema)
