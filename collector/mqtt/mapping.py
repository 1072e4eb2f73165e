"""MQTT message → readings, for every MQTT device of the site, compiled once at start.

`MessageMapper.map` is the collector's hot path. It never raises and never
turns a bad payload into a value: problems are counted per kind and topic,
a wrong-typed key becomes a BAD reading of that point, and the rest of the
message still counts. It is meant to be called from one thread (paho's).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass

from stackwatch.catalog import point_key
from stackwatch.config.devices import MqttDevice
from stackwatch.config.model import SiteConfig
from stackwatch.pipeline import TimestampAllocator
from stackwatch.readings import Quality, Reading

from .convert import PointRule, WrongType
from .jsonpath import MISSING, Steps, compile_path, extract
from .problems import IGNORED, MALFORMED, OVERSIZED, UNEXPECTED, ProblemCounter
from .router import TopicRouter
from .timestamps import BadTimestamp, TimestampRule

log = logging.getLogger("collector.mqtt")

DEFAULT_MAX_AGE = 30 * 86400.0  # a device time older than this is a wrong clock, not a queued message
DEFAULT_MAX_AHEAD = 600.0  # a device time further ahead than this is a wrong clock

GOOD, UNCERTAIN, BAD, COMM_FAILURE = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD, Quality.COMM_FAILURE


@dataclass(frozen=True, slots=True)
class ConditionRule:
    index: int
    path: Steps
    equals: object
    label: str

    def holds(self, value: object) -> bool:
        if isinstance(self.equals, bool) or isinstance(value, bool):
            return value is self.equals
        return value == self.equals


@dataclass(frozen=True, slots=True)
class StateRoute:
    device: str
    points: tuple[PointRule, ...]
    needs_json: bool  # some point has a path: the payload must be JSON
    timestamp: TimestampRule | None
    conditions: tuple[ConditionRule, ...]
    require: tuple[str, str | None] | None  # (key, value it must equal or None for presence)


@dataclass(frozen=True, slots=True)
class AvailabilityRoute:
    device: str
    path: Steps | None
    online: frozenset[str]  # lower-case
    offline: frozenset[str]
    point_keys: tuple[str, ...]


Route = StateRoute | AvailabilityRoute


class _InvalidJson:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_UNPARSED = object()


def _parse(payload: bytes) -> object:
    try:
        return json.loads(payload.decode("utf-8"))  # UTF-8 (RFC 8259); decoding first is faster than detection
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _InvalidJson(f"not JSON ({type(error).__name__}: {str(error)[:60]})")


def _routes_of(device: MqttDevice, site_zone: str) -> list[tuple[str, Route]]:
    by_topic: dict[str, list[PointRule]] = defaultdict(list)
    for point in device.points:
        topic = point.topic or device.topic
        assert topic is not None  # MqttDevice validates that every point has a topic
        by_topic[topic].append(PointRule.compile(point_key(device.id, point.id), point))
    timestamp = TimestampRule.compile(device.timestamp, site_zone) if device.timestamp else None
    conditions = tuple(
        ConditionRule(index, compile_path(c.path), c.equals, c.path if c.equals is True else f"{c.path}={c.equals}")
        for index, c in enumerate(device.uncertain_when))
    require: tuple[str, str | None] | None = None
    if device.require_key:
        key, _, value = device.require_key.partition("=")
        require = (key.strip(), value.strip() if value else None)
    routes: list[tuple[str, Route]] = []
    for topic, rules in by_topic.items():
        json_route = any(rule.path is not None for rule in rules)
        routes.append((topic, StateRoute(
            device=device.id, points=tuple(rules), needs_json=json_route,
            timestamp=timestamp if json_route else None,
            conditions=conditions if json_route else (), require=require if json_route else None)))
    if device.availability is not None:
        spec = device.availability
        routes.append((spec.topic, AvailabilityRoute(
            device=device.id, path=compile_path(spec.path) if spec.path else None,
            online=frozenset(s.lower() for s in spec.online), offline=frozenset(s.lower() for s in spec.offline),
            point_keys=tuple(point_key(device.id, p.id) for p in device.points))))
    return routes


def compile_routes(config: SiteConfig) -> list[tuple[str, Route]]:
    """Every MQTT device's topics with what to do with a message on each; ValueError names a bad path."""
    routes: list[tuple[str, Route]] = []
    for device in config.devices:
        if isinstance(device, MqttDevice):
            try:
                routes.extend(_routes_of(device, config.site.timezone))
            except ValueError as error:
                raise ValueError(f"device {device.id}: {error}") from None
    return routes


class MessageMapper:
    def __init__(self, config: SiteConfig, allocator: TimestampAllocator | None = None, *,
                 max_age: float = DEFAULT_MAX_AGE, max_ahead: float = DEFAULT_MAX_AHEAD,
                 logger: logging.Logger = log) -> None:
        self.max_payload_bytes = config.mqtt.max_payload_bytes if config.mqtt else 65536
        self._router: TopicRouter[Route] = TopicRouter(compile_routes(config))
        self.subscriptions: list[str] = self._router.filters
        self._stamp = (allocator or TimestampAllocator()).stamp
        self._max_age_ns = int(max_age * 1e9)
        self._max_ahead_ns = int(max_ahead * 1e9)
        self._conditions: dict[tuple[str, int], bool] = {}
        self.problems = ProblemCounter(logger)

    def map(self, topic: str, payload: bytes, retain: bool, now_ns: int) -> list[Reading]:
        """The readings in one message; [] for anything that is not one (counted in `problems`)."""
        if len(payload) > self.max_payload_bytes:
            self.problems.report(OVERSIZED, topic, f"{len(payload)} bytes, more than {self.max_payload_bytes}")
            return []
        routes = self._router.match(topic)
        if not routes:
            self.problems.report(UNEXPECTED, topic, "no device has this topic")
            return []
        out: list[Reading] = []
        notes: list[tuple[str, str]] = []
        understood = False
        document: object = _UNPARSED
        for route in routes:
            if isinstance(route, StateRoute):
                if route.needs_json and document is _UNPARSED:
                    document = _parse(payload)
                understood |= self._state(route, payload, document, retain, now_ns, out, notes)
            else:
                if route.path is not None and document is _UNPARSED and payload[:1] in (b"{", b"["):
                    document = _parse(payload)
                understood |= self._availability(route, payload, document, now_ns, out, notes)
        reported: set[str] = set()
        for kind, detail in notes:
            if kind not in reported and (kind == MALFORMED or not understood):
                reported.add(kind)
                self.problems.report(kind, topic, detail)
        return out

    def _state(self, route: StateRoute, payload: bytes, document: object, retain: bool, now_ns: int,
               out: list[Reading], notes: list[tuple[str, str]]) -> bool:
        details: list[str] = []
        own_ts: int | None = None
        if route.needs_json:
            if isinstance(document, _InvalidJson):
                notes.append((MALFORMED, document.reason))
                return False
            if not isinstance(document, dict | list):
                notes.append((MALFORMED, f"expected a JSON object, got {type(document).__name__}"))
                return False
            if route.require is not None and not self._required(route.require, document):
                notes.append((IGNORED, f"no {'='.join(k for k in route.require if k)}"))
                return False
            if route.timestamp is not None:
                own_ts = self._own_time(route.timestamp, document, now_ns, details, notes)
            for condition in route.conditions:
                if self._condition(route.device, condition, document):
                    details.append(condition.label)
        if retain and own_ts is None:
            details.append("retained")
        quality = UNCERTAIN if details else GOOD
        detail = "; ".join(details)
        stamp, append = self._stamp, out.append
        fields = document if type(document) is dict else None
        text: str | None = None
        found = False
        for point in route.points:
            if point.key_only is not None:
                raw = fields.get(point.key_only) if fields is not None else None
                if raw is None:  # absent (partial message), or null for "unknown": no reading
                    continue
            elif point.path is not None:
                raw = extract(document, point.path)
                if raw is MISSING or raw is None:
                    continue
            else:
                if text is None:
                    try:
                        text = payload.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        notes.append((MALFORMED, "payload is not UTF-8 text"))
                        return found
                raw = text
            found = True
            ts = own_ts if own_ts is not None else stamp(point.key, now_ns)
            try:
                value = point.convert(raw)
            except WrongType as error:
                notes.append((MALFORMED, f"{point.key}: {error}"))
                append(Reading(point.key, ts, None, BAD, f"malformed: {error}"))
                continue
            if value != value:  # NaN: the sensor has no reading
                append(Reading(point.key, ts, None, BAD, "not a number"))
            elif point.ranged and point.out_of_range(value):
                note = f"{detail}; out of range" if detail else "out of range"
                append(Reading(point.key, ts, value, UNCERTAIN, note))
            else:
                append(Reading(point.key, ts, value, quality, detail))
        if not found:
            notes.append((UNEXPECTED, "none of the device's points is in the payload"))
        return found

    @staticmethod
    def _required(require: tuple[str, str | None], document: object) -> bool:
        if not isinstance(document, dict):
            return False
        key, value = require
        if value is None:
            return key in document
        return document.get(key) == value

    def _own_time(self, rule: TimestampRule, document: object, now_ns: int, details: list[str],
                  notes: list[tuple[str, str]]) -> int | None:
        raw = extract(document, rule.path)
        if raw is MISSING or raw is None:
            return None
        try:
            ts = rule.to_ns(raw)
        except BadTimestamp as error:
            notes.append((MALFORMED, str(error)))
            details.append("bad timestamp")
            return None
        if ts < now_ns - self._max_age_ns or ts > now_ns + self._max_ahead_ns:
            details.append("device clock off")
            return None
        return ts

    def _condition(self, device: str, condition: ConditionRule, document: object) -> bool:
        """Whether a condition holds; a message without its key keeps the last known state (partial updates)."""
        raw = extract(document, condition.path)
        key = (device, condition.index)
        if raw is MISSING:
            return self._conditions.get(key, False)
        holds = condition.holds(raw)
        self._conditions[key] = holds
        return holds

    def _availability(self, route: AvailabilityRoute, payload: bytes, document: object, now_ns: int,
                      out: list[Reading], notes: list[tuple[str, str]]) -> bool:
        state: object = MISSING
        if route.path is not None and isinstance(document, dict):
            state = extract(document, route.path)
        if state is MISSING:
            try:
                state = payload.decode("utf-8").strip()
            except UnicodeDecodeError:
                notes.append((MALFORMED, "availability payload is not UTF-8 text"))
                return False
        if isinstance(state, bool):
            state = "true" if state else "false"
        word = state.lower() if isinstance(state, str) else repr(state)
        if word in route.offline:
            for key in route.point_keys:
                out.append(Reading(key, self._stamp(key, now_ns), None, COMM_FAILURE, "offline"))
            return True
        if word in route.online:
            return True
        notes.append((MALFORMED, f"availability {word[:40]!r} is neither online nor offline"))
        return False


class MapperCounts:
    """The mapper's problem counts under the names /metrics uses, for the collectors that own a mapper."""

    mapper: MessageMapper

    @property
    def malformed(self) -> int:
        return self.mapper.problems.counts[MALFORMED]

    @property
    def oversized(self) -> int:
        return self.mapper.problems.counts[OVERSIZED]

    @property
    def unexpected(self) -> int:
        return self.mapper.problems.counts[UNEXPECTED]

    @property
    def ignored(self) -> int:
        return self.mapper.problems.counts[IGNORED]
