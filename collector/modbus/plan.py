"""A device's register map compiled into the fewest read requests, once, at start-up.

On an RS-485 bus every request costs a round trip of tens of milliseconds, so
the number of requests is what limits how many devices a bus can carry.
Following Telegraf's design, grouping is a pure function of the config and
is tested without a network; gathering only runs the plan.

Rules a request obeys:
- one table (function code) and at most `max_registers` registers or `max_bits` bits;
- never a run of more than `max_gap` addresses no point uses: devices answer
  exception 02 for holes in their map, and long holes waste bus time;
- a multi-register value lies wholly inside one request: halves from two
  requests can come from two different measurements (torn floats);
- an address several points share (fire-zone bits) is read once.

Why the greedy plan is minimal: take the uncovered value that starts lowest.
Some request must start at or before it, and everything left of it is already
covered, so starting that request exactly there loses nothing. A window that
is valid stays valid when shortened, so reaching as far right as the limits
allow covers a superset of what any other choice covers. `minimum_requests`
computes the optimum by a search that does not use the second argument, and
the tests compare both with a brute force over all windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from stackwatch.catalog import point_key
from stackwatch.config.devices import ModbusDevice, PollingOptions
from stackwatch.config.points import ModbusPoint, Table

from .decode import Codec, compile_codec

FUNCTION_CODE: dict[str, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
BIT_TABLES = ("coil", "discrete")
_TABLE_ORDER = ("input", "holding", "discrete", "coil")


@dataclass(frozen=True, slots=True)
class Limits:
    max_registers: int = 125
    max_bits: int = 2000
    max_gap: int = 8

    @classmethod
    def of(cls, options: PollingOptions) -> Limits:
        return cls(options.max_registers, options.max_bits, options.max_gap)

    def size(self, table: str) -> int:
        return self.max_bits if table in BIT_TABLES else self.max_registers


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one point sits in a request's answer."""

    key: str
    point: ModbusPoint
    offset: int
    codec: Codec


@dataclass(frozen=True, slots=True)
class ReadRequest:
    table: Table
    address: int
    count: int
    slots: tuple[Slot, ...]

    @property
    def function_code(self) -> int:
        return FUNCTION_CODE[self.table]

    @property
    def is_bits(self) -> bool:
        return self.table in BIT_TABLES

    def describe(self) -> str:
        return f"FC{self.function_code:02d} {self.address}+{self.count}"


@dataclass(frozen=True, slots=True)
class DevicePlan:
    device_id: str
    unit: int
    requests: tuple[ReadRequest, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(slot.key for request in self.requests for slot in request.slots)


Span = tuple[int, int]  # [start, end) wire addresses


def _spans_by_table(device: ModbusDevice) -> dict[str, list[tuple[Span, ModbusPoint]]]:
    tables: dict[str, list[tuple[Span, ModbusPoint]]] = {}
    for point in device.points:
        start = device.wire_address(point)
        if start < 0:
            raise ValueError(f"{device.id}.{point.id}: address 0 does not exist with one-based addressing")
        tables.setdefault(point.table, []).append(((start, start + point.width), point))
    return tables


def _used_runs(spans: Iterable[Span]) -> list[Span]:
    """Addresses some point uses, merged into runs: what a gap is measured against."""
    runs: list[list[int]] = []
    for start, end in sorted(spans):
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    return [(start, end) for start, end in runs]


def _reach(runs: Sequence[Span], start: int, size: int, max_gap: int) -> int:
    """The furthest end of a valid request beginning at `start` (a used address)."""
    limit = start + size
    end = start
    for run_start, run_end in runs:
        if run_end <= start:
            continue
        if run_start > end and (run_start - end > max_gap or run_start >= limit):
            break
        end = min(max(end, run_end), limit)
        if end >= limit:
            break
    return end


def _group(spans: Sequence[Span], size: int, max_gap: int) -> list[tuple[int, int, list[Span]]]:
    """Greedy cover of distinct spans: (start, end, spans inside) per request."""
    runs = _used_runs(spans)
    remaining = sorted(set(spans))
    requests = []
    while remaining:
        start = remaining[0][0]
        reach = _reach(runs, start, size, max_gap)
        inside = [span for span in remaining if span[1] <= reach]
        if not inside:  # only possible when a value is wider than a request
            raise ValueError(f"a value at {start} is wider than {size} registers per request")
        requests.append((start, max(end for _, end in inside), inside))
        taken = set(inside)
        remaining = [span for span in remaining if span not in taken]
    return requests


def compile_plan(device: ModbusDevice, limits: Limits | None = None) -> DevicePlan:
    limits = limits or Limits()
    requests: list[ReadRequest] = []
    tables = _spans_by_table(device)
    for table in _TABLE_ORDER:
        entries = tables.get(table)
        if not entries:
            continue
        size = limits.size(table)
        for span, point in entries:
            if span[1] - span[0] > size:
                raise ValueError(f"{device.id}.{point.id}: {point.width} registers do not fit in {size} per request")
        by_span: dict[Span, list[ModbusPoint]] = {}
        for span, point in entries:
            by_span.setdefault(span, []).append(point)
        for start, end, inside in _group(list(by_span), size, limits.max_gap):
            slots = tuple(
                Slot(point_key(device.id, point.id), point, span[0] - start, compile_codec(point))
                for span in inside for point in by_span[span]
            )
            requests.append(ReadRequest(table, start, end - start, slots))  # type: ignore[arg-type]
    return DevicePlan(device.id, device.unit, tuple(requests))


def plan_for(device: ModbusDevice, options: PollingOptions) -> DevicePlan:
    return compile_plan(device, Limits.of(options))


def minimum_requests(device: ModbusDevice, limits: Limits | None = None) -> int:
    """The fewest requests any valid plan needs: the benchmark's yardstick.

    A memoised search over states (start of the last request, furthest end
    covered so far), trying every valid end for each request rather than only
    the furthest one, so that it checks the planner instead of repeating it.
    """
    limits = limits or Limits()
    return sum(
        _minimum(sorted({span for span, _ in entries}), limits.size(table), limits.max_gap)
        for table, entries in _spans_by_table(device).items()
    )


def _minimum(spans: Sequence[Span], size: int, max_gap: int) -> int:
    runs = _used_runs(spans)
    ends = sorted({end for _, end in spans})

    @cache
    def best(covered_to: int, after: int) -> int:
        # Uncovered: everything starting at or after the last request's start and ending beyond all ends so far.
        left = [span for span in spans if span[0] >= after and span[1] > covered_to]
        if not left:
            return 0
        first_start, first_end = min(left)
        reach = _reach(runs, first_start, size, max_gap)
        if first_end > reach:
            raise ValueError(f"a value at {first_start} is wider than {size} registers per request")
        return 1 + min(best(max(covered_to, end), first_start) for end in ends if first_end <= end <= reach)

    return best(-1, -1)
