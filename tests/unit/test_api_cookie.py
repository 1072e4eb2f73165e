"""The dashboard's token cookie: accepted for reads (EventSource cannot send headers), never for actions."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TOKEN_COOKIE, UserStore, make_auth
from api.services import ApiServices
from stackwatch.catalog import PointCatalog
from stackwatch.config.api import ApiConfig
from stackwatch.livestate import LiveState
from tests.unit.test_api_routes import NOW, SITE, Runtime


def test_a_cookie_reads_but_cannot_act_and_the_dashboard_is_served(tmp_path: Path) -> None:
    config = ApiConfig()
    users = UserStore(tmp_path / "users.db", config=config)
    users.add_user("ops", "operator", "a-long-enough-password")
    token = users.login("ops", "a-long-enough-password", "127.0.0.1")
    services = ApiServices(config=SITE, catalog=PointCatalog.from_config(SITE), live=LiveState(),
                           now=lambda: NOW + 60, alarms=Runtime(tmp_path))
    auth = make_auth(users, config)
    client = TestClient(create_app(config, services, auth.require, extra_routers=(auth.router,)))
    client.cookies.set(TOKEN_COOKIE, token)
    assert client.get("/api/v1/rooms").status_code == 200
    assert client.post("/api/v1/alarms/th1.rh:high/acknowledge", json={"comment": "x"}).status_code == 401
    assert client.post("/api/v1/alarms/th1.rh:high/acknowledge", json={"comment": "x"},
                       headers={"Authorization": f"Bearer {token}"}).status_code in (200, 409)
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/api/v1/nothing-here").status_code == 404
