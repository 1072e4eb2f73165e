"""Control as `stackwatch api` sees it from another process: the service's last snapshot, actions as commands.

The running service writes what its loops, interlocks and actuators were at
each step to the journal, and applies commands it finds in the journal's
command table within half a second. An API in another process reads the one
and writes the other, so an operator's override through it takes the same
checks (range, reason, expiry) and lands in the same journal; when no service
takes the command it is withdrawn and the operator is told so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from stackwatch.command_queue import LOST, WITHDRAWN

from .journal import ControlJournal
from .runtime import ControlRefused, override_view

ACT_WAIT = 5.0  # s a command may wait for the service before it is withdrawn


class ControlUnavailable(Exception):
    """No running service took the command."""


class JournalControl:
    def __init__(self, journal: ControlJournal, now: Callable[[], float], wait: float = ACT_WAIT) -> None:
        self.journal = journal
        self.now = now
        self.wait = wait

    def status(self) -> dict[str, Any]:
        snapshot = self.journal.snapshot()
        if snapshot is None:
            return {"now": None, "interval": None, "rooms": [], "as_of": None}
        at, data = snapshot
        overrides = self.journal.overrides()  # fresher than the snapshot: set a moment ago
        for room in data.get("rooms", []):
            for actuator in room.get("actuators", []):
                actuator["override"] = override_view(overrides.get(actuator["id"]))
            for loop, status in room.get("loops", {}).items():
                status["override"] = override_view(overrides.get(f"{room['room']}/{loop}"))
        return {**data, "as_of": at}

    async def act(self, action: str, target: str, who: str, args: Mapping[str, Any]) -> dict[str, Any]:
        commands = self.journal.commands
        command = commands.submit(self.now(), action, target, who, dict(args))
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (outcome := commands.check(command, loop.time() - started, self.wait, self.now())) is None:
            await asyncio.sleep(0.1)
        status, result = outcome
        if status == "done":
            answer: dict[str, Any] = json.loads(result)
            return answer
        if status == "unknown":
            raise KeyError(target)
        if status == WITHDRAWN:
            raise ControlUnavailable(f"the service did not take the command within {self.wait:g} s: "
                                     "is `stackwatch run` running? Nothing was changed.")
        if status == LOST:
            raise ControlUnavailable(result)
        raise ControlRefused(result)
