"""Readiness and metrics of the running service, read from the counters each part keeps.

Nothing here asks a server anything: InfluxDB's state is what the writer last
saw, the broker's what the MQTT client last saw, a gateway's what its poller
last saw. A probe must answer in milliseconds even when half the site is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alarms.notify.notifier import Notifier
from alarms.runtime import AlarmRuntime
from api.metrics import Sample, alarm_samples
from collector.modbus.poller import ModbusCollector
from collector.mqtt.split import SplitMqttCollector
from collector.mqtt.subscriber import MqttCollector

from .config.services import SpoolConfig
from .pipeline import ReadingHub
from .store.spool import Spool
from .store.writer import InfluxWriter


@dataclass
class ServiceParts:
    hub: ReadingHub
    spool: Spool
    spool_config: SpoolConfig
    writer: InfluxWriter
    alarms: AlarmRuntime
    modbus: ModbusCollector | None = None
    mqtt: MqttCollector | SplitMqttCollector | None = None
    notifier: Notifier | None = None


def health(parts: ServiceParts) -> dict[str, dict[str, Any]]:
    depth = parts.spool.depth()
    checks: dict[str, dict[str, Any]] = {
        "influxdb": {"ok": not parts.writer.outage, "detail": parts.writer.last_error if parts.writer.outage else ""},
        "spool": {"ok": depth < parts.spool_config.backlog_warning, "depth": depth,
                  "oldest_seconds": round(parts.spool.oldest_age(), 1)},
        "alarm_engine": {"ok": parts.alarms.running},
    }
    if parts.mqtt is not None:
        checks["broker"] = {"ok": parts.mqtt.connected}
    if parts.modbus is not None:
        for gateway, stats in parts.modbus.gateway_stats.items():
            checks[f"gateway:{gateway}"] = {"ok": stats.available, "detail": stats.last_error,
                                            "cycle_seconds": round(stats.last_cycle_seconds, 3)}
    if parts.notifier is not None:
        checks["notifier"] = {"ok": not parts.notifier.failing}
    return checks


def metrics(parts: ServiceParts) -> list[Sample]:
    writer = parts.writer
    samples = [
        Sample("stackwatch_readings_accepted_total", parts.hub.accepted, "Readings accepted into the spool.",
               "counter"),
        Sample("stackwatch_spool_depth", parts.spool.depth(), "Readings waiting for InfluxDB."),
        Sample("stackwatch_spool_oldest_seconds", parts.spool.oldest_age(), "Age of the oldest spooled reading."),
        Sample("stackwatch_influx_lines_written_total", writer.lines_written, "Lines InfluxDB acknowledged.",
               "counter"),
        Sample("stackwatch_influx_write_failures_total", writer.write_failures, "Write requests that failed.",
               "counter"),
        Sample("stackwatch_influx_lines_rejected_total", writer.lines_rejected, "Lines InfluxDB refused for good.",
               "counter"),
        Sample("stackwatch_influx_write_latency_seconds", writer.last_write_latency_s, "Last write request's time."),
        Sample("stackwatch_influx_up", 0 if writer.outage else 1, "1 while InfluxDB takes writes."),
    ]
    statuses = parts.alarms.call(lambda engine, _now: list(engine.status.values()))
    samples += alarm_samples(statuses)
    samples.append(Sample("stackwatch_alarm_evaluations_total", parts.alarms.engine.evaluations,
                          "Rule evaluations.", "counter"))
    samples.append(Sample("stackwatch_alarm_queue_readings", parts.alarms.queued,
                          "Readings handed to the alarm engine and not yet evaluated."))
    samples.append(Sample("stackwatch_alarm_queue_waits_total", parts.alarms.waits,
                          "Hand-overs that waited for the alarm engine (its queue was full).", "counter"))
    if parts.notifier is not None:
        for outcome in ("sent", "retried", "next_contact", "failed"):
            samples.append(Sample("stackwatch_notifications_total", parts.notifier.outcomes[outcome],
                                  "Delivery attempts by outcome.", "counter", {"outcome": outcome}))
    if parts.mqtt is not None:
        samples.append(Sample("stackwatch_mqtt_connected", 1 if parts.mqtt.connected else 0, "MQTT session up."))
    if parts.modbus is not None:
        for gateway, stats in parts.modbus.gateway_stats.items():
            labels = {"gateway": gateway}
            samples += [
                Sample("stackwatch_poll_cycle_seconds", stats.last_cycle_seconds, "Last poll cycle's time.",
                       labels=labels),
                Sample("stackwatch_modbus_requests_total", stats.requests, "Modbus requests sent.", "counter", labels),
                Sample("stackwatch_modbus_no_responses_total", stats.no_responses, "Requests not answered.",
                       "counter", labels),
                Sample("stackwatch_gateway_up", 1 if stats.available else 0, "1 while the gateway answers.",
                       labels=labels),
            ]
    return samples
