"""The store path against InfluxDB: a stub HTTP server for the client's edges, a real influxd for the rest.

Tests marked `integration` run a real influxd 1.6 (tests/conftest.py); the
others use a small HTTP server in a thread, for what influxd 1.6 cannot show
(token auth, 5xx, 429, timeouts, a proxy closing idle connections).
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.config.services import InfluxConfig
from stackwatch.localservers import LocalInfluxd
from stackwatch.readings import Quality, Reading
from stackwatch.store.influx import InfluxClient, InfluxRefused, InfluxRejected, InfluxUnavailable, quote_ident
from stackwatch.store.lineprotocol import encode_line, series_key
from stackwatch.store.sink import SpoolSink
from stackwatch.store.spool import Spool
from stackwatch.store.writer import InfluxWriter

# -- a stub InfluxDB ------------------------------------------------------------------------------

Answer = tuple[int, bytes, dict[str, str]]


class StubInflux(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[str, str, bytes], Answer], close_after_each: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.answer = answer
        self.close_after_each = close_after_each
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubInflux

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        status, payload, headers = self.server.answer(self.command, self.path, body)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        if self.server.close_after_each:  # like a proxy dropping idle keep-alive connections, without saying so
            self.close_connection = True

    do_GET = do_POST = _handle


@pytest.fixture
def stub() -> Iterator[Callable[..., StubInflux]]:
    servers: list[StubInflux] = []

    def start(answer: Callable[[str, str, bytes], Answer], close_after_each: bool = False) -> StubInflux:
        server = StubInflux(answer, close_after_each)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def no_content(method: str, path: str, body: bytes) -> Answer:
    return 204, b"", {}


def test_auth_headers_none_basic_and_token(stub: Callable[..., StubInflux]) -> None:
    server = stub(no_content)
    InfluxClient(InfluxConfig(url=server.url)).write(["m v=1 1"])
    InfluxClient(InfluxConfig(url=server.url, username="ann", password="p:w")).write(["m v=1 1"])
    InfluxClient(InfluxConfig(url=server.url, token="tok-123")).write(["m v=1 1"])
    auth = [headers.get("Authorization") for _, _, headers, _ in server.requests]
    assert auth == [None, "Basic YW5uOnA6dw==", "Token tok-123"]


def test_write_request_shape_and_keep_alive(stub: Callable[..., StubInflux]) -> None:
    server = stub(no_content)
    client = InfluxClient(InfluxConfig(url=server.url + "/influx/", database="arch ive", retention_policy="raw"))
    for _ in range(3):
        client.write(["m v=1 1", 'm s="é" 2'])
    assert server.connections == 1
    method, path, _, body = server.requests[0]
    assert method == "POST" and path == "/influx/write?db=arch+ive&precision=ns&rp=raw"
    assert body == 'm v=1 1\nm s="é" 2'.encode()
    assert "password" not in repr(InfluxClient(InfluxConfig(url=server.url, username="u", password="password")))


def test_a_silently_closed_keep_alive_connection_is_reopened(stub: Callable[..., StubInflux]) -> None:
    server = stub(no_content, close_after_each=True)
    client = InfluxClient(InfluxConfig(url=server.url))
    for _ in range(3):
        client.write(["m v=1 1"])
        time.sleep(0.02)  # let the close reach the client's socket
    assert len(server.requests) == 3 and server.connections == 3


@pytest.mark.parametrize(("status", "kind"), [
    (400, InfluxRejected), (413, InfluxRejected), (422, InfluxRejected),
    (401, InfluxRefused), (403, InfluxRefused), (404, InfluxRefused),
    (429, InfluxUnavailable), (500, InfluxUnavailable), (503, InfluxUnavailable), (418, InfluxUnavailable),
])
def test_errors_are_classified_with_the_server_message(stub: Callable[..., StubInflux], status: int,
                                                       kind: type[Exception]) -> None:
    server = stub(lambda m, p, b: (status, json.dumps({"error": f"said {status}"}).encode(), {}))
    with pytest.raises(kind) as caught:
        InfluxClient(InfluxConfig(url=server.url)).write(["m v=1 1"])
    assert type(caught.value) is kind
    assert caught.value.message == f"said {status}" and caught.value.status == status  # type: ignore[attr-defined]


def test_message_from_header_or_2x_body(stub: Callable[..., StubInflux]) -> None:
    answers = iter([(400, b"", {"X-Influxdb-Error": "from header"}),
                    (422, b'{"code":"invalid","message":"from 2.x"}', {})])
    server = stub(lambda m, p, b: next(answers))
    client = InfluxClient(InfluxConfig(url=server.url))
    for expected in ("from header", "from 2.x"):
        with pytest.raises(InfluxRejected) as caught:
            client.write(["m v=1 1"])
        assert caught.value.message == expected


def test_unreachable_and_hanging_servers_are_unavailable(stub: Callable[..., StubInflux]) -> None:
    with pytest.raises(InfluxUnavailable):
        InfluxClient(InfluxConfig(url="http://127.0.0.1:9", timeout=1.0)).write(["m v=1 1"])
    release = threading.Event()

    def hang(method: str, path: str, body: bytes) -> Answer:
        release.wait(5)
        return 204, b"", {}

    server = stub(hang)
    started = time.monotonic()
    with pytest.raises(InfluxUnavailable):
        InfluxClient(InfluxConfig(url=server.url, timeout=0.3)).write(["m v=1 1"])
    assert time.monotonic() - started < 1.5  # no second try after a timeout
    release.set()


def test_query_uses_get_for_reads_and_post_for_changes(stub: Callable[..., StubInflux]) -> None:
    result = {"results": [{"statement_id": 0, "series": [
        {"name": "m", "tags": {"room": "r1"}, "columns": ["time", "v"], "values": [[1, 2.5]]}]}]}
    server = stub(lambda m, p, b: (200, json.dumps(result).encode(), {}))
    client = InfluxClient(InfluxConfig(url=server.url, username="u", password="p"))
    (series,) = client.query("SELECT v FROM m GROUP BY room")
    assert series.name == "m" and series.tags == {"room": "r1"} and series.rows() == [{"time": 1, "v": 2.5}]
    client.query("SELECT mean(v) INTO m_1h FROM m GROUP BY time(1h)")
    client.create_database()
    methods = [method for method, *_ in server.requests]
    assert methods == ["GET", "POST", "POST"]
    assert b"q=CREATE+DATABASE+%22stackwatch%22" in server.requests[2][3]
    assert all(headers.get("Authorization", "").startswith("Basic ") for _, _, headers, _ in server.requests)


def test_a_failing_statement_raises(stub: Callable[..., StubInflux]) -> None:
    server = stub(lambda m, p, b: (200, b'{"results":[{"statement_id":0,"error":"database not found: x"}]}', {}))
    with pytest.raises(InfluxRejected, match="database not found"):
        InfluxClient(InfluxConfig(url=server.url)).query("SELECT * FROM m")


def test_quote_ident() -> None:
    assert quote_ident('a "b" \\c') == '"a \\"b\\" \\\\c"'


# -- real influxd ---------------------------------------------------------------------------------

SITE_TAGS = {"site": "s1", "building": "b1"}


def make_catalog(devices: int = 3) -> PointCatalog:
    infos = []
    for d in range(devices):
        device, room = f"dev{d}", f"room{d % 2}"
        tags = {**SITE_TAGS, "room": room, "device": device}
        infos.append(PointInfo(key=f"{device}.t", device=device, point="t", quantity="temperature", unit="°C",
                               room=room, building="b1", is_state=False, expected_interval=10.0,
                               series=series_key("temperature", {**tags, "point": "t"})))
        infos.append(PointInfo(key=f"{device}.rh", device=device, point="rh", quantity="humidity", unit="%",
                               room=room, building="b1", is_state=False, expected_interval=10.0,
                               series=series_key("humidity", {**tags, "point": "rh"})))
        infos.append(PointInfo(key=f"{device}.door", device=device, point="door", quantity="door", unit="",
                               room=room, building="b1", is_state=True, expected_interval=10.0,
                               series=series_key("state", {**tags, "point": "door", "quantity": "door"})))
    return PointCatalog("s1", infos)


class Store:
    """Spool, sink and writer wired as the service wires them."""

    def __init__(self, folder: Path, config: InfluxConfig, catalog: PointCatalog) -> None:
        self.spool = Spool(folder / "spool.db")
        self.client = InfluxClient(config)
        self.writer = InfluxWriter(self.spool, self.client, config)
        self.sink = SpoolSink(self.spool, catalog, on_append=self.writer.notify)

    async def until_drained(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.spool.depth() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert self.spool.depth() == 0, f"{self.spool.depth()} lines still spooled: {self.writer.last_error}"


def counts_by_series(client: InfluxClient, measurement: str) -> dict[str, int]:
    return {series.tags["device"]: series.values[0][1]
            for series in client.query(f"SELECT count(quality) FROM {measurement} GROUP BY device")}


@pytest.mark.integration
async def test_every_reading_comes_back_with_value_quality_and_tags(influxd: LocalInfluxd, tmp_path: Path) -> None:
    catalog = make_catalog()
    store = Store(tmp_path, InfluxConfig(url=influxd.url, database="arch", flush_interval=0.05), catalog)
    await store.writer.start()
    base = time.time_ns()
    readings = [
        Reading("dev0.t", base, 18.25),
        Reading("dev0.t", base + 1, 18.5, Quality.UNCERTAIN, 'battery "low"\nsince 2 days'),
        Reading("dev1.t", base, None, Quality.COMM_FAILURE, "timeout"),
        Reading("dev1.rh", base + 5, 49.0),
        Reading("dev2.rh", base + 7, -0.5, Quality.BAD, "sentinel -32768"),
        Reading("dev0.door", base + 3, True),
        Reading("dev2.door", base + 4, False, Quality.STALE),
    ]
    store.sink.accept(readings[:3])
    store.sink.accept(readings[3:])
    await store.until_drained()
    await store.writer.stop()
    got = {}
    for measurement in ("temperature", "humidity", "state"):
        for series in store.client.query(f"SELECT * FROM {measurement} GROUP BY *"):
            for row in series.rows():
                got[(series.tags["device"] + "." + series.tags["point"], row["time"])] = (series.tags, row)
    assert len(got) == len(readings)
    for reading in readings:
        tags, row = got[(reading.point, reading.ts_ns)]
        info = catalog[reading.point]
        assert tags == {**SITE_TAGS, "room": info.room, "device": info.device, "point": info.point,
                        **({"quantity": "door"} if info.is_state else {})}
        assert row["value"] == reading.value
        assert row["quality"] == reading.quality.value
        assert (row.get("detail") or "") == reading.detail
    assert store.writer.lines_written == len(readings) and store.spool.rejected_count() == 0


@pytest.mark.integration
async def test_influxd_down_for_a_while_loses_nothing_and_duplicates_nothing(influxd: LocalInfluxd,
                                                                             tmp_path: Path) -> None:
    catalog = make_catalog(devices=4)
    config = InfluxConfig(url=influxd.url, database="arch", flush_interval=0.05, retry_max=0.2, timeout=2.0)
    store = Store(tmp_path, config, catalog)
    await store.writer.start()
    sent: Counter[str] = Counter()
    points = [info.key for info in catalog if not info.is_state]
    clock = itertools.count(time.time_ns(), 1_000)
    stop = asyncio.Event()

    async def produce() -> None:  # a poll cycle of every point every 5 ms, as a collector would
        while not stop.is_set():
            store.sink.accept([Reading(point, next(clock), 20.0 + len(sent)) for point in points])
            sent.update(catalog[point].device + "/" + catalog[point].measurement for point in points)
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(influxd.stop)
    await asyncio.sleep(1.0)
    assert store.writer.outage and store.spool.depth() > 0
    await asyncio.to_thread(influxd.start)  # same port, same data folder
    await asyncio.sleep(0.3)
    stop.set()
    await producer
    await store.until_drained()
    await store.writer.stop()
    assert not store.writer.outage and store.writer.write_failures > 0
    for measurement in ("temperature", "humidity"):
        expected = {key.split("/")[0]: n for key, n in sent.items() if key.endswith("/" + measurement)}
        assert counts_by_series(store.client, measurement) == expected
    assert store.spool.rejected_count() == 0


@pytest.mark.integration
async def test_retention_and_malformed_lines_end_in_rejected_the_rest_is_written(influxd: LocalInfluxd,
                                                                                 tmp_path: Path) -> None:
    admin = InfluxClient(InfluxConfig(url=influxd.url, database="arch"))
    admin.create_database()
    admin.query('CREATE RETENTION POLICY "short" ON "arch" DURATION 1h REPLICATION 1')
    catalog = make_catalog(devices=1)
    store = Store(tmp_path, InfluxConfig(url=influxd.url, database="arch", retention_policy="short"), catalog)
    now = time.time_ns()
    old = now - 2 * 86400 * 10**9
    good = [Reading("dev0.t", now + i, 20.0 + i) for i in range(20)]
    store.sink.accept([*good[:10], Reading("dev0.t", old, 1.0), *good[10:]])
    store.spool.append(["temperature,device=dev0 value=1.0,quality= " + str(now), catalog.encode(good[0])])
    await store.writer.start()
    await store.until_drained()
    await store.writer.stop()
    rejected = store.spool.rejected()
    assert len(rejected) == 2
    by_line = {r.line: r.reason for r in rejected}
    assert "points beyond retention policy" in by_line[catalog.encode(Reading("dev0.t", old, 1.0))]
    assert "unable to parse" in by_line["temperature,device=dev0 value=1.0,quality= " + str(now)]
    (series,) = store.client.query('SELECT value FROM "arch"."short"."temperature"')
    assert [row[1] for row in series.values] == [r.value for r in good]


@pytest.mark.integration
async def test_basic_auth_and_refused_credentials(tmp_path: Path) -> None:
    server = LocalInfluxd(tmp_path / "influxd", auth=("admin", "s3cret'!"))
    server.start()
    try:
        good = InfluxConfig(url=server.url, database="arch", username="admin", password="s3cret'!")
        bad = InfluxConfig(url=server.url, database="arch", username="admin", password="wrong")
        with pytest.raises(InfluxRefused) as caught:
            InfluxClient(bad).write(["m v=1 1"])
        assert caught.value.status == 401, caught.value
        with pytest.raises(InfluxRefused):
            InfluxClient(InfluxConfig(url=server.url, database="arch")).query("SHOW DATABASES")

        catalog = make_catalog(devices=1)
        refused = Store(tmp_path, bad, catalog)
        await refused.writer.start()
        refused.sink.accept([Reading("dev0.t", 1_000, 21.0)])
        await asyncio.sleep(0.3)
        await refused.writer.stop()
        assert refused.writer.outage and refused.spool.depth() == 1 and refused.spool.rejected_count() == 0

        refused.spool.close()
        fixed = Store(tmp_path, good, catalog)  # the same spool file, with the right password
        await fixed.writer.start()
        await fixed.until_drained()
        await fixed.writer.stop()
        (series,) = fixed.client.query("SELECT value, quality FROM temperature")
        assert series.values == [[1_000, 21.0, "good"]]
    finally:
        server.stop()


# -- escaping, as the real server reads it ------------------------------------------------------

NAME_CHARS = ' ,="\n\t\raZ09_-.#é中🙂'
TEXT_CHARS = NAME_CHARS + "\\"
name = st.text(alphabet=NAME_CHARS, min_size=1, max_size=10).filter(lambda s: not s.startswith("#"))
tag_value = st.text(alphabet=TEXT_CHARS, min_size=1, max_size=10).filter(lambda s: not s.endswith("\\"))
field_value = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                        st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(),
                        st.text(alphabet=TEXT_CHARS, max_size=20))


def as_influx_name(value: str) -> str:
    return value.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


@pytest.fixture(scope="module")
def shared_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxd]:
    server = LocalInfluxd(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


def read_everything(client: InfluxClient) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    found = []
    for series in client.query("SELECT * FROM /.*/ GROUP BY *"):
        for row in series.rows():
            tags = {k: v for k, v in series.tags.items() if v != ""}  # GROUP BY * lists other measurements' keys
            found.append((series.name, tags, {k: v for k, v in row.items() if k != "time" and v is not None}))
    return found


_databases = itertools.count()


@pytest.mark.integration
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(measurement=name, tags=st.dictionaries(name, tag_value, max_size=3),
       fields=st.dictionaries(name, field_value, min_size=1, max_size=3))
def test_influxd_stores_exactly_what_was_encoded(shared_influxd: LocalInfluxd, measurement: str,
                                                 tags: dict[str, str], fields: dict[str, Any]) -> None:
    """Tag values may hold backslashes (not at the end); names may not (see test_lineprotocol.py)."""
    keys = [as_influx_name(k) for k in [*tags, *fields]]
    if len(set(keys)) < len(keys) or "time" in keys:  # one name as both tag and field: InfluxDB refuses that
        return
    client = InfluxClient(InfluxConfig(url=shared_influxd.url, database=f"prop{next(_databases)}"))
    client.create_database()
    try:
        # neighbours before and after: a line that swallowed the newline between lines would take one with it
        client.write(["zz_before v=1i 1", encode_line(measurement, tags, fields, 2), "zz_after v=1i 3"])
        found = read_everything(client)
    finally:
        client.query(f"DROP DATABASE {quote_ident(client.database)}")
    expected = (as_influx_name(measurement), {as_influx_name(k): as_influx_name(v) for k, v in tags.items()},
                {as_influx_name(k): v for k, v in fields.items()})
    floats = {as_influx_name(k) for k, v in fields.items() if isinstance(v, float)}
    for _, _, values in found:  # JSON writes a whole float without a point (2.8e16 as 28...0): read it as one
        for key in floats & values.keys():
            values[key] = float(values[key])
    assert sorted(found, key=lambda item: item[0]) == sorted(
        [expected, ("zz_after", {}, {"v": 1}), ("zz_before", {}, {"v": 1})], key=lambda item: item[0])


@pytest.mark.integration
def test_what_influxd_does_with_the_cases_series_key_refuses(shared_influxd: LocalInfluxd) -> None:
    client = InfluxClient(InfluxConfig(url=shared_influxd.url, database="refused"))
    client.create_database()
    client.write(["#m v=1i 1"])  # a comment: 204, and nothing stored
    assert read_everything(client) == []
    with pytest.raises(InfluxRejected, match="invalid tag format"):
        client.write(["m,t=a\\ v=1i 1"])  # a tag value ending in a backslash escapes the space after it
    client.write(["m,t=a\\  v=1i 1"])  # the reference encoder's way out: InfluxDB stores "a ", not "a\"
    assert read_everything(client) == [("m", {"t": "a "}, {"v": 1})]
