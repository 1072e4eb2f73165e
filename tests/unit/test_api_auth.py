"""API users: argon2id hashes, hashed tokens and keys, lock-out per name and per address, roles on the routes, CLI."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.auth import (
    ADMIN_PASSWORD_FILE,
    LastAdmin,
    LoginRefused,
    UnknownUser,
    UserError,
    UserExists,
    UserStore,
    ensure_admin,
    key_id,
    make_auth,
)
from api.model import Principal, Role
from api.users_cli import add_commands
from stackwatch.config.api import ApiConfig

T0 = 1_767_254_400.0
PASSWORD = "correct horse battery"
CONFIG = ApiConfig(token_ttl=3600, login_max_failures=3, login_lockout=600)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the default costs ~80 ms per hash


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeAudit:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def append(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "", ts: float | None = None) -> int:
        self.rows.append({"actor": actor, "action": action, "target": target, "detail": detail, "reason": reason,
                          "remote": remote, "ts": ts})
        return len(self.rows)

    def actions(self) -> list[str]:
        return [r["action"] for r in self.rows]


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit() -> FakeAudit:
    return FakeAudit()


@pytest.fixture
def store(tmp_path: Path, clock: Clock, audit: FakeAudit) -> UserStore:
    users = UserStore(tmp_path / "users.db", audit=audit, clock=clock, config=CONFIG, hasher=CHEAP)
    users.add_user("li", Role.OPERATOR, PASSWORD)
    return users


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql).fetchall())


# --- the store ----------------------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_with_the_default_parameters(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.db")
    users.add_user("wang", "admin", PASSWORD)
    [(stored,)] = _rows(users.path, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    assert not PasswordHasher().check_needs_rehash(stored)
    assert stat.S_IMODE(users.path.stat().st_mode) == 0o600


def test_a_hash_with_old_parameters_is_upgraded_at_the_next_login(tmp_path: Path) -> None:
    UserStore(tmp_path / "users.db", hasher=CHEAP).add_user("wang", "admin", PASSWORD)
    users = UserStore(tmp_path / "users.db")
    users.login("wang", PASSWORD, "10.0.0.5")
    [(stored,)] = _rows(users.path, "SELECT password_hash FROM users")
    assert not PasswordHasher().check_needs_rehash(stored)
    assert users.login("wang", PASSWORD, "10.0.0.5")


@pytest.mark.parametrize("password", ["", "short", "elevenchars"])
def test_short_passwords_are_refused_with_a_clear_message(store: UserStore, password: str) -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        store.add_user("zhao", Role.VIEWER, password)
    with pytest.raises(ValueError, match="at least 12 characters"):
        store.set_password("li", password)
    assert store.user("zhao") is None


@pytest.mark.parametrize("name", ["", "a b", "-rf", "x" * 65, "li/../admin", "名字"])
def test_user_names_are_identifiers(store: UserStore, name: str) -> None:
    with pytest.raises(UserError, match="not valid"):
        store.add_user(name, Role.VIEWER, PASSWORD)


def test_unknown_roles_duplicates_and_name_as_password_are_refused(store: UserStore) -> None:
    with pytest.raises(UserError, match="unknown role"):
        store.add_user("zhao", "superuser", PASSWORD)
    with pytest.raises(UserExists):
        store.add_user("li", Role.VIEWER, PASSWORD)
    with pytest.raises(UserError, match="user name"):
        store.add_user("zhao.archivist", Role.VIEWER, "Zhao.Archivist")
    with pytest.raises(UnknownUser):
        store.disable_user("nobody")


def test_login_gives_a_token_that_names_the_user_and_role(store: UserStore, audit: FakeAudit) -> None:
    token = store.login("li", PASSWORD, "10.0.0.5")
    assert len(token) >= 43
    assert store.principal(token, "10.0.0.5") == Principal("li", Role.OPERATOR, "token", "10.0.0.5")
    success = audit.rows[-1]
    assert success["action"] == "login.success" and success["actor"] == "li" and success["remote"] == "10.0.0.5"
    assert audit.actions()[0] == "user.add" and audit.rows[0]["detail"] == {"role": "operator"}
    assert PASSWORD not in json.dumps(audit.rows)


def test_wrong_password_and_unknown_user_are_refused_alike(tmp_path: Path, audit: FakeAudit, clock: Clock) -> None:
    hasher = CountingHasher()
    users = UserStore(tmp_path / "users.db", audit=audit, clock=clock, config=CONFIG, hasher=hasher)
    users.add_user("li", Role.OPERATOR, PASSWORD)
    with pytest.raises(LoginRefused) as wrong:
        users.login("li", "not the password", "10.0.0.5")
    with pytest.raises(LoginRefused) as unknown:
        users.login("nobody", PASSWORD, "10.0.0.6")
    assert wrong.value.reason == unknown.value.reason == "bad-credentials"
    assert hasher.verified == 2  # the unknown name cost an argon2 check too: timing does not tell names apart
    failures = [r for r in audit.rows if r["action"] == "login.failure"]
    assert [(r["actor"], r["reason"], r["remote"]) for r in failures] == [
        ("li", "bad-credentials", "10.0.0.5"), ("nobody", "bad-credentials", "10.0.0.6")]
    assert "not the password" not in json.dumps(audit.rows) and PASSWORD not in json.dumps(audit.rows)


def test_a_name_that_cannot_exist_is_not_written_to_the_audit_trail(store: UserStore, audit: FakeAudit) -> None:
    with pytest.raises(LoginRefused):
        store.login("my secret passphrase", "x", "10.0.0.5")  # typed into the wrong field
    assert audit.rows[-1]["actor"] == "?" and "passphrase" not in json.dumps(audit.rows)


def test_failures_for_one_name_lock_it_from_every_address_until_the_lockout_passes(store: UserStore, clock: Clock,
                                                                                   audit: FakeAudit) -> None:
    for n in range(CONFIG.login_max_failures):
        with pytest.raises(LoginRefused):
            store.login("li", f"guess number {n}", f"192.0.2.{n}")
        clock.now += 10
    with pytest.raises(LoginRefused) as locked:
        store.login("li", PASSWORD, "10.0.0.5")  # even the right password, from another address
    assert locked.value.reason == "locked"
    assert locked.value.retry_after == pytest.approx(600 - 30)
    assert audit.rows[-1]["reason"] == "locked"
    clock.now = T0 + 599
    with pytest.raises(LoginRefused, match="locked"):
        store.login("li", PASSWORD, "10.0.0.5")
    clock.now = T0 + 601  # the first failure left the window
    assert store.principal(store.login("li", PASSWORD, "10.0.0.5")) is not None


def test_attempts_while_locked_do_not_extend_the_lockout(store: UserStore, clock: Clock) -> None:
    for _ in range(CONFIG.login_max_failures):
        with pytest.raises(LoginRefused):
            store.login("li", "wrong password!", "192.0.2.1")
    for _ in range(20):
        clock.now += 25
        with pytest.raises(LoginRefused, match="locked"):
            store.login("li", "wrong password!", "192.0.2.1")
    clock.now = T0 + 601
    assert store.login("li", PASSWORD, "10.0.0.5")


def test_parallel_guesses_are_all_counted(store: UserStore) -> None:
    def guess(n: int) -> str:
        try:
            store.login("li", f"parallel guess {n}", f"192.0.2.{n}")
        except LoginRefused as refused:
            return refused.reason
        return "in"

    with ThreadPoolExecutor(8) as pool:
        reasons = list(pool.map(guess, range(24)))
    assert reasons.count("bad-credentials") == CONFIG.login_max_failures
    assert reasons.count("locked") == 24 - CONFIG.login_max_failures


def test_failures_from_one_address_lock_that_address_for_every_name(store: UserStore, clock: Clock) -> None:
    store.add_user("wang", Role.VIEWER, PASSWORD)
    for name in ("zhang", "zhao", "sun"):  # one password tried against many names
        with pytest.raises(LoginRefused, match="bad-credentials"):
            store.login(name, "spring2026!!", "198.51.100.7")
    with pytest.raises(LoginRefused, match="locked"):
        store.login("wang", PASSWORD, "198.51.100.7")
    assert store.login("wang", PASSWORD, "10.0.0.5")  # the user is not locked, the address is
    clock.now += 601
    assert store.login("wang", PASSWORD, "198.51.100.7")


def test_a_success_forgives_the_name_but_not_the_address(store: UserStore) -> None:
    store.add_user("wang", Role.VIEWER, PASSWORD)
    for _ in range(2):
        with pytest.raises(LoginRefused):
            store.login("li", "wrong password!", "198.51.100.7")
    store.login("li", PASSWORD, "10.0.0.5")  # li logs in: li's count starts again ...
    for _ in range(2):
        with pytest.raises(LoginRefused, match="bad-credentials"):
            store.login("li", "wrong password!", "10.0.0.9")
    with pytest.raises(LoginRefused, match="bad-credentials"):  # ... 198.51.100.7's does not
        store.login("wang", "wrong password!", "198.51.100.7")
    with pytest.raises(LoginRefused, match="locked"):
        store.login("wang", PASSWORD, "198.51.100.7")


def test_tokens_expire_after_the_configured_lifetime(store: UserStore, clock: Clock) -> None:
    token = store.login("li", PASSWORD, "10.0.0.5")
    clock.now += CONFIG.token_ttl - 1
    assert store.principal(token) is not None
    clock.now += 2
    assert store.principal(token) is None


def test_logout_ends_the_token(store: UserStore, audit: FakeAudit) -> None:
    token = store.login("li", PASSWORD, "10.0.0.5")
    assert store.logout(token, remote="10.0.0.5")
    assert store.principal(token) is None
    assert not store.logout(token)
    assert audit.actions()[-1] == "logout"


def test_disabling_a_user_ends_its_tokens_and_suspends_its_api_keys(store: UserStore, audit: FakeAudit) -> None:
    store.add_user("wang", Role.ADMIN, PASSWORD)
    token = store.login("li", PASSWORD, "10.0.0.5")
    key = store.create_api_key("li", "bms-export", actor="wang")
    store.disable_user("li", "wang", reason="left the archive", remote="10.0.0.1")
    assert store.principal(token) is None and store.principal(key) is None
    with pytest.raises(LoginRefused, match="disabled"):
        store.login("li", PASSWORD, "10.0.0.5")
    store.enable_user("li", "wang")
    assert store.principal(token) is None  # an open session does not come back ...
    assert store.principal(key) == Principal("li", Role.OPERATOR, "apikey")  # ... the integration does
    disable = next(r for r in audit.rows if r["action"] == "user.disable")
    assert (disable["actor"], disable["target"], disable["reason"], disable["remote"]) == (
        "wang", "li", "left the archive", "10.0.0.1")
    assert "user.enable" in audit.actions()


def test_api_keys_work_until_revoked_and_only_their_digest_is_stored(store: UserStore, audit: FakeAudit) -> None:
    key = store.create_api_key("li", "bms-export", actor="cli")
    assert store.principal(key, "10.0.0.7") == Principal("li", Role.OPERATOR, "apikey", "10.0.0.7")
    stored = _rows(store.path, "SELECT hash, kind, expires FROM credentials")
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), "apikey", None)]
    store.close()
    for file in store.path.parent.iterdir():
        assert key.encode() not in file.read_bytes()
    store = UserStore(store.path, audit=audit, config=CONFIG, hasher=CHEAP)
    [info] = store.list_api_keys("li")
    assert info.id == key_id(key) and info.label == "bms-export" and info.revoked is None
    assert audit.rows[-1]["detail"] == {"id": key_id(key), "label": "bms-export"}
    store.revoke_api_key("li", info.id, actor="cli")
    assert store.principal(key) is None
    assert audit.actions()[-1] == "apikey.revoke"
    with pytest.raises(UserError, match="no working API key"):
        store.revoke_api_key("li", info.id)


def test_a_role_change_applies_to_existing_tokens(store: UserStore) -> None:
    store.add_user("wang", Role.ADMIN, PASSWORD)
    token = store.login("li", PASSWORD, "10.0.0.5")
    store.set_role("li", Role.VIEWER, "wang")
    principal = store.principal(token)
    assert principal is not None and principal.role is Role.VIEWER and not principal.may("act")


def test_a_new_password_ends_the_sessions_and_replaces_the_old_one(store: UserStore) -> None:
    token = store.login("li", PASSWORD, "10.0.0.5")
    store.set_password("li", "another long passphrase")
    assert store.principal(token) is None
    with pytest.raises(LoginRefused):
        store.login("li", PASSWORD, "10.0.0.5")
    assert store.login("li", "another long passphrase", "10.0.0.5")


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(store: UserStore) -> None:
    store.add_user("wang", Role.ADMIN, PASSWORD)
    store.add_user("zhao", Role.ADMIN, PASSWORD)
    store.disable_user("zhao", "wang")
    with pytest.raises(LastAdmin):
        store.disable_user("wang", "wang")
    with pytest.raises(LastAdmin):
        store.set_role("wang", Role.OPERATOR, "wang")
    store.enable_user("zhao", "wang")
    store.set_role("wang", Role.OPERATOR, "zhao")


def test_ensure_admin_creates_one_admin_once_with_a_private_random_password(tmp_path: Path, audit: FakeAudit) -> None:
    users = UserStore(tmp_path / "users.db", audit=audit, hasher=CHEAP)
    written = ensure_admin(users, tmp_path / "state")
    assert written == str(tmp_path / "state" / ADMIN_PASSWORD_FILE)
    file = Path(written)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    password = file.read_text().strip()
    assert len(password) == 20 and password.isalnum()
    assert [(u.name, u.role) for u in users.list_users()] == [("admin", Role.ADMIN)]
    assert users.principal(users.login("admin", password, "127.0.0.1")) is not None
    assert audit.rows[0]["action"] == "user.add" and audit.rows[0]["actor"] == "system"
    assert password not in json.dumps(audit.rows)
    assert ensure_admin(users, tmp_path / "state") is None
    assert file.read_text().strip() == password and len(users.list_users()) == 1
    other = UserStore(tmp_path / "other.db", hasher=CHEAP)
    assert ensure_admin(other, tmp_path / "other") is not None
    assert (tmp_path / "other" / ADMIN_PASSWORD_FILE).read_text().strip() != password


def test_ensure_admin_replaces_a_leftover_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ADMIN_PASSWORD_FILE).write_text("from an earlier install\n")
    (state / ADMIN_PASSWORD_FILE).chmod(0o644)
    written = ensure_admin(UserStore(tmp_path / "users.db", hasher=CHEAP), state)
    assert written is not None and stat.S_IMODE(Path(written).stat().st_mode) == 0o600
    assert "earlier" not in Path(written).read_text()
    assert [p.name for p in state.iterdir()] == [ADMIN_PASSWORD_FILE]


def test_ensure_admin_leaves_a_store_with_users_alone(store: UserStore, tmp_path: Path) -> None:
    assert ensure_admin(store, tmp_path / "state") is None
    assert not (tmp_path / "state" / ADMIN_PASSWORD_FILE).exists()
    assert [u.name for u in store.list_users()] == ["li"]


# --- the routes ---------------------------------------------------------------------------------------------

ROLES = [Role.VIEWER, Role.OPERATOR, Role.INSPECTOR, Role.ADMIN]


@pytest.fixture
def api(tmp_path: Path, clock: Clock, audit: FakeAudit) -> tuple[TestClient, UserStore, dict[str, str]]:
    users = UserStore(tmp_path / "users.db", audit=audit, clock=clock, hasher=CHEAP)
    auth = make_auth(users, CONFIG)
    app = FastAPI()
    auth.include(app)
    for permission in ("read", "act", "audit", "admin"):
        dependency = auth.require(permission)

        # A default, not Annotated: string annotations (__future__) cannot name this loop's local dependency.
        def route(principal: Principal = Depends(dependency)) -> dict[str, str]:  # noqa: B008
            return {"user": principal.user, "via": principal.via}

        app.add_api_route(f"/dummy/{permission}", route, methods=["GET"])
    tokens = {}
    for role in ROLES:
        users.add_user(f"u-{role.value}", role, PASSWORD)
        tokens[role.value] = users.login(f"u-{role.value}", PASSWORD, "testclient")
    tokens["apikey"] = users.create_api_key(f"u-{Role.OPERATOR.value}", "scada")
    return TestClient(app), users, tokens


ACCESS = {  # who gets what: written out, not derived from PERMISSIONS, so a change there shows up here
    #             read  act  audit admin
    "viewer":    (200, 403, 403, 403),
    "operator":  (200, 200, 403, 403),
    "inspector": (200, 403, 200, 403),
    "admin":     (200, 200, 200, 200),
    "apikey":    (200, 200, 403, 403),  # an operator's key
    "none":      (401, 401, 401, 401),
    "invalid":   (401, 401, 401, 401),
}


@pytest.mark.parametrize("who", list(ACCESS))
@pytest.mark.parametrize(("permission", "column"), [("read", 0), ("act", 1), ("audit", 2), ("admin", 3)])
def test_each_role_reaches_what_its_permissions_allow(api: tuple[TestClient, UserStore, dict[str, str]], who: str,
                                                      permission: str, column: int) -> None:
    client, _, tokens = api
    headers = ({} if who == "none" else {"Authorization": "Bearer not-a-token"} if who == "invalid"
               else {"Authorization": f"Bearer {tokens[who]}"})
    response = client.get(f"/dummy/{permission}", headers=headers)
    assert response.status_code == ACCESS[who][column], response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if response.status_code == 200:
        assert response.json()["via"] == ("apikey" if who == "apikey" else "token")


def test_an_api_key_is_accepted_in_the_x_api_key_header(api: tuple[TestClient, UserStore, dict[str, str]]) -> None:
    client, _, tokens = api
    assert client.get("/dummy/act", headers={"X-API-Key": tokens["apikey"]}).json() == {
        "user": "u-operator", "via": "apikey"}
    assert client.get("/dummy/read", headers={"X-API-Key": "nope"}).status_code == 401
    assert client.get("/dummy/read", headers={"Authorization": f"Basic {tokens['admin']}"}).status_code == 401


def test_a_misspelt_permission_fails_when_the_app_is_built(tmp_path: Path) -> None:
    auth = make_auth(UserStore(tmp_path / "users.db", hasher=CHEAP), CONFIG)
    with pytest.raises(ValueError, match="unknown permission 'acts'"):
        auth.require("acts")


def test_login_route_gives_a_token_and_refuses_without_saying_why(
        api: tuple[TestClient, UserStore, dict[str, str]], clock: Clock) -> None:
    client, users, _ = api
    ok = client.post("/api/v1/auth/login", json={"username": "u-viewer", "password": PASSWORD})
    assert ok.status_code == 200
    body = ok.json()
    assert body["role"] == "viewer" and body["expires"] == T0 + CONFIG.token_ttl
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).json() == {
        "user": "u-viewer", "role": "viewer", "via": "token", "permissions": ["read"]}
    wrong = client.post("/api/v1/auth/login", json={"username": "u-viewer", "password": "wrong password!"})
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
    users.disable_user("u-viewer", "u-admin")
    disabled = client.post("/api/v1/auth/login", json={"username": "u-viewer", "password": PASSWORD})
    assert disabled.status_code == 401 and disabled.json() == wrong.json()
    assert client.post("/api/v1/auth/login", json={"username": "u-viewer"}).status_code == 422


def test_login_route_answers_429_with_retry_after_when_locked(
        api: tuple[TestClient, UserStore, dict[str, str]], clock: Clock) -> None:
    client, _, _ = api
    for _ in range(CONFIG.login_max_failures):
        assert client.post("/api/v1/auth/login", json={"username": "u-admin", "password": "x"}).status_code == 401
    locked = client.post("/api/v1/auth/login", json={"username": "u-admin", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) == 601
    clock.now += 601
    assert client.post("/api/v1/auth/login", json={"username": "u-admin", "password": PASSWORD}).status_code == 200


def test_logout_route_ends_the_token_but_not_an_api_key(api: tuple[TestClient, UserStore, dict[str, str]]) -> None:
    client, _, tokens = api
    bearer = {"Authorization": f"Bearer {tokens['operator']}"}
    assert client.post("/api/v1/auth/logout", headers=bearer).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    assert client.post("/api/v1/auth/logout", headers={"X-API-Key": tokens["apikey"]}).status_code == 400
    assert client.get("/dummy/read", headers={"X-API-Key": tokens["apikey"]}).status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 401


def test_admins_manage_users_and_keys_through_the_api(api: tuple[TestClient, UserStore, dict[str, str]],
                                                      audit: FakeAudit) -> None:
    client, users, tokens = api
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    assert client.get("/api/v1/users", headers=operator).status_code == 403
    assert [u["name"] for u in client.get("/api/v1/users", headers=admin).json()] == [
        "u-admin", "u-inspector", "u-operator", "u-viewer"]
    created = client.post("/api/v1/users", headers=admin, json={"name": "qian", "role": "viewer",
                                                                 "password": PASSWORD})
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    add = next(r for r in audit.rows if r["action"] == "user.add" and r["target"] == "qian")
    assert add["actor"] == "u-admin" and add["remote"] == "testclient"
    assert client.post("/api/v1/users", headers=admin, json={"name": "qian", "role": "viewer",
                                                             "password": PASSWORD}).status_code == 409
    assert client.post("/api/v1/users", headers=admin, json={"name": "zhou", "role": "viewer",
                                                             "password": "short"}).status_code == 422
    assert client.put("/api/v1/users/qian/role", headers=admin, json={"role": "operator"}).json()["role"] == "operator"
    key = client.post("/api/v1/users/qian/apikeys", headers=admin, json={"label": "bms"})
    assert key.status_code == 201
    assert client.get("/dummy/act", headers={"X-API-Key": key.json()["key"]}).json()["user"] == "qian"
    listed = client.get("/api/v1/users/qian/apikeys", headers=admin).json()
    assert listed[0]["id"] == key.json()["id"] and "key" not in listed[0]
    disabled = client.post("/api/v1/users/qian/disable", headers=admin, json={"reason": "left"})
    assert disabled.json()["disabled"] is True
    assert client.get("/dummy/read", headers={"X-API-Key": key.json()["key"]}).status_code == 401
    assert client.post("/api/v1/users/nobody/disable", headers=admin).status_code == 404
    assert client.post("/api/v1/users/u-admin/disable", headers=admin).status_code == 409  # the last admin
    assert client.post("/api/v1/users/qian/enable", headers=admin).json()["disabled"] is False
    assert client.delete(f"/api/v1/users/qian/apikeys/{key.json()['id']}", headers=admin).status_code == 204
    assert client.get("/dummy/read", headers={"X-API-Key": key.json()["key"]}).status_code == 401
    assert client.put("/api/v1/users/qian/password", headers=admin,
                      json={"password": "a new long passphrase"}).status_code == 204
    assert users.login("qian", "a new long passphrase", "10.0.0.5")


def test_the_openapi_document_describes_the_auth_routes(api: tuple[TestClient, UserStore, dict[str, str]]) -> None:
    client, _, _ = api
    document = client.get("/openapi.json").json()
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert "LoginRequest" in json.dumps(login["requestBody"]) and {"200", "401", "429"} <= set(login["responses"])
    assert {"HTTPBearer", "APIKeyHeader"} <= set(document["components"]["securitySchemes"])


# --- the CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": {"id": "s"}, "buildings": [{"id": "b"}], "state_dir": "state"}),
                    encoding="utf-8")
    return path


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


def test_cli_adds_lists_disables_and_makes_keys(site: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(site)]
    assert run(monkeypatch, "users", "list", *config) == 2  # no users file yet: said, not created
    assert "no users database" in capsys.readouterr().err
    assert run(monkeypatch, "users", "add", "li", "--role", "operator", "--password-stdin", *config,
               stdin=PASSWORD + "\n") == 0
    assert run(monkeypatch, "users", "add", "wu", "--role", "viewer", "--password-stdin", *config,
               stdin="short\n") == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert run(monkeypatch, "users", "apikey", "li", "--label", "bms-export", *config) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    users = UserStore(site.parent / "state" / "users.db")
    assert users.principal(key) == Principal("li", Role.OPERATOR, "apikey")
    assert key_id(key) in out.err
    assert run(monkeypatch, "users", "list", "--json", *config) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["role"], listed["apikeys"][0]["label"]) == ("li", "operator", "bms-export")
    assert run(monkeypatch, "users", "disable", "li", *config) == 0
    assert users.principal(key) is None
    assert run(monkeypatch, "users", "enable", "li", *config) == 0
    assert run(monkeypatch, "users", "disable", "nobody", *config) == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def test_cli_passwd_prompts_twice_and_retires_the_first_start_file(site: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    state = site.parent / "state"
    written = ensure_admin(UserStore(state / "users.db", hasher=CHEAP), state)
    assert written is not None
    answers = iter(["a new admin passphrase", "a different passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(monkeypatch, "users", "passwd", "admin", "--config", str(site)) == 1
    assert "differ" in capsys.readouterr().err and Path(written).exists()
    answers = iter(["a new admin passphrase"] * 2)
    assert run(monkeypatch, "users", "passwd", "admin", "--config", str(site)) == 0
    assert not Path(written).exists()
    assert UserStore(state / "users.db").login("admin", "a new admin passphrase", "127.0.0.1")
