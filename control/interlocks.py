"""Interlocks: a room's fire and water states override every loop and every operator.

A fire (or gas-suppression pre-discharge) stops air handling and closes the
dampers at once, so the fan does not feed the fire nor blow the extinguishing
gas out of the room. When the fire panel clears, the room stays latched until
a person resets it: restarting air handling in a room that has just burnt is
a decision, not an automatism. A leak closes the valves and stops humidifying,
and likewise stays latched until reset: a leak sensor that dries out has not
proven the pipe mended.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InterlockState:
    fire: bool = False  # a fire quantity reads true now
    latched: bool = False  # tripped by a fire and not yet reset
    tripped_at: float | None = None
    cleared_at: float | None = None  # when the fire states last went back to normal
    cause: str = ""  # the point that tripped it
    leak: bool = False
    leak_latched: bool = False
    leak_cause: str = ""
    restore: bool = False  # just reset: put air handling, dampers and valves back once

    @property
    def awaiting_reset(self) -> bool:
        return (self.latched and not self.fire) or (self.leak_latched and not self.leak)

    def as_dict(self) -> dict[str, object]:
        return {"fire": self.fire, "latched": self.latched, "tripped_at": self.tripped_at,
                "cleared_at": self.cleared_at, "cause": self.cause, "leak": self.leak,
                "leak_latched": self.leak_latched, "leak_cause": self.leak_cause}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> InterlockState:
        state = cls()
        for name in ("fire", "latched", "leak", "leak_latched"):
            setattr(state, name, bool(data.get(name, False)))
        for name in ("tripped_at", "cleared_at"):
            value = data.get(name)
            setattr(state, name, float(value) if isinstance(value, int | float) else None)
        state.cause = str(data.get("cause", ""))
        state.leak_cause = str(data.get("leak_cause", ""))
        return state


def update(state: InterlockState, fire_points: list[str], leak_points: list[str], now: float,
           reset: str = "operator") -> list[str]:
    """Fold the room's current fire and leak points (those reading true) into `state`; say what changed."""
    changes: list[str] = []
    fire = bool(fire_points)
    if fire and not state.fire:
        state.fire = True
        if not state.latched:
            state.latched, state.tripped_at, state.cause = True, now, fire_points[0]
            changes.append(f"fire interlock tripped by {fire_points[0]}: air handling off, dampers closed")
    elif not fire and state.fire:
        state.fire, state.cleared_at = False, now
        if reset == "automatic":
            state.latched = False
            changes.append("fire states back to normal: interlock released (automatic reset)")
        else:
            changes.append("fire states back to normal: loops stay off until an operator resets the room")
    leak = bool(leak_points)
    if leak and not state.leak:
        state.leak = True
        if not state.leak_latched:
            state.leak_latched, state.leak_cause = True, leak_points[0]
            changes.append(f"leak interlock tripped by {leak_points[0]}: valves closed, humidifiers off")
    elif not leak and state.leak:
        state.leak = False
        if reset == "automatic":
            state.leak_latched = False
            changes.append("leak cleared: interlock released (automatic reset)")
        else:
            changes.append("leak cleared: valves stay closed until an operator resets the room")
    return changes


def reset(state: InterlockState) -> str | None:
    """An operator's reset; the refusal's reason, or None when it took."""
    if state.fire:
        return "the fire states are still active: the interlock cannot be reset until they clear"
    if state.leak:
        return "the leak is still detected: the interlock cannot be reset until it clears"
    if not state.latched and not state.leak_latched:
        return "no interlock is latched in this room: nothing to reset"
    state.latched = state.leak_latched = False
    state.restore = True
    return None
