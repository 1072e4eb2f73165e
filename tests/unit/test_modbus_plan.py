"""The read plan: fewest requests, within limits, never a torn value; optimality checked by brute force."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.modbus.plan import Limits, compile_plan, minimum_requests
from stackwatch.config.devices import ModbusDevice
from stackwatch.config.points import REGISTER_WIDTH


def device(points: list[dict[str, Any]], **fields: Any) -> ModbusDevice:
    numbered = [{"id": f"p{i}", **p} for i, p in enumerate(points)]
    return ModbusDevice.model_validate(
        {"id": "dev", "protocol": "modbus", "gateway": "gw", "room": "r", "points": numbered, **fields})


def spans_of(plan_device: ModbusDevice) -> dict[str, set[tuple[int, int]]]:
    tables: dict[str, set[tuple[int, int]]] = {}
    for p in plan_device.points:
        start = plan_device.wire_address(p)
        tables.setdefault(p.table, set()).add((start, start + p.width))
    return tables


HMP110 = [
    {"table": "holding", "address": 0x0000, "type": "float32", "word_order": "little"},
    {"table": "holding", "address": 0x0002, "type": "float32", "word_order": "little"},
    {"table": "holding", "address": 0x0008, "type": "float32", "word_order": "little"},
    {"table": "holding", "address": 0x000E, "type": "float32", "word_order": "little"},
    {"table": "holding", "address": 0x0100, "type": "int16", "scale": 0.01},
    {"table": "holding", "address": 0x0101, "type": "int16", "scale": 0.01},
]


def test_hmp110_map_is_two_requests() -> None:
    plan = compile_plan(device(HMP110))
    assert [(r.function_code, r.address, r.count) for r in plan.requests] == [(3, 0, 16), (3, 0x100, 2)]
    assert [(s.key, s.offset) for s in plan.requests[0].slots] == [
        ("dev.p0", 0), ("dev.p1", 2), ("dev.p2", 8), ("dev.p3", 14)]


def test_gap_limit_splits_requests() -> None:
    plan = compile_plan(device(HMP110), Limits(max_gap=0))
    assert [(r.address, r.count) for r in plan.requests] == [(0, 4), (8, 2), (14, 2), (0x100, 2)]
    # both holes (4..7 and 10..13) are 4 addresses long
    assert len(compile_plan(device(HMP110), Limits(max_gap=3)).requests) == 4
    assert len(compile_plan(device(HMP110), Limits(max_gap=4)).requests) == 2


def test_tables_never_mix() -> None:
    plan = compile_plan(device([
        {"table": "input", "address": 1, "type": "int16"}, {"table": "holding", "address": 2},
        {"table": "discrete", "address": 0}, {"table": "coil", "address": 1},
    ]))
    assert sorted(r.function_code for r in plan.requests) == [1, 2, 3, 4]


def test_float_at_the_request_limit_is_not_torn() -> None:
    plan = compile_plan(device([
        {"table": "holding", "address": 0},
        *({"table": "holding", "address": a} for a in range(1, 124)),
        {"table": "holding", "address": 124, "type": "float32"},
    ]))
    assert [(r.address, r.count) for r in plan.requests] == [(0, 124), (124, 2)]


def test_register_limit() -> None:
    plan = compile_plan(device([{"table": "input", "address": a} for a in range(200)]))
    assert [(r.address, r.count) for r in plan.requests] == [(0, 125), (125, 75)]
    small = compile_plan(device([{"table": "input", "address": a} for a in range(10)]), Limits(max_registers=4))
    assert [r.count for r in small.requests] == [4, 4, 2]


def test_bit_limit() -> None:
    plan = compile_plan(device([{"table": "coil", "address": a} for a in range(0, 2100, 5)]), Limits(max_gap=4))
    assert [(r.address, r.count) for r in plan.requests] == [(0, 1996), (2000, 96)]


def test_fire_zone_register_read_once_for_all_its_points() -> None:
    plan = compile_plan(device([
        {"table": "holding", "address": 7, "mask": 0x08FF, "equals": 0x0810},
        {"table": "holding", "address": 7, "bit": 14},
        {"table": "holding", "address": 7, "bit": 13},
        {"table": "holding", "address": 8, "bit": 14},
    ]))
    [request] = plan.requests
    assert (request.address, request.count) == (7, 2)
    assert [s.offset for s in request.slots] == [0, 0, 0, 1]


def test_one_based_addressing() -> None:
    seahawk = device([{"table": "input", "address": a} for a in range(1, 6)], addressing="one-based")
    [request] = compile_plan(seahawk).requests
    assert (request.address, request.count) == (0, 5)
    with pytest.raises(ValueError, match="address 0"):
        compile_plan(device([{"table": "input", "address": 0}], addressing="one-based"))


def test_value_wider_than_a_request_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        compile_plan(device([{"table": "holding", "address": 0, "type": "float32"}]), Limits(max_registers=1))


def test_minimum_requests_of_known_maps() -> None:
    assert minimum_requests(device(HMP110)) == 2
    assert minimum_requests(device(HMP110), Limits(max_gap=0)) == 4
    assert minimum_requests(device([{"table": "input", "address": a} for a in range(200)])) == 2


# ---- optimality against a brute force over every possible window ----

def brute_force_minimum(spans: set[tuple[int, int]], size: int, max_gap: int) -> int:
    """BFS over sets of uncovered values, trying every window [a, b) that obeys the limits."""
    used = {a for start, end in spans for a in range(start, end)}
    top = max(end for _, end in spans)
    covers: set[frozenset[tuple[int, int]]] = set()
    for a in range(top):
        for b in range(a + 1, min(a + size, top) + 1):
            gap = longest = 0
            for address in range(a, b):
                gap = 0 if address in used else gap + 1
                longest = max(longest, gap)
            if longest <= max_gap:
                inside = frozenset(s for s in spans if a <= s[0] and s[1] <= b)
                if inside:
                    covers.add(inside)
    start = frozenset(spans)
    seen = {start}
    queue = deque([(start, 0)])
    while queue:
        left, depth = queue.popleft()
        if not left:
            return depth
        for cover in covers:
            if cover & left:
                nxt = left - cover
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, depth + 1))
    raise AssertionError("no cover")


point_maps = st.lists(
    st.tuples(st.sampled_from(["holding", "input", "coil"]), st.integers(0, 24),
              st.sampled_from(["uint16", "int16", "int32", "float32", "float64"])),
    min_size=1, max_size=7,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point_maps, st.integers(4, 12), st.integers(0, 4), st.integers(1, 12))
def test_plan_is_minimal_and_valid(entries: list[tuple[str, int, str]], max_registers: int, max_gap: int,
                                   max_bits: int) -> None:
    points = [{"table": t, "address": a, **({} if t == "coil" else {"type": ty})} for t, a, ty in entries]
    dev = device(points)
    limits = Limits(max_registers=max_registers, max_bits=max_bits, max_gap=max_gap)
    plan = compile_plan(dev, limits)

    expected = sum(brute_force_minimum(spans, limits.size(table), max_gap) for table, spans in spans_of(dev).items())
    assert len(plan.requests) == expected
    assert minimum_requests(dev, limits) == expected

    used = spans_of(dev)
    keys = [slot.key for request in plan.requests for slot in request.slots]
    assert sorted(keys) == sorted(f"dev.{p.id}" for p in dev.points)  # every point exactly once
    for request in plan.requests:
        assert 1 <= request.count <= limits.size(request.table)
        addresses = {a for s, e in used[request.table] for a in range(s, e)}
        run = 0
        for address in range(request.address, request.address + request.count):
            run = 0 if address in addresses else run + 1
            assert run <= max_gap
        for slot in request.slots:  # wholly inside: no torn value
            assert slot.offset >= 0 and slot.offset + REGISTER_WIDTH[slot.point.type] <= request.count
            assert request.address + slot.offset == slot.point.address
