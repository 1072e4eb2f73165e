"""`stackwatch run`: build the parts from the config, start them in order, stop them in reverse.

One asyncio process (ARCHITECTURE.md, "Processes and scale"). The store and
the alarm engine come up before the collectors, so that nothing a collector
accepts has nowhere to go and no first reading escapes the rules; on stop the
collectors end first, then the engine, and the writer drains what it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alarms.engine import AlarmEngine, Output
from alarms.model import AlarmEvent, AlarmStatus
from alarms.notify.acknowledge import Acknowledger
from alarms.notify.notifier import Notifier
from alarms.outputs import EventSpoolOutput, MqttAlarmPublisher
from alarms.ruleset import NOTIFIER_ALARM
from alarms.runtime import AlarmRuntime
from api.app import create_app
from api.audit import AuditTrail
from api.auth import UserStore, ensure_admin, make_auth
from api.history import HistoryQuery
from api.live import LiveFeed
from api.routes_control import build_control_router
from api.services import ApiServices
from collector.modbus.poller import ModbusCollector
from collector.mqtt.split import SplitMqttCollector
from collector.mqtt.subscriber import MqttCollector
from control.modbus_io import ModbusActuatorIO
from control.plan import ControlPlan
from control.runtime import ControlRuntime
from reports.schedule import MonthlyReport
from reports.schedule import schedule as schedule_reports

from .catalog import PointCatalog
from .clock import Clock, SystemClock
from .config.devices import ModbusDevice, MqttDevice
from .config.loader import resolve_state_dir
from .config.model import SiteConfig
from .heap import release_free_memory, settle_heap, tune_allocator
from .livestate import LiveState
from .observe import ServiceParts, health, metrics
from .pipeline import ReadingHub
from .store.influx import InfluxClient
from .store.rollup import Rollup
from .store.rollup import schedule as schedule_rollup
from .store.sink import SpoolSink
from .store.spool import Spool, ledger_keys
from .store.writer import InfluxWriter

log = logging.getLogger("stackwatch.service")
STATUS_INTERVAL = 60.0


class Service:
    def __init__(self, config: SiteConfig, config_path: str | Path, clock: Clock | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = clock or SystemClock()
        self.state_dir = resolve_state_dir(config, config_path)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        storage = config.storage
        self.catalog = PointCatalog.from_config(config)
        self.spool = Spool.from_config(storage.spool, self.state_dir)
        self.influx = InfluxClient(storage.influxdb)
        self.writer = InfluxWriter(self.spool, self.influx, storage.influxdb, self.clock)
        self.sink = SpoolSink(self.spool, self.catalog, on_append=self.writer.notify)
        self.hub = ReadingHub(self.sink)
        self.live = LiveState()
        self.hub.add_listener(self.live)
        self.feed = LiveFeed()  # the dashboard's server-sent events
        self.hub.add_listener(self.feed.readings)
        self.audit = AuditTrail(self.state_dir / config.api.audit)
        self.alarm_publisher = self._alarm_publisher()
        self.notifier = (Notifier(config, self.state_dir, self.clock, on_failure=self._notifier_failing)
                         if config.notify.routes else None)
        self.alarms = AlarmRuntime(config, self.catalog, self.state_dir, self.clock, self._alarm_outputs(),
                                   audit=self.audit)
        self.hub.add_listener(self.alarms)
        self.acknowledger = (Acknowledger(config.notify, self.notifier.secret, self.notifier.store,
                                          self._acknowledge_group, audit=self.audit)
                             if self.notifier is not None else None)
        self.users = UserStore(self.state_dir / config.api.users, audit=self.audit, config=config.api,
                               clock=self.clock.now)
        self.rollup = Rollup(InfluxClient(storage.influxdb), self.catalog, self.clock)
        self.scheduler: AsyncIOScheduler | None = None
        self._api_server: uvicorn.Server | None = None
        self._api_task: asyncio.Task[None] | None = None
        has_modbus = any(isinstance(d, ModbusDevice) for d in config.devices)
        has_mqtt = any(isinstance(d, MqttDevice) for d in config.devices)
        self.modbus = ModbusCollector(config, self.hub, self.clock) if has_modbus else None
        self.mqtt = self._mqtt_collector() if has_mqtt else None
        self._alarm_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control-alarms")
        self.control = self._control()
        if self.control is not None:
            self.hub.add_listener(self.control)
        self._status_task: asyncio.Task[None] | None = None

    @property
    def mqtt_raw_path(self) -> Path:
        """The MQTT receiver process's raw spool, beside the reading spool."""
        return self.spool.path.with_name(f"{self.spool.path.stem}.mqtt-raw.db")

    def _mqtt_collector(self) -> MqttCollector | SplitMqttCollector:
        assert self.config.mqtt is not None
        if self.config.mqtt.receiver == "process":
            return SplitMqttCollector(self.config, self.hub, self.clock, self.mqtt_raw_path,
                                      fsync=self.config.storage.spool.fsync, ledger_from=self.spool.path)
        return MqttCollector(self.config, self.hub, self.clock)

    def _adopt_raw_spool(self) -> None:
        """`mqtt.receiver: thread` after `process`: map what the receiver acknowledged and nobody mapped yet,
        and know its message keys, so that a switch after a crash loses nothing and stores nothing twice."""
        if not isinstance(self.mqtt, MqttCollector) or not self.mqtt_raw_path.exists():
            return
        self.spool.preload_keys(ledger_keys(self.mqtt_raw_path))
        leftover = SplitMqttCollector(self.config, self.hub, self.clock, self.mqtt_raw_path, spawn=False)
        leftover.start()
        leftover.stop()
        if leftover.messages_received:
            log.info("mapped %d MQTT messages left in %s by the receiver process", leftover.messages_received,
                     self.mqtt_raw_path)

    def _control(self) -> ControlRuntime | None:
        settings = self.config.control
        if not settings.enabled or not settings.rooms or self.modbus is None:
            return None

        def events(lines: Sequence[str]) -> None:
            self.spool.append(lines)
            self.writer.notify()

        return ControlRuntime(
            ControlPlan.from_config(self.config, self.catalog), ModbusActuatorIO(self.modbus), self.clock,
            self.state_dir / settings.journal, interval=settings.interval, input_max_age=settings.input_max_age,
            max_override=settings.max_override, alarms=self._control_alarm, events=events,
            site=self.config.site.id, buildings={room.id: room.building for room in self.config.rooms})

    def _control_alarm(self, key: str, active: bool) -> None:
        """Control alarms go to the engine's thread in order, without holding up the event loop that polls."""
        self._alarm_calls.submit(self.alarms.call, lambda engine, now: engine.set_condition(key, active, now))

    def _alarm_publisher(self) -> MqttAlarmPublisher | None:
        if self.config.mqtt is None or not self.config.alarms.publish_mqtt:
            return None
        return MqttAlarmPublisher(self.config.mqtt, self.config.site.id, self.config.alarms.mqtt_prefix)

    def _alarm_outputs(self) -> list[Output]:
        """Journaled alarm events go to InfluxDB `events` (through the spool) and to MQTT."""
        to_spool = EventSpoolOutput(self.spool, on_append=self.writer.notify)
        outputs: list[Output] = [lambda events, _statuses: to_spool(events)]
        publisher = self.alarm_publisher
        if publisher is not None:
            def publish(events: Sequence[AlarmEvent], statuses: Sequence[AlarmStatus]) -> None:
                definition = self.alarms.engine.definition
                publisher.publish(events, [(status, definition(status.key)) for status in statuses])
            outputs.append(publish)
        if self.notifier is not None:
            outputs.append(self.notifier)
        outputs.append(self.feed.alarm_events)
        return outputs

    def _notifier_failing(self, failing: bool, detail: str) -> None:
        """The notifier could not reach anyone (or can again): its own alarm, on the dashboard at least."""
        log.log(logging.ERROR if failing else logging.INFO, "notifier %s: %s",
                "cannot deliver" if failing else "delivers again", detail)
        self.alarms.call(lambda engine, now: engine.set_condition(NOTIFIER_ALARM, failing, now))

    def _acknowledge_group(self, ticket: int, who: str, comment: str) -> str:
        def act(engine: AlarmEngine, now: float) -> str:
            events = engine.acknowledge_group(ticket, who, comment, now)
            return f"acknowledged {len(events)} alarm(s): " + ", ".join(f"#{e.occurrence}" for e in events)
        return self.alarms.call(act)

    async def _start_api(self) -> None:
        settings = self.config.api
        if not settings.enabled:
            return
        first = ensure_admin(self.users, self.state_dir)
        if first is not None:
            log.warning("first start: admin password written to %s; change it with `stackwatch users passwd admin`",
                        first)
        parts = ServiceParts(hub=self.hub, spool=self.spool, spool_config=self.config.storage.spool,
                             writer=self.writer, alarms=self.alarms, modbus=self.modbus, mqtt=self.mqtt,
                             notifier=self.notifier)
        services = ApiServices(
            config=self.config, catalog=self.catalog, live=self.live, now=self.clock.now, feed=self.feed,
            alarms=self.alarms, acknowledger=self.acknowledger, audit=self.audit,
            history=HistoryQuery(InfluxClient(self.config.storage.influxdb), self.catalog,
                                 timezone=self.config.site.timezone),
            health=lambda: health(parts), metrics=lambda: metrics(parts),
            config_digest=hashlib.sha256(Path(self.config_path).read_bytes()).hexdigest(),
            control_journal=self.control.journal if self.control is not None else None)
        auth = make_auth(self.users, settings)
        app = create_app(settings, services, auth.require, extra_routers=(auth.router, auth.users_router,
                                       build_control_router(self.control, auth.require, self.audit)))
        self._api_server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                                         log_level="warning", lifespan="off", access_log=False))
        self._api_task = asyncio.create_task(self._serve_api(self._api_server), name="api")
        for _ in range(100):
            if self._api_server.started or self._api_task.done():
                break
            await asyncio.sleep(0.05)
        if self._api_task.done():
            log.error("API could not start on %s:%d (port in use?); alarms and paging go on without it",
                      settings.host, settings.port)
        else:
            log.info("API listening on http://%s:%d", settings.host, settings.port)

    @staticmethod
    async def _serve_api(server: uvicorn.Server) -> None:
        """uvicorn answers a port in use with sys.exit: that must end the API, never the alarms."""
        with contextlib.suppress(SystemExit):
            await server.serve()

    def _audit_start(self) -> None:
        """Which site file the service runs on, by hash; a different one than last time is a config change."""
        digest = hashlib.sha256(Path(self.config_path).read_bytes()).hexdigest()
        starts = self.audit.rows(action="service.start", limit=100_000)
        previous = starts[-1].detail.get("config_sha256") if starts else None
        if previous is not None and previous != digest:
            self.audit.append("system", "config.change", str(self.config_path),
                              detail={"from_sha256": previous, "to_sha256": digest})
        self.audit.append("system", "service.start", str(self.config_path), detail={"config_sha256": digest})

    async def start(self) -> None:
        tune_allocator()  # before the threads start: arenas are made as threads first allocate
        self._audit_start()
        await self.writer.start()
        if self.alarm_publisher is not None:
            self.alarm_publisher.start()
        self.alarms.start()
        if self.notifier is not None:
            self.notifier.start()
        await self._start_api()
        self.scheduler = AsyncIOScheduler(timezone=self.config.site.timezone)
        schedule_rollup(self.scheduler, self.rollup)
        schedule_reports(self.scheduler, MonthlyReport(self.config, self.config_path, self.clock.now))
        self.scheduler.start()
        settle_heap()
        if self.mqtt is not None:
            self._adopt_raw_spool()
            self.mqtt.start()
        if self.modbus is not None:
            await self.modbus.start()
        if self.control is not None:
            await self.control.start()
        self._status_task = asyncio.create_task(self._report_status(), name="status")
        log.info("stackwatch running: site %s, %d points, spool %s", self.config.site.id, len(self.catalog),
                 self.spool.path)

    async def stop(self) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
        if self.control is not None:
            await self.control.stop()
        if self.modbus is not None:
            await self.modbus.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self._api_server is not None and self._api_task is not None:
            self._api_server.should_exit = True
            await asyncio.wait([self._api_task], timeout=5)
        self._alarm_calls.shutdown(wait=True)  # control alarms decided before the stop reach the journal
        self.alarms.stop()
        if self.notifier is not None:
            self.notifier.stop()
        if self.alarm_publisher is not None:
            self.alarm_publisher.stop()
        await self.writer.stop()
        self.spool.close()
        log.info("stackwatch stopped; %d readings left in the spool for next start", self.spool.depth())

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            release_free_memory()
            log.info("status: %d readings accepted, %d in spool, %d points live, %d alarms not normal",
                     self.hub.accepted, self.spool.depth(), len(self.live), len(self.alarms.engine.not_normal()))


async def serve(config: SiteConfig, config_path: str | Path) -> None:
    service = Service(config, config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()


def run_service(config: SiteConfig, config_path: str | Path) -> int:
    asyncio.run(serve(config, config_path))
    return 0
