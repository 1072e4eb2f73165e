"""The ISA-18.2 state machine of alarms/lifecycle.py: every transition, operator action and hiding flag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pytest

from alarms import lifecycle
from alarms.lifecycle import SYSTEM, ActionRefused, Outcome
from alarms.model import ANNUNCIATING, AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus, EventKind, Priority

WEEK = 7 * 86400.0
KEY = "th-101.humidity:high"
GATEWAY = "gateway/gw-main:comm_loss"
DEVICE = "th-101:comm_loss"


def definition(priority: Priority = Priority.HIGH) -> AlarmDefinition:
    return AlarmDefinition(key=KEY, cause="humidity_high", priority=priority, site="main", room="r101",
                           building="b1", source="th-101.humidity", description="RH above 60 % (paper stack)",
                           limit=60.0, unit="%")


DEF = definition()


def normal(priority: Priority = Priority.HIGH) -> AlarmStatus:
    return AlarmStatus(key=KEY, priority=priority)


def kinds(events: list[AlarmEvent]) -> list[EventKind]:
    return [e.kind for e in events]


def condition(status: AlarmStatus, active: bool, now: float, value: float | None = None,
              next_occurrence: int = 99, priority: Priority | None = None) -> Outcome:
    return lifecycle.on_condition(DEF, status, active, now, value, next_occurrence, priority)


def active_unack(now: float = 100.0, occurrence: int = 7) -> AlarmStatus:
    status, _ = condition(normal(), True, now, 63.0, occurrence)
    return status


def active_ack(now: float = 200.0) -> AlarmStatus:
    status, _ = lifecycle.acknowledge(DEF, active_unack(), "li.wei", "checking the dehumidifier", now)
    return status


def returned_unack(now: float = 300.0) -> AlarmStatus:
    status, _ = condition(active_unack(), False, now, 57.0)
    return status


def shelved(status: AlarmStatus, now: float = 100.0, until: float = 3700.0) -> AlarmStatus:
    new, _ = lifecycle.shelve(DEF, status, "li.wei", "sensor being replaced", until, now, WEEK)
    return new


# --- normal → active-unacknowledged ---------------------------------------------------------------------------------


def test_condition_in_normal_raises_a_new_occurrence() -> None:
    status, events = condition(normal(), True, 100.0, 63.0, next_occurrence=7)
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.occurrence == 7
    assert status.active_since == 100.0
    assert status.last_annunciated == 100.0
    assert status.condition is True
    assert status.value == 63.0
    assert status.activations == 1
    [event] = events
    assert event.kind is EventKind.RAISED
    assert (event.previous, event.state) == (AlarmState.NORMAL, AlarmState.ACTIVE_UNACK)
    assert event.occurrence == 7
    assert event.ts == 100.0
    assert event.alarm == KEY
    assert event.value == 63.0 and event.limit == 60.0
    assert event.priority is Priority.HIGH
    assert event.actor == SYSTEM
    assert event.message == DEF.description
    assert (event.room, event.building, event.site, event.cause) == ("r101", "b1", "main", "humidity_high")


def test_condition_off_in_normal_does_nothing() -> None:
    status, events = condition(normal(), False, 100.0, 50.0)
    assert events == []
    assert status.state is AlarmState.NORMAL


def test_condition_on_again_while_active_does_nothing() -> None:
    status, events = condition(active_unack(), True, 150.0, 64.0)
    assert events == []
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.value == 64.0
    assert status.occurrence == 7


def test_raise_takes_the_given_priority() -> None:
    status, events = condition(normal(), True, 100.0, 1.0, priority=Priority.MEDIUM)
    assert status.priority is Priority.MEDIUM
    assert events[0].priority is Priority.MEDIUM


def test_unknown_value_keeps_the_last_one() -> None:
    status, _ = condition(active_unack(), True, 150.0, None)
    assert status.value == 63.0


# --- acknowledge ----------------------------------------------------------------------------------------------------


def test_acknowledge_active_unacknowledged_makes_it_active_acknowledged() -> None:
    status, events = lifecycle.acknowledge(DEF, active_unack(), "li.wei", "checking the dehumidifier", 200.0)
    assert status.state is AlarmState.ACTIVE_ACK
    assert (status.acked_by, status.acked_at, status.ack_comment) == ("li.wei", 200.0, "checking the dehumidifier")
    assert status.occurrence == 7
    [event] = events
    assert event.kind is EventKind.ACKNOWLEDGED
    assert (event.previous, event.state) == (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)
    assert (event.actor, event.comment) == ("li.wei", "checking the dehumidifier")
    assert event.occurrence == 7


def test_acknowledge_returned_unacknowledged_makes_it_normal() -> None:
    status, events = lifecycle.acknowledge(DEF, returned_unack(), "li.wei", "", 400.0)
    assert status.state is AlarmState.NORMAL
    [event] = events
    assert event.kind is EventKind.ACKNOWLEDGED
    assert (event.previous, event.state) == (AlarmState.RETURNED_UNACK, AlarmState.NORMAL)


@pytest.mark.parametrize("status", [normal(), active_ack()], ids=["normal", "active_acknowledged"])
def test_acknowledge_is_refused_when_nothing_is_unacknowledged(status: AlarmStatus) -> None:
    with pytest.raises(ActionRefused, match="nothing to acknowledge"):
        lifecycle.acknowledge(DEF, status, "li.wei", "", 500.0)


def test_acknowledge_is_refused_without_who() -> None:
    with pytest.raises(ActionRefused, match="name"):
        lifecycle.acknowledge(DEF, active_unack(), "", "ok", 200.0)


def test_action_refused_is_a_value_error() -> None:
    assert issubclass(ActionRefused, ValueError)


# --- clearing and returning -----------------------------------------------------------------------------------------


def test_clearing_an_acknowledged_alarm_returns_it_to_normal() -> None:
    status, events = condition(active_ack(), False, 300.0, 57.0)
    assert status.state is AlarmState.NORMAL
    assert status.condition is False
    [event] = events
    assert event.kind is EventKind.CLEARED
    assert (event.previous, event.state) == (AlarmState.ACTIVE_ACK, AlarmState.NORMAL)
    assert event.occurrence == 7
    assert event.value == 57.0


def test_clearing_an_unacknowledged_alarm_returns_it_unacknowledged() -> None:
    status, events = condition(active_unack(), False, 300.0, 57.0)
    assert status.state is AlarmState.RETURNED_UNACK
    [event] = events
    assert event.kind is EventKind.RETURNED
    assert (event.previous, event.state) == (AlarmState.ACTIVE_UNACK, AlarmState.RETURNED_UNACK)
    assert event.occurrence == 7


def test_condition_again_while_returned_reactivates_the_same_occurrence() -> None:
    status, events = condition(returned_unack(), True, 400.0, 62.0, next_occurrence=8)
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.occurrence == 7
    assert status.active_since == 100.0
    assert status.last_annunciated == 400.0
    assert status.activations == 2
    [event] = events
    assert event.kind is EventKind.REACTIVATED
    assert (event.previous, event.state) == (AlarmState.RETURNED_UNACK, AlarmState.ACTIVE_UNACK)
    assert event.occurrence == 7


def test_condition_off_while_returned_does_nothing() -> None:
    status, events = condition(returned_unack(), False, 400.0)
    assert events == []
    assert status.state is AlarmState.RETURNED_UNACK


def test_raise_after_normal_is_a_new_occurrence_with_a_clean_acknowledgement() -> None:
    cleared, _ = condition(active_ack(), False, 300.0)
    status, events = condition(cleared, True, 1000.0, 65.0, next_occurrence=8)
    assert events[0].kind is EventKind.RAISED
    assert status.occurrence == 8
    assert status.active_since == 1000.0
    assert (status.acked_by, status.acked_at, status.ack_comment) == ("", None, "")
    assert status.activations == 2


# --- shelving -------------------------------------------------------------------------------------------------------


def test_shelve_records_who_why_and_until() -> None:
    status, events = lifecycle.shelve(DEF, normal(), "li.wei", "  sensor being replaced ", 3700.0, 100.0, WEEK)
    assert status.shelved_until == 3700.0
    assert (status.shelved_by, status.shelve_reason) == ("li.wei", "sensor being replaced")
    assert status.hidden
    [event] = events
    assert event.kind is EventKind.SHELVED
    assert (event.actor, event.comment, event.until) == ("li.wei", "sensor being replaced", 3700.0)


@pytest.mark.parametrize(("who", "reason", "until", "message"), [
    ("", "maintenance", 3700.0, "who"),
    ("li.wei", "", 3700.0, "reason"),
    ("li.wei", "   ", 3700.0, "reason"),
    ("li.wei", "maintenance", 100.0, "future"),
    ("li.wei", "maintenance", 50.0, "future"),
    ("li.wei", "maintenance", 100.0 + WEEK + 1.0, "at most"),
])
def test_shelve_is_refused(who: str, reason: str, until: float, message: str) -> None:
    with pytest.raises(ActionRefused, match=message):
        lifecycle.shelve(DEF, normal(), who, reason, until, 100.0, WEEK)


def test_shelve_for_exactly_the_maximum_is_allowed() -> None:
    status, _ = lifecycle.shelve(DEF, normal(), "li.wei", "maintenance", 100.0 + WEEK, 100.0, WEEK)
    assert status.shelved_until == 100.0 + WEEK


def test_shelved_alarm_whose_condition_comes_on_is_not_raised() -> None:
    status, events = condition(shelved(normal()), True, 200.0, 63.0)
    assert events == []
    assert status.state is AlarmState.NORMAL
    assert status.condition is True
    assert status.value == 63.0


def test_unshelve_raises_a_condition_that_still_holds() -> None:
    hidden, _ = condition(shelved(normal()), True, 200.0, 63.0)
    status, events = lifecycle.unshelve(DEF, hidden, "li.wei", 1000.0, next_occurrence=12)
    assert kinds(events) == [EventKind.UNSHELVED, EventKind.RAISED]
    assert events[0].actor == "li.wei"
    raised = events[1]
    assert (raised.previous, raised.state) == (AlarmState.NORMAL, AlarmState.ACTIVE_UNACK)
    assert raised.occurrence == 12
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.occurrence == 12
    assert status.active_since == 1000.0
    assert status.shelved_until is None and status.shelved_by == "" and status.shelve_reason == ""


def test_unshelve_after_the_condition_went_away_raises_nothing() -> None:
    hidden, _ = condition(shelved(normal()), True, 200.0, 63.0)
    hidden, events = condition(hidden, False, 300.0, 57.0)
    assert events == []
    status, events = lifecycle.unshelve(DEF, hidden, "li.wei", 1000.0, next_occurrence=12)
    assert kinds(events) == [EventKind.UNSHELVED]
    assert status.state is AlarmState.NORMAL


def test_shelf_expiry_is_unshelved_by_the_system() -> None:
    _, events = lifecycle.unshelve(DEF, shelved(normal()), SYSTEM, 3700.0, next_occurrence=12)
    assert events[0].actor == SYSTEM
    assert events[0].comment == "shelf expired"


def test_unshelve_is_refused_when_not_shelved() -> None:
    with pytest.raises(ActionRefused, match="not shelved"):
        lifecycle.unshelve(DEF, normal(), "li.wei", 100.0, 12)


def test_shelved_active_alarm_still_returns_when_its_condition_clears() -> None:
    status, events = condition(shelved(active_unack()), False, 300.0, 57.0)
    assert kinds(events) == [EventKind.RETURNED]
    assert status.state is AlarmState.RETURNED_UNACK


def test_shelved_returned_alarm_whose_condition_comes_back_is_not_annunciated() -> None:
    status, events = condition(shelved(returned_unack()), True, 400.0, 62.0, next_occurrence=8)
    assert not [e for e in events if e.kind in ANNUNCIATING]
    assert status.condition is True
    assert status.occurrence == 7


# --- suppression by design ------------------------------------------------------------------------------------------


def test_suppression_hides_the_alarm_with_its_suppressor() -> None:
    status, events = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    assert status.suppressed_by == DEVICE
    assert status.hidden
    [event] = events
    assert event.kind is EventKind.SUPPRESSED
    assert DEVICE in event.comment


def test_suppressed_alarm_whose_condition_comes_on_is_not_raised() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    status, events = condition(hidden, True, 200.0, 63.0)
    assert events == []
    assert status.state is AlarmState.NORMAL
    assert status.condition is True


def test_suppression_handed_over_between_suppressors_emits_nothing() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    status, events = lifecycle.set_suppressed(DEF, hidden, GATEWAY, 200.0, 12)
    assert events == []
    assert status.suppressed_by == GATEWAY
    assert status.hidden


def test_suppression_by_the_same_suppressor_again_is_no_change() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    status, events = lifecycle.set_suppressed(DEF, hidden, DEVICE, 200.0, 12)
    assert events == []
    assert status == hidden


def test_lifting_suppression_raises_a_condition_that_still_holds() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    hidden, _ = condition(hidden, True, 200.0, 63.0)
    status, events = lifecycle.set_suppressed(DEF, hidden, "", 300.0, 12)
    assert kinds(events) == [EventKind.UNSUPPRESSED, EventKind.RAISED]
    assert DEVICE in events[0].comment
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.occurrence == 12
    assert status.suppressed_by == ""


def test_lifting_suppression_without_the_condition_raises_nothing() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, normal(), DEVICE, 100.0, 12)
    status, events = lifecycle.set_suppressed(DEF, hidden, "", 300.0, 12)
    assert kinds(events) == [EventKind.UNSUPPRESSED]
    assert status.state is AlarmState.NORMAL


def test_lifting_suppression_of_a_shelved_alarm_keeps_it_hidden() -> None:
    hidden, _ = lifecycle.set_suppressed(DEF, shelved(normal()), DEVICE, 150.0, 12)
    hidden, _ = condition(hidden, True, 200.0, 63.0)
    status, events = lifecycle.set_suppressed(DEF, hidden, "", 300.0, 12)
    assert kinds(events) == [EventKind.UNSUPPRESSED]
    assert status.state is AlarmState.NORMAL
    assert status.hidden


# --- out of service -------------------------------------------------------------------------------------------------


def test_out_of_service_hides_the_alarm_and_in_service_raises_a_holding_condition() -> None:
    out, events = lifecycle.set_out_of_service(DEF, normal(), True, "li.wei", " recalibration ", 100.0, 12)
    assert out.out_of_service and out.oos_reason == "recalibration"
    assert out.hidden
    [event] = events
    assert event.kind is EventKind.OUT_OF_SERVICE
    assert (event.actor, event.comment) == ("li.wei", "recalibration")

    out, events = condition(out, True, 200.0, 63.0)
    assert events == []

    back, events = lifecycle.set_out_of_service(DEF, out, False, "li.wei", "", 300.0, 12)
    assert kinds(events) == [EventKind.IN_SERVICE, EventKind.RAISED]
    assert not back.out_of_service and back.oos_reason == ""
    assert back.state is AlarmState.ACTIVE_UNACK
    assert back.occurrence == 12


def test_in_service_without_the_condition_raises_nothing() -> None:
    out, _ = lifecycle.set_out_of_service(DEF, normal(), True, "li.wei", "recalibration", 100.0, 12)
    back, events = lifecycle.set_out_of_service(DEF, out, False, "li.wei", "", 300.0, 12)
    assert kinds(events) == [EventKind.IN_SERVICE]
    assert back.state is AlarmState.NORMAL


def test_out_of_service_is_refused_without_who_or_reason_or_when_already_out() -> None:
    with pytest.raises(ActionRefused, match="name"):
        lifecycle.set_out_of_service(DEF, normal(), True, "", "recalibration", 100.0, 12)
    with pytest.raises(ActionRefused, match="reason"):
        lifecycle.set_out_of_service(DEF, normal(), True, "li.wei", "  ", 100.0, 12)
    out, _ = lifecycle.set_out_of_service(DEF, normal(), True, "li.wei", "recalibration", 100.0, 12)
    with pytest.raises(ActionRefused, match="already out of service"):
        lifecycle.set_out_of_service(DEF, out, True, "li.wei", "again", 200.0, 12)


def test_in_service_is_refused_when_already_in_service() -> None:
    with pytest.raises(ActionRefused, match="already in service"):
        lifecycle.set_out_of_service(DEF, normal(), False, "li.wei", "", 100.0, 12)


# --- re-alarm -------------------------------------------------------------------------------------------------------


def test_realarm_is_due_after_the_priority_interval() -> None:
    status = active_unack(now=100.0)
    assert not lifecycle.realarm_due(status, 900.0, 999.0)
    assert lifecycle.realarm_due(status, 900.0, 1000.0)
    assert not lifecycle.realarm_due(status, 3600.0, 1000.0)


def test_realarm_announces_again_and_restarts_the_interval() -> None:
    status, events = lifecycle.realarm(DEF, active_unack(now=100.0), 1000.0)
    [event] = events
    assert event.kind is EventKind.REALARM
    assert event.state is AlarmState.ACTIVE_UNACK
    assert event.occurrence == 7
    assert status.last_annunciated == 1000.0
    assert not lifecycle.realarm_due(status, 900.0, 1899.0)
    assert lifecycle.realarm_due(status, 900.0, 1900.0)


def test_realarm_is_not_due_once_acknowledged_or_returned_or_normal() -> None:
    cleared, _ = condition(active_ack(), False, 300.0)
    for status in (active_ack(), returned_unack(), cleared, normal()):
        assert not lifecycle.realarm_due(status, 900.0, 100_000.0)


def test_reactivation_restarts_the_realarm_interval() -> None:
    status, _ = condition(returned_unack(), True, 5000.0, 62.0)
    assert not lifecycle.realarm_due(status, 900.0, 5899.0)
    assert lifecycle.realarm_due(status, 900.0, 5900.0)


def hide_by_shelving(status: AlarmStatus) -> AlarmStatus:
    return shelved(status, now=150.0, until=WEEK)


def hide_by_suppression(status: AlarmStatus) -> AlarmStatus:
    return lifecycle.set_suppressed(DEF, status, DEVICE, 150.0, 12)[0]


def hide_out_of_service(status: AlarmStatus) -> AlarmStatus:
    return lifecycle.set_out_of_service(DEF, status, True, "li.wei", "recalibration", 150.0, 12)[0]


@pytest.mark.parametrize("hide", [hide_by_shelving, hide_by_suppression, hide_out_of_service],
                         ids=["shelved", "suppressed", "out_of_service"])
def test_realarm_is_not_due_while_hidden(hide: Callable[[AlarmStatus], AlarmStatus]) -> None:
    status = hide(active_unack(now=100.0))
    assert status.state is AlarmState.ACTIVE_UNACK
    assert not lifecycle.realarm_due(status, 900.0, 100_000.0)


# --- escalation -----------------------------------------------------------------------------------------------------


def calibration(priority: Priority) -> AlarmStatus:
    status, _ = condition(normal(priority=Priority.LOW), True, 100.0, 80.0, 7, priority)
    return status


def test_escalation_while_active_announces_again_and_needs_a_new_acknowledgement() -> None:
    acked, _ = lifecycle.acknowledge(DEF, calibration(Priority.LOW), "li.wei", "booked", 200.0)
    status, events = condition(acked, True, 1000.0, 30.0, priority=Priority.MEDIUM)
    [event] = events
    assert event.kind is EventKind.ESCALATED
    assert (event.previous, event.state) == (AlarmState.ACTIVE_ACK, AlarmState.ACTIVE_UNACK)
    assert event.priority is Priority.MEDIUM
    assert event.occurrence == 7
    assert status.state is AlarmState.ACTIVE_UNACK
    assert status.priority is Priority.MEDIUM
    assert status.last_annunciated == 1000.0


def test_escalation_of_an_unacknowledged_alarm_is_announced() -> None:
    status, events = condition(calibration(Priority.MEDIUM), True, 1000.0, 0.0, priority=Priority.HIGH)
    assert kinds(events) == [EventKind.ESCALATED]
    assert status.priority is Priority.HIGH


@pytest.mark.parametrize("priority", [Priority.MEDIUM, Priority.LOW], ids=["same", "less_urgent"])
def test_same_or_lower_priority_while_active_is_no_escalation(priority: Priority) -> None:
    status, events = condition(calibration(Priority.MEDIUM), True, 1000.0, 50.0, priority=priority)
    assert events == []
    assert status.priority is priority


def test_escalation_while_hidden_is_not_announced() -> None:
    hidden = hide_by_shelving(calibration(Priority.LOW))
    status, events = condition(hidden, True, 1000.0, 30.0, priority=Priority.HIGH)
    assert events == []
    assert status.priority is Priority.HIGH


# --- purity ---------------------------------------------------------------------------------------------------------


ACTIONS: dict[str, tuple[Callable[[], AlarmStatus], Callable[[AlarmStatus], Outcome]]] = {
    "raise": (normal, lambda s: condition(s, True, 500.0, 63.0)),
    "return": (active_unack, lambda s: condition(s, False, 500.0, 57.0)),
    "reactivate": (returned_unack, lambda s: condition(s, True, 500.0, 63.0)),
    "clear": (active_ack, lambda s: condition(s, False, 500.0, 57.0)),
    "escalate": (active_ack, lambda s: condition(s, True, 500.0, 63.0, priority=Priority.CRITICAL)),
    "acknowledge": (active_unack, lambda s: lifecycle.acknowledge(DEF, s, "li.wei", "seen", 500.0)),
    "shelve": (active_unack, lambda s: lifecycle.shelve(DEF, s, "li.wei", "work", 900.0, 500.0, WEEK)),
    "unshelve": (lambda: condition(shelved(normal()), True, 200.0, 63.0)[0],
                 lambda s: lifecycle.unshelve(DEF, s, "li.wei", 500.0, 12)),
    "suppress": (normal, lambda s: lifecycle.set_suppressed(DEF, s, DEVICE, 500.0, 12)),
    "unsuppress": (lambda: condition(hide_by_suppression(normal()), True, 200.0, 63.0)[0],
                   lambda s: lifecycle.set_suppressed(DEF, s, "", 500.0, 12)),
    "out_of_service": (normal, lambda s: lifecycle.set_out_of_service(DEF, s, True, "li.wei", "work", 500.0, 12)),
    "in_service": (lambda: condition(hide_out_of_service(normal()), True, 200.0, 63.0)[0],
                   lambda s: lifecycle.set_out_of_service(DEF, s, False, "li.wei", "", 500.0, 12)),
    "realarm": (active_unack, lambda s: lifecycle.realarm(DEF, s, 5000.0)),
}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_input_status_is_never_mutated(name: str) -> None:
    make, act = ACTIONS[name]
    status = make()
    before = asdict(status)
    new, events = act(status)
    assert asdict(status) == before
    assert events, "each action here changes something"
    assert new is not status
