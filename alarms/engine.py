"""The alarm engine: readings and time in, journaled alarm events out.

Stages, as in Alertmanager's pipeline (shared/STYLE.md): rules decide
conditions → the ISA-18.2 lifecycle turns them into states → suppression by
design and shelving hide what is explained or accounted for → the journal
records → outputs (InfluxDB events, MQTT, notifier) hear about it.

Not thread-safe: one thread drives it (`alarms.runtime.AlarmRuntime`). Every
method takes `now` from the caller's injected clock, so a simulated week runs
in seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from stackwatch.command_queue import Command
from stackwatch.config.alarms import AlarmsConfig
from stackwatch.readings import Quality, Reading

from . import lifecycle
from .journal import Journal
from .lifecycle import SYSTEM, ActionRefused, Outcome
from .model import AlarmDefinition, AlarmEvent, AlarmState, AlarmStatus, Priority
from .rules import Delay, DelayedRule, FluctuationRule, Rule, StateRule, calibration_stage
from .ruleset import RuleSet

log = logging.getLogger("stackwatch.alarms")
Output = Callable[[Sequence[AlarmEvent], Sequence[AlarmStatus]], None]
CALIBRATION_PRIORITY = {1: Priority.LOW, 2: Priority.MEDIUM, 3: Priority.HIGH}
MAX_SHELVE = 7 * 86400.0
CHECKPOINT_INTERVAL = 900.0
_GOOD, _UNCERTAIN, _BAD = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
_isfinite = math.isfinite


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    active: bool
    value: float | None
    priority: Priority | None = None


class AlarmEngine:
    def __init__(self, rules: RuleSet, journal: Journal, config: AlarmsConfig, now: float,
                 outputs: Iterable[Output] = ()) -> None:
        self.rules = rules
        self.journal = journal
        self.config = config
        self.outputs = list(outputs)
        self.realarm = {Priority(name): settings.realarm for name, settings in config.priorities.items()}
        self.evaluations = 0
        self._gateways = {key: Delay(config.comm_loss_after / 2, 0.0) for key in rules.gateway_devices}
        self._last_calibration_check = -math.inf
        self._checkpoint_queue: list[str] = []  # keys still to journal in this round
        self._checkpoint_per_tick = 1
        self._restore(now)

    # --- start-up -----------------------------------------------------------------------------------------------

    def _restore(self, now: float) -> None:
        journaled = self.journal.statuses()
        self.status: dict[str, AlarmStatus] = {}
        for key, definition in self.rules.definitions.items():
            status = journaled.get(key)
            if status is None:
                status = AlarmStatus(key=key, priority=definition.priority)
            elif status.priority.rank > definition.priority.rank and key not in self.rules.calibration:
                status.priority = definition.priority  # the config made it more urgent since
            self.status[key] = status
        snapshots = self.journal.rule_states()
        for key, rule in self.rules.rules.items():
            snapshot = snapshots.get(key)
            if snapshot is not None:
                rule.restore(snapshot)
            elif isinstance(rule, DelayedRule):
                rule.delay.force(self.status[key].condition)
                rule.raw = self.status[key].condition
        for key, delay in self._gateways.items():
            delay.force(self.status[key].condition)
        self.next_occurrence = self.journal.next_occurrence()
        self._timed: set[str] = {key for key, rule in self.rules.rules.items() if _needs_tick(rule)}
        self._unacked = {key for key, s in self.status.items() if s.state is AlarmState.ACTIVE_UNACK}
        self._shelved = {key for key, s in self.status.items() if s.shelved_until is not None}
        self._shown = {key for key, s in self.status.items() if _shown(s)}
        active = sum(1 for s in self.status.values() if s.state is not AlarmState.NORMAL)
        log.info("alarm engine: %d alarms defined, %d not normal after restore, next ticket %d",
                 len(self.status), active, self.next_occurrence)

    # --- readings -----------------------------------------------------------------------------------------------

    def process(self, readings: Sequence[Reading], now: float) -> list[AlarmEvent]:
        """Evaluate every rule the readings feed; journal and publish what changed."""
        rules = self.rules
        value_rules, quality_rules, room_feeds = rules.value_rules, rules.quality_rules, rules.room_feeds
        good_only = rules.good_only
        changes: list[Change] = []
        touched: list[Rule] = []
        evaluations = 0
        for reading in readings:
            point, quality, value = reading.point, reading.quality, reading.value
            ts = reading.ts_ns / 1e9
            if value.__class__ is float and not _isfinite(value):
                quality = _BAD  # a NaN is a fault, whatever the source called it
            for rule in quality_rules.get(point, ()):
                evaluations += 1
                changed = rule.on_quality(ts, quality)  # type: ignore[attr-defined]
                if changed is not None:
                    changes.append(Change(rule.key, changed, rule.value))
                if rule.dirty:
                    touched.append(rule)
            if quality is not _GOOD and (quality is not _UNCERTAIN or point in good_only):
                continue
            if value is None or isinstance(value, str):
                continue
            value = float(value)
            if not _isfinite(value):
                continue
            for rule in value_rules.get(point, ()):
                evaluations += 1
                changed = rule.on_value(ts, value)  # type: ignore[attr-defined]
                if changed is not None:
                    changes.append(Change(rule.key, changed, rule.value))
                if rule.dirty:
                    touched.append(rule)
            feeds = room_feeds.get(point)
            if feeds:
                quantity = rules.feed_quantity[point]
                for feed in feeds:
                    changed = feed.on_room(ts, quantity, value)
                    if changed is not None:
                        changes.append(Change(feed.key, changed, feed.value))
                    if feed.dirty:
                        touched.append(feed)
        self.evaluations += evaluations
        if not changes and not touched:
            return []
        return self._apply(changes, touched, now)

    # --- time ---------------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[AlarmEvent]:
        """Delays that expire, data that stopped, re-alarms due, shelves that ran out, calibration dates."""
        changes: list[Change] = []
        touched: list[Rule] = []
        for key in list(self._timed):
            rule = self.rules.rules[key]
            changed = rule.on_tick(now)
            if changed is not None:
                changes.append(Change(key, changed, rule.value))
            if rule.dirty:
                touched.append(rule)
        for key, delay in self._gateways.items():
            raw = all(getattr(self.rules.rules[d], "raw", False) for d in self.rules.gateway_devices[key])
            changed = delay.update(raw, now)
            if changed is not None:
                changes.append(Change(key, changed, None))
        if now - self._last_calibration_check >= 60.0:
            self._last_calibration_check = now
            changes.extend(self._calibration(now))
        events = self._apply(changes, touched, now, timed=True)
        events += self._housekeeping(now)
        self._checkpoint_slice()
        return events

    def _calibration(self, now: float) -> list[Change]:
        today = self.rules.today(now)
        changes = []
        for key, due in self.rules.calibration.items():
            stage = calibration_stage((due - today).days)
            status = self.status[key]
            priority = CALIBRATION_PRIORITY.get(stage, Priority.LOW)
            if (stage > 0) != status.condition or (stage > 0 and priority != status.priority):
                changes.append(Change(key, stage > 0, float((due - today).days), priority))
        return changes

    def _housekeeping(self, now: float) -> list[AlarmEvent]:
        outcomes: list[tuple[str, Outcome]] = []
        for key in list(self._shelved):
            status = self.status[key]
            if status.shelved_until is not None and now >= status.shelved_until:
                outcomes.append((key, lifecycle.unshelve(self.rules.definitions[key], status, SYSTEM, now,
                                                         self.next_occurrence)))
        for key in list(self._unacked):
            status = self.status[key]
            if lifecycle.realarm_due(status, self.realarm[status.priority], now):
                outcomes.append((key, lifecycle.realarm(self.rules.definitions[key], status, now)))
        return self._commit_outcomes(outcomes, now)

    # --- the pipeline -------------------------------------------------------------------------------------------

    def _apply(self, changes: list[Change], touched: list[Rule], now: float, timed: bool = False) -> list[AlarmEvent]:
        staged: dict[str, AlarmStatus] = {}
        events: list[AlarmEvent] = []
        occurrence = self.next_occurrence
        pending = list(changes)
        while pending:
            change = pending.pop(0)
            definition = self.rules.definitions[change.key]
            before = staged.get(change.key) or self.status[change.key]
            new, produced = lifecycle.on_condition(definition, before, change.active, now, change.value,
                                                   occurrence, change.priority)
            occurrence = _advance(occurrence, produced)
            staged[change.key] = new
            events.extend(produced)
            if before.condition != new.condition:
                occurrence = self._suppression(change.key, new.condition, staged, events, now, occurrence)
        for rule in touched:
            if _needs_tick(rule):
                self._timed.add(rule.key)
            else:
                self._timed.discard(rule.key)
        if not timed:
            for change in changes:
                decided = self.rules.rules.get(change.key)
                if decided is not None and not _needs_tick(decided):
                    self._timed.discard(change.key)
        touched = list({id(rule): rule for rule in touched}.values())
        snapshots = [(rule.key, rule.snapshot()) for rule in touched]
        return self._commit(events, staged, snapshots, occurrence, touched, now)

    def _suppression(self, key: str, active: bool, staged: dict[str, AlarmStatus], events: list[AlarmEvent],
                     now: float, occurrence: int) -> int:
        for hidden in self.rules.dependents.get(key, ()):
            status = staged.get(hidden) or self.status[hidden]
            if active:
                by = status.suppressed_by or key
            else:
                by = next((s for s in self.rules.suppressors[hidden] if s != key and self._condition(s, staged)), "")
            new, produced = lifecycle.set_suppressed(self.rules.definitions[hidden], status, by, now, occurrence)
            occurrence = _advance(occurrence, produced)
            staged[hidden] = new
            events.extend(produced)
        return occurrence

    def _condition(self, key: str, staged: dict[str, AlarmStatus]) -> bool:
        status = staged.get(key) or self.status.get(key)
        return status is not None and status.condition

    def _commit_outcomes(self, outcomes: list[tuple[str, Outcome]], now: float) -> list[AlarmEvent]:
        if not outcomes:
            return []
        staged: dict[str, AlarmStatus] = {}
        events: list[AlarmEvent] = []
        occurrence = self.next_occurrence
        for key, (new, produced) in outcomes:
            staged[key] = new
            events.extend(produced)
            occurrence = _advance(occurrence, produced)
        return self._commit(events, staged, [], occurrence, [], now)

    def _commit(self, events: list[AlarmEvent], staged: dict[str, AlarmStatus],
                snapshots: list[tuple[str, dict[str, object] | None]], occurrence: int, touched: list[Rule],
                now: float) -> list[AlarmEvent]:
        """Journal first; only then does the change take effect and go out."""
        if not events and not staged and not snapshots:
            return []
        journaled = self.journal.commit(events, staged.values(), snapshots,
                                        occurrence if occurrence != self.next_occurrence else None)
        for rule in touched:
            rule.clean()
        self.next_occurrence = occurrence
        for key, status in staged.items():
            self.status[key] = status
            if status.state is AlarmState.ACTIVE_UNACK:
                self._unacked.add(key)
            else:
                self._unacked.discard(key)
            if status.shelved_until is not None:
                self._shelved.add(key)
            else:
                self._shelved.discard(key)
            if _shown(status):
                self._shown.add(key)
            else:
                self._shown.discard(key)
        if journaled:
            changed = [self.status[key] for key in dict.fromkeys(e.alarm for e in journaled)]
            for output in self.outputs:
                try:
                    output(journaled, changed)
                except Exception:  # an output failing must never stop alarms from being decided
                    log.exception("alarm output %r failed", output)
        return journaled

    # --- operator actions ---------------------------------------------------------------------------------------

    def resolve(self, target: str) -> str:
        """An alarm key, or a ticket number (`123` or `#123`) of its current or last occurrence."""
        if target in self.status:
            return target
        ticket = target.lstrip("#")
        if ticket.isdigit():
            number = int(ticket)
            for key, status in self.status.items():
                if status.occurrence == number:
                    return key
        raise ActionRefused(f"no alarm {target!r}")

    def acknowledge(self, target: str, who: str, comment: str, now: float) -> list[AlarmEvent]:
        key = self.resolve(target)
        return self._act(key, lifecycle.acknowledge(self.rules.definitions[key], self.status[key], who, comment, now),
                         now)

    def acknowledge_group(self, ticket: int, who: str, comment: str, now: float) -> list[AlarmEvent]:
        """The ticket and every unacknowledged alarm of its room and cause: what one grouped message announced."""
        key = self.resolve(str(ticket))
        group = self.rules.definitions[key].group_key
        outcomes = []
        for other, status in self.status.items():
            if status.state.unacknowledged and (other == key or self.rules.definitions[other].group_key == group):
                outcomes.append((other, lifecycle.acknowledge(self.rules.definitions[other], status, who, comment,
                                                              now)))
        if not outcomes:
            raise ActionRefused(f"ticket #{ticket} is {self.status[key].state.value}: nothing to acknowledge")
        return self._commit_outcomes(outcomes, now)

    def set_condition(self, key: str, active: bool, now: float, value: float | None = None) -> list[AlarmEvent]:
        """A condition decided outside the rules (the notifier that cannot reach anyone)."""
        if self.status[key].condition == active:
            return []
        return self._apply([Change(key, active, value)], [], now)

    def shelve(self, target: str, who: str, reason: str, until: float, now: float) -> list[AlarmEvent]:
        key = self.resolve(target)
        outcome = lifecycle.shelve(self.rules.definitions[key], self.status[key], who, reason, until, now, MAX_SHELVE)
        return self._act(key, outcome, now)

    def unshelve(self, target: str, who: str, now: float) -> list[AlarmEvent]:
        key = self.resolve(target)
        outcome = lifecycle.unshelve(self.rules.definitions[key], self.status[key], who, now, self.next_occurrence)
        return self._act(key, outcome, now)

    def set_out_of_service(self, target: str, out: bool, who: str, reason: str, now: float) -> list[AlarmEvent]:
        key = self.resolve(target)
        outcome = lifecycle.set_out_of_service(self.rules.definitions[key], self.status[key], out, who, reason, now,
                                               self.next_occurrence)
        return self._act(key, outcome, now)

    def _act(self, key: str, outcome: Outcome, now: float) -> list[AlarmEvent]:
        return self._commit_outcomes([(key, outcome)], now)

    def run_commands(self, commands: Sequence[Command], now: float) -> list[tuple[Command, str, str]]:
        """Commands the CLI left in the journal: apply each and record its outcome (returned for the audit)."""
        outcomes = []
        for command in commands:
            try:
                events = self._run(command, now)
                result = "; ".join(f"{e.alarm} {e.kind.value} → {e.state.value}" for e in events) or "no change"
                status = "done"
            except ActionRefused as refusal:
                result, status = str(refusal), "refused"
            self.journal.commands.finish(command.id, status, result, now)
            outcomes.append((command, status, result))
        return outcomes

    def _run(self, command: Command, now: float) -> list[AlarmEvent]:
        args = command.args
        if command.action == "ack":
            return self.acknowledge(command.target, command.actor, str(args.get("comment", "")), now)
        if command.action == "shelve":
            return self.shelve(command.target, command.actor, str(args.get("reason", "")),
                               now + float(args.get("duration", 0)), now)
        if command.action == "unshelve":
            return self.unshelve(command.target, command.actor, now)
        if command.action in ("out_of_service", "in_service"):
            return self.set_out_of_service(command.target, command.action == "out_of_service", command.actor,
                                           str(args.get("reason", "")), now)
        raise ActionRefused(f"unknown action {command.action!r}")

    # --- views --------------------------------------------------------------------------------------------------

    def definition(self, key: str) -> AlarmDefinition:
        return self.rules.definitions[key]

    def not_normal(self) -> list[AlarmStatus]:
        """What the alarm list shows: not normal, or hidden while its condition holds; most urgent first."""
        shown = [self.status[key] for key in self._shown]
        return sorted(shown, key=lambda s: (s.priority.rank, -(s.active_since or 0.0)))

    def checkpoint(self, now: float) -> None:
        """Journal every windowed rule's state at once (at stop)."""
        self._journal_snapshots(list(self._windowed()))

    def _windowed(self) -> Iterator[str]:
        return (key for key, rule in self.rules.rules.items() if isinstance(rule, FluctuationRule))

    def _checkpoint_slice(self) -> None:
        """Journal a slice of the 24-hour windows each tick, so every one is journaled once per
        CHECKPOINT_INTERVAL without a stall: a SIGKILL loses at most that much of a window."""
        if not self._checkpoint_queue:
            self._checkpoint_queue = list(self._windowed())
            self._checkpoint_per_tick = max(1, math.ceil(len(self._checkpoint_queue) * self.config.tick
                                                         / CHECKPOINT_INTERVAL))
            if not self._checkpoint_queue:
                return
        batch = self._checkpoint_queue[-self._checkpoint_per_tick:]
        del self._checkpoint_queue[-self._checkpoint_per_tick:]
        self._journal_snapshots(batch)

    def _journal_snapshots(self, keys: list[str]) -> None:
        if keys:
            self.journal.commit([], [], [(key, self.rules.rules[key].snapshot()) for key in keys])


def _shown(status: AlarmStatus) -> bool:
    return status.state is not AlarmState.NORMAL or (status.hidden and status.condition)


def _advance(occurrence: int, events: Sequence[AlarmEvent]) -> int:
    """A raise takes the next ticket number."""
    return occurrence + sum(1 for e in events if e.occurrence == occurrence and e.kind.value == "raised")


def _needs_tick(rule: Rule) -> bool:
    if isinstance(rule, StateRule) and rule.when is not None and rule.state:
        return True
    if isinstance(rule, DelayedRule):
        return rule.delay.pending_since is not None or rule.delay.clearing_since is not None
    return rule.__class__.__name__ == "StaleRule"


__all__ = ["AlarmEngine", "Change", "Output", "replace"]
