"""Topic → routes: exact topics by dict lookup, MQTT wildcard filters (`+`, `#`) after, results cached.

Almost every configured topic is exact, so most messages cost one dict lookup;
wildcard matches are remembered per topic (bounded, so a flood of random topics
cannot grow memory without limit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def is_filter(topic: str) -> bool:
    return "+" in topic or "#" in topic


def validate_filter(topic: str) -> None:
    if not topic:
        raise ValueError("empty topic")
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"topic {topic!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"topic {topic!r}: '+' must be a whole level")


def filter_matches(levels: tuple[str, ...], topic_levels: list[str]) -> bool:
    """MQTT matching; `#` also matches its parent (`a/#` matches `a`), `$` topics are hidden from leading wildcards."""
    if topic_levels[0].startswith("$") and levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(levels) == len(topic_levels)


def covers(wide: str, narrow: str) -> bool:
    """Whether every topic matching filter `narrow` also matches filter `wide`."""
    wide_levels, narrow_levels = wide.split("/"), narrow.split("/")
    for index, level in enumerate(wide_levels):
        if level == "#":
            return True
        if index >= len(narrow_levels):
            return False
        other = narrow_levels[index]
        if level == "+":
            if other == "#":
                return False
        elif level != other:
            return False
    return len(wide_levels) == len(narrow_levels)


def minimal_filters(topics: Iterable[str]) -> list[str]:
    """The subscriptions to make: overlapping ones dropped, so the broker does not deliver a message twice."""
    unique = sorted(set(topics))
    return [t for t in unique if not any(other != t and is_filter(other) and covers(other, t) for other in unique)]


class TopicRouter(Generic[T]):
    def __init__(self, routes: Iterable[tuple[str, T]], cache_size: int = 10_000) -> None:
        self._exact: dict[str, list[T]] = {}
        self._wild: list[tuple[tuple[str, ...], T]] = []
        for topic, route in routes:
            validate_filter(topic)
            if is_filter(topic):
                self._wild.append((tuple(topic.split("/")), route))
            else:
                self._exact.setdefault(topic, []).append(route)
        self._frozen = {topic: tuple(found) for topic, found in self._exact.items()}
        self._cache: dict[str, tuple[T, ...]] = {}
        self._cache_size = cache_size
        self.filters: list[str] = minimal_filters(
            [*self._exact, *("/".join(levels) for levels, _ in self._wild)])

    def match(self, topic: str) -> tuple[T, ...]:
        if not self._wild:
            return self._frozen.get(topic, ())
        found = self._cache.get(topic)
        if found is None:
            levels = topic.split("/")
            wild = tuple(route for pattern, route in self._wild if filter_matches(pattern, levels))
            found = self._frozen.get(topic, ()) + wild
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[topic] = found
        return found
