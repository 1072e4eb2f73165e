"""Users, roles, login tokens, API keys and lock-out for the HTTP API (issue 5).

The store keeps only what cannot be turned back into a credential: argon2id
hashes of passwords and sha256 digests of tokens and API keys. A copied
users.db therefore opens no door; the secrets exist once, in the answer that
created them.

Users are never deleted, only disabled, so every name in the audit trail
still means someone. Failed logins are counted per name and per client
address, because an attacker guesses either many passwords for one name or
one password for many names; both must run into the lock-out.

`make_auth` turns a store into FastAPI dependencies and routes; handlers ask
for a `Principal` with `Depends(auth.require("act"))` and never see a header.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and those made inside
# `AuthDeps` name its local dependencies, which string annotations could not resolve.

import hashlib
import os
import re
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from stackwatch.config.api import ApiConfig

from .model import PERMISSIONS, Audit, Principal, Role

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a pasted file from becoming someone's password
ADMIN_PASSWORD_FILE = "admin-password"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY_ID = re.compile(r"^[0-9a-f]{8,64}$")
_KEY_ID_LENGTH = 12
_MAX_SECRET = 256  # token_urlsafe(32) is 43 characters; anything far longer is not one of ours
_ALL_PERMISSIONS = frozenset().union(*PERMISSIONS.values())

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    hash TEXT PRIMARY KEY,              -- sha256 of the secret: the secret itself is never stored
    user TEXT NOT NULL REFERENCES users(name),
    kind TEXT NOT NULL CHECK (kind IN ('token', 'apikey')),
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL,                       -- NULL for API keys
    revoked REAL                        -- when; NULL while it works
);
CREATE INDEX IF NOT EXISTS credentials_user ON credentials (user, kind);
CREATE TABLE IF NOT EXISTS login_failures (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,                 -- '' when the name typed cannot be a user's
    remote TEXT NOT NULL,               -- '' when the client's address is unknown
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_user ON login_failures (user, ts);
CREATE INDEX IF NOT EXISTS login_failures_remote ON login_failures (remote, ts);
"""


class UserError(ValueError):
    """A request the user store refuses; the text is meant for the person who asked."""


class UnknownUser(UserError):
    pass


class UserExists(UserError):
    pass


class LastAdmin(UserError):
    """Refused because no enabled admin would be left to manage users through the API."""


class UnknownKey(UserError):
    pass


class LoginRefused(Exception):
    """`reason` is for the audit trail (`bad-credentials`, `disabled`, `locked`); the client only learns
    whether it was locked out, so the answer does not tell which names exist or which are disabled."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    role: Role
    disabled: bool
    created: float


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    label: str
    created: float
    revoked: float | None


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    expires: float
    user: str
    role: Role


def secret_digest(secret: str) -> str:
    """What the store keeps of a token or key: enough to recognise it, useless to present."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_id(secret: str) -> str:
    """A key's public name, for listing and revoking it without handling the secret again."""
    return secret_digest(secret)[:_KEY_ID_LENGTH]


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"user name {name!r} is not valid: 1–64 letters, digits, '.', '_', '-', "
                        "starting with a letter or digit")
    return name


def check_password(password: str, name: str = "") -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if name and password.strip().lower() == name.lower():
        raise UserError("the password must not be the user name")
    return password


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None


class UserStore:
    """Users and their credentials in one SQLite file (WAL, so the CLI can change users while the service runs).

    `config` supplies the token lifetime and the lock-out rules; `hasher` exists so tests can use cheap argon2
    parameters: hashes made with other parameters are upgraded at the next successful login.
    """

    def __init__(self, path: str | Path, *, audit: Audit | None = None, clock: Callable[[], float] = time.time,
                 config: ApiConfig | None = None, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.audit = audit
        self.clock = clock
        self.config = config or ApiConfig()
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # password hashes are nobody else's business: owner-only from the start
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One immediate transaction: a check and the change it allows cannot be split by another process."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def _audit(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "") -> None:
        if self.audit is not None:
            self.audit.append(actor, action, target, detail=detail, reason=reason, remote=remote, ts=self.clock())

    # --- users ----------------------------------------------------------------------------------------------

    def has_users(self) -> bool:
        return bool(self._read("SELECT 1 FROM users LIMIT 1"))

    def list_users(self) -> list[UserInfo]:
        return [self._info(row) for row in self._read("SELECT * FROM users ORDER BY name")]

    def user(self, name: str) -> UserInfo | None:
        rows = self._read("SELECT * FROM users WHERE name = ?", (name,))
        return self._info(rows[0]) if rows else None

    @staticmethod
    def _info(row: sqlite3.Row) -> UserInfo:
        return UserInfo(row["name"], Role(row["role"]), bool(row["disabled"]), row["created"])

    @staticmethod
    def _existing(cursor: sqlite3.Cursor, name: str) -> sqlite3.Row:
        row: sqlite3.Row | None = cursor.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownUser(f"no user {name!r}")
        return row

    @staticmethod
    def _keep_an_admin(cursor: sqlite3.Cursor, row: sqlite3.Row) -> None:
        """Without an enabled admin nobody can manage users through the API; the CLI would be the only way back."""
        if row["role"] != Role.ADMIN.value or row["disabled"]:
            return
        others = cursor.execute("SELECT COUNT(*) FROM users WHERE role = ? AND disabled = 0 AND name != ?",
                                (Role.ADMIN.value, row["name"])).fetchone()[0]
        if not others:
            raise LastAdmin(f"{row['name']!r} is the last enabled admin; make another admin first")

    def add_user(self, name: str, role: Role | str, password: str, actor: str = "cli", *, remote: str = "") -> UserInfo:
        check_name(name)
        role = _role(role)
        password_hash = self.hasher.hash(check_password(password, name))  # slow: outside the lock
        created = self.clock()
        with self._write() as cursor:
            if cursor.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserExists(f"user {name!r} already exists")
            cursor.execute("INSERT INTO users (name, role, password_hash, disabled, created) VALUES (?, ?, ?, 0, ?)",
                           (name, role.value, password_hash, created))
        self._audit(actor, "user.add", name, detail={"role": role.value}, remote=remote)
        return UserInfo(name, role, False, created)

    def disable_user(self, name: str, actor: str = "cli", *, reason: str = "", remote: str = "") -> None:
        """Login tokens end with the account; API keys only stop working, so enabling the user again restores
        the integrations that depend on them but not a session someone may have left open."""
        with self._write() as cursor:
            row = self._existing(cursor, name)
            self._keep_an_admin(cursor, row)
            cursor.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,))
            self._revoke_tokens(cursor, name)
        self._audit(actor, "user.disable", name, reason=reason, remote=remote)

    def enable_user(self, name: str, actor: str = "cli", *, remote: str = "") -> None:
        with self._write() as cursor:
            self._existing(cursor, name)
            cursor.execute("UPDATE users SET disabled = 0 WHERE name = ?", (name,))
        self._audit(actor, "user.enable", name, remote=remote)

    def set_role(self, name: str, role: Role | str, actor: str = "cli", *, remote: str = "") -> None:
        """Effective at the next request: a principal's role is read from the user, not baked into tokens."""
        role = _role(role)
        with self._write() as cursor:
            row = self._existing(cursor, name)
            if role is not Role.ADMIN:
                self._keep_an_admin(cursor, row)
            cursor.execute("UPDATE users SET role = ? WHERE name = ?", (role.value, name))
        self._audit(actor, "user.role", name, detail={"from": row["role"], "to": role.value}, remote=remote)

    def set_password(self, name: str, password: str, actor: str = "cli", *, remote: str = "") -> None:
        """A new password ends the user's login sessions: it is usually set because the old one leaked."""
        password_hash = self.hasher.hash(check_password(password, name))
        with self._write() as cursor:
            self._existing(cursor, name)
            cursor.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))
            self._revoke_tokens(cursor, name)
        self._audit(actor, "user.passwd", name, remote=remote)

    def _revoke_tokens(self, cursor: sqlite3.Cursor, name: str) -> None:
        cursor.execute("UPDATE credentials SET revoked = ? WHERE user = ? AND kind = 'token' AND revoked IS NULL",
                       (self.clock(), name))

    # --- logging in -----------------------------------------------------------------------------------------

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _lock_remaining(self, cursor: sqlite3.Cursor, column: str, value: str, now: float) -> float | None:
        """Seconds until enough of the recent failures age out of the window to allow a new attempt."""
        window = self.config.login_lockout
        times: list[float] = [float(r[0]) for r in cursor.execute(
            f"SELECT ts FROM login_failures WHERE {column} = ? AND ts > ? ORDER BY ts", (value, now - window))]
        if len(times) < self.config.login_max_failures:
            return None
        return max(times[len(times) - self.config.login_max_failures] + window - now, 0.001)

    def login_session(self, name: str, password: str, remote: str = "") -> Session:
        """Every attempt is recorded as a failure before the password is checked and forgiven if it was right:
        parallel guesses are counted too, not only the ones that finished before the next began."""
        now = self.clock()
        remote = remote[:100]
        valid_name = bool(_NAME.match(name))
        counted = name if valid_name else ""
        actor = name if valid_name else "?"  # a name that cannot exist may be a password typed in the wrong field
        with self._write() as cursor:
            cursor.execute("DELETE FROM login_failures WHERE ts <= ?", (now - self.config.login_lockout,))
            waits = [self._lock_remaining(cursor, "user", counted, now) if counted else None,
                     self._lock_remaining(cursor, "remote", remote, now) if remote else None]
            locked = max((w for w in waits if w is not None), default=None)
            attempt = 0
            if locked is None:
                attempt = int(cursor.execute("INSERT INTO login_failures (user, remote, ts) VALUES (?, ?, ?)",
                                             (counted, remote, now)).lastrowid or 0)
            row = cursor.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone() if valid_name else None
        if locked is not None:
            self._audit(actor, "login.failure", reason="locked", remote=remote)
            raise LoginRefused("locked", retry_after=locked)
        stored = row["password_hash"] if row is not None else self._dummy()
        try:  # the same argon2 work whether or not the name exists: timing does not reveal the user list
            self.hasher.verify(stored, password)
            matched = row is not None
        except (VerificationError, InvalidHashError):
            matched = False
        if not matched or row is None:
            self._audit(actor, "login.failure", reason="bad-credentials", remote=remote)
            raise LoginRefused("bad-credentials")
        if row["disabled"]:
            self._audit(actor, "login.failure", reason="disabled", remote=remote)
            raise LoginRefused("disabled")
        new_hash = self.hasher.hash(password) if self.hasher.check_needs_rehash(stored) else None
        token = secrets.token_urlsafe(32)
        expires = now + self.config.token_ttl
        with self._write() as cursor:
            # The name's earlier failures are forgiven; the address keeps them: an attacker who guessed from
            # there must not get a fresh start because the real user logged in somewhere else.
            cursor.execute("DELETE FROM login_failures WHERE id = ?", (attempt,))
            cursor.execute("UPDATE login_failures SET user = '' WHERE user = ?", (name,))
            cursor.execute("DELETE FROM credentials WHERE kind = 'token' AND expires < ?",
                           (now - self.config.token_ttl,))
            if new_hash is not None:
                cursor.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                               (new_hash, name, stored))
            cursor.execute("INSERT INTO credentials (hash, user, kind, label, created, expires) "
                           "VALUES (?, ?, 'token', ?, ?, ?)", (secret_digest(token), name, remote, now, expires))
        self._audit(name, "login.success", remote=remote)
        return Session(token, expires, name, Role(row["role"]))

    def login(self, name: str, password: str, remote: str = "") -> str:
        return self.login_session(name, password, remote).token

    def logout(self, token: str, *, remote: str = "") -> bool:
        """Ends a login token; API keys are revoked on purpose, never by a client logging out with one."""
        digest = secret_digest(token)
        with self._write() as cursor:
            row = cursor.execute("SELECT user FROM credentials WHERE hash = ? AND kind = 'token' AND revoked IS NULL",
                                 (digest,)).fetchone()
            if row is not None:
                cursor.execute("UPDATE credentials SET revoked = ? WHERE hash = ?", (self.clock(), digest))
        if row is None:
            return False
        self._audit(row["user"], "logout", remote=remote)
        return True

    # --- API keys -------------------------------------------------------------------------------------------

    def create_api_key(self, name: str, label: str, actor: str = "cli", *, remote: str = "") -> str:
        """The key is returned once and stored only as its digest: lost keys are replaced, never recovered."""
        label = label.strip()
        if not label or len(label) > 100:
            raise UserError("an API key needs a label of 1–100 characters saying what uses it")
        secret = secrets.token_urlsafe(32)
        with self._write() as cursor:
            if self._existing(cursor, name)["disabled"]:
                raise UserError(f"user {name!r} is disabled")
            cursor.execute("INSERT INTO credentials (hash, user, kind, label, created) VALUES (?, ?, 'apikey', ?, ?)",
                           (secret_digest(secret), name, label, self.clock()))
        self._audit(actor, "apikey.create", name, detail={"id": key_id(secret), "label": label}, remote=remote)
        return secret

    def list_api_keys(self, name: str) -> list[ApiKeyInfo]:
        rows = self._read("SELECT hash, label, created, revoked FROM credentials WHERE user = ? AND kind = 'apikey' "
                          "ORDER BY created", (name,))
        return [ApiKeyInfo(r["hash"][:_KEY_ID_LENGTH], r["label"], r["created"], r["revoked"]) for r in rows]

    def revoke_api_key(self, name: str, key: str, actor: str = "cli", *, remote: str = "") -> None:
        """`key` is the id shown at creation and in listings (a prefix of the digest), not the secret."""
        key = key.strip().lower()
        if not _KEY_ID.match(key):
            raise UnknownKey(f"{key!r} is not an API key id (hexadecimal, as `list` shows it)")
        with self._write() as cursor:
            self._existing(cursor, name)
            done = cursor.execute("UPDATE credentials SET revoked = ? WHERE user = ? AND kind = 'apikey' "
                                  "AND hash LIKE ? AND revoked IS NULL", (self.clock(), name, key + "%")).rowcount
            if not done:
                raise UnknownKey(f"user {name!r} has no working API key {key!r}")
        self._audit(actor, "apikey.revoke", name, detail={"id": key[:_KEY_ID_LENGTH]}, remote=remote)

    # --- who is asking --------------------------------------------------------------------------------------

    def principal(self, secret: str, remote: str = "") -> Principal | None:
        if not secret or len(secret) > _MAX_SECRET:
            return None
        rows = self._read("SELECT c.kind, c.expires, c.revoked, u.name, u.role, u.disabled FROM credentials c "
                          "JOIN users u ON u.name = c.user WHERE c.hash = ?", (secret_digest(secret),))
        if not rows:
            return None
        row = rows[0]
        if row["revoked"] is not None or row["disabled"]:
            return None
        if row["expires"] is not None and row["expires"] <= self.clock():
            return None
        return Principal(user=row["name"], role=Role(row["role"]), via=row["kind"], remote=remote)


def _random_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def ensure_admin(store: UserStore, state_dir: str | Path) -> str | None:
    """The first start's only way in, without a default password anyone could look up: a random one, readable
    by the service's own account alone. Returns the file's path for the log line, or None when users exist."""
    if store.has_users():
        return None
    path = Path(state_dir) / ADMIN_PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    password = _random_password()
    # Written aside first and moved into place only once the user exists: the password is on disk before it
    # works, and a second process racing this one cannot leave a file whose password is not the admin's.
    pending = path.with_name(f".{ADMIN_PASSWORD_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (password + "\n").encode())
    finally:
        os.close(fd)
    try:
        store.add_user("admin", Role.ADMIN, password, actor="system")
    except BaseException as error:
        pending.unlink(missing_ok=True)
        if isinstance(error, UserExists):  # another process got there first; its file is the one that counts
            return None
        raise
    os.replace(pending, path)
    return str(path)


# --- FastAPI ------------------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A login token from POST /api/v1/auth/login, or an API key.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (for scripts and integrations).")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
ApiKey = Annotated[str | None, Security(_api_key)]
_NOT_AUTHENTICATED = {"description": "No valid token or API key", "headers": {"WWW-Authenticate": {
    "description": "Bearer", "schema": {"type": "string"}}}}
_FORBIDDEN = {"description": "The role lacks the permission"}


class LoginRequest(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=4096)


class LoginResponse(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires: float = Field(description="Unix time after which the token no longer works.")
    role: Role
    user: str


class MeResponse(BaseModel):
    user: str
    role: Role
    via: str = Field(description="`token` or `apikey`.")
    permissions: list[str]


class UserOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    created: float


class NewUser(BaseModel):
    name: str = Field(description="1–64 letters, digits, '.', '_', '-'.")
    role: Role
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class RoleChange(BaseModel):
    role: Role


class PasswordChange(BaseModel):
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class DisableRequest(BaseModel):
    reason: str = Field("", max_length=500)


class NewApiKey(BaseModel):
    label: str = Field(min_length=1, max_length=100, description="What uses the key, e.g. `bms-export`.")


class ApiKeyCreated(BaseModel):
    key: str = Field(description="Shown once; send as `Authorization: Bearer <key>` or `X-API-Key`.")
    id: str
    label: str


class ApiKeyOut(BaseModel):
    id: str
    label: str
    created: float
    revoked: float | None


TOKEN_COOKIE = "stackwatch_token"


def _remote(request: Request) -> str:
    return request.client.host if request.client else ""


def _secret(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str:
    return bearer.credentials if bearer is not None else (api_key or "")


def _user_out(info: UserInfo) -> UserOut:
    return UserOut(name=info.name, role=info.role, disabled=info.disabled, created=info.created)


def _refused(error: UserError) -> HTTPException:
    code = (status.HTTP_404_NOT_FOUND if isinstance(error, UnknownUser | UnknownKey)
            else status.HTTP_409_CONFLICT if isinstance(error, UserExists | LastAdmin)
            else status.HTTP_422_UNPROCESSABLE_CONTENT)
    return HTTPException(code, str(error))


class AuthDeps:
    """The store as FastAPI sees it: dependencies that yield a `Principal`, and the auth and user routes.

    Handlers are plain `def`: argon2 and SQLite block, and FastAPI runs such handlers in its thread pool.
    """

    def __init__(self, store: UserStore, config: ApiConfig) -> None:
        store.config = config  # the API's token lifetime and lock-out are the ones that count
        self.store = store
        self.config = config
        self.router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
        self.users_router = APIRouter(prefix="/api/v1/users", tags=["users"],
                                      responses={401: _NOT_AUTHENTICATED, 403: _FORBIDDEN})
        self.authenticated = self._dependency(None)
        self._auth_routes()
        self._user_routes()

    def include(self, app: FastAPI) -> None:
        app.include_router(self.router)
        app.include_router(self.users_router)

    def require(self, permission: str) -> Callable[..., Principal]:
        """Checked here, when the app is built: a misspelt permission would otherwise refuse everyone forever."""
        if permission not in _ALL_PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}; one of {', '.join(sorted(_ALL_PERMISSIONS))}")
        return self._dependency(permission)

    def _dependency(self, permission: str | None) -> Callable[..., Principal]:
        store = self.store

        def dependency(request: Request, bearer: Bearer, api_key: ApiKey) -> Principal:
            secret = _secret(bearer, api_key)
            if not secret and request.method in ("GET", "HEAD"):
                # The dashboard's EventSource cannot send headers; a cookie is accepted for reads only, so a
                # forged cross-site form can never act with it.
                secret = request.cookies.get(TOKEN_COOKIE, "")
            principal = store.principal(secret, _remote(request))
            if principal is None:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated",
                                    headers={"WWW-Authenticate": "Bearer"})
            if permission is not None and not principal.may(permission):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"role {principal.role.value} lacks the permission {permission!r}")
            return principal

        return dependency

    def _auth_routes(self) -> None:
        store, router, authenticated = self.store, self.router, self.authenticated

        @router.post("/login", response_model=LoginResponse, responses={
            401: {"description": "Wrong name or password (the answer does not say which)"},
            429: {"description": "Too many failed logins for this name or from this address; see Retry-After"}})
        def login(body: LoginRequest, request: Request) -> LoginResponse:
            try:
                session = store.login_session(body.username, body.password, _remote(request))
            except LoginRefused as refused:
                if refused.reason == "locked":
                    raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try later",
                                        headers={"Retry-After": str(int(refused.retry_after or 0) + 1)}) from None
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password",
                                    headers={"WWW-Authenticate": "Bearer"}) from None
            return LoginResponse(token=session.token, expires=session.expires, role=session.role, user=session.user)

        @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={
            401: _NOT_AUTHENTICATED, 400: {"description": "An API key was sent; keys are revoked, not logged out"}})
        def logout(principal: Annotated[Principal, Depends(authenticated)], bearer: Bearer,
                   api_key: ApiKey) -> Response:
            if principal.via != "token":
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "API keys are revoked by an admin, not logged out")
            store.logout(_secret(bearer, api_key), remote=principal.remote)
            return Response(status_code=status.HTTP_204_NO_CONTENT)

        @router.get("/me", response_model=MeResponse, responses={401: _NOT_AUTHENTICATED})
        def me(principal: Annotated[Principal, Depends(authenticated)]) -> MeResponse:
            return MeResponse(user=principal.user, role=principal.role, via=principal.via,
                              permissions=sorted(PERMISSIONS[principal.role]))

    def _user_routes(self) -> None:
        store, router = self.store, self.users_router
        Admin = Annotated[Principal, Depends(self.require("admin"))]

        def found(name: str) -> UserOut:
            info = store.user(name)
            if info is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
            return _user_out(info)

        @router.get("", response_model=list[UserOut])
        def list_users(_: Admin) -> list[UserOut]:
            return [_user_out(u) for u in store.list_users()]

        @router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
        def create_user(body: NewUser, admin: Admin) -> UserOut:
            try:
                return _user_out(store.add_user(body.name, body.role, body.password, admin.user, remote=admin.remote))
            except UserError as error:
                raise _refused(error) from None

        @router.get("/{name}", response_model=UserOut)
        def get_user(name: str, _: Admin) -> UserOut:
            return found(name)

        @router.post("/{name}/disable", response_model=UserOut)
        def disable_user(name: str, admin: Admin, body: DisableRequest | None = None) -> UserOut:
            try:
                store.disable_user(name, admin.user, reason=body.reason if body else "", remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return found(name)

        @router.post("/{name}/enable", response_model=UserOut)
        def enable_user(name: str, admin: Admin) -> UserOut:
            try:
                store.enable_user(name, admin.user, remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return found(name)

        @router.put("/{name}/role", response_model=UserOut)
        def set_role(name: str, body: RoleChange, admin: Admin) -> UserOut:
            try:
                store.set_role(name, body.role, admin.user, remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return found(name)

        @router.put("/{name}/password", status_code=status.HTTP_204_NO_CONTENT)
        def set_password(name: str, body: PasswordChange, admin: Admin) -> Response:
            try:
                store.set_password(name, body.password, admin.user, remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return Response(status_code=status.HTTP_204_NO_CONTENT)

        @router.get("/{name}/apikeys", response_model=list[ApiKeyOut])
        def list_keys(name: str, _: Admin) -> list[ApiKeyOut]:
            found(name)
            return [ApiKeyOut(id=k.id, label=k.label, created=k.created, revoked=k.revoked)
                    for k in store.list_api_keys(name)]

        @router.post("/{name}/apikeys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
        def create_key(name: str, body: NewApiKey, admin: Admin) -> ApiKeyCreated:
            try:
                secret = store.create_api_key(name, body.label, admin.user, remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return ApiKeyCreated(key=secret, id=key_id(secret), label=body.label.strip())

        @router.delete("/{name}/apikeys/{key}", status_code=status.HTTP_204_NO_CONTENT)
        def revoke_key(name: str, key: str, admin: Admin) -> Response:
            try:
                store.revoke_api_key(name, key, admin.user, remote=admin.remote)
            except UserError as error:
                raise _refused(error) from None
            return Response(status_code=status.HTTP_204_NO_CONTENT)


def make_auth(store: UserStore, config: ApiConfig) -> AuthDeps:
    return AuthDeps(store, config)
