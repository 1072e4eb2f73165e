"""The dashboard in real headless Chromium (Debian `chromium`, driven by Playwright) against the running service,
simulators, influxd and mosquitto. Screenshots of the overview, a room and the alarm list are saved to
`dashboards/screenshots/` from this run."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    running = start_archive(tmp_path_factory.mktemp("dashboard"))
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
