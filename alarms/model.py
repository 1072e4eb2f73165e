"""The alarm vocabulary every part of the engine, its journal and its outputs share.

ISA-18.2 separates the *process condition* (is the room too humid?) from the
*alarm state* (has anyone seen it?). Rules decide conditions; the lifecycle in
`alarms.lifecycle` turns condition changes and operator actions into states;
every change is one `AlarmEvent`, journaled before it takes effect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Priority(enum.StrEnum):
    CRITICAL = "critical"  # fire, gas discharge, water, intrusion: act now
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical, 3 for low: sorts the most urgent first."""
        return _RANK[self]


_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class AlarmState(enum.StrEnum):
    """The four annunciation states of ISA-18.2 (shelving, suppression and out of service are flags beside them)."""

    NORMAL = "normal"
    ACTIVE_UNACK = "active_unacknowledged"
    ACTIVE_ACK = "active_acknowledged"
    RETURNED_UNACK = "returned_unacknowledged"

    @property
    def active(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)

    @property
    def unacknowledged(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACK, AlarmState.RETURNED_UNACK)


class EventKind(enum.StrEnum):
    RAISED = "raised"  # normal → active-unacknowledged: a new occurrence (ticket)
    REACTIVATED = "reactivated"  # returned-unacknowledged → active-unacknowledged: same occurrence
    RETURNED = "returned"  # condition cleared while unacknowledged
    CLEARED = "cleared"  # back to normal (acknowledged and condition gone)
    ACKNOWLEDGED = "acknowledged"
    REALARM = "realarm"  # still active and unacknowledged after its priority's interval: notify again
    ESCALATED = "escalated"  # priority raised while active (calibration: 90 d → 30 d → overdue)
    SHELVED = "shelved"
    UNSHELVED = "unshelved"  # by an operator or because the shelf expired
    SUPPRESSED = "suppressed"  # hidden by design behind another alarm (gateway down hides its points' no-data)
    UNSUPPRESSED = "unsuppressed"
    OUT_OF_SERVICE = "out_of_service"
    IN_SERVICE = "in_service"


# Kinds after which someone should be told (the notifier's input); the rest are bookkeeping.
ANNUNCIATING = frozenset({EventKind.RAISED, EventKind.REACTIVATED, EventKind.REALARM, EventKind.ESCALATED})


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One alarm that can exist: what is watched, where, why, how urgent. Built from the config at start."""

    key: str  # stable id, e.g. "th-101.humidity:high", "fire-main.zone2_fire:fire", "gw-main:comm_loss"
    cause: str  # humidity_high, fire, no_data, comm_loss... (with the room: the notifier's grouping key)
    priority: Priority
    site: str
    room: str | None  # None for gateway-wide alarms
    building: str | None
    source: str  # point key, device id or gateway id
    description: str  # for people: "RH above 60 % (paper stack limit, JGJ 25-2010 5.2.1)"
    limit: float | None = None
    unit: str = ""

    @property
    def group_key(self) -> str:
        """Alarms with the same room and cause go out as one notification (issue 4)."""
        return f"{self.room or '-'}:{self.cause}"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One journaled change of one alarm: the unit of the journal, InfluxDB `events`, MQTT and notifications."""

    seq: int  # journal order; 0 until journaled
    ts: float  # clock seconds (UTC epoch) when it took effect
    alarm: str  # AlarmDefinition.key
    occurrence: int  # ticket number of the activation episode (0 when the alarm never activated)
    kind: EventKind
    state: AlarmState  # after the event
    previous: AlarmState
    priority: Priority
    cause: str
    room: str | None
    building: str | None
    site: str
    source: str
    value: float | None = None  # the value that tripped or cleared it, when there is one
    limit: float | None = None
    message: str = ""
    actor: str = ""  # who (acknowledge, shelve); "system" for the engine
    comment: str = ""  # the acknowledgement comment or shelving reason
    until: float | None = None  # shelving expiry
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def group_key(self) -> str:
        return f"{self.room or '-'}:{self.cause}"


@dataclass(slots=True)
class AlarmStatus:
    """The current state of one alarm: what the dashboard, API and `stackwatch alarms list` show."""

    key: str
    state: AlarmState = AlarmState.NORMAL
    occurrence: int = 0
    priority: Priority = Priority.LOW
    active_since: float | None = None  # start of the current occurrence (kept across restarts)
    condition: bool = False  # the process condition, even while shelved, suppressed or out of service
    value: float | None = None
    acked_by: str = ""
    acked_at: float | None = None
    ack_comment: str = ""
    shelved_until: float | None = None
    shelved_by: str = ""
    shelve_reason: str = ""
    suppressed_by: str = ""  # key of the alarm that hides this one
    out_of_service: bool = False
    oos_reason: str = ""
    last_annunciated: float | None = None  # raise or last realarm: drives the priority's repeat interval
    activations: int = 0  # how many times it went active (chatter figures)

    @property
    def hidden(self) -> bool:
        """Shelved, suppressed or out of service: tracked, journaled, but not annunciated."""
        return self.shelved_until is not None or bool(self.suppressed_by) or self.out_of_service
