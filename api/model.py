"""Who is asking, and what they may do: shared by authentication, the routes and the audit trail."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol


class Role(enum.StrEnum):
    """viewer reads state and history; operator also acts (acknowledge, shelve, control); inspector reads
    everything including the audit trail and reports but changes nothing; admin does all, users and config too."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    INSPECTOR = "inspector"
    ADMIN = "admin"


# What each role may do; a route names the permission it needs.
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset({"read"}),
    Role.OPERATOR: frozenset({"read", "act"}),
    Role.INSPECTOR: frozenset({"read", "audit", "reports"}),
    Role.ADMIN: frozenset({"read", "act", "audit", "reports", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: Role
    via: str = "token"  # token | apikey
    remote: str = ""  # the client's address, for the audit trail

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


class Audit(Protocol):
    """The audit trail's append: who did what to what, why, from where. Returns the row's sequence number."""

    def append(self, actor: str, action: str, target: str = "", *, detail: dict[str, Any] | None = None,
               reason: str = "", remote: str = "", ts: float | None = None) -> int: ...
