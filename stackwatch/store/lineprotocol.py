"""InfluxDB line protocol, written for the hot path.

Series keys (measurement + tags) are fixed per point, so they are escaped once
(`series_key`) and each reading only formats its fields and timestamp
(`encode_fields`). Escaping follows the InfluxDB 1.x reference and matches
`influxdb_client.Point`, except where the reference writes something InfluxDB
drops or alters (a name ending in a backslash, a `#` measurement, an empty tag
key, a non-finite float): here those raise ValueError instead. Property-tested
against the reference and against a real influxd (tests/unit/test_lineprotocol.py,
tests/integration/test_store_influx.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(name: str) -> str:
    """Tag keys, tag values and field keys share one escaping."""
    return name.translate(_KEY)


def escape_string(value: str) -> str:
    return value.translate(_STRING)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`measurement,tag=value,...` with tags sorted by key (InfluxDB's preferred order); empty tag values left out.

    Raises ValueError for what InfluxDB 1.x cannot store as given: a name ending in a backslash
    (it would escape the separator after it), an empty name, a measurement starting with `#` (a
    comment line: silently dropped). Failing here fails at start-up, when the catalog is built,
    rather than line by line at write time.
    """
    escaped = escape_measurement(measurement)
    if not escaped or escaped.startswith("#") or escaped.endswith("\\"):
        raise ValueError(f"measurement {measurement!r} cannot be written to InfluxDB")
    parts = [escaped]
    for key in sorted(tags):
        value = tags[key]
        if value != "":
            parts.append(f"{_checked_key(key, 'tag key')}={_checked_key(value, 'tag value')}")
    return ",".join(parts)


def _checked_key(name: str, kind: str) -> str:
    escaped = escape_key(name)
    if not escaped or escaped.endswith("\\"):
        raise ValueError(f"{kind} {name!r} cannot be written to InfluxDB (empty, or ends in a backslash)")
    return escaped


def format_field(value: float | int | bool | str) -> str:
    """One field value; floats use repr (shortest exact), integers get the `i` suffix."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol has no NaN or infinity")
        return repr(value)
    return f'"{escape_string(value)}"'


def encode_fields(fields: Mapping[str, float | int | bool | str]) -> str:
    return ",".join(f"{_checked_key(key, 'field key')}={format_field(value)}" for key, value in fields.items())


def encode_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | int | bool | str],
                ts_ns: int | None = None) -> str:
    if not fields:
        raise ValueError("a line needs at least one field")
    line = f"{series_key(measurement, tags)} {encode_fields(fields)}"
    return line if ts_ns is None else f"{line} {ts_ns}"
