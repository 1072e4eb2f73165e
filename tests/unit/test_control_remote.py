"""`stackwatch api`'s view of control: the service's snapshot, and actions as commands the service applies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control.journal import ControlJournal
from control.remote import ControlUnavailable, JournalControl
from control.runtime import ControlRefused, ControlRuntime
from stackwatch.clock import ManualClock
from stackwatch.readings import Quality, Reading

from .control_site import plan
from .test_control_runtime import T0, FakeUnits


async def test_an_action_is_applied_by_the_service_and_its_refusal_comes_back(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    runtime = ControlRuntime(plan(), FakeUnits(), clock, tmp_path / "control.db")
    runtime([Reading("th1.humidity", clock.now_ns(), 54.0, Quality.GOOD, "")])
    await runtime.step()
    remote = JournalControl(ControlJournal(tmp_path / "control.db"), clock.now, wait=2.0)
    assert remote.status()["rooms"][0]["room"] == "r1"

    async def service() -> None:
        for _ in range(30):
            runtime._run_commands()
            await asyncio.sleep(0.02)

    serving = asyncio.create_task(service())
    result = await remote.act("override", "io1.dh", "li.wei", {"value": 0, "reason": "filter", "seconds": 600})
    assert result["override"]["who"] == "li.wei" and "io1.dh" in runtime.overrides
    assert remote.status()["rooms"][0]["actuators"][0]["override"]["reason"] == "filter"
    with pytest.raises(ControlRefused, match="maximum"):
        await remote.act("override", "crac1.setpoint", "li.wei", {"value": 99, "reason": "x", "seconds": 60})
    with pytest.raises(KeyError):
        await remote.act("reset", "r9", "li.wei", {})
    await serving
    await runtime.stop()


async def test_without_a_service_the_command_is_withdrawn_and_nothing_changes(tmp_path: Path) -> None:
    journal = ControlJournal(tmp_path / "control.db")
    remote = JournalControl(journal, lambda: T0, wait=0.3)
    with pytest.raises(ControlUnavailable, match="Nothing was changed"):
        await remote.act("override", "io1.dh", "li.wei", {"value": 0, "reason": "x", "seconds": 60})
    assert journal.commands.take_pending() == []  # a service starting later does not apply a stale command
    assert remote.status() == {"now": None, "interval": None, "rooms": [], "as_of": None}
