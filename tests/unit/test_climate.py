"""Closed-loop room physics on float sim time: weather, envelope, the collection's buffer and the actuators."""

from __future__ import annotations

import itertools

import pytest

from simulators.climate import (
    HVAC_MAX_RATE,
    PRESETS,
    ClimatePhysics,
    Weather,
    absolute_humidity,
    relative_humidity,
    weather_preset,
)
from stackwatch.clock import ManualClock

T0 = ManualClock().now()  # 2026-01-01T00:00:00Z
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def paper_room(weather: str = "humid-week", held: float | None = 19.0, **kwargs: float) -> ClimatePhysics:
    """A 300 m³ paper stack room at its set-points (19 °C, 52 %RH) when the week starts."""
    return ClimatePhysics("stack", 300.0, temperature=19.0, humidity=52.0, weather=weather, start=T0,
                          held_temperature=held, **kwargs)


def on_off_dehumidifier(room: ClimatePhysics, on_above: float, off_below: float, days: float,
                        every: float = MINUTE) -> tuple[float, float]:
    """A controller reading the room every `every` s and switching one dehumidifier; (lowest, highest) RH seen
    after the first day."""
    running = False
    low, high = 100.0, 0.0
    now = T0
    while now < T0 + days * DAY:
        now += every
        _, rh = room.at(now)
        if now > T0 + DAY:
            low, high = min(low, rh), max(high, rh)
        if not running and rh > on_above:
            running = True
            room.set_load("dehumidifier", True, now)
        elif running and rh < off_below:
            running = False
            room.set_load("dehumidifier", False, now)
    return low, high


def hours_until(room: ClimatePhysics, rh: float, limit_hours: int) -> int | None:
    for hour in range(limit_hours + 1):
        room.advance(T0 + hour * HOUR)
        if room.humidity > rh:
            return hour
    return None


# ---- what the control side depends on ----


@pytest.mark.parametrize("held", [19.0, None], ids=["temperature-held", "temperature-free"])
def test_humid_week_uncontrolled_takes_a_paper_room_above_60_within_two_days(held: float | None) -> None:
    hours = hours_until(paper_room(held=held), 60.0, 48)
    assert hours is not None and 8 <= hours <= 36, hours  # a day or so: not at once, not never


def test_a_dehumidifier_with_hysteresis_holds_45_to_55_through_a_humid_week() -> None:
    room = paper_room()
    low, high = on_off_dehumidifier(room, on_above=52.0, off_below=48.0, days=7)
    assert low >= 45.0 and high <= 55.0, (low, high)
    assert 1 <= room.starts["dehumidifier"] / 7 <= 6  # a few long runs a day, gentle on the compressor
    assert 6.0 < room.run_hours["dehumidifier"] / 7 < 20.0  # it works for its keep against the damp


def test_a_thermostat_like_dehumidifier_starts_far_more_often_than_one_with_hysteresis() -> None:
    hysteresis, thermostat = paper_room(), paper_room()
    on_off_dehumidifier(hysteresis, on_above=52.0, off_below=48.0, days=3)
    on_off_dehumidifier(thermostat, on_above=50.0, off_below=50.0, days=3)
    assert thermostat.starts["dehumidifier"] > 20 * hysteresis.starts["dehumidifier"], (
        thermostat.starts, hysteresis.starts)


def test_the_temperate_default_keeps_a_held_room_near_its_set_points_for_a_day() -> None:
    room = paper_room(weather="temperate")
    for hour in range(25):
        t, rh = room.at(T0 + hour * HOUR)
        assert 18.5 < t < 19.5 and 50.0 < rh < 56.0, (hour, t, rh)


# ---- integration is a function of the clock, not of who asks ----


def test_the_state_does_not_depend_on_how_often_it_is_asked() -> None:
    often, seldom = paper_room(), paper_room()
    for room in (often, seldom):
        room.set_load("dehumidifier", True, T0 + 1000.0)
        room.set_load("dehumidifier", False, T0 + 5 * HOUR + 17.0)
    for second in range(0, int(6 * HOUR), 7):
        often.at(T0 + second)
    end = T0 + 6 * HOUR + 5.0
    assert often.at(end) == seldom.at(end)


def test_a_read_of_the_past_returns_the_state_then() -> None:
    room = paper_room()
    then = room.at(T0 + 10 * MINUTE)
    room.advance(T0 + HOUR)
    assert room.at(T0 + 10 * MINUTE) == then
    assert room.at(T0 + 10 * MINUTE + 10.0) == then  # between two steps: the one before


def test_an_input_acts_from_the_step_it_falls_in() -> None:
    room = paper_room()
    before = room.at(T0 + HOUR)
    room.set_load("dehumidifier", True, T0 + HOUR)
    assert room.at(T0 + HOUR) == before  # nothing moves the past
    assert room.at(T0 + HOUR + 30 * MINUTE)[1] < before[1] - 1.0


# ---- processes ----


def test_weather_presets_span_their_ranges() -> None:
    humid = [PRESETS["humid-week"].outdoor(T0 + hour * HOUR) for hour in range(24)]
    assert min(t for t, _ in humid) > 25.9 and max(t for t, _ in humid) < 31.1
    assert min(rh for _, rh in humid) > 79.9 and max(rh for _, rh in humid) < 95.1
    warmest = max(range(24), key=lambda hour: humid[hour][0])
    assert warmest == 15 and humid[warmest][1] == min(rh for _, rh in humid)  # dampest at dawn
    local = weather_preset("humid-week").at_local(8.0)  # Asia/Shanghai
    assert max(range(24), key=lambda hour: local.outdoor(T0 + hour * HOUR)[0]) == 7  # 15:00 local
    with pytest.raises(ValueError, match="unknown weather 'monsoon'"):
        weather_preset("monsoon")


def test_an_open_door_lets_the_damp_in_faster() -> None:
    closed, open_ = paper_room(), paper_room()
    open_.set_door(True, T0)
    rise_closed = closed.at(T0 + 2 * HOUR)[1] - 52.0
    rise_open = open_.at(T0 + 2 * HOUR)[1] - 52.0
    assert rise_open > 3 * rise_closed > 0
    open_.set_door(False, T0 + 2 * HOUR)
    assert open_.door_open is False


def test_an_open_fresh_air_damper_exchanges_more_than_a_closed_one() -> None:
    closed, opened = paper_room(), paper_room()
    closed.wire("damper", "d")
    opened.set_load("damper", True, T0, "d")
    assert opened.at(T0 + 6 * HOUR)[1] > closed.at(T0 + 6 * HOUR)[1] + 3.0


def test_the_collection_buffers_the_air() -> None:
    """A dehumidifier pulls the air down quickly by a little, then air and paper go down together slowly."""
    room = paper_room(weather="temperate")
    room.set_load("dehumidifier", True, T0)
    _, rh_15min = room.at(T0 + 15 * MINUTE)
    assert 50.0 < rh_15min < 51.0  # about 1.5 %RH ahead of the paper within minutes
    assert room.buffer_humidity > 51.5
    _, rh_3h = room.at(T0 + 3 * HOUR)
    assert rh_15min - rh_3h < 3.5  # the paper gives its water up slowly: about 0.8 %RH an hour


def test_warming_a_buffered_room_hardly_dries_it() -> None:
    """At constant moisture 2 K would take 6 %RH off; the collection gives water back and holds RH."""
    room = paper_room(weather="temperate", held=None)
    density = room.absolute_humidity
    room.set_load("heater", True, T0)
    t, rh = room.at(T0 + 3 * HOUR)
    assert t > 21.0
    assert relative_humidity(t, density) < 46.5 < rh


def test_humidifier_adds_and_dehumidifier_removes_moisture() -> None:
    dry = ClimatePhysics("film", 200.0, temperature=18.0, humidity=35.0, weather="temperate", start=T0,
                         held_temperature=18.0)
    dry.set_load("humidifier", True, T0)
    assert dry.at(T0 + 4 * HOUR)[1] > 37.0
    assert dry.running("humidifier") == 1 and dry.run_hours["humidifier"] == pytest.approx(4.0)


@pytest.mark.parametrize(("start", "setpoint"), [(25.0, 19.0), (14.0, 18.0)], ids=["cooling", "heating"])
def test_hvac_moves_the_room_to_its_setpoint_no_faster_than_the_bound(start: float, setpoint: float) -> None:
    """Outdoors stays at the room's starting temperature, so the envelope only works against the unit."""
    still = Weather("still", t_mean=start, t_swing=0.0, rh_mean=50.0, rh_swing=0.0)
    room = ClimatePhysics("stack", 300.0, temperature=start, humidity=50.0, weather=still, start=T0)
    room.set_hvac(True, setpoint, T0, "crac")
    temperatures, rates = [], []
    for minute in range(0, 12 * 60 + 1, 10):
        temperatures.append(room.at(T0 + minute * MINUTE)[0])
        rates.append(room.hvac_rates.get("crac", 0.0))
    steps = [abs(b - a) for a, b in itertools.pairwise(temperatures)]
    assert max(steps) <= HVAC_MAX_RATE / 6 + 1e-9  # K per 10 minutes
    assert max(abs(rate) for rate in rates) == pytest.approx(HVAC_MAX_RATE)  # full rate while far from it
    assert temperatures[-1] == pytest.approx(setpoint, abs=0.3)
    assert all(rate * (setpoint - start) >= 0 for rate in rates)  # never the wrong way


def test_air_handling_off_stops_the_hvac_and_run_0_too() -> None:
    def after_two_hours(air_handling: bool, run: bool) -> float:
        room = ClimatePhysics("stack", 300.0, temperature=25.0, humidity=50.0, weather="humid-week", start=T0)
        room.set_load("air_handling", air_handling, T0, "ahu")
        room.set_hvac(run, 19.0, T0, "crac")
        return room.at(T0 + 2 * HOUR)[0]

    assert after_two_hours(True, True) < 22.5
    assert after_two_hours(False, True) > 25.0  # the humid week warms it a little
    assert after_two_hours(True, False) > 25.0


def test_starts_count_off_to_on_only() -> None:
    room = paper_room()
    for minute, on in [(0, True), (1, True), (2, False), (3, True)]:
        room.set_load("dehumidifier", on, T0 + minute * MINUTE)
    room.set_load("dehumidifier", True, T0 + 4 * MINUTE, "second-unit")
    assert room.starts["dehumidifier"] == 3 and room.running("dehumidifier") == 2


def test_bad_inputs_are_refused() -> None:
    room = paper_room()
    with pytest.raises(ValueError, match="unknown load 'fan'"):
        room.set_load("fan", True, T0)
    with pytest.raises(ValueError):
        ClimatePhysics("x", 0.0)
    with pytest.raises(ValueError):
        ClimatePhysics("x", humidity=120.0)


def test_lazy_start_and_a_long_gap() -> None:
    room = ClimatePhysics("stack", weather=Weather("still", 19.0, 0.0, 50.0, 0.0))
    assert room.now is None
    room.advance(T0)
    assert room.now == T0
    t, rh = room.at(T0 + 60 * DAY)  # past the catch-up limit: the first weeks are skipped, not integrated
    assert t == pytest.approx(19.0, abs=0.1) and rh == pytest.approx(50.0, abs=0.5)
    assert absolute_humidity(19.0, 50.0) == pytest.approx(8.15, abs=0.05)


def test_a_cool_room_in_a_humid_week_saturates_but_never_beyond() -> None:
    room = paper_room()
    room.advance(T0 + 8 * DAY)
    assert room.humidity == pytest.approx(100.0, abs=0.5)  # an archive left without dehumidification
    assert room.absolute_humidity <= absolute_humidity(room.temperature, 100.0) + 1e-9
