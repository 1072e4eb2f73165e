"""MQTT message → readings, with the payloads of shared/domain/devices.md verbatim."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.mqtt.jsonpath import MISSING, compile_path, extract
from collector.mqtt.mapping import MessageMapper
from collector.mqtt.router import TopicRouter, minimal_filters
from stackwatch.config.model import SiteConfig
from stackwatch.readings import Quality, Reading

NOW = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

Z2M_EXAMPLE = b'{"temperature": 27.34, "humidity": 44.72}'
TASMOTA_AM2301 = b'{"Time":"2019-01-01T00:00:00","AM2301":{"Temperature":24.6,"Humidity":58.2},"TempUnit":"C"}'
TASMOTA_BME280 = (b'{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},'
                  b'"PressureUnit":"hPa","TempUnit":"C"}')
SHELLY_GEN2 = (b'{"method":"NotifyFullStatus","params":{"ts":1680962879.62,"humidity:0":{"id":0,"rh":42.2},'
               b'"temperature:0":{"id":0,"tC":19.8,"tF":67.6}}}')


def ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) * 1_000_000_000


def site(*devices: dict[str, Any], timezone: str = "UTC", **mqtt: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "s1", "timezone": timezone},
        "buildings": [{"id": "b1"}],
        "rooms": [{"id": "r1", "building": "b1", "profile": "paper"}],
        "mqtt": mqtt,
        "devices": [{"protocol": "mqtt", "room": "r1", **device} for device in devices],
    })


def z2m_th(**extra: Any) -> dict[str, Any]:
    return {"id": "th", "topic": "zigbee2mqtt/th", "points": [
        {"id": "temperature", "path": "temperature", "valid_min": -20, "valid_max": 60},
        {"id": "humidity", "path": "humidity", "valid_min": 0, "valid_max": 100},
        {"id": "pressure", "path": "pressure"},
        {"id": "battery", "path": "battery"},
    ], "availability": {"topic": "zigbee2mqtt/th/availability", "path": "state"}, **extra}


def tasmota(sensor: str, **timestamp: Any) -> dict[str, Any]:
    return {"id": f"tas-{sensor.lower()}", "topic": f"tele/{sensor}/SENSOR", "require_key": sensor,
            "timestamp": {"path": "Time", **timestamp},
            "availability": {"topic": f"tele/{sensor}/LWT"},
            "points": [{"id": "temperature", "path": f"{sensor}.Temperature"},
                       {"id": "humidity", "path": f"{sensor}.Humidity"},
                       {"id": "pressure", "path": f"{sensor}.Pressure"}]}


SHELLY_GEN2_DEVICE = {
    "id": "ht2", "topic": "shellyhtg3-abc/events/rpc", "require_key": "method=NotifyFullStatus",
    "timestamp": {"path": "params.ts", "format": "epoch_s"},
    "points": [{"id": "temperature", "path": 'params."temperature:0".tC'},
               {"id": "humidity", "path": 'params."humidity:0".rh'}]}

SHELLY_GEN1_DEVICE = {"id": "ht1", "points": [
    {"id": "temperature", "topic": "shellies/shellyht-ab12/sensor/temperature"},
    {"id": "humidity", "topic": "shellies/shellyht-ab12/sensor/humidity"},
    {"id": "sensor_error", "topic": "shellies/shellyht-ab12/sensor/error"},
]}


def values(readings: list[Reading]) -> dict[str, Any]:
    return {r.point: r.value for r in readings}


# --- the ecosystems' payloads ---------------------------------------------------------------------------------

def test_zigbee2mqtt_example_gives_the_keys_present_only() -> None:
    mapper = MessageMapper(site(z2m_th()))
    readings = mapper.map("zigbee2mqtt/th", Z2M_EXAMPLE, False, NOW)
    assert values(readings) == {"th.temperature": 27.34, "th.humidity": 44.72}
    assert all(r.quality is Quality.GOOD and r.detail == "" and r.ts_ns == NOW for r in readings)
    assert mapper.problems.counts == {"malformed": 0, "oversized": 0, "unexpected": 0, "ignored": 0}


@pytest.mark.parametrize("payload", [b"online", b'{"state":"online"}'])
def test_zigbee2mqtt_availability_online_gives_nothing(payload: bytes) -> None:
    mapper = MessageMapper(site(z2m_th()))
    assert mapper.map("zigbee2mqtt/th/availability", payload, True, NOW) == []
    assert sum(mapper.problems.counts.values()) == 0


@pytest.mark.parametrize("payload", [b"offline", b'{"state":"offline"}'])
def test_zigbee2mqtt_availability_offline_is_a_comm_failure_of_every_point(payload: bytes) -> None:
    mapper = MessageMapper(site(z2m_th()))
    readings = mapper.map("zigbee2mqtt/th/availability", payload, False, NOW)
    assert [r.point for r in readings] == ["th.temperature", "th.humidity", "th.pressure", "th.battery"]
    assert all(r.value is None and r.quality is Quality.COMM_FAILURE and r.detail == "offline" for r in readings)


def test_tasmota_lwt_offline_and_unknown_availability_word() -> None:
    mapper = MessageMapper(site(tasmota("AM2301")))
    assert len(mapper.map("tele/AM2301/LWT", b"Offline", True, NOW)) == 3
    assert mapper.map("tele/AM2301/LWT", b"Online", True, NOW) == []
    assert mapper.map("tele/AM2301/LWT", b"Sleeping", False, NOW) == []
    assert mapper.problems.by_topic == {("malformed", "tele/AM2301/LWT"): 1}


def test_tasmota_am2301_example_local_time_in_the_site_zone() -> None:
    mapper = MessageMapper(site(tasmota("AM2301"), timezone="Europe/Berlin"))
    readings = mapper.map("tele/AM2301/SENSOR", TASMOTA_AM2301, False, ns("2019-01-01T00:05:00+01:00"))
    assert values(readings) == {"tas-am2301.temperature": 24.6, "tas-am2301.humidity": 58.2}
    assert {r.ts_ns for r in readings} == {ns("2018-12-31T23:00:00+00:00")}
    assert all(r.quality is Quality.GOOD for r in readings)


def test_tasmota_bme280_example_with_naive_zone_of_the_device() -> None:
    mapper = MessageMapper(site(tasmota("BME280", naive_zone="Asia/Shanghai"), timezone="Europe/Berlin"))
    readings = mapper.map("tele/BME280/SENSOR", TASMOTA_BME280, False, ns("2019-11-03T11:40:00+00:00"))
    assert values(readings) == {"tas-bme280.temperature": 21.7, "tas-bme280.humidity": 66.6,
                                "tas-bme280.pressure": 988.6}
    assert {r.ts_ns for r in readings} == {ns("2019-11-03T19:34:28+08:00")}


def test_shelly_gen2_notify_full_status_with_quoted_keys_and_its_own_time() -> None:
    mapper = MessageMapper(site(SHELLY_GEN2_DEVICE))
    readings = mapper.map("shellyhtg3-abc/events/rpc", SHELLY_GEN2, False, 1_680_962_880_000_000_000)
    assert values(readings) == {"ht2.temperature": 19.8, "ht2.humidity": 42.2}
    assert {r.ts_ns for r in readings} == {1_680_962_879_620_000_000}


def test_shelly_gen2_other_methods_are_ignored_not_errors() -> None:
    mapper = MessageMapper(site(SHELLY_GEN2_DEVICE))
    event = b'{"method":"NotifyEvent","params":{"ts":1680962879.62,"events":[{"event":"sleep"}]}}'
    assert mapper.map("shellyhtg3-abc/events/rpc", event, False, NOW) == []
    assert mapper.problems.counts["ignored"] == 1
    assert mapper.problems.counts["malformed"] == mapper.problems.counts["unexpected"] == 0


def test_shelly_gen1_plain_numbers_on_one_topic_per_point() -> None:
    mapper = MessageMapper(site(SHELLY_GEN1_DEVICE))
    base = "shellies/shellyht-ab12/sensor"
    assert values(mapper.map(f"{base}/temperature", b"21.50", False, NOW)) == {"ht1.temperature": 21.5}
    assert values(mapper.map(f"{base}/humidity", b"45.5\n", False, NOW)) == {"ht1.humidity": 45.5}
    assert values(mapper.map(f"{base}/error", b"0", False, NOW)) == {"ht1.sensor_error": 0.0}
    assert sorted(mapper.subscriptions) == [f"{base}/error", f"{base}/humidity", f"{base}/temperature"]


def test_esphome_plain_text_states_and_nan() -> None:
    mapper = MessageMapper(site({"id": "esp", "points": [
        {"id": "fan", "topic": "esp/binary_sensor/fan/state", "type": "bool"},
        {"id": "temperature", "topic": "esp/sensor/temperature/state"},
    ]}))
    assert values(mapper.map("esp/binary_sensor/fan/state", b"ON", False, NOW)) == {"esp.fan": True}
    assert values(mapper.map("esp/binary_sensor/fan/state", b"off", False, NOW)) == {"esp.fan": False}
    [nan] = mapper.map("esp/sensor/temperature/state", b"nan", False, NOW)
    assert nan.value is None and nan.quality is Quality.BAD


# --- faults ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b'{"temperature": 27.', b"\x00\xff\xfe\x80junk", b"", b"[" * 5000, b'"just text"', b"42",
])
def test_malformed_payloads_are_counted_per_topic_and_never_raise(payload: bytes) -> None:
    mapper = MessageMapper(site(z2m_th()))
    assert mapper.map("zigbee2mqtt/th", payload, False, NOW) == []
    assert mapper.problems.counts["malformed"] == 1
    assert mapper.problems.by_topic == {("malformed", "zigbee2mqtt/th"): 1}


def test_wrong_type_is_a_bad_reading_of_that_point_and_the_rest_still_counts() -> None:
    mapper = MessageMapper(site(z2m_th()))
    readings = mapper.map("zigbee2mqtt/th", b'{"temperature": "hot", "humidity": 40, "battery": true}', False, NOW)
    by_point = {r.point: r for r in readings}
    assert by_point["th.humidity"].value == 40.0 and by_point["th.humidity"].quality is Quality.GOOD
    for bad in ("th.temperature", "th.battery"):
        assert by_point[bad].value is None and by_point[bad].quality is Quality.BAD
        assert by_point[bad].detail.startswith("malformed")
    assert mapper.problems.counts["malformed"] == 1  # one message, counted once


def test_null_is_an_unknown_value_not_a_fault() -> None:
    mapper = MessageMapper(site(z2m_th()))
    assert values(mapper.map("zigbee2mqtt/th", b'{"temperature": 20.5, "battery": null}', False, NOW)) == {
        "th.temperature": 20.5}
    assert mapper.problems.counts["malformed"] == 0


def test_oversized_payload_is_dropped_and_counted() -> None:
    mapper = MessageMapper(site(z2m_th(), max_payload_bytes=100))
    big = b'{"temperature": 20.5, "padding": "' + b"x" * 100 + b'"}'
    assert mapper.map("zigbee2mqtt/th", big, False, NOW) == []
    assert mapper.problems.by_topic == {("oversized", "zigbee2mqtt/th"): 1}


def test_unexpected_topic_and_payload_without_any_point() -> None:
    mapper = MessageMapper(site(z2m_th()))
    assert mapper.map("zigbee2mqtt/other", Z2M_EXAMPLE, False, NOW) == []
    assert mapper.map("zigbee2mqtt/th", b'{"linkquality": 120}', False, NOW) == []
    assert mapper.problems.by_topic == {("unexpected", "zigbee2mqtt/other"): 1, ("unexpected", "zigbee2mqtt/th"): 1}


def test_problem_log_is_rate_limited_per_topic(caplog: pytest.LogCaptureFixture) -> None:
    mapper = MessageMapper(site(z2m_th()))
    for _ in range(50):
        mapper.map("zigbee2mqtt/th", b"junk", False, NOW)
    assert mapper.problems.counts["malformed"] == 50
    assert len([r for r in caplog.records if "zigbee2mqtt/th" in r.getMessage()]) == 1


# --- time -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "raw", "expected"), [
    ({}, '"2026-01-01T08:00:00+08:00"', "2026-01-01T00:00:00+00:00"),
    ({}, '"2025-12-31T23:59:30Z"', "2025-12-31T23:59:30+00:00"),
    ({}, '"2026-01-01T01:00:00"', "2026-01-01T00:00:00+00:00"),  # naive: the site's zone (Berlin, +01:00)
    ({"naive_zone": "UTC"}, '"2025-12-31T23:00:00"', "2025-12-31T23:00:00+00:00"),
    ({"format": "epoch_s"}, "1767225500", "2025-12-31T23:58:20+00:00"),
    ({"format": "epoch_s"}, '"1767225500.5"', "2025-12-31T23:58:20.500000+00:00"),
    ({"format": "epoch_ms"}, "1767225500250", "2025-12-31T23:58:20.250000+00:00"),
])
def test_payload_timestamps(spec: dict[str, Any], raw: str, expected: str) -> None:
    device = {"id": "d", "topic": "t", "timestamp": {"path": "at", **spec}, "points": [{"id": "v", "path": "v"}]}
    mapper = MessageMapper(site(device, timezone="Europe/Berlin"))
    [reading] = mapper.map("t", f'{{"at": {raw}, "v": 1}}'.encode(), False, NOW)
    moment = datetime.fromisoformat(expected)
    assert reading.ts_ns == int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6) * 1000
    assert reading.quality is Quality.GOOD


def test_unreadable_or_implausible_device_time_falls_back_to_receive_time() -> None:
    device = {"id": "d", "topic": "t", "timestamp": {"path": "at"}, "points": [{"id": "v", "path": "v"}]}
    mapper = MessageMapper(site(device))
    [bad] = mapper.map("t", b'{"at": "yesterday", "v": 1}', False, NOW)
    assert (bad.ts_ns, bad.quality, bad.detail) == (NOW, Quality.UNCERTAIN, "bad timestamp")
    assert mapper.problems.counts["malformed"] == 1
    [ancient] = mapper.map("t", b'{"at": "1970-01-01T00:00:00", "v": 1}', False, NOW)
    assert ancient.ts_ns > NOW and ancient.detail == "device clock off"
    [missing] = mapper.map("t", b'{"v": 1}', False, NOW)
    assert missing.quality is Quality.GOOD and missing.ts_ns > ancient.ts_ns


def test_receive_times_are_unique_per_point() -> None:
    mapper = MessageMapper(site(z2m_th()))
    stamps = [r.ts_ns for _ in range(3) for r in mapper.map("zigbee2mqtt/th", b'{"temperature": 1}', False, NOW)]
    assert stamps == [NOW, NOW + 1, NOW + 2]


# --- states, quality ------------------------------------------------------------------------------------------

def test_zigbee_contact_true_means_closed_so_door_open_is_false() -> None:
    mapper = MessageMapper(site({"id": "door", "topic": "zigbee2mqtt/door", "points": [
        {"id": "door_open", "path": "contact", "type": "bool", "invert": True}]}))
    assert values(mapper.map("zigbee2mqtt/door", b'{"contact": true}', False, NOW)) == {"door.door_open": False}
    assert values(mapper.map("zigbee2mqtt/door", b'{"contact": false}', False, NOW)) == {"door.door_open": True}


def test_states_map_text_case_insensitively_and_bools_have_defaults() -> None:
    mapper = MessageMapper(site({"id": "plug", "topic": "zigbee2mqtt/plug", "points": [
        {"id": "relay", "path": "state", "type": "bool"},
        {"id": "mode", "path": "mode", "states": {"Auto": 2, "Manual": 1}},
        {"id": "alarm", "path": "alarm", "type": "bool", "states": {"TRIGGERED": True, "idle": False}},
    ]}))
    got = values(mapper.map("zigbee2mqtt/plug", b'{"state": "ON", "mode": "auto", "alarm": "triggered"}', False, NOW))
    assert got == {"plug.relay": True, "plug.mode": 2.0, "plug.alarm": True}
    got = values(mapper.map("zigbee2mqtt/plug", b'{"state": "false", "mode": "MANUAL", "alarm": "Idle"}', False, NOW))
    assert got == {"plug.relay": False, "plug.mode": 1.0, "plug.alarm": False}
    [bad] = mapper.map("zigbee2mqtt/plug", b'{"state": "half"}', False, NOW)
    assert bad.quality is Quality.BAD


def test_scale_and_offset() -> None:
    mapper = MessageMapper(site({"id": "d", "topic": "t", "points": [
        {"id": "v", "path": "raw[1]", "scale": 0.1, "offset": -40}]}))
    assert values(mapper.map("t", b'{"raw": [0, 650]}', False, NOW)) == {"d.v": pytest.approx(25.0)}


def test_uncertain_when_battery_low_and_smoke_self_test() -> None:
    mapper = MessageMapper(site({"id": "smoke", "topic": "zigbee2mqtt/smoke", "points": [
        {"id": "smoke", "path": "smoke", "type": "bool"}, {"id": "density", "path": "smoke_density"}],
        "uncertain_when": [{"path": "battery_low"}, {"path": "test", "equals": True}]}))
    normal = mapper.map("zigbee2mqtt/smoke", b'{"smoke": false, "smoke_density": 0, "battery_low": false, '
                        b'"test": false}', False, NOW)
    assert {r.quality for r in normal} == {Quality.GOOD}
    testing = mapper.map("zigbee2mqtt/smoke", b'{"smoke": true, "smoke_density": 9, "test": true}', False, NOW)
    assert {(r.quality, r.detail) for r in testing} == {(Quality.UNCERTAIN, "test")}
    low = mapper.map("zigbee2mqtt/smoke", b'{"smoke": false, "battery_low": true, "test": false}', False, NOW)
    assert {(r.quality, r.detail) for r in low} == {(Quality.UNCERTAIN, "battery_low")}
    partial = mapper.map("zigbee2mqtt/smoke", b'{"smoke_density": 0}', False, NOW)  # battery still low
    assert {(r.quality, r.detail) for r in partial} == {(Quality.UNCERTAIN, "battery_low")}


def test_valid_range_makes_a_reading_uncertain() -> None:
    mapper = MessageMapper(site(z2m_th()))
    readings = mapper.map("zigbee2mqtt/th", b'{"temperature": 85.0, "humidity": 101.5}', False, NOW)
    assert {(r.value, r.quality, r.detail) for r in readings} == {
        (85.0, Quality.UNCERTAIN, "out of range"), (101.5, Quality.UNCERTAIN, "out of range")}


def test_retained_state_is_stale_unless_it_carries_its_own_time() -> None:
    mapper = MessageMapper(site(z2m_th(), SHELLY_GEN2_DEVICE))
    retained = mapper.map("zigbee2mqtt/th", Z2M_EXAMPLE, True, NOW)
    assert {(r.quality, r.detail) for r in retained} == {(Quality.UNCERTAIN, "retained")}
    stamped = mapper.map("shellyhtg3-abc/events/rpc", SHELLY_GEN2, True, 1_680_962_880_000_000_000)
    assert {r.quality for r in stamped} == {Quality.GOOD}
    both = mapper.map("zigbee2mqtt/th", b'{"temperature": 99}', True, NOW)
    assert both[0].detail == "retained; out of range"


# --- routing and paths ----------------------------------------------------------------------------------------

def test_wildcard_devices_and_minimal_subscriptions() -> None:
    mapper = MessageMapper(site(
        {"id": "all", "topic": "esp/+/state", "points": [{"id": "v"}]},
        {"id": "one", "topic": "esp/kitchen/state", "points": [{"id": "v"}]},
    ))
    assert mapper.subscriptions == ["esp/+/state"]
    assert values(mapper.map("esp/kitchen/state", b"21", False, NOW)) == {"one.v": 21.0, "all.v": 21.0}
    assert values(mapper.map("esp/hall/state", b"22", False, NOW)) == {"all.v": 22.0}
    assert mapper.map("esp/hall/other", b"22", False, NOW) == []


def test_router_matching_rules() -> None:
    router = TopicRouter([("a/#", 1), ("+/b", 2), ("a/b", 3), ("#", 4)])
    assert router.match("a/b") == (3, 1, 2, 4)
    assert router.match("a") == (1, 4)
    assert router.match("$SYS/b") == ()
    assert minimal_filters(["a/b", "a/#", "a/+/c", "x/+", "x/#", "y"]) == ["a/#", "x/#", "y"]
    with pytest.raises(ValueError):
        TopicRouter([("a/#/b", 1)])


@pytest.mark.parametrize(("path", "steps"), [
    ("temperature", ("temperature",)),
    ("AM2301.Temperature", ("AM2301", "Temperature")),
    ('params."temperature:0".tC', ("params", "temperature:0", "tC")),
    ("a[0].b[12]", ("a", 0, "b", 12)),
    ("[1]", (1,)),
    ("'dotted.key'.x", ("dotted.key", "x")),
    ('a["b.c"]', ("a", "b.c")),
])
def test_path_syntax(path: str, steps: tuple[str | int, ...]) -> None:
    assert compile_path(path) == steps


@pytest.mark.parametrize("path", ["", "a.", ".a", "a..b", 'a."b', "a[x]", "a[1", 'a"b"'])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        compile_path(path)


def test_extract_missing_is_not_none() -> None:
    document = {"a": [{"b": None}]}
    assert extract(document, ("a", 0, "b")) is None
    assert extract(document, ("a", 1, "b")) is MISSING
    assert extract(document, ("a", "b")) is MISSING


def test_bad_path_in_config_names_the_device() -> None:
    with pytest.raises(ValueError, match="device d"):
        MessageMapper(site({"id": "d", "topic": "t", "points": [{"id": "v", "path": "a..b"}]}))


def test_mapping_is_fast_enough_for_a_site() -> None:
    """Guard against a slow hot path; the benchmark measures the real rate (well above this floor)."""
    mapper = MessageMapper(site(z2m_th()))
    payload = b'{"battery":97,"humidity":44.72,"linkquality":120,"pressure":1002.1,"temperature":27.34,"voltage":3015}'
    start = time.perf_counter()
    for i in range(10_000):
        mapper.map("zigbee2mqtt/th", payload, False, NOW + i)
    assert time.perf_counter() - start < 2.0


def test_integers_too_large_for_a_float_are_malformed_not_a_crash() -> None:
    device = {"id": "d", "topic": "t", "timestamp": {"path": "at", "format": "epoch_ms"},
              "points": [{"id": "v", "path": "v"}]}
    mapper = MessageMapper(site(device))
    huge = "9" * 400
    [reading] = mapper.map("t", f'{{"at": {huge}, "v": {huge}}}'.encode(), False, NOW)
    assert (reading.value, reading.quality) == (None, Quality.BAD)
    assert mapper.problems.counts["malformed"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
FUZZ_DEVICES = (z2m_th(uncertain_when=[{"path": "battery_low"}]), tasmota("AM2301"), SHELLY_GEN2_DEVICE,
                SHELLY_GEN1_DEVICE)
FUZZ_MAPPER = MessageMapper(site(*FUZZ_DEVICES))  # shared: these properties hold whatever came before
FUZZ_TOPICS = ["zigbee2mqtt/th", "zigbee2mqtt/th/availability", "tele/AM2301/SENSOR", "tele/AM2301/LWT",
               "shellyhtg3-abc/events/rpc", "shellies/shellyht-ab12/sensor/temperature", "elsewhere"]


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(FUZZ_TOPICS), payload=st.binary(max_size=200), retain=st.booleans())
def test_any_bytes_on_any_topic_never_raise(topic: str, payload: bytes, retain: bool) -> None:
    for reading in FUZZ_MAPPER.map(topic, payload, retain, NOW):
        assert reading.quality is not Quality.GOOD or isinstance(reading.value, float | bool)


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(FUZZ_TOPICS), document=json_values, retain=st.booleans())
def test_any_json_on_any_topic_never_raises_nor_gives_a_wrong_typed_value(topic: str, document: Any,
                                                                         retain: bool) -> None:
    if isinstance(document, dict) and topic.startswith("tele/AM2301"):
        document = {"AM2301": document, "Time": "2026-01-01T00:00:00"}
    for reading in FUZZ_MAPPER.map(topic, json.dumps(document).encode(), retain, NOW):
        if reading.quality in (Quality.GOOD, Quality.UNCERTAIN):
            assert isinstance(reading.value, float) and reading.value == reading.value
        else:
            assert reading.value is None
