"""Escaping of line protocol, against `influxdb_client.Point` and against what InfluxDB 1.x reads back.

Where the reference and this encoder differ, InfluxDB decides (checked against a
real influxd in tests/integration/test_store_influx.py):

* empty tag value: both leave the tag out (InfluxDB refuses `t=`);
* empty tag key: the reference drops the tag silently, `series_key` raises;
* a name ending in a backslash (it would escape the separator after it): the
  reference appends a space, which InfluxDB then stores instead of the
  backslash; `series_key` raises;
* a measurement starting with `#`: the reference warns and emits a comment
  line that InfluxDB ignores with a 204; `series_key` raises;
* non-finite floats: the reference drops the field silently, `format_field` raises;
* whole floats: the reference writes `1`, this encoder `1.0`; both are floats
  to InfluxDB (only an `i` suffix makes an integer);
* field order: the reference sorts fields, this encoder keeps the given order.

InfluxDB 1.x itself reads `\\n`, `\\t`, `\\r` in names back as a backslash and a
letter (there is no way to store a raw newline in a name), and a string field
value exactly, raw newlines included.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from influxdb_client.client.write import point as reference_point

from stackwatch.store.lineprotocol import (
    encode_fields,
    encode_line,
    escape_key,
    escape_measurement,
    escape_string,
    format_field,
    series_key,
)

SPECIAL = ' ,="\\\n\t\r'
ALPHABET = SPECIAL + "aZ09_-.#é中🙂"
NO_BACKSLASH = ALPHABET.replace("\\", "")

text = st.text(alphabet=ALPHABET, max_size=12)
name = st.text(alphabet=NO_BACKSLASH, min_size=1, max_size=12).filter(lambda s: not s.startswith("#"))
field_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    text,
)


Point: Any = reference_point.Point  # untyped library


def reference(measurement: str, tags: dict[str, str], fields: dict[str, object], ts: int | None = None) -> str:
    point = Point(measurement)
    for key, value in tags.items():
        point.tag(key, value)
    for field_key, field_value_ in fields.items():
        point.field(field_key, field_value_)
    if ts is not None:
        point.time(ts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return str(point.to_line_protocol())


def as_influx_name(value: str) -> str:
    """What InfluxDB 1.x stores for a name this encoder wrote (escaped control characters stay escaped)."""
    return value.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


# -- a model of InfluxDB 1.x's reader, enough for lines whose names have no raw backslash ------------


def _scan_name(line: str, i: int, stops: str, escapable: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        if char in stops:
            break
        out.append(char)
        i += 1
    return "".join(out), i


def _scan_value(line: str, i: int) -> tuple[object, int]:
    if line[i] == '"':
        out: list[str] = []
        i += 1
        while line[i] != '"':
            if line[i] == "\\" and line[i + 1] in '"\\':
                i += 1
            out.append(line[i])
            i += 1
        return "".join(out), i + 1
    end = i
    while end < len(line) and line[end] not in ", ":
        end += 1
    raw = line[i:end]
    if raw in ("true", "false"):
        return raw == "true", end
    if raw.endswith("i"):
        return int(raw[:-1]), end
    return float(raw), end


def parse(line: str) -> tuple[str, dict[str, str], dict[str, object], int | None]:
    measurement, i = _scan_name(line, 0, ", ", ", ")
    tags: dict[str, str] = {}
    while line[i] == ",":
        key, i = _scan_name(line, i + 1, "=", ",= ")
        value, i = _scan_name(line, i + 1, ", ", ",= ")
        tags[key] = value
    assert line[i] == " "
    fields: dict[str, object] = {}
    i += 1
    while True:
        key, i = _scan_name(line, i, "=", ',= "')
        fields[key], i = _scan_value(line, i + 1)
        if i >= len(line) or line[i] == " ":
            break
        assert line[i] == ","
        i += 1
    ts = int(line[i + 1:]) if i < len(line) else None
    return measurement, tags, fields, ts


# -- against the reference encoder ------------------------------------------------------------------


@given(measurement=text, tags=st.dictionaries(text, text, max_size=4))
@example(measurement="cpu load", tags={"host": "a,b=c", "empty": ""})
@example(measurement="m", tags={"": "x"})
@example(measurement="m", tags={"t": "ends\\"})
@example(measurement="#m", tags={})
def test_series_key_matches_reference_or_refuses_what_influxdb_cannot_store(measurement: str,
                                                                              tags: dict[str, str]) -> None:
    expected = reference(measurement, tags, {"f": 1})
    try:
        ours = series_key(measurement, tags) + " f=1i"
    except ValueError:
        kept = {k: v for k, v in tags.items() if v != ""}
        escaped = escape_measurement(measurement)
        assert (not escaped or escaped.startswith("#") or escaped.endswith("\\")
                or any(k == "" or escape_key(k).endswith("\\") or escape_key(v).endswith("\\")
                       for k, v in kept.items()))
        return
    assert ours == expected


@given(key=text.filter(lambda k: k != "" and not escape_key(k).endswith("\\")), value=field_value)
@example(key="a b,c=d", value='say "hi"\\ \n')
@example(key="f", value=1.0)
@example(key="f", value=1e16)
@example(key="f", value=-0.0)
def test_each_field_matches_reference(key: str, value: float | int | bool | str) -> None:
    ours = encode_fields({key: value})
    expected = reference("m", {}, {key: value}).removeprefix("m ")
    if isinstance(value, float):  # the reference trims a trailing ".0"; the number is the same
        prefix = escape_key(key) + "="
        assert ours.startswith(prefix) and expected.startswith(prefix)
        assert float(ours[len(prefix):]) == float(expected[len(prefix):])
        assert not ours.endswith("i") and not expected.endswith("i")  # still a float to InfluxDB
    else:
        assert ours == expected


@given(fields=st.dictionaries(name, field_value, min_size=1, max_size=5))
def test_fields_keep_their_order_the_reference_sorts_them(fields: dict[str, float | int | bool | str]) -> None:
    assert encode_fields(fields) == ",".join(encode_fields({k: v}) for k, v in fields.items())


def test_differences_from_the_reference_are_deliberate() -> None:
    assert reference("m", {"": "x", "t": "a"}, {"f": 1}) == "m,t=a f=1i"
    with pytest.raises(ValueError):
        series_key("m", {"": "x"})
    assert reference("m", {"t": "a\\"}, {"f": 1}) == "m,t=a\\  f=1i"  # stored by InfluxDB as "a "
    with pytest.raises(ValueError):
        series_key("m", {"t": "a\\"})
    assert reference("#m", {}, {"f": 1}) == "#m f=1i"  # a comment: InfluxDB answers 204 and stores nothing
    with pytest.raises(ValueError):
        series_key("#m", {})
    assert reference("m", {}, {"f": math.nan, "g": 1}) == "m g=1i"
    with pytest.raises(ValueError):
        format_field(math.inf)
    with pytest.raises(ValueError):
        encode_fields({"f\\": 1})
    with pytest.raises(ValueError):
        encode_line("m", {}, {})


# -- against InfluxDB's reading of the line -------------------------------------------------------


@settings(max_examples=300)
@given(measurement=name, tags=st.dictionaries(name, st.text(alphabet=NO_BACKSLASH, max_size=8), max_size=4),
       fields=st.dictionaries(name, field_value, min_size=1, max_size=4),
       ts=st.integers(min_value=0, max_value=2**62))
def test_influxdb_reads_back_what_was_encoded(measurement: str, tags: dict[str, str],
                                              fields: dict[str, float | int | bool | str], ts: int) -> None:
    line = encode_line(measurement, tags, fields, ts)
    assert parse(line) == (
        as_influx_name(measurement),
        {as_influx_name(k): as_influx_name(v) for k, v in tags.items() if v != ""},
        {as_influx_name(k): v for k, v in fields.items()},
        ts,
    )


@given(value=st.text(alphabet=ALPHABET + "\x00'", max_size=30))
def test_string_values_round_trip_exactly(value: str) -> None:
    line = encode_line("m", {}, {"s": value})
    assert parse(line)[2] == {"s": value}
    assert escape_string(value).count('"') == escape_string(value).count('\\"')  # every quote escaped


def test_encode_line_without_timestamp() -> None:
    assert encode_line("m", {"b": "2", "a": "1"}, {"v": 1.5, "n": 2, "ok": True, "s": "x"}) == \
        'm,a=1,b=2 v=1.5,n=2i,ok=true,s="x"'
