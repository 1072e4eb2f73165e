"""The rules' (time, value) queues: the same answers as tuples in a deque, in a fraction of the memory."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from alarms.model import AlarmDefinition, Priority
from alarms.rules import FluctuationRule, RateRule
from alarms.window import PairQueue

values = st.floats(min_value=-50, max_value=150, allow_nan=False)
steps = st.lists(st.tuples(st.integers(0, 3), values, st.sampled_from(["high", "low", "spaced", "expire"])),
                 max_size=300)


@given(steps)
def test_pair_queue_moves_match_a_deque_of_tuples(operations: list[tuple[int, float, str]]) -> None:
    queue, model = PairQueue(), deque[tuple[float, float]]()
    ts = 0.0
    for advance, value, move in operations:
        ts += advance
        if move == "high":
            queue.push_highest(ts, value)
            while model and model[-1][1] <= value:
                model.pop()
            if not model or model[-1][0] != ts:
                model.append((ts, value))
        elif move == "low":
            queue.push_lowest(ts, value)
            while model and model[-1][1] >= value:
                model.pop()
            if not model or model[-1][0] != ts:
                model.append((ts, value))
        elif move == "spaced":
            queue.append_spaced(ts, value, 2.0)
            if not model or ts - model[-1][0] >= 2.0:
                model.append((ts, value))
        elif model:
            horizon = ts - 5.0
            while len(model) > 1 and model[0][0] <= horizon:
                model.popleft()
            assert queue.expire(horizon) == model[0]
        assert list(queue) == list(model) and len(queue) == len(model)


def test_a_restored_queue_holds_the_snapshot_pairs() -> None:
    assert list(PairQueue([(1.0, 2.0), (3.0, 4.0)])) == [(1.0, 2.0), (3.0, 4.0)]


def definition(key: str) -> AlarmDefinition:
    return AlarmDefinition(key=key, cause="temperature_fluctuation", priority=Priority.MEDIUM, site="s", room="r",
                           building="b", source="th.t", description="")


def test_a_day_of_noisy_readings_keeps_the_windows_of_a_point_within_a_few_kilobytes() -> None:
    """A transmitter with float output and a little noise: the monotonic queues keep a few hundred pairs."""
    random.seed(7)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fluctuation = FluctuationRule(definition("th.t:fluctuation"), allowance=5.0)
        rate = RateRule(definition("th.t:rate"), per_hour=2.0)
        for i in range(0, 86400, 30):
            value = 20.0 + 2.0 * math.sin(2 * math.pi * i / 86400) + random.gauss(0, 0.05)
            fluctuation.on_value(float(i), value)
            rate.on_value(float(i), value)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    pairs = len(fluctuation.maxima) + len(fluctuation.minima) + len(rate.samples)
    assert pairs > 50
    # Both rules whole (objects, delays, arrays with their spare room): 5.8 KB here. The same pairs as tuples
    # in deques took about 110 bytes each plus 600 per deque: about 21 KB.
    assert held < 32 * pairs + 2_000
