"""From the site file to the complete alarm set: every room, point, device and gateway gets its alarms.

A site file needs no alarm rules written out: a humidity point in a paper stack
gets high and low limits from the paper profile, a rate-of-change, a daily
fluctuation and a mould-risk rule; a fire zone gets a critical fire alarm; every
point gets sensor-fault and no-data alarms, every device communication loss.
The `alarms:` section only tunes delays, deadbands and priorities.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from stackwatch.catalog import PointCatalog, PointInfo
from stackwatch.config.devices import ModbusDevice
from stackwatch.config.model import SiteConfig

from .calendar import OpeningCalendar
from .model import AlarmDefinition, Priority
from .profiles import EffectiveLimits, effective_limits
from .rules import (
    CommLossRule,
    CondensationRule,
    FluctuationRule,
    LimitRule,
    RateRule,
    Rule,
    SensorFaultRule,
    StaleRule,
    StateRule,
    SustainedRule,
)

# Priority of each cause (ARCHITECTURE.md: critical = fire, water, intrusion); `alarms.cause_priority` overrides.
DEFAULT_PRIORITY: dict[str, Priority] = {
    "fire": Priority.CRITICAL, "smoke": Priority.CRITICAL, "water_leak": Priority.CRITICAL,
    "suppression_pre_discharge": Priority.CRITICAL, "suppression_discharge": Priority.CRITICAL,
    "door_forced": Priority.CRITICAL, "intrusion": Priority.CRITICAL,
    "fire_pre_alarm": Priority.HIGH, "fire_trouble": Priority.HIGH, "gateway_comm_loss": Priority.HIGH,
    "temperature_high": Priority.HIGH, "temperature_low": Priority.HIGH, "humidity_high": Priority.HIGH,
    "humidity_low": Priority.HIGH, "mould_risk": Priority.HIGH, "condensation_risk": Priority.HIGH,
    "fire_zone_disabled": Priority.MEDIUM, "leak_cable_fault": Priority.MEDIUM, "door_held_open": Priority.MEDIUM,
    "temperature_rate": Priority.MEDIUM, "humidity_rate": Priority.MEDIUM, "temperature_fluctuation": Priority.MEDIUM,
    "humidity_fluctuation": Priority.MEDIUM, "comm_loss": Priority.MEDIUM, "no_data": Priority.MEDIUM,
    "sensor_fault": Priority.MEDIUM, "leak_contamination": Priority.LOW, "calibration_due": Priority.LOW,
    "notification_failure": Priority.HIGH,
    "control_failure": Priority.HIGH, "control_interlock": Priority.HIGH, "control_input": Priority.MEDIUM,
}

# Discrete quantities and the alarm each raises when true.
DISCRETE: dict[str, tuple[str, str]] = {
    "fire": ("fire", "Fire alarm"),
    "smoke": ("smoke", "Smoke detected"),
    "fire_pre_alarm": ("fire_pre_alarm", "Fire pre-alarm"),
    "fire_trouble": ("fire_trouble", "Fire detection trouble: the zone may not detect a fire"),
    "fire_zone_disabled": ("fire_zone_disabled", "Fire zone disabled: no detection in this zone"),
    "suppression_pre_discharge": ("suppression_pre_discharge", "Gas suppression pre-discharge: leave the room"),
    "suppression_discharge": ("suppression_discharge", "Gas suppression discharged"),
    "water_leak": ("water_leak", "Water leak"),
    "leak_cable_break": ("leak_cable_fault", "Leak detection cable broken: leaks go undetected"),
    "leak_contamination": ("leak_contamination", "Leak detection cable contaminated"),
    "door_forced": ("door_forced", "Door forced"),
}
SURFACE_QUANTITIES = ("surface_temperature", "supply_air_temperature")
GOOD_ONLY = frozenset({"smoke"})  # a smoke detector's self-test is `uncertain`: never a fire
NOTIFIER_ALARM = "notifier:delivery"  # raised by the notifier when it cannot reach anyone
# Raised by the control runtime (control/runtime.py names them the same way).
CONTROL_FAILED = "control/{actuator}:command_failed"
CONTROL_INPUT = "control/{room}.{loop}:input_bad"
CONTROL_INTERLOCK = "control/{room}:interlock"


@dataclass
class RuleSet:
    """Every alarm of the site with the rule that decides it, indexed the way the engine looks them up."""

    site: str
    timezone: str
    definitions: dict[str, AlarmDefinition] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    value_rules: dict[str, list[Rule]] = field(default_factory=lambda: defaultdict(list))  # point → rules
    quality_rules: dict[str, list[Rule]] = field(default_factory=lambda: defaultdict(list))
    room_feeds: dict[str, list[CondensationRule]] = field(default_factory=lambda: defaultdict(list))
    feed_quantity: dict[str, str] = field(default_factory=dict)  # room T/RH point → its quantity
    good_only: set[str] = field(default_factory=set)  # points whose uncertain readings decide nothing
    suppressors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # alarm → who hides it
    dependents: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # suppressor → hidden
    gateway_devices: dict[str, list[str]] = field(default_factory=dict)  # gateway alarm → device comm alarms
    calibration: dict[str, dt.date] = field(default_factory=dict)  # calibration alarm → due date
    limits: dict[str, EffectiveLimits] = field(default_factory=dict)  # room → limits

    def add(self, definition: AlarmDefinition, rule: Rule | None) -> None:
        self.definitions[definition.key] = definition
        if rule is not None:
            self.rules[definition.key] = rule

    def suppress(self, hidden: str, by: str) -> None:
        self.suppressors[hidden].append(by)
        self.dependents[by].append(hidden)

    def today(self, now: float) -> dt.date:
        return dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone)).date()


class _Builder:
    def __init__(self, config: SiteConfig, catalog: PointCatalog, started: float) -> None:
        self.config = config
        self.catalog = catalog
        self.started = started
        self.alarms = config.alarms
        self.rules = RuleSet(site=config.site.id, timezone=config.site.timezone)
        self.calendar = OpeningCalendar(config.alarms.opening_hours, config.site.timezone)
        self.rooms = {room.id: room for room in config.rooms}
        self.texts: dict[str, str] = {}  # one object per distinct description: 10,000 points share ~half of them

    def priority(self, cause: str) -> Priority:
        override = self.alarms.cause_priority.get(cause)
        return Priority(override) if override else DEFAULT_PRIORITY.get(cause, Priority.MEDIUM)

    def define(self, key: str, cause: str, source: str, room: str | None, description: str,
               limit: float | None = None, unit: str = "") -> AlarmDefinition:
        building = self.rooms[room].building if room in self.rooms else None
        description = self.texts.setdefault(description, description)
        return AlarmDefinition(key=key, cause=cause, priority=self.priority(cause), site=self.rules.site, room=room,
                               building=building, source=source, description=description, limit=limit, unit=unit)

    def build(self) -> RuleSet:
        for room in self.config.rooms:
            self.rules.limits[room.id] = effective_limits(room)
        for info in self.catalog:
            self.point_rules(info)
        for device in self.config.devices:
            self.device_rules(device.id, device.room, device.calibration_due)
        self.gateway_rules()
        self.room_suppression()
        if self.config.notify.routes:
            self.rules.add(self.define(NOTIFIER_ALARM, "notification_failure", "notifier", None,
                                       "Notifications cannot be delivered to anyone: check the SMS gateway, "
                                       "mail server and contacts"), None)
        self.control_alarms()
        return self.rules

    def control_alarms(self) -> None:
        """Conditions the control runtime decides: a unit that does not follow, a loop with nothing to act on."""
        if not self.config.control.enabled:
            return
        for room_control in self.config.control.rooms:
            room = room_control.room
            for name in room_control.actuators():
                self.rules.add(self.define(
                    CONTROL_FAILED.format(actuator=name), "control_failure", name, room,
                    f"Control command to {name} failed or was not followed (read-back disagrees): "
                    "check the unit and its wiring"), None)
            for loop in ("humidity", "temperature"):
                if getattr(room_control, loop) is not None:
                    self.rules.add(self.define(
                        CONTROL_INPUT.format(room=room, loop=loop), "control_input", f"{room}/{loop}", room,
                        f"The {loop} loop of {room} has no good reading: it holds its units as they are"), None)
            self.rules.add(self.define(
                CONTROL_INTERLOCK.format(room=room), "control_interlock", room, room,
                "Fire or leak interlock: air handling, dampers or valves held in their safe state; "
                "an operator resets the room when it is safe"), None)

    def point_rules(self, info: PointInfo) -> None:
        key = info.key
        if info.quantity in ("temperature", "humidity") and info.room in self.rules.limits:
            self.climate_rules(info)
        elif info.is_state:
            self.state_rules(info)
        elif info.quantity in SURFACE_QUANTITIES:
            self.condensation_rule(info)
        fault = self.define(f"{key}:sensor_fault", "sensor_fault", key, info.room,
                            f"Sensor fault: {key} reads only invalid values")
        self.add_quality(info, SensorFaultRule(fault, self.alarms.sensor_fault_after, 0.0))
        if info.expected_interval:
            after = max(self.alarms.stale_min, info.expected_interval * self.alarms.stale_factor)
            stale = self.define(f"{key}:no_data", "no_data", key, info.room,
                                f"No data from {key} for more than {after:g} s")
            self.add_quality(info, StaleRule(stale, after=after, started=self.started))
            self.rules.suppress(stale.key, f"{info.device}:comm_loss")
        self.rules.suppress(fault.key, f"{info.device}:comm_loss")

    def add_value(self, info: PointInfo, rule: Rule) -> None:
        self.rules.add(rule.definition, rule)
        self.rules.value_rules[info.key].append(rule)

    def add_quality(self, info: PointInfo, rule: Rule) -> None:
        self.rules.add(rule.definition, rule)
        self.rules.quality_rules[info.key].append(rule)

    def climate_rules(self, info: PointInfo) -> None:
        limits = self.rules.limits[info.room]
        tuning = self.alarms.tuning(info.room)
        is_t = info.quantity == "temperature"
        unit, name = ("°C", "Temperature") if is_t else ("%", "RH")
        low, high = (limits.t_min, limits.t_max) if is_t else (limits.rh_min, limits.rh_max)
        deadband = tuning.t_deadband if is_t else tuning.rh_deadband
        on_delay, off_delay = tuning.limit_on_delay or 0.0, tuning.limit_off_delay or 0.0
        field_low, field_high = ("t_min", "t_max") if is_t else ("rh_min", "rh_max")
        for is_high, limit, field_name in ((True, high, field_high), (False, low, field_low)):
            side = "high" if is_high else "low"
            definition = self.define(
                f"{info.key}:{side}", f"{info.quantity}_{side}", info.key, info.room,
                f"{name} {'above' if is_high else 'below'} {limit:g} {unit} ({limits.source_of(field_name)})",
                limit, unit)
            self.add_value(info, LimitRule(definition, high=is_high, limit=limit, deadband=deadband or 0.0,
                                           on_delay=on_delay, off_delay=off_delay))
        per_hour = tuning.t_rate_per_hour if is_t else tuning.rh_rate_per_hour
        if per_hour:
            rate = self.define(f"{info.key}:rate", f"{info.quantity}_rate", info.key, info.room,
                               f"{name} changing faster than {per_hour:g} {unit}/h", per_hour, f"{unit}/h")
            self.add_value(info, RateRule(rate, per_hour=per_hour))
        allowance = limits.t_daily_range if is_t else limits.rh_daily_range
        range_field = "t_daily_range" if is_t else "rh_daily_range"
        fluctuation = self.define(
            f"{info.key}:fluctuation", f"{info.quantity}_fluctuation", info.key, info.room,
            f"{name} swing over 24 h above {allowance:g} {unit} ({limits.source_of(range_field)})", allowance, unit)
        self.add_value(info, FluctuationRule(fluctuation, allowance=allowance))
        if not is_t and tuning.mould_rh is not None and tuning.mould_after:
            mould = self.define(
                f"{info.key}:mould", "mould_risk", info.key, info.room,
                f"Mould risk: RH above {tuning.mould_rh:g} % for {tuning.mould_after / 3600:g} h "
                "(IPI: germination possible above 65 %)", tuning.mould_rh, "%")
            self.add_value(info, SustainedRule(mould, high=True, limit=tuning.mould_rh, deadband=tuning.rh_deadband
                                               or 0.0, on_delay=tuning.mould_after, off_delay=0.0))

    def state_rules(self, info: PointInfo) -> None:
        tuning = self.alarms.tuning(info.room)
        if info.quantity in GOOD_ONLY:
            self.rules.good_only.add(info.key)
        if info.quantity in DISCRETE:
            cause, text = DISCRETE[info.quantity]
            definition = self.define(f"{info.key}:{cause}", cause, info.key, info.room, f"{text} ({info.key})")
            self.add_value(info, StateRule(definition))
        elif info.quantity == "door_open":
            held = self.define(f"{info.key}:held_open", "door_held_open", info.key, info.room,
                               f"Door held open longer than {(tuning.door_held_open or 0) / 60:g} min ({info.key})")
            self.add_value(info, StateRule(held, on_delay=tuning.door_held_open or 0.0))
            forced = self.define(f"{info.key}:forced", "door_forced", info.key, info.room,
                                 f"Door opened outside opening hours ({info.key})")
            self.add_value(info, StateRule(forced, when=self.calendar.is_closed))
        elif info.quantity == "motion":
            intrusion = self.define(f"{info.key}:intrusion", "intrusion", info.key, info.room,
                                    f"Motion outside opening hours ({info.key})")
            self.add_value(info, StateRule(intrusion, when=self.calendar.is_closed))

    def condensation_rule(self, info: PointInfo) -> None:
        margin = self.alarms.tuning(info.room).condensation_margin or 0.0
        definition = self.define(f"{info.key}:condensation", "condensation_risk", info.key, info.room,
                                 f"Condensation risk: {info.quantity.replace('_', ' ')} within {margin:g} K of the "
                                 "room's dew point", margin, "K")
        rule = CondensationRule(definition, margin=margin)
        self.add_value(info, rule)
        for other in self.catalog:
            if other.room == info.room and other.quantity in ("temperature", "humidity"):
                self.rules.room_feeds[other.key].append(rule)
                self.rules.feed_quantity[other.key] = other.quantity

    def device_rules(self, device: str, room: str, calibration_due: str | None) -> None:
        comm = self.define(f"{device}:comm_loss", "comm_loss", device, room,
                           f"Device {device} not answering")
        rule = CommLossRule(comm, self.alarms.comm_loss_after, 0.0)
        self.rules.add(comm, rule)
        for info in self.catalog:
            if info.device == device:
                self.rules.quality_rules[info.key].append(rule)
        if calibration_due:
            due = dt.date.fromisoformat(calibration_due)
            calibration = self.define(f"{device}:calibration", "calibration_due", device, room,
                                      f"Calibration of {device} due on {due.isoformat()}")
            self.rules.add(calibration, None)
            self.rules.calibration[calibration.key] = due

    def gateway_rules(self) -> None:
        by_gateway: dict[str, list[str]] = defaultdict(list)
        for device in self.config.devices:
            if isinstance(device, ModbusDevice):
                by_gateway[device.gateway].append(device.id)
        for gateway, devices in by_gateway.items():
            key = f"gateway/{gateway}:comm_loss"
            self.rules.add(self.define(key, "gateway_comm_loss", gateway, None,
                                       f"Gateway {gateway} down: none of its {len(devices)} devices answers"), None)
            self.rules.gateway_devices[key] = [f"{device}:comm_loss" for device in devices]
            for device_id in devices:
                self.rules.suppress(f"{device_id}:comm_loss", key)
                for hidden in list(self.rules.dependents.get(f"{device_id}:comm_loss", [])):
                    self.rules.suppress(hidden, key)

    def room_suppression(self) -> None:
        """A fire in a room explains its temperature alarms: they are hidden while the fire alarm is active."""
        fires: dict[str, list[str]] = defaultdict(list)
        for definition in self.rules.definitions.values():
            if definition.cause == "fire" and definition.room:
                fires[definition.room].append(definition.key)
        for definition in list(self.rules.definitions.values()):
            if definition.cause.startswith("temperature_") and definition.room and definition.room in fires:
                for fire in fires[definition.room]:
                    self.rules.suppress(definition.key, fire)


def build_ruleset(config: SiteConfig, catalog: PointCatalog, started: float) -> RuleSet:
    return _Builder(config, catalog, started).build()
