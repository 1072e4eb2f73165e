"""The private servers every integration test stands on: ports that cannot be taken from under them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stackwatch import localservers
from stackwatch.localservers import LocalInfluxd, LocalMosquitto, free_port


def test_free_ports_are_outside_the_ephemeral_range_and_never_repeat() -> None:
    ephemeral_low, _ = localservers._ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port < ephemeral_low for port in ports)


def _occupy(port: int) -> socket.socket:
    """Bound, not listening: as the local end of an outgoing connection holds a port."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    return holder


@pytest.mark.parametrize("server_class", [LocalInfluxd, LocalMosquitto])
def test_a_port_taken_before_the_first_start_moves_the_server(tmp_path: Path, server_class: type) -> None:
    server = server_class(tmp_path / "server")
    taken = server.port
    with _occupy(taken):
        server.start()
        try:
            assert server.port != taken
            assert server.ready()
        finally:
            server.stop()


def test_a_started_server_keeps_its_port_and_says_when_it_is_taken(tmp_path: Path) -> None:
    server = LocalMosquitto(tmp_path / "mosquitto")
    server.start()
    port = server.port
    server.stop()
    with _occupy(port), pytest.raises(RuntimeError, match="exited at start"):
        server.start()
    assert server.port == port
    server.start()
    assert server.port == port
    server.stop()


def test_a_port_the_caller_chose_is_never_moved(tmp_path: Path) -> None:
    port = free_port()
    server = LocalMosquitto(tmp_path / "mosquitto", port=port)
    with _occupy(port), pytest.raises(RuntimeError, match="exited at start"):
        server.start()
    assert server.port == port
