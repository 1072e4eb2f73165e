"""The narrow part of a paho client the collector uses, so tests can pass a small hand-written fake.

The factory is told the session settings (persistent session, manual
acknowledgement) rather than choosing them, so a fake can check them and a
real client cannot be built with the wrong ones by accident.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from stackwatch.config.services import MqttBroker


class BrokerSettable(Protocol):
    """What `apply_broker` needs: the collector's and the alarm publisher's clients both have it."""

    def username_pw_set(self, username: str | None, password: str | None = None) -> None: ...

    def tls_set(self, ca_certs: str | None = None) -> None: ...

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None: ...


def apply_broker(client: BrokerSettable, broker: MqttBroker) -> None:
    """Credentials, TLS and reconnect back-off from the site's `mqtt` section."""
    if broker.username is not None:
        password = broker.password.get_secret_value() if broker.password is not None else None
        client.username_pw_set(broker.username, password)
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file)
    # paho annotates int, but its back-off arithmetic is float-safe (Client._reconnect_wait).
    client.reconnect_delay_set(min_delay=cast(int, broker.reconnect_min), max_delay=cast(int, broker.reconnect_max))


class MqttClient(BrokerSettable, Protocol):
    on_connect: Any
    on_disconnect: Any
    on_message: Any

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None: ...

    def loop_start(self) -> object: ...

    def loop_stop(self) -> object: ...

    def disconnect(self) -> object: ...

    def subscribe(self, topic: list[tuple[str, int]]) -> object: ...

    def ack(self, mid: int, qos: int) -> object: ...


class ClientFactory(Protocol):
    def __call__(self, client_id: str, *, clean_session: bool, manual_ack: bool) -> MqttClient: ...


class _QuietAfterDisconnect(logging.Filter):
    """paho 2.2 runs its loop once more after a clean disconnect and logs "Client is not connected" as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_paho_log = logging.getLogger("collector.mqtt.paho")
_paho_log.addFilter(_QuietAfterDisconnect())


def new_paho(client_id: str, *, clean_session: bool, manual_ack: bool = False) -> paho.Client:
    """A paho 2.x client with the VERSION2 callbacks; callback exceptions never end its network thread."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=MQTTProtocolVersion.MQTTv311, manual_ack=manual_ack)
    client.suppress_exceptions = True
    client.enable_logger(_paho_log)
    return client


def paho_client(client_id: str, *, clean_session: bool, manual_ack: bool) -> MqttClient:
    return cast(MqttClient, new_paho(client_id, clean_session=clean_session, manual_ack=manual_ack))
