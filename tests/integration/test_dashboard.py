"""The dashboard in real headless Chromium (Debian `chromium`, driven by Playwright) against the running service,
simulators, influxd and mosquitto. Screenshots of the overview, a room and the alarm list are saved to
`dashboards/screenshots/` from this run."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from stackwatch.catalog import PointCatalog
from stackwatch.config import load_config
from stackwatch.readings import Reading

from .service_harness import ROOT, Archive, influx, start_archive, stop_archive, wait_for

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "dashboards" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
LEAK_ROOM, LEAK_ALARM = "main-b1-paper", "leak-b1.leak:water_leak"
CONTROLLED, DEHUMIDIFIER, CRAC_RUN = "main-b1-paper", "relay-b1.relay0", "crac-b1.run"
CONTROL_INTERVAL = "2s"  # the example cycles every 30 s; the loops are the same


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    running = start_archive(tmp_path_factory.mktemp("dashboard"), control_interval=CONTROL_INTERVAL)
    try:
        wait_for(lambda: "API listening" in running.service.output(), 30, "the API")
        base = f"http://127.0.0.1:{running.env['STACKWATCH_API_PORT']}"
        admin = httpx.post(f"{base}/api/v1/auth/login", json={
            "username": "admin", "password": (running.folder / "state" / "admin-password").read_text().strip()})
        headers = {"Authorization": f"Bearer {admin.json()['token']}"}
        for name, role in (("li.wei", "operator"), ("guard", "viewer")):
            made = httpx.post(f"{base}/api/v1/users", headers=headers,
                              json={"name": name, "role": role, "password": "a-long-passphrase"})
            assert made.status_code in (200, 201), made.text
        time.sleep(3)
        yield running
    finally:
        stop_archive(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `make test` installs it")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def base(archive: Archive) -> str:
    return f"http://127.0.0.1:{archive.env['STACKWATCH_API_PORT']}"


def open_as(browser: object, archive: Archive, user: str, width: int = 1600, height: int = 1000) -> object:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(base(archive) + "/")
    page.get_by_test_id("login-user").fill(user)
    page.get_by_test_id("login-password").fill("a-long-passphrase")
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=room-tile]", timeout=15_000)
    return page


def tile_number(page: object, room: str, what: str) -> float | None:
    text = page.locator(f"[data-testid=room-tile][data-room='{room}'] [data-testid={what}]").inner_text()
    try:
        return float(text.strip())
    except ValueError:
        return None


def test_overview_shows_every_room_with_the_values_influxdb_holds(browser: object, archive: Archive) -> None:
    page = open_as(browser, archive, "li.wei")
    rooms = page.locator("[data-testid=room-tile]")
    assert rooms.count() == 8
    page.wait_for_selector("[data-testid=connection][data-state=live]", timeout=10_000)
    stored = influx(archive.influxd).query('SELECT last("value") FROM "temperature" GROUP BY "room"')
    checked = 0
    for series in stored:
        room = series.tags["room"]
        rows = influx(archive.influxd).query(
            f"SELECT last(\"value\") FROM \"temperature\" WHERE room = '{room}' GROUP BY \"device\"")
        truth = sum(s.values[0][1] for s in rows) / len(rows)
        shown = tile_number(page, room, "tile-temperature")
        assert shown is not None and shown == pytest.approx(truth, abs=0.3), (room, shown, truth)
        checked += 1
    assert checked == 8
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
    assert page.errors == []


def test_a_water_leak_turns_the_tile_to_alarm_within_three_seconds_and_the_operator_acknowledges(
        browser: object, archive: Archive) -> None:
    page = open_as(browser, archive, "li.wei")
    tile = f"[data-testid=room-tile][data-room='{LEAK_ROOM}']"
    assert page.locator(tile).get_attribute("data-status") != "alarm"
    archive.control(scenario="water-leak", room=LEAK_ROOM)
    try:
        page.wait_for_selector(f"{tile}[data-status=alarm]", timeout=15_000)
        seen = time.time()
        raised = [e for e in archive.events(LEAK_ALARM) if e.kind.value == "raised"]
        assert raised and seen - raised[0].ts <= 3.0, f"tile turned {seen - raised[0].ts:.1f} s after the alarm"
        assert page.locator(f"{tile} [data-testid=tile-leak]").count() == 1

        row = page.locator(f"[data-testid=alarm-banner] [data-testid=alarm-row][data-alarm='{LEAK_ALARM}']")
        row.get_by_test_id("ack-button").click()
        row.get_by_test_id("ack-comment").fill("bucket under the pipe")
        row.get_by_test_id("ack-submit").click()
        page.wait_for_selector(
            f"[data-testid=alarm-row][data-alarm='{LEAK_ALARM}'][data-state=active_acknowledged]", timeout=10_000)
        page.goto(base(archive) + "/#/alarms")
        page.wait_for_selector("[data-testid=alarm-row]", timeout=10_000)
        page.screenshot(path=str(SHOTS / "alarms.png"), full_page=True)
        page.goto(base(archive) + f"/#/alarms/{LEAK_ALARM}")
        page.wait_for_selector("[data-testid=journal-row]", timeout=10_000)
        journal = page.get_by_test_id("alarm-journal").inner_text()
        assert "li.wei" in journal and "bucket under the pipe" in journal
        acked = [e for e in archive.events(LEAK_ALARM) if e.kind.value == "acknowledged"]
        assert acked and acked[0].actor == "li.wei"
    finally:
        archive.control(scenario="water-leak", room=LEAK_ROOM, on=False)
        release_interlock(archive)  # the leak latched the room's control interlock


def test_a_viewer_sees_no_acknowledge_button_and_the_api_refuses_it(browser: object, archive: Archive) -> None:
    archive.control(scenario="fire-in-room", room="main-2-film")
    try:
        page = open_as(browser, archive, "guard")
        page.wait_for_selector("[data-testid=alarm-banner] [data-testid=alarm-row]", timeout=15_000)
        assert page.locator("[data-testid=ack-button]").count() == 0
        login = httpx.post(f"{base(archive)}/api/v1/auth/login",
                           json={"username": "guard", "password": "a-long-passphrase"})
        refused = httpx.post(f"{base(archive)}/api/v1/alarms/fire-main.zone4_fire:fire/acknowledge", json={},
                             headers={"Authorization": f"Bearer {login.json()['token']}"})
        assert refused.status_code == 403
    finally:
        archive.control(scenario="fire-in-room", room="main-2-film", on=False)


def seed_day(archive: Archive, device: str) -> None:
    """A day of minute readings before the service started, with a humid afternoon above the 60 % limit."""
    catalog = PointCatalog.from_config(load_config(archive.config))
    now = time.time() - 120
    lines = []
    for minute in range(24 * 60):
        ts = now - (24 * 60 - minute) * 60
        phase = math.sin(minute / (24 * 60) * 2 * math.pi)
        humid = 9.0 if 14 * 60 <= minute < 17 * 60 else 0.0
        lines.append(catalog.encode(Reading(f"{device}.temperature", round(ts * 1e9), round(19 + phase, 2))))
        lines.append(catalog.encode(Reading(f"{device}.humidity", round(ts * 1e9), round(52 - 3 * phase + humid, 2))))
    influx(archive.influxd).write(lines)


def test_the_room_view_draws_both_charts_and_the_language_switch_works(browser: object, archive: Archive) -> None:
    seed_day(archive, "th-101")
    page = open_as(browser, archive, "li.wei")
    page.goto(base(archive) + "/#/rooms/main-1-paper")
    page.wait_for_selector("[data-testid=room-view] [data-testid=chart-temperature]", timeout=15_000)
    page.wait_for_selector("[data-testid=chart-humidity]", timeout=10_000)
    time.sleep(1.0)
    page.screenshot(path=str(SHOTS / "room.png"), full_page=True)
    before = page.evaluate("document.documentElement.lang")
    text_before = page.get_by_test_id("nav-alarms").inner_text()
    page.get_by_test_id("lang-switch").click()
    wait_for(lambda: page.evaluate("document.documentElement.lang") != before, 5, "the language to change")
    assert page.get_by_test_id("nav-alarms").inner_text() != text_before
    assert {before, page.evaluate("document.documentElement.lang")} == {"zh", "en"}


def test_a_phone_sized_screen_shows_the_rooms(browser: object, archive: Archive) -> None:
    page = open_as(browser, archive, "li.wei", width=390, height=844)
    assert page.locator("[data-testid=room-tile]").count() == 8
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide on a 390 px phone"
    page.goto(base(archive) + f"/#/rooms/{CONTROLLED}")
    page.wait_for_selector("[data-testid=control-log] [data-testid=control-log-row]", timeout=15_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the controlled room's page is {width} px wide on a 390 px phone"


def token(archive: Archive, user: str) -> dict[str, str]:
    login = httpx.post(f"{base(archive)}/api/v1/auth/login", json={"username": user, "password": "a-long-passphrase"})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def control_room(archive: Archive, headers: dict[str, str], room: str = CONTROLLED) -> dict[str, Any]:
    answer = httpx.get(f"{base(archive)}/api/v1/control", headers=headers)
    assert answer.status_code == 200, answer.text
    return next(r for r in answer.json()["rooms"] if r["room"] == room)


def actuator_state(archive: Archive, headers: dict[str, str], name: str) -> dict[str, Any]:
    return next(a for a in control_room(archive, headers)["actuators"] if a["id"] == name)


def release_interlock(archive: Archive) -> None:
    """Reset the controlled room's interlock once its fire and leak states have cleared (other tests expect auto)."""
    operator = token(archive, "li.wei")

    def cleared() -> dict[str, Any] | None:
        lock: dict[str, Any] = control_room(archive, operator)["interlock"]
        return None if lock["fire"] or lock["leak"] else lock

    lock = wait_for(cleared, 30, "the fire and leak states to clear")
    if lock["latched"] or lock["leak_latched"]:
        answer = httpx.post(f"{base(archive)}/api/v1/control/rooms/{CONTROLLED}/reset", headers=operator,
                            json={"reason": "test over: states cleared"})
        assert answer.status_code == 200, answer.text


def open_room(page: object, archive: Archive, room: str = CONTROLLED) -> None:
    page.goto(base(archive) + f"/#/rooms/{room}")
    page.wait_for_selector("[data-testid=control-state] [data-testid=control-loop-humidity]", timeout=15_000)


def override_through_the_form(unit: Any, value: str, reason: str, minutes: int) -> None:
    """An operator's manual override of one actuator, as typed into its control-panel form."""
    unit.get_by_test_id("control-manual").click()
    form = unit.get_by_test_id("control-override-form")
    form.get_by_test_id("control-override-value").select_option(value)
    form.get_by_test_id("control-override-reason").fill(reason)
    form.get_by_test_id("control-override-minutes").fill(str(minutes))
    form.get_by_test_id("control-override-submit").click()


def shoot(page: object, name: str) -> None:
    """The page from the top down to the end of the control panel (the charts are in room.png)."""
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.3)
    box = page.get_by_test_id("control-state").bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    page.screenshot(path=str(SHOTS / name), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 12})


def test_an_operator_puts_the_dehumidifier_in_manual_from_the_control_panel_and_back_to_automatic(
        browser: object, archive: Archive) -> None:
    operator = token(archive, "li.wei")
    # The loops have run and the units' read-backs agree with their commands.
    wait_for(lambda: actuator_state(archive, operator, DEHUMIDIFIER)["state"] == "verified", 60,
             "the dehumidifier's command to be verified")
    page = open_as(browser, archive, "li.wei")
    badge = f"[data-testid=room-tile][data-room='{CONTROLLED}'] [data-testid=tile-control]"
    page.wait_for_selector(f"{badge}[data-mode=auto]", timeout=15_000)
    assert page.locator("[data-testid=tile-control]:not([hidden])").count() == 1  # the one controlled room
    open_room(page, archive)
    panel = page.get_by_test_id("control-state")
    page.wait_for_selector("[data-testid=control-loop-humidity][data-mode=auto]", timeout=15_000)
    humidity = panel.get_by_test_id("control-loop-humidity")
    assert "50.0 %" in humidity.get_by_test_id("control-loop-target").inner_text()  # the example's target
    assert "45.0" in humidity.get_by_test_id("control-loop-target").inner_text()  # and band
    assert humidity.get_by_test_id("control-loop-measured").inner_text().strip() != "—"
    unit = f"[data-testid='control-actuator-{DEHUMIDIFIER}']"
    page.wait_for_selector(f"{unit}[data-state=verified][data-source=auto]", timeout=30_000)
    page.wait_for_selector(f"[data-testid='control-actuator-{CRAC_RUN}'][data-state=verified]", timeout=30_000)
    assert page.locator("[data-testid=control-interlock]").count() == 1
    assert page.locator("[data-testid=control-log] [data-testid=control-log-row]").count() >= 1

    # Manual: off, with a reason, for 5 minutes.
    dehumidifier = page.locator(unit)
    override_through_the_form(dehumidifier, "0", "filter change on the dehumidifier", minutes=5)
    page.wait_for_selector(f"{unit}[data-source=manual][data-override='li.wei'][data-commanded='0']", timeout=10_000)
    shown = dehumidifier.get_by_test_id("control-override").inner_text()
    assert "li.wei" in shown and "filter change on the dehumidifier" in shown
    assert page.get_by_test_id("control-mode").get_attribute("data-mode") == "manual"
    page.wait_for_selector(f"[data-testid=control-log-row][data-kind=override][data-target='{DEHUMIDIFIER}']",
                           timeout=10_000)
    assert "li.wei" in page.get_by_test_id("control-log").inner_text()

    state = actuator_state(archive, operator, DEHUMIDIFIER)
    assert state["source"] == "manual" and state["commanded"] == 0
    override = state["override"]
    assert override is not None and override["who"] == "li.wei" and override["value"] == 0
    assert override["reason"] == "filter change on the dehumidifier"
    assert override["until"] - override["since"] == pytest.approx(300, abs=1)
    time.sleep(1.0)
    shoot(page, "control.png")

    # Back to automatic.
    dehumidifier.get_by_test_id("control-auto").click()
    page.wait_for_selector(f"{unit}[data-source=auto]:not([data-override])", timeout=15_000)
    assert dehumidifier.get_by_test_id("control-auto").is_hidden()
    state = actuator_state(archive, operator, DEHUMIDIFIER)
    assert state["override"] is None and state["source"] == "auto"
    page.wait_for_selector(f"[data-testid=control-log-row][data-kind=override_end][data-target='{DEHUMIDIFIER}']",
                           timeout=10_000)

    # A loop in manual holds its units as they are (no value), and comes back the same way.
    loop = "[data-testid=control-loop-humidity]"
    humidity.get_by_test_id("control-manual").click()
    form = humidity.get_by_test_id("control-override-form")
    assert form.get_by_test_id("control-override-value").count() == 0
    form.get_by_test_id("control-override-reason").fill("hygrometer being calibrated")
    form.get_by_test_id("control-override-minutes").fill("10")
    form.get_by_test_id("control-override-submit").click()
    page.wait_for_selector(f"{loop}[data-mode=manual][data-override='li.wei']", timeout=10_000)
    held = control_room(archive, operator)["loops"]["humidity"]
    assert held["mode"] == "manual" and held["override"]["reason"] == "hygrometer being calibrated"
    humidity.get_by_test_id("control-auto").click()
    page.wait_for_selector(f"{loop}[data-mode=auto]:not([data-override])", timeout=10_000)
    assert control_room(archive, operator)["loops"]["humidity"]["override"] is None
    assert page.errors == []


def test_a_viewer_sees_the_control_panel_without_manual_or_reset_controls(browser: object, archive: Archive) -> None:
    page = open_as(browser, archive, "guard")
    open_room(page, archive)
    page.wait_for_selector(f"[data-testid='control-actuator-{DEHUMIDIFIER}']", timeout=10_000)
    for control in ("control-manual", "control-auto", "control-override-form", "control-reset", "control-reset-form"):
        assert page.locator(f"[data-testid={control}]").count() == 0, control
    refused = httpx.put(f"{base(archive)}/api/v1/control/overrides/{DEHUMIDIFIER}", headers=token(archive, "guard"),
                        json={"value": 0, "reason": "not mine to do", "minutes": 5})
    assert refused.status_code == 403
    assert page.errors == []


def test_a_unit_that_ignores_its_command_is_shown_failed_in_red_with_the_detail(
        browser: object, archive: Archive) -> None:
    operator = token(archive, "li.wei")
    page = open_as(browser, archive, "li.wei")
    open_room(page, archive)
    unit = f"[data-testid='control-actuator-{DEHUMIDIFIER}']"
    dehumidifier = page.locator(unit)
    archive.control(device="relay-b1", fault="ignore-commands:0")  # the relay reads back, its unit does not run
    try:
        override_through_the_form(dehumidifier, "1", "test run after repair", minutes=5)
        page.wait_for_selector(f"{unit}[data-source=manual][data-commanded='1']", timeout=10_000)
        page.wait_for_selector(f"{unit}[data-state=failed].failed", timeout=60_000)
        detail = dehumidifier.get_by_test_id("control-detail")
        assert detail.is_visible() and detail.inner_text().strip()
        assert dehumidifier.get_by_test_id("control-verify").get_attribute("data-state") == "failed"
        color = dehumidifier.evaluate("el => getComputedStyle(el).borderTopColor")
        assert color == "rgb(248, 81, 73)", color  # --alarm
        state = actuator_state(archive, operator, DEHUMIDIFIER)
        assert state["state"] == "failed" and state["alarm"] and state["detail"] in detail.inner_text()
        page.wait_for_selector(f"[data-testid=control-log-row][data-kind=failed][data-target='{DEHUMIDIFIER}']",
                               timeout=10_000)
        shoot(page, "control-failed.png")
    finally:
        archive.control(device="relay-b1", fault="none")
        httpx.delete(f"{base(archive)}/api/v1/control/overrides/{DEHUMIDIFIER}", headers=operator)
    assert page.errors == []


def test_a_fire_shows_the_interlock_banner_and_an_operator_resets_the_room_once_it_has_cleared(
        browser: object, archive: Archive) -> None:
    page = open_as(browser, archive, "li.wei")
    open_room(page, archive)
    lock = "[data-testid=control-interlock]"
    archive.control(scenario="fire-in-room", room=CONTROLLED)
    try:
        page.wait_for_selector(f"{lock}[data-state=fire][data-fire-active=true]", timeout=15_000)
        assert "消防联锁已停止空气处理" in page.get_by_test_id("control-interlock-text").inner_text()  # zh by default
        reset = page.get_by_test_id("control-reset")
        assert reset.is_visible() and reset.is_disabled()  # not while the fire panel still reports fire
        page.wait_for_selector(f"[data-testid='control-actuator-{CRAC_RUN}'][data-source=interlock][data-commanded='0']",
                               timeout=10_000)
        assert page.get_by_test_id("control-mode").get_attribute("data-mode") == "interlock"
        shoot(page, "control-interlock.png")

        archive.control(scenario="fire-in-room", room=CONTROLLED, on=False)
        page.wait_for_selector(f"{lock}[data-state=fire][data-fire-active=false][data-awaiting-reset=true]",
                               timeout=20_000)
        wait_for(lambda: reset.is_enabled(), 5, "the reset button to be enabled")
        reset.click()
        page.get_by_test_id("control-reset-reason").fill("fire panel clear, room inspected")
        page.get_by_test_id("control-reset-submit").click()
        page.wait_for_selector(f"{lock}[data-state=normal]", timeout=10_000)
        assert reset.is_hidden()
        page.wait_for_selector(f"[data-testid='control-actuator-{CRAC_RUN}'][data-source=auto][data-commanded='1']",
                               timeout=15_000)
        page.wait_for_selector("[data-testid=control-log-row][data-kind=reset]", timeout=10_000)
        assert "fire panel clear, room inspected" in page.get_by_test_id("control-log").inner_text()
        assert page.errors == []
    finally:
        archive.control(scenario="fire-in-room", room=CONTROLLED, on=False)
        release_interlock(archive)
