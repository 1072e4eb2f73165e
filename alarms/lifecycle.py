"""The ISA-18.2 alarm state machine, as pure functions of (status, input, now) → (new status, events).

    normal ──condition──▶ active-unacknowledged ──ack──▶ active-acknowledged ──clear──▶ normal
                                 │  ▲
                            clear│  │condition again (same occurrence)
                                 ▼  │
                          returned-unacknowledged ──ack──▶ normal

Shelving, suppression by design and out of service are flags beside the
state: while any is set the condition is still tracked and journaled, clearing
still happens, but nothing is annunciated (no raise, no re-alarm). When the
last flag goes and the condition holds, the alarm is raised then.

Functions never mutate their input: they return a new `AlarmStatus`, so the
engine can journal first and make the change take effect after.
"""

from __future__ import annotations

from dataclasses import replace

from .model import AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority

SYSTEM = "system"


class ActionRefused(ValueError):
    """An operator action that does not apply (acknowledging a normal alarm, shelving without a reason)."""


def _event(definition: AlarmDefinition, before: AlarmStatus, after: AlarmStatus, kind: EventKind, now: float,
           *, actor: str = SYSTEM, comment: str = "", message: str = "", until: float | None = None) -> AlarmEvent:
    return AlarmEvent(
        seq=0, ts=now, alarm=definition.key, occurrence=after.occurrence, kind=kind, state=after.state,
        previous=before.state, priority=after.priority, cause=definition.cause, room=definition.room,
        building=definition.building, site=definition.site, source=definition.source, value=after.value,
        limit=definition.limit, message=message or definition.description, actor=actor, comment=comment,
        until=until,
    )


Outcome = tuple[AlarmStatus, list[AlarmEvent]]


def on_condition(definition: AlarmDefinition, status: AlarmStatus, active: bool, now: float,
                 value: float | None, next_occurrence: int, priority: Priority | None = None) -> Outcome:
    """The process condition changed (or was re-decided). `next_occurrence` is the ticket a new raise gets."""
    new = replace(status, condition=active, value=value if value is not None else status.value)
    if priority is not None:
        new.priority = priority
    state = status.state
    if active:
        if state is AlarmState.NORMAL:
            if new.hidden:
                return new, []  # tracked; raised when the shelf or suppression ends
            return _raise(definition, status, new, now, next_occurrence)
        if state is AlarmState.RETURNED_UNACK:
            new.state = AlarmState.ACTIVE_UNACK
            new.activations += 1
            if new.hidden:
                return new, []
            new.last_annunciated = now
            return new, [_event(definition, status, new, EventKind.REACTIVATED, now)]
        if priority is not None and priority.rank < status.priority.rank and not new.hidden:
            new.state = AlarmState.ACTIVE_UNACK  # more urgent now: someone must look again
            new.last_annunciated = now
            new.acked_by, new.acked_at, new.ack_comment = "", None, ""
            return new, [_event(definition, status, new, EventKind.ESCALATED, now)]
        return new, []
    if state is AlarmState.ACTIVE_UNACK:
        new.state = AlarmState.RETURNED_UNACK
        return new, [_event(definition, status, new, EventKind.RETURNED, now)]
    if state is AlarmState.ACTIVE_ACK:
        new.state = AlarmState.NORMAL
        return new, [_event(definition, status, new, EventKind.CLEARED, now)]
    return new, []


def _raise(definition: AlarmDefinition, before: AlarmStatus, new: AlarmStatus, now: float,
           occurrence: int) -> Outcome:
    new.state = AlarmState.ACTIVE_UNACK
    new.occurrence = occurrence
    new.active_since = now
    new.last_annunciated = now
    new.activations += 1
    new.acked_by, new.acked_at, new.ack_comment = "", None, ""
    return new, [_event(definition, before, new, EventKind.RAISED, now)]


def acknowledge(definition: AlarmDefinition, status: AlarmStatus, who: str, comment: str, now: float) -> Outcome:
    if not who:
        raise ActionRefused("an acknowledgement needs the name of who acknowledges")
    if not status.state.unacknowledged:
        raise ActionRefused(f"alarm {definition.key} is {status.state.value}: nothing to acknowledge")
    new = replace(status, acked_by=who, acked_at=now, ack_comment=comment)
    new.state = AlarmState.ACTIVE_ACK if status.state is AlarmState.ACTIVE_UNACK else AlarmState.NORMAL
    return new, [_event(definition, status, new, EventKind.ACKNOWLEDGED, now, actor=who, comment=comment)]


def shelve(definition: AlarmDefinition, status: AlarmStatus, who: str, reason: str, until: float,
           now: float, max_duration: float) -> Outcome:
    if not who:
        raise ActionRefused("shelving needs the name of who shelves")
    if not reason.strip():
        raise ActionRefused("shelving needs a reason (ISA-18.2: every shelved alarm is accounted for)")
    if until <= now:
        raise ActionRefused("a shelf must expire in the future")
    if until - now > max_duration:
        raise ActionRefused(f"a shelf may last at most {max_duration / 3600:g} h")
    new = replace(status, shelved_until=until, shelved_by=who, shelve_reason=reason.strip())
    return new, [_event(definition, status, new, EventKind.SHELVED, now, actor=who, comment=new.shelve_reason,
                        until=until)]


def unshelve(definition: AlarmDefinition, status: AlarmStatus, who: str, now: float,
             next_occurrence: int, comment: str = "") -> Outcome:
    if not who:
        raise ActionRefused("unshelving needs the name of who unshelves")
    if status.shelved_until is None:
        raise ActionRefused(f"alarm {definition.key} is not shelved")
    new = replace(status, shelved_until=None, shelved_by="", shelve_reason="")
    events = [_event(definition, status, new, EventKind.UNSHELVED, now, actor=who,
                     comment=comment or ("shelf expired" if who == SYSTEM else ""))]
    return _reveal(definition, new, now, next_occurrence, events)


def set_suppressed(definition: AlarmDefinition, status: AlarmStatus, by: str, now: float,
                   next_occurrence: int) -> Outcome:
    """Suppression by design: `by` is the active alarm that explains this one ("" to lift it)."""
    if by == status.suppressed_by:
        return status, []
    new = replace(status, suppressed_by=by)
    if by and status.suppressed_by:
        return new, []  # handed over from one suppressor to another: still hidden
    if by:
        return new, [_event(definition, status, new, EventKind.SUPPRESSED, now, comment=f"by {by}")]
    events = [_event(definition, status, new, EventKind.UNSUPPRESSED, now, comment=f"{status.suppressed_by} ended")]
    return _reveal(definition, new, now, next_occurrence, events)


def set_out_of_service(definition: AlarmDefinition, status: AlarmStatus, out: bool, who: str, reason: str,
                       now: float, next_occurrence: int) -> Outcome:
    if not who:
        raise ActionRefused("taking an alarm out of or into service needs the name of who does it")
    if out == status.out_of_service:
        raise ActionRefused(f"alarm {definition.key} is already {'out of' if out else 'in'} service")
    if out and not reason.strip():
        raise ActionRefused("taking an alarm out of service needs a reason")
    new = replace(status, out_of_service=out, oos_reason=reason.strip() if out else "")
    kind = EventKind.OUT_OF_SERVICE if out else EventKind.IN_SERVICE
    events = [_event(definition, status, new, kind, now, actor=who, comment=reason.strip())]
    return (new, events) if out else _reveal(definition, new, now, next_occurrence, events)


def _reveal(definition: AlarmDefinition, status: AlarmStatus, now: float, next_occurrence: int,
            events: list[AlarmEvent]) -> Outcome:
    """The alarm is visible again: a condition that holds is raised now (it was never seen)."""
    if status.hidden or not status.condition or status.state is not AlarmState.NORMAL:
        return status, events
    new, raised = _raise(definition, status, replace(status), now, next_occurrence)
    return new, events + raised


def realarm_due(status: AlarmStatus, interval: float, now: float) -> bool:
    return (status.state is AlarmState.ACTIVE_UNACK and not status.hidden and status.last_annunciated is not None
            and now - status.last_annunciated >= interval)


def realarm(definition: AlarmDefinition, status: AlarmStatus, now: float) -> Outcome:
    new = replace(status, last_annunciated=now)
    return new, [_event(definition, status, new, EventKind.REALARM, now)]
