"""Grafana provisioning in dashboards/grafana: the files parse, every InfluxQL query names only measurements,
fields and tags stackwatch really writes (derived from the code, not from the README), every panel uses the
provisioned data source, and the limit bands are the paper profile's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from alarms.model import AlarmEvent, AlarmState, EventKind, Priority
from alarms.outputs import event_line
from alarms.profiles import PROFILES
from stackwatch.catalog import PointCatalog
from stackwatch.config import load_config
from stackwatch.readings import Quality, Reading
from stackwatch.store.rollup import ROLLUP_RP, rollup_measurement
from tests.unit.test_lineprotocol import parse

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "stackwatch-site.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "stackwatch.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "stackwatch.yaml"
EXAMPLE = ROOT / "examples" / "district-archive.yaml"

MACROS = {"timeFilter", "__interval", "room", "building"}
ROLLUP_FIELDS = {"mean", "min", "max", "count"}  # stackwatch/store/rollup.py writes these per hour
TS_NS = 1_717_000_000_000_000_000
PAPER = PROFILES["paper"]

# Every optional part set, so that the line carries every field `event_line` can write.
SAMPLE_EVENT = AlarmEvent(
    seq=7, ts=1_717_000_000.5, alarm="th-101.humidity:high", occurrence=3, kind=EventKind.SHELVED,
    state=AlarmState.ACTIVE_ACK, previous=AlarmState.ACTIVE_ACK, priority=Priority.HIGH, cause="humidity_high",
    room="main-1-paper", building="main", site="district-archive", source="th-101.humidity", value=66.2,
    limit=60.0, message="RH 66.2 % > 60 %", actor="li.wei", comment="sensor being replaced",
    until=1_717_007_200.0,
)


# -- the schema, from the code ----------------------------------------------------------------------------------


@dataclass
class Shape:
    fields: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)


Schema = dict[tuple[str | None, str], Shape]  # (retention policy, None: the database's default; measurement)


@cache
def example_config() -> Any:
    return load_config(EXAMPLE)


@cache
def written_schema() -> Schema:
    """What the store writes for the example archive: readings and states through `PointCatalog.encode`, their
    hourly roll-ups in `forever`, and alarm events through `event_line`."""
    catalog = PointCatalog.from_config(example_config())
    schema: Schema = {}
    for info in catalog:
        value = True if info.is_state else 21.5
        line = catalog.encode(Reading(info.key, TS_NS, value, Quality.UNCERTAIN, "above the sensor's range"))
        measurement, tags, fields, _ = parse(line)
        shape = schema.setdefault((None, measurement), Shape())
        shape.fields |= fields.keys()
        shape.tags |= tags.keys()
        if not info.is_state:
            rolled = schema.setdefault((ROLLUP_RP, rollup_measurement(measurement)), Shape(set(ROLLUP_FIELDS)))
            rolled.tags |= tags.keys()  # the roll-up groups by every tag of the raw series
    measurement, tags, fields, _ = parse(event_line(SAMPLE_EVENT))
    schema[(None, measurement)] = Shape(set(fields), set(tags))
    return schema


def test_the_schema_derived_from_the_code_is_the_one_the_readme_describes() -> None:
    """Guards the derivation itself: an empty or wrong schema would let every query pass or fail."""
    schema = written_schema()
    assert schema[(None, "temperature")].fields == {"value", "quality", "detail"}
    assert schema[(None, "humidity")].tags == {"site", "building", "room", "device", "point"}
    assert schema[(None, "state")].tags == {"site", "building", "room", "device", "point", "quantity"}
    assert schema[(ROLLUP_RP, "humidity_1h")] == Shape(ROLLUP_FIELDS, schema[(None, "humidity")].tags)
    assert (ROLLUP_RP, "state_1h") not in schema
    events = schema[(None, "events")]
    assert {"title", "state", "message", "value", "limit", "actor", "comment", "until"} <= events.fields
    assert {"room", "priority", "cause", "kind"} <= events.tags
    assert not events.fields & events.tags


# -- a small InfluxQL reader ------------------------------------------------------------------------------------

_STRING = re.compile(r"'(?:\\.|[^'\\])*'")
_REGEX = re.compile(r"/(?:\\.|[^/\\])*/")
_MACRO = re.compile(r"\$\{?(\w+)\}?")
_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"')
_FROM = re.compile(r'\bFROM\s+((?:"[^"]+"\s*\.\s*){0,2}"[^"]+")', re.IGNORECASE)
_END = r"(?=\bGROUP\s+BY\b|\bORDER\s+BY\b|\bS?LIMIT\b|\bS?OFFSET\b|\bfill\s*\(|\btz\s*\(|$)"
_SELECT = re.compile(r"^\s*SELECT\s+(.*?)\s+FROM\b", re.IGNORECASE | re.DOTALL)
_WHERE = re.compile(r"\bWHERE\b(.*?)" + _END, re.IGNORECASE | re.DOTALL)
_GROUP_BY = re.compile(r"\bGROUP\s+BY\b(.*?)(?=\bORDER\s+BY\b|\bS?LIMIT\b|\bS?OFFSET\b|\bfill\s*\(|\btz\s*\(|$)",
                       re.IGNORECASE | re.DOTALL)
_SHOW_TAG_VALUES = re.compile(r'^\s*SHOW\s+TAG\s+VALUES\b.*?\bWITH\s+KEY\s*=\s*"([^"]+)"', re.IGNORECASE | re.DOTALL)
_ITEM = re.compile(r'^(?:(?P<fn>[A-Za-z_]\w*)\(\s*"(?P<arg>[^"]+)"\s*\)|"(?P<column>[^"]+)")'
                   r'(?:\s+AS\s+"[^"]+")?$', re.IGNORECASE)
_KEYWORDS = {"and", "or"}


@dataclass
class Checked:
    measurement: tuple[str | None, str]
    selected: list[str]  # columns a SELECT returns besides time, in order (aliases not applied)


def _names(clause: str) -> list[str]:
    """Identifiers in a WHERE or GROUP BY clause whose literals, regexes and macros are blanked already."""
    return [quoted if quoted else bare
            for quoted, bare in re.findall(r'"([^"]+)"|\b([A-Za-z_]\w*)\b', clause)
            if quoted or bare.lower() not in _KEYWORDS]


def _split_items(select: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, char in enumerate(select):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(select[start:i].strip())
            start = i + 1
    items.append(select[start:].strip())
    return items


def check_query(query: str, schema: Schema, database: str) -> Checked:
    """Raises AssertionError naming what the store does not write, or a form of InfluxQL this reader cannot check."""
    assert ";" not in query, f"one statement per query: {query}"
    unknown = {name for name in _MACRO.findall(query) if name not in MACROS}
    assert not unknown, f"variables {sorted(unknown)} are not defined by the dashboard: {query}"
    assert "[[" not in query, f"deprecated [[variable]] syntax: {query}"
    text = _MACRO.sub("", _REGEX.sub("//", _STRING.sub("''", query)))

    sources = _FROM.findall(text)
    assert len(sources) == len(re.findall(r"\bFROM\b", text, re.IGNORECASE)) == 1, \
        f"exactly one FROM with a double-quoted measurement: {query}"
    parts = _QUOTED.findall(sources[0])
    if len(parts) == 3:
        assert parts[0] == database, f"database {parts[0]!r} is not {database!r}: {query}"
        parts = parts[1:]
    key = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    assert key in schema, f"stackwatch writes no measurement {key[1]!r} in retention policy {key[0]!r}: {query}"
    shape = schema[key]
    where = _WHERE.search(text)
    where_names = _names(where.group(1)) if where else []

    show = _SHOW_TAG_VALUES.match(text)
    if show:
        tag_key = show.group(1)
        assert tag_key in shape.tags, f"{key[1]} has no tag {tag_key!r}: {query}"
        bad = [name for name in where_names if name not in shape.tags]
        assert not bad, f"SHOW TAG VALUES filters on {bad}, not tags of {key[1]}: {query}"
        return Checked(key, [tag_key])

    select = _SELECT.match(text)
    assert select, f"only SELECT and SHOW TAG VALUES ... WITH KEY = \"tag\" can be checked: {query}"
    selected: list[str] = []
    fields_selected = False
    for item in _split_items(select.group(1)):
        match = _ITEM.match(item)
        assert match, f"SELECT item {item!r} is not fn(\"field\") or \"column\" [AS \"name\"]: {query}"
        if match["arg"] is not None:
            assert match["arg"] in shape.fields, f"{key[1]} has no field {match['arg']!r} for {match['fn']}(): {query}"
            fields_selected = True
            selected.append(match["arg"])
        else:
            column = match["column"]
            assert column in shape.fields | shape.tags, f"{key[1]} has no field or tag {column!r}: {query}"
            fields_selected |= column in shape.fields
            selected.append(column)
    assert fields_selected, f"InfluxQL returns nothing when a SELECT names tags only: {query}"

    bad = [name for name in where_names if name != "time" and name not in shape.fields | shape.tags]
    assert not bad, f"WHERE names {bad}, neither fields nor tags of {key[1]}: {query}"
    group = _GROUP_BY.search(text)
    if group:
        names = _names(re.sub(r"\btime\s*\([^)]*\)", "", group.group(1), flags=re.IGNORECASE))
        bad = [name for name in names if name not in shape.tags]
        assert not bad, f"GROUP BY {bad}: not tags of {key[1]} (fields cannot be grouped by): {query}"
    return Checked(key, selected)


# -- the files --------------------------------------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def load_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # a collapsed row keeps its panels inside


def query_panels() -> list[dict[str, Any]]:
    return [panel for panel in all_panels(dashboard()["panels"]) if panel.get("type") != "row"]


def custom_annotations() -> list[dict[str, Any]]:
    return [a for a in dashboard()["annotations"]["list"] if not a.get("builtIn")]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, query) for every panel target, query variable and annotation."""
    found = []
    for panel in query_panels():
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} target {target['refId']}", target.get("query", "")))
    for variable in dashboard()["templating"]["list"]:
        if variable.get("type") == "query":
            found.append((f"variable {variable['name']}", variable_query(variable)))
    for annotation in custom_annotations():
        if "query" in annotation:
            found.append((f"annotation {annotation['name']!r}", annotation["query"]))
        if "target" in annotation:
            found.append((f"annotation {annotation['name']!r} target", annotation["target"].get("query", "")))
    return found


def provisioned_influx() -> dict[str, Any]:
    sources = [s for s in load_yaml(DATASOURCES)["datasources"] if s["type"] == "influxdb"]
    assert len(sources) == 1
    return sources[0]


def test_every_provisioning_file_parses() -> None:
    files = sorted(GRAFANA.rglob("*"))
    yamls = [path for path in files if path.suffix in (".yaml", ".yml")]
    jsons = [path for path in files if path.suffix == ".json"]
    assert DATASOURCES in yamls and PROVIDERS in yamls and DASHBOARD in jsons
    for path in yamls:
        assert isinstance(load_yaml(path), dict), path
        assert load_yaml(path)["apiVersion"] == 1, path
    for path in jsons:
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict), path


def test_the_dashboard_has_what_grafana_needs() -> None:
    board = dashboard()
    for key in ("uid", "title", "panels", "templating", "annotations"):
        assert board.get(key), key
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in all_panels(board["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(board["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"building", "room"} <= variables.keys()
    assert "$building" in variable_query(variables["room"]), "rooms follow the chosen building"
    assert query_panels(), "no panels"
    for panel in query_panels():
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            # A builder-mode target has no `query` text, so this test could not check it.
            assert target.get("rawQuery") is True and target.get("query"), panel["title"]


@pytest.mark.parametrize(("where", "query"), dashboard_queries(), ids=[where for where, _ in dashboard_queries()])
def test_every_query_names_only_what_stackwatch_writes(where: str, query: str) -> None:
    check_query(query, written_schema(), example_config().storage.influxdb.database)


@pytest.mark.parametrize("query", [
    'SELECT mean("value") FROM "temprature" WHERE $timeFilter',  # no such measurement
    'SELECT mean("val") FROM "temperature" WHERE $timeFilter',  # no such field
    'SELECT mean("room") FROM "temperature" WHERE $timeFilter',  # a tag is not a field
    'SELECT mean("value") FROM "temperature" WHERE "sensor" = \'x\' AND $timeFilter',  # no such tag
    'SELECT mean("value") FROM "temperature" WHERE $timeFilter GROUP BY time($__interval), "quality"',  # a field
    'SELECT mean("value") FROM "temperature" WHERE $timeFilter GROUP BY sensor',  # unquoted, still checked
    'SELECT mean("value") FROM "temperature" WHERE "room" =~ /^$rooms$/ AND $timeFilter',  # undefined variable
    'SELECT mean("mean") FROM "humidity_1h" WHERE $timeFilter',  # roll-ups live in `forever`
    'SELECT mean("mean") FROM "forever"."state_1h" WHERE $timeFilter',  # states are not rolled up
    'SELECT mean("value") FROM "forever"."humidity_1h" WHERE $timeFilter',  # roll-ups have no `value`
    'SELECT mean("mean") FROM "other"."forever"."humidity_1h" WHERE $timeFilter',  # another database
    'SELECT mean("value") FROM temperature WHERE $timeFilter',  # unquoted: not checked, so refused
    'SELECT "title", "severity" FROM "events" WHERE $timeFilter',  # events have no `severity`
    'SELECT "priority" FROM "events" WHERE $timeFilter',  # tags only: InfluxQL returns nothing
    'SELECT * FROM "events" WHERE $timeFilter',  # cannot be checked
    'SHOW TAG VALUES FROM "temperature" WITH KEY = "floor"',  # no such tag
    'SHOW TAG VALUES FROM "temperature" WITH KEY = "room" WHERE "quality" = \'good\'',  # a field
    'SHOW MEASUREMENTS',  # cannot be checked
])
def test_the_query_check_refuses_what_the_store_does_not_write(query: str) -> None:
    with pytest.raises(AssertionError):
        check_query(query, written_schema(), "stackwatch")


def test_the_query_check_accepts_the_documented_forms() -> None:
    schema = written_schema()
    checked = check_query('SELECT mean("value") FROM "temperature" WHERE ("room" =~ /^$room$/ AND '
                          '"quality" = \'good\') AND $timeFilter GROUP BY time($__interval), "device" fill(none)',
                          schema, "stackwatch")
    assert checked == Checked((None, "temperature"), ["value"])
    checked = check_query('SELECT mean("mean") AS "mean", max("max") FROM "stackwatch"."forever"."humidity_1h" '
                          'WHERE $timeFilter GROUP BY time(1h), "room"', schema, "stackwatch")
    assert checked == Checked((ROLLUP_RP, "humidity_1h"), ["mean", "max"])


def test_the_datasource_is_influxql_on_the_stackwatch_database() -> None:
    source = provisioned_influx()
    database = example_config().storage.influxdb.database
    assert source["uid"] == "stackwatch-influxdb"
    assert source["access"] == "proxy"
    assert "${STACKWATCH_INFLUX_URL}" in source["url"]
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == source["database"] == database
    secrets = [key for key in source["jsonData"] if re.search("password|token|secret|HeaderValue", key, re.I)]
    assert not secrets, "credentials belong in secureJsonData, which Grafana stores encrypted"


def test_the_dashboard_provider_reads_files() -> None:
    providers = load_yaml(PROVIDERS)["providers"]
    assert len(providers) == 1
    assert providers[0]["type"] == "file"
    assert Path(providers[0]["options"]["path"]).is_absolute()


def test_every_panel_variable_and_annotation_uses_the_provisioned_datasource() -> None:
    uid = provisioned_influx()["uid"]
    users: list[tuple[str, Any]] = []
    for panel in query_panels():
        users.append((f"panel {panel['title']!r}", panel.get("datasource")))
        users += [(f"panel {panel['title']!r} target", t["datasource"]) for t in panel["targets"] if "datasource" in t]
    users += [(f"variable {v['name']}", v.get("datasource")) for v in dashboard()["templating"]["list"]
              if v.get("type") == "query"]
    for annotation in custom_annotations():
        users.append((f"annotation {annotation['name']!r}", annotation.get("datasource")))
        if "datasource" in annotation.get("target", {}):
            users.append((f"annotation {annotation['name']!r} target", annotation["target"]["datasource"]))
    assert users
    for where, source in users:
        assert isinstance(source, dict), f"{where}: datasource must be {{type, uid}}, not {source!r}"
        assert (source.get("type"), source.get("uid")) == ("influxdb", uid), where


def _steps(thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    assert thresholds["mode"] == "absolute"
    steps: list[dict[str, Any]] = thresholds["steps"]
    return steps


def test_limit_bands_are_the_paper_profile() -> None:
    schema = written_schema()
    database = example_config().storage.influxdb.database
    limits = {"temperature": [PAPER.t_min, PAPER.t_max], "humidity": [PAPER.rh_min, PAPER.rh_max]}
    banded: dict[tuple[str, str], int] = {}
    for panel in query_panels():
        read = {check_query(t["query"], schema, database).measurement[1] for t in panel["targets"]}
        quantities = {name.removesuffix("_1h") for name in read} & limits.keys()
        if not quantities:
            continue
        assert len(quantities) == 1, f"panel {panel['title']!r} mixes temperature and humidity on one scale"
        quantity = quantities.pop()
        defaults = panel["fieldConfig"]["defaults"]
        steps = _steps(defaults["thresholds"])
        assert steps[0]["value"] is None, "the base step"
        assert [step["value"] for step in steps[1:]] == limits[quantity], panel["title"]
        colours = [step["color"] for step in steps]
        assert colours[1] not in (colours[0], colours[2]), f"panel {panel['title']!r}: the band must stand out"
        for override in panel["fieldConfig"].get("overrides", []):
            assert all(p["id"] != "thresholds" for p in override["properties"]), \
                f"panel {panel['title']!r}: the shipped dashboard keeps the paper limits for every series"
        if panel["type"] == "timeseries":
            assert defaults["custom"]["thresholdsStyle"]["mode"] in ("area", "line+area"), panel["title"]
        banded[(quantity, panel["type"])] = banded.get((quantity, panel["type"]), 0) + 1
    for quantity in limits:
        assert banded.get((quantity, "stat")), f"no stat panel for {quantity}"
        assert banded.get((quantity, "timeseries"), 0) >= 2, f"raw and roll-up charts for {quantity}"


def test_annotations_map_columns_their_query_returns() -> None:
    """Grafana's InfluxQL annotations take text and tags from columns of the result, by name."""
    schema = written_schema()
    database = example_config().storage.influxdb.database
    annotations = custom_annotations()
    assert annotations, "alarm events as annotations"
    for annotation in annotations:
        target = annotation["target"]
        assert target["fromAnnotations"] is True and target["rawQuery"] is True
        assert annotation.get("query", target["query"]) == target["query"], "legacy and current query differ"
        checked = check_query(target["query"], schema, database)
        assert checked.measurement == (None, "events")
        # Grafana's older reader removes only the first space of tagsColumn: keep it without spaces.
        tags = target["tagsColumn"].split(",")
        assert " " not in target["tagsColumn"] and tags
        for column in [target["textColumn"], *tags]:
            assert column in checked.selected, f"annotation {annotation['name']!r}: {column!r} is not selected"
        for key in ("textColumn", "tagsColumn"):
            assert annotation.get(key, target[key]) == target[key]
