"""Faults a simulated Modbus device can be switched into at run time.

Each is one seen in the field (shared/domain/devices.md, "Faults to
tolerate"): silence, a late answer, an exception code, sensor-fault sentinels,
and nonsense register contents. Two more are faults of the plant behind an
actuator, for the control side to detect: `ignore-commands` (writes are
accepted and read back, but the unit does not follow them; `ignore-commands:N`
for relay N of a relay module only) and `tripped` (the unit stops, and says
so where it has a fault bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["none", "timeout", "slow", "exception", "sentinel", "garbage", "ignore-commands", "tripped"]
KINDS: tuple[FaultKind, ...] = ("none", "timeout", "slow", "exception", "sentinel", "garbage", "ignore-commands",
                                "tripped")

DEFAULT_SLOW_DELAY = 1.5  # longer than the common 1 s gateway timeout
VENDOR_EXCEPTION = 0x80  # outside the standard set; some gateways send such codes


@dataclass(frozen=True)
class Fault:
    """`Fault.parse("exception:0x0B")`, `Fault.parse("slow", delay=0.3)`, `Fault.parse("ignore-commands:2")`."""

    kind: FaultKind = "none"
    code: int = 0  # for `exception`
    delay: float = DEFAULT_SLOW_DELAY  # for `slow`
    channel: int | None = None  # for `ignore-commands`: only this relay (None: the whole unit)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind == "exception" and not 1 <= self.code <= 0xFF:
            raise ValueError(f"exception code {self.code} is not 1..255")
        if self.delay < 0:
            raise ValueError("delay cannot be negative")
        if self.channel is not None and (self.kind != "ignore-commands" or not 0 <= self.channel <= 255):
            raise ValueError("a channel is a relay number 0..255 of ignore-commands")

    @classmethod
    def parse(cls, spec: str | Fault, delay: float | None = None) -> Fault:
        if isinstance(spec, Fault):
            return spec
        kind, _, argument = spec.strip().partition(":")
        if kind == "exception":
            if not argument:
                raise ValueError("say which exception, e.g. exception:2 or exception:0x0B")
            return cls("exception", code=int(argument, 0))
        if kind == "ignore-commands":
            return cls("ignore-commands", channel=int(argument, 0) if argument else None)
        if argument:
            raise ValueError(f"fault {kind!r} takes no argument")
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        return cls(kind, delay=DEFAULT_SLOW_DELAY if delay is None else delay)

    def __str__(self) -> str:
        if self.kind == "exception":
            return f"exception:0x{self.code:02X}"
        if self.kind == "slow":
            return f"slow({self.delay:g}s)"
        if self.channel is not None:
            return f"{self.kind}:{self.channel}"
        return self.kind

    def ignores(self, channel: int | None = None) -> bool:
        """Whether the unit (or relay `channel` of it) does not follow its commands under this fault."""
        if self.kind == "tripped":
            return True
        return self.kind == "ignore-commands" and (self.channel is None or self.channel == channel)


NO_FAULT = Fault()
