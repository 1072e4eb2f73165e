"""Shared fixtures: real influxd and mosquitto on free loopback ports with temporary folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.localservers import LocalInfluxd, LocalMosquitto


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[LocalInfluxd]:
    server = LocalInfluxd(tmp_path / "influxd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[LocalMosquitto]:
    server = LocalMosquitto(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()
