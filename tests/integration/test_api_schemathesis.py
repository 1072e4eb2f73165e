"""schemathesis against the OpenAPI document: every operation, generated and mutated inputs, no server error,
and every answer whose status the document describes conforms to the described body and media type.

The app is the real one (real alarm engine and journal, user store with argon2 hashes, audit trail), run
in-process over ASGI; requests carry an admin token, so they reach the handlers rather than stopping at 401.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from alarms.notify.acknowledge import Acknowledger
from alarms.notify.store import NotifyStore
from api.app import create_app
from api.audit import AuditTrail
from api.auth import UserStore, make_auth
from api.services import ApiServices
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from tests.unit.test_api_routes import NOW, SITE, History, Runtime

pytestmark = pytest.mark.integration
FOLDER = Path(tempfile.mkdtemp(prefix="stackwatch-schemathesis-"))
CONFIG = ApiConfig(login_max_failures=100)
USERS = UserStore(FOLDER / "users.db", audit=AuditTrail(FOLDER / "audit.db"), config=CONFIG)
USERS.add_user("fuzz-admin", "admin", "a-long-enough-password")
TOKEN = USERS.login("fuzz-admin", "a-long-enough-password", "127.0.0.1")
AUTH = make_auth(USERS, CONFIG)
SERVICES = ApiServices(
    config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(), now=lambda: NOW + 60,
    alarms=Runtime(FOLDER), history=History(), audit=AuditTrail(FOLDER / "audit.db"),
    acknowledger=Acknowledger(SITE.notify, b"k" * 32, NotifyStore(FOLDER / "notify.db"),
                              lambda ticket, who, comment: f"acknowledged #{ticket}"))
APP = create_app(CONFIG, SERVICES, AUTH.require, extra_routers=(AUTH.router, AUTH.users_router))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case: Any) -> None:
    if case.path == "/api/v1/stream":
        return  # an endless event stream: covered by the end-to-end test with a real client
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    # Every documented answer's body matches its schema (api/schemas.py), error answers included.
    case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])
