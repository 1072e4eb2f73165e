"""The notifier in the running service: alarm events in, messages out, every attempt journaled.

Its own thread (the engine must never wait on an SMS gateway) runs three steps
on the injected clock:

1. planner: alarm events and time → notices (who, which kind, which tickets),
   saved with the pages in one commit (`NotifyStore.save`);
2. outbox: notices wait until no other of their room and cause came in for
   `COALESCE` seconds (at most `MAX_COALESCE`), so a burst becomes one message;
   a room and cause already paged within `group_window` waits for the window's
   end and goes out as one message; more than `flood_threshold` notices
   for one person at once become one summary; then each person's message is
   rendered (language, signed acknowledge link) and becomes a delivery;
3. deliveries: sent on a small worker pool; a failure is retried with backoff
   (`Retry-After` honoured), then the person's next contact is tried; when no
   contact works the notifier raises its own alarm.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from stackwatch.clock import Clock
from stackwatch.config.model import SiteConfig
from stackwatch.config.notify import Person, Route

from ..calendar import OpeningCalendar
from ..model import AlarmEvent, AlarmStatus
from . import links, oncall, routing, templates
from .channels import build_sender
from .model import Delivery, Message, NoticeKind, Sender
from .planner import Notice, Planner, merge
from .store import DeliveryRow, NewDelivery, NotifyStore

log = logging.getLogger("stackwatch.notify")
COALESCE = 0.5  # a notice waits this long for others of its room and cause...
MAX_COALESCE = 2.0  # ...and a burst that keeps coming, this long at most (a fire SMS must leave within 2 s)
FailureHook = Callable[[bool, str], None]  # (cannot deliver, detail) → the notifier's own alarm
_STOP = object()


class Notifier:
    def __init__(self, config: SiteConfig, state_dir: Path, clock: Clock, on_failure: FailureHook | None = None,
                 senders: dict[str, Sender] | None = None, executor: Executor | None = None) -> None:
        self.config = config
        self.settings = config.notify
        self.clock = clock
        self.timezone = config.site.timezone
        self.on_failure = on_failure
        self.store = NotifyStore(state_dir / "notify.db")
        secret = self.settings.link_secret
        self.secret = (secret.get_secret_value().encode() if secret is not None
                       else links.load_or_create_secret(state_dir / "link.key"))
        self.people: dict[str, Person] = {person.id: person for person in self.settings.people}
        self.rotations = {rotation.id: rotation for rotation in self.settings.rotations}
        self.senders = senders if senders is not None else {c.id: build_sender(c) for c in self.settings.channels}
        self.rooms = {room.id: room.name or room.id for room in config.rooms}
        self.buildings = {room.id: room.building for room in config.rooms}
        self.calendar = OpeningCalendar(config.alarms.opening_hours, self.timezone)
        self.planner = Planner(self.settings.routes, self._routes_for, self._resolve, self._hold_until)
        self.planner.pages = {page.key: page for page in self.store.pages()}
        resumed = self.store.resume()
        if resumed:
            log.warning("%d deliveries were being sent when the service stopped: sending them again", resumed)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pool = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify-send")
        self._inflight: set[int] = set()
        self._last_page: dict[tuple[str, str], float] = {}  # (route, group) → when a page last went out
        self._failing = False
        self._thread: threading.Thread | None = None
        self.outcomes: Counter[str] = Counter()  # sent, retried, next_contact, failed: for /metrics

    # --- the engine's output ------------------------------------------------------------------------------------

    def __call__(self, events: Sequence[AlarmEvent], _statuses: Sequence[AlarmStatus]) -> None:
        self._queue.put(list(events))

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(15)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._drain()  # sends that finished meanwhile are recorded, not sent again at the next start
        self.store.close()

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                self._handle(item)
                self.step(self.clock.now())
                if not self._drain():
                    return
            except Exception:  # a bad message or a broken channel must not end paging for good
                log.exception("notifier step failed; going on")

    def pump(self, now: float) -> None:
        """Everything queued (events, finished sends), one step, and the sends it finished: one loop, for tests."""
        self._drain()
        self.step(now)
        self._drain()

    def _drain(self) -> bool:
        """Handle what is queued; False when the stop signal was among it."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True
            if item is _STOP:
                return False
            self._handle(item)

    def _handle(self, item: object) -> None:
        if isinstance(item, list):
            self.on_events(item, self.clock.now())
        elif isinstance(item, tuple):
            row, outcome = item
            self._sent(row, outcome, self.clock.now())

    # --- step 1: the planner ------------------------------------------------------------------------------------

    def on_events(self, events: Sequence[AlarmEvent], now: float) -> None:
        before = set(self.planner.pages)
        notices: list[Notice] = []
        for event in events:
            notices += self.planner.on_event(event, now)
        tickets = {event.occurrence for event in events}
        changed = [page for page in self.planner.pages.values() if page.ticket in tickets]
        removed = before - set(self.planner.pages)
        self.store.save(changed, removed, [(now + COALESCE, notice) for notice in notices])

    def step(self, now: float) -> None:
        due_before = {key for key, page in self.planner.pages.items() if page.next_due is not None
                      and page.next_due <= now}
        notices = self.planner.tick(now)
        if due_before:
            changed = [self.planner.pages[key] for key in due_before if key in self.planner.pages]
            self.store.save(changed, [], [(now + COALESCE, notice) for notice in notices])
        self._flush(now)
        self._send_due(now)

    def _routes_for(self, event: AlarmEvent) -> list[Route]:
        return routing.matching_routes(self.settings.routes, priority=event.priority.value, building=event.building,
                                       room=event.room, cause=event.cause)

    def _resolve(self, target: str, at: float) -> list[str]:
        kind, _, name = target.partition(":")
        if kind == "person":
            return [name]
        person = oncall.who_is_on_call(self.rotations[name], self.timezone, at)
        if person is None:
            log.error("rotation %s has nobody on call at %s", name, at)
            return []
        return [person]

    def _hold_until(self, priority: str, at: float) -> float:
        return routing.held_until(priority, at, self.settings.quiet_hours, self.calendar, self.timezone)

    # --- step 2: the outbox -------------------------------------------------------------------------------------

    def _flush(self, now: float) -> None:
        outbox = self.store.outbox()
        arriving = {(n.route, n.group, n.kind) for _, due, n in outbox if now < due <= now + COALESCE}
        ready: list[tuple[int, Notice]] = []
        for outbox_id, due, notice in outbox:
            if due > now:
                continue
            if (notice.route, notice.group, notice.kind) in arriving and now - (due - COALESCE) < MAX_COALESCE:
                continue  # more of the same room and cause is still coming in: wait for the burst to end
            if notice.kind in (NoticeKind.PAGE, NoticeKind.ESCALATION):
                last = self._last_page.get((notice.route, notice.group))
                window = self.settings.group_window
                if last is not None and now - last < window and due < last + window:
                    self.store.postpone(outbox_id, last + window)  # one message for all, at the window's end
                    continue
            ready.append((outbox_id, notice))
        if not ready:
            return
        deliveries = self._render(merge([notice for _, notice in ready]), now)
        self.store.dispatch([outbox_id for outbox_id, _ in ready], deliveries, now)
        for _, notice in ready:
            if notice.kind in (NoticeKind.PAGE, NoticeKind.ESCALATION):
                self._last_page[(notice.route, notice.group)] = now

    def _render(self, notices: list[Notice], now: float) -> list[NewDelivery]:
        per_person: dict[str, list[Notice]] = {}
        for notice in notices:
            for person_id in notice.people:
                per_person.setdefault(person_id, []).append(notice)
        deliveries: list[NewDelivery] = []
        for person_id, own in per_person.items():
            person = self.people.get(person_id)
            if person is None:
                log.error("no person %r in notify.people: a page could not be addressed", person_id)
                continue
            if len(own) > self.settings.flood_threshold:
                events = tuple(event for notice in own for event in notice.events)
                own = [Notice(NoticeKind.SUMMARY, (person_id,), events, own[0].route, "*", own[0].level)]
            for notice in own:
                message = self._message(notice, person, now)
                contact = person.contacts[0]
                deliveries.append(NewDelivery(person_id, 0, contact.channel, contact.address, message))
        for notice in notices:
            route = self.planner.routes.get(notice.route)
            for chat in route.chat if route else ():
                message = self._message(notice, None, now)
                deliveries.append(NewDelivery(f"chat:{chat}", -1, chat, "", message))
        return deliveries

    def _message(self, notice: Notice, person: Person | None, now: float) -> Message:
        language = (person.language if person and person.language else None) or self.settings.language
        link = ""
        if person is not None and notice.kind not in (NoticeKind.ACKNOWLEDGED, NoticeKind.RETURNED):
            token = links.sign(self.secret, notice.tickets[0], person.id, now + self.settings.link_ttl)
            link = links.link_url(self.settings.base_url, token)
        message = templates.render(notice.kind, notice.events, site_name=self.config.site.name or self.config.site.id,
                                   room_names=self.rooms, language=language, link=link, timezone=self.timezone,
                                   now=now)
        return replace(message, data={**message.data, "level": notice.level, "route": notice.route})

    # --- step 3: deliveries -------------------------------------------------------------------------------------

    def _send_due(self, now: float) -> None:
        for row in self.store.due(now):
            if row.id in self._inflight:
                continue
            sender = self.senders.get(row.channel)
            if sender is None:
                self._sent(row, Delivery(False, False, "no such channel", f"channel {row.channel!r} not built"), now)
                continue
            self._inflight.add(row.id)
            self.store.mark_sending(row.id)
            self._pool.submit(self._send, sender, row)

    def _send(self, sender: Sender, row: DeliveryRow) -> None:
        try:
            outcome = sender.send(row.message, row.address)
        except Exception as error:  # a channel must not raise; if one does, it is a failed attempt
            outcome = Delivery(False, True, "error", repr(error)[:500])
        self._queue.put((row, outcome))

    def _sent(self, row: DeliveryRow, outcome: Delivery, now: float) -> None:
        """Where a delivery goes after an attempt: done, retried later, the next contact, or given up."""
        self._inflight.discard(row.id)
        if outcome.ok:
            self.outcomes["sent"] += 1
            self.store.record(row, outcome, now, status="sent", next_attempt=None)
            log.info("sent %s to %s via %s (tickets %s)", row.kind, row.person, row.channel, row.tickets)
            if not row.person.startswith("chat:"):
                self._failure(False, "")
            return
        attempts = row.attempts + 1
        if outcome.retryable and attempts <= self.settings.retry_max:
            self.outcomes["retried"] += 1
            wait = max(outcome.retry_after or 0.0, self.settings.retry_backoff * 2 ** (attempts - 1))
            self.store.record(row, outcome, now, status="pending", next_attempt=now + wait)
            log.warning("%s to %s via %s failed (%s): retry %d in %.0f s", row.kind, row.person, row.channel,
                        outcome.status, attempts, wait)
            return
        person = self.people.get(row.person)
        if person is not None and row.contact + 1 < len(person.contacts):
            contact = person.contacts[row.contact + 1]
            self.outcomes["next_contact"] += 1
            self.store.record(row, outcome, now, status="pending", next_attempt=now,
                              contact=(row.contact + 1, contact.channel, contact.address))
            log.warning("%s to %s via %s failed (%s): trying %s", row.kind, row.person, row.channel, outcome.status,
                        contact.channel)
            return
        self.outcomes["failed"] += 1
        self.store.record(row, outcome, now, status="failed", next_attempt=None)
        log.error("%s to %s could not be delivered on any channel (last: %s %s)", row.kind, row.person, row.channel,
                  outcome.status)
        if not row.person.startswith("chat:"):
            self._failure(True, f"{row.person}: {outcome.status}")

    @property
    def failing(self) -> bool:
        """True while the last person-delivery on every contact failed (the notifier's own alarm is active)."""
        return self._failing

    def _failure(self, failing: bool, detail: str) -> None:
        if failing == self._failing:
            return
        self._failing = failing
        if self.on_failure is not None:
            self.on_failure(failing, detail)

    def next_wakeup(self) -> float | None:
        dues = [due for due in (self.planner.next_due(), self.store.next_attempt()) if due is not None]
        return min(dues) if dues else None

