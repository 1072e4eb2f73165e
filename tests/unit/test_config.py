"""The site file: valid sites load, every kind of mistake is named by its path and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackwatch.cli import config_schema, main
from stackwatch.config import ConfigError, load_config, parse_config
from stackwatch.config.base import parse_duration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "district-archive.yaml"

MINIMAL = """
site: {id: s, timezone: Asia/Shanghai}
buildings: [{id: a, floors: ["1"]}]
rooms:
  - {id: r1, building: a, floor: "1", profile: paper}
gateways:
  - {type: modbus-tcp, id: g1, host: 127.0.0.1}
devices:
  - id: d1
    protocol: modbus
    gateway: g1
    room: r1
    points:
      - {id: t, table: input, address: 1, type: int16, scale: 0.1}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml")
    return caught.value.problems


def test_minimal_site_loads() -> None:
    config = parse_config(MINIMAL)
    assert config.site.timezone == "Asia/Shanghai"
    assert config.devices[0].points[0].scale == 0.1


def test_example_site_loads_with_every_model() -> None:
    from collector.models import MODELS

    config = load_config(EXAMPLE)
    used = {device.model for device in config.devices}
    assert used == set(MODELS), f"models not used in the example: {set(MODELS) - used}"
    assert len(config.buildings) >= 2
    assert len([r for r in config.rooms]) >= 8
    assert {r.profile for r in config.rooms} >= {"paper", "film", "magnetic", "mixed"}


def test_error_names_nested_path_and_line() -> None:
    text = MINIMAL.replace("profile: paper}", "profile: paper, limits: {rh_max: 130}}")
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("rooms[0].limits.rh_max (line 5): ")
    assert "less than or equal to 100" in found[0]


def test_error_paths_leave_out_union_tags() -> None:
    found = problems(MINIMAL.replace("type: int16", "type: float33"))
    assert found[0].startswith("devices[0].points[0].type (line 14): ")


def test_unknown_key_is_an_error() -> None:
    found = problems(MINIMAL.replace("room: r1\n", "room: r1\n    pol_interval: 5\n"))
    assert any(p.startswith("devices[0].pol_interval") and "Extra inputs" in p for p in found)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("building: a, floor", "building: b, floor"), "rooms[0].building (line 5): unknown building 'b'"),
        (('floor: "1", profile', 'floor: "9", profile'), "rooms[0].floor (line 5): floor '9' is not one of"),
        (("gateway: g1", "gateway: g2"), "devices[0].gateway (line 11): unknown gateway 'g2'"),
        (("room: r1\n", "room: r9\n"), "devices[0].room (line 12): unknown room 'r9'"),
    ],
)
def test_cross_reference_errors_name_the_path(change: tuple[str, str], expected: str) -> None:
    found = problems(MINIMAL.replace(*change))
    assert found[0].startswith(expected), found


def test_duplicate_ids_and_units() -> None:
    doubled = (
        MINIMAL
        + "  - {id: d1, protocol: modbus, gateway: g1, unit: 2, room: r1, points: [{id: t, table: coil, address: 0}]}\n"
    )
    assert problems(doubled)[0].startswith("devices[1].id")
    same_unit = (
        MINIMAL + "  - {id: d2, protocol: modbus, gateway: g1, room: r1, points: [{id: t, table: coil, address: 0}]}\n"
    )
    assert "unit 1 on gateway 'g1' is already 'd1'" in problems(same_unit)[0]


def test_point_consistency_rules() -> None:
    assert "type must be bool" in problems(MINIMAL.replace("table: input", "table: coil"))[0]
    assert "go together" in problems(MINIMAL.replace("scale: 0.1", "mask: 255"))[0]
    assert "16-bit registers" in problems(MINIMAL.replace("type: int16", "type: float32, bit: 3"))[0]


def test_mqtt_devices_need_a_broker() -> None:
    text = MINIMAL + "  - {id: m1, protocol: mqtt, room: r1, topic: a/b, points: [{id: t}]}\n"
    assert problems(text)[0].startswith("devices[1].protocol (line 15): MQTT devices need an `mqtt` broker")


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL + 'storage:\n  influxdb: {username: "${INFLUX_USER}", password: "${INFLUX_PASS}"}\n'
    monkeypatch.setenv("INFLUX_USER", "writer")
    monkeypatch.setenv("INFLUX_PASS", "s3cret")
    config = parse_config(text)
    assert config.storage.influxdb.username == "writer"
    password = config.storage.influxdb.password
    assert password is not None and password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    monkeypatch.delenv("INFLUX_PASS")
    assert problems(text) == ["storage.influxdb.password: environment variable INFLUX_PASS is not set"]


def test_env_default_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_PORT", raising=False)
    text = MINIMAL.replace("host: 127.0.0.1}", "host: 127.0.0.1, port: '${GW_PORT:-1502}'}")
    assert parse_config(text).gateways[0].port == 1502


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("site: [unclosed")[0].startswith("not valid YAML")
    assert "must be a mapping" in problems("- a\n- b\n")[0]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), (2.5, 2.5), ("500ms", 0.5), ("10s", 10.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5", True, "5 weeks", None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cli_validate_reports_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("profile: paper", "profile: parchment"))
    assert main(["config", "validate", str(bad)]) == 2
    assert "rooms[0].profile (line 5)" in capsys.readouterr().err
    assert main(["config", "validate", str(EXAMPLE)]) == 0
    assert "19 devices, 103 points, 1 controlled rooms, 6 actuators" in capsys.readouterr().out


def test_schema_is_json_schema_and_committed_copy_is_current() -> None:
    schema = config_schema()
    assert schema["type"] == "object"
    assert "rooms" in schema["properties"]  # type: ignore[operator]
    committed = json.loads((ROOT / "schema" / "site.schema.json").read_text())
    assert committed == json.loads(json.dumps(schema)), "run `make schema` to refresh schema/site.schema.json"


SHARED = """
site: {id: s, timezone: Asia/Shanghai}
buildings: [{id: a}]
rooms: [{id: r1, building: a, profile: paper}, {id: r2, building: a, profile: film}]
gateways: [{type: modbus-tcp, id: g1, host: 127.0.0.1}]
devices:
  - {id: d1, protocol: modbus, gateway: g1, unit: 1, room: r1, model: xy-md02}
  - {id: d2, protocol: modbus, gateway: g1, unit: 2, room: r2, model: xy-md02}
  - id: d3
    protocol: modbus
    gateway: g1
    unit: 3
    room: r1
    points: [{id: t, table: input, address: 1, type: int16, scale: 0.1, quantity: temperature, unit: "°C"}]
"""


def test_identical_points_of_many_devices_are_one_object_and_different_ones_are_not() -> None:
    """A site of hundreds of one model holds its points once (bench/ingest.py: 16 MB of models down to 4)."""
    config = parse_config(SHARED)
    first, second, own = (device.points for device in config.devices)
    assert [p.id for p in first] == [p.id for p in second]
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert all(point is not other for point in own for other in first)
    assert parse_config(SHARED).devices[0].points[0] is not first[0]  # nothing shared between two parses


def test_a_shared_mistake_is_reported_at_every_place_it_occurs() -> None:
    bad = "{id: x, table: input, address: 70000}"
    text = SHARED.replace("model: xy-md02}", f"model: xy-md02, points: [{bad}]}}", 2)
    found = problems(text)
    assert sum("devices[0].points" in problem for problem in found) == 1
    assert sum("devices[1].points" in problem for problem in found) == 1
