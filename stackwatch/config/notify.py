"""The `notify:` section: who is paged, how, when, and how far it escalates.

People have contacts in fallback order (SMS first, then email); channels say
how a contact is reached (an SMTP server, an SMS gateway, a chat robot);
rotations say who is on call at any moment; routes say which alarms page whom,
after what delay, escalating level by level until someone acknowledges.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Duration, Identifier, StrictModel, clock_time

PriorityName = Literal["critical", "high", "medium", "low"]


class Contact(StrictModel):
    channel: Identifier = Field(description="Id of a channel in `notify.channels`.")
    address: str = Field(min_length=1, description="Phone number (E.164, +86…), e-mail address, or chat user id.")


class Person(StrictModel):
    id: Identifier
    name: str = ""
    language: Literal["zh", "en"] | None = Field(None, description="Message language; default `notify.language`.")
    contacts: list[Contact] = Field(min_length=1, description="In fallback order: the next is tried when one fails.")
    pin: SecretStr | None = Field(
        None, description="Digits that prove a reply (SMS or e-mail) is from this person. From ${ENV}, never in git."
    )

    @field_validator("pin")
    @classmethod
    def _digits(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"\d{4,8}", value.get_secret_value()):
            raise ValueError("a PIN is 4 to 8 digits")
        return value


class SmtpChannel(StrictModel):
    type: Literal["smtp"]
    id: Identifier
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="tls = implicit TLS (port 465).")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(description="From: address, e.g. 'stackwatch <alarms@archive.example>'.")
    timeout: Duration = 15.0
    ca_file: str | None = Field(None, description="CA bundle for a server with a private certificate.")


class HttpSmsChannel(StrictModel):
    """An SMS gateway over HTTP: a preset fills in URL, method, headers and body; any field may be overridden."""

    type: Literal["sms-http"]
    id: Identifier
    preset: Literal["generic", "twilio", "aliyun"] = "generic"
    url: str | None = Field(None, description="Gateway URL; templates may use {to}, {text}, {ticket}.")
    method: Literal["POST", "GET", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(
        None, description="Body template with {to}, {text}, {ticket}, {sender} (JSON-escaped in JSON bodies)."
    )
    content_type: str = "application/json"
    account: str | None = Field(None, description="Twilio account SID / Aliyun AccessKey id.")
    secret: SecretStr | None = Field(None, description="Twilio auth token / Aliyun AccessKey secret.")
    sender: str | None = Field(None, description="Sender number (Twilio) or signature name (Aliyun SignName).")
    template_code: str | None = Field(None, description="Aliyun TemplateCode of an approved template with ${text}.")
    success_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _complete(self) -> HttpSmsChannel:
        if self.preset == "generic" and (self.url is None or self.body is None):
            raise ValueError("a generic SMS gateway needs `url` and `body`")
        if self.preset in ("twilio", "aliyun") and (self.account is None or self.secret is None):
            raise ValueError(f"the {self.preset} preset needs `account` and `secret`")
        if self.preset == "aliyun" and (self.sender is None or self.template_code is None):
            raise ValueError("the aliyun preset needs `sender` (SignName) and `template_code`")
        if self.preset == "twilio" and self.sender is None:
            raise ValueError("the twilio preset needs `sender` (the From number)")
        return self


class WebhookChannel(StrictModel):
    """Chat robots and generic JSON webhooks; `secret` signs DingTalk requests (HMAC-SHA256 of timestamp)."""

    type: Literal["webhook"]
    id: Identifier
    style: Literal["wecom", "dingtalk", "generic"] = "generic"
    url: str
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10.0


Channel = Annotated[SmtpChannel | HttpSmsChannel | WebhookChannel, Field(discriminator="type")]


class Override(StrictModel):
    """Someone else is on call for a while: a holiday, a swap, sick leave."""

    start: datetime = Field(description="ISO 8601; without a zone it is the site's time zone.")
    end: datetime
    person: Identifier
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Rotation(StrictModel):
    id: Identifier
    shift: Literal["daily", "weekly"] = "weekly"
    handover: str = Field("08:30", description="Time of day the shift changes hands, in the site's time zone.")
    start: date = Field(description="Date of the first shift (the first member's); weekly shifts start that weekday.")
    members: list[Identifier] = Field(min_length=1, description="People ids, in turn order.")
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("handover")
    @classmethod
    def _handover(cls, value: str) -> str:
        return clock_time(value)


class Match(StrictModel):
    """Alarms a route applies to; an unset field matches everything, a list matches any of its values."""

    priority: list[PriorityName] | None = None
    building: list[str] | None = None
    room: list[str] | None = None
    cause: list[str] | None = None


class Level(StrictModel):
    after: Duration = Field(0.0, description="Since the alarm was first paged; level 1 usually 0.")
    targets: list[str] = Field(
        min_length=1, description="`person:<id>` or `rotation:<id>` (whoever is on call when the level is due)."
    )


class Route(StrictModel):
    id: Identifier
    match: Match = Field(default_factory=Match)
    delay: Duration = Field(
        0.0, description="Wait this long after the alarm is raised before paging (it still shows at once).")
    levels: list[Level] = Field(min_length=1)
    chat: list[Identifier] = Field(default_factory=list, description="Chat channels that also get every message.")
    repeat: bool = Field(True, description="Page the last level again at the priority's re-alarm interval.")
    notify_return: bool = Field(True, description="Tell those paged when it is acknowledged or back to normal.")
    continue_matching: bool = Field(False, description="Also try the routes after this one.")


def _quiet_default() -> list[PriorityName]:
    return ["medium", "low"]


class QuietHours(StrictModel):
    start: str = "22:00"
    end: str = "07:00"
    applies_to: list[PriorityName] = Field(
        default_factory=_quiet_default, description="Priorities held back at night (critical never is).")

    @field_validator("start", "end")
    @classmethod
    def _times(cls, value: str) -> str:
        return clock_time(value)

    @field_validator("applies_to")
    @classmethod
    def _never_critical(cls, value: list[str]) -> list[str]:
        if "critical" in value:
            raise ValueError("critical alarms ignore quiet hours: leave `critical` out")
        return value


class NotifyConfig(StrictModel):
    base_url: str = Field(
        "http://127.0.0.1:8080", description="Where people's phones reach stackwatch: acknowledge links start here.")
    link_secret: SecretStr | None = Field(
        None, description="Key that signs acknowledge links (${ENV}); unset: generated once and kept in state_dir.")
    link_ttl: Duration = Field(86400.0, description="How long an acknowledge link works.")
    language: Literal["zh", "en"] = "zh"
    group_window: Duration = Field(30.0, description="Alarms of one room and cause within this window: one message.")
    flood_threshold: int = Field(
        10, ge=2, description="More alarms than this in one window go out as one summary per person.")
    retry_max: int = Field(3, ge=0, le=10, description="Retries of a failed send before the next contact is tried.")
    retry_backoff: Duration = Field(5.0, description="First retry delay; doubles each time.")
    working_hours: Literal["opening_hours"] = Field(
        "opening_hours", description="Low-priority pages wait for `alarms.opening_hours`.")
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    people: list[Person] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    rotations: list[Rotation] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        people = {p.id for p in self.people}
        channels = {c.id: c for c in self.channels}
        rotations = {r.id for r in self.rotations}
        for section, ids in (("people", [p.id for p in self.people]), ("channels", list(channels)),
                             ("rotations", [r.id for r in self.rotations]), ("routes", [r.id for r in self.routes])):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{section}: duplicate id {next(i for i in ids if ids.count(i) > 1)!r}")
        for person in self.people:
            for contact in person.contacts:
                if contact.channel not in channels:
                    raise ValueError(f"people.{person.id}: unknown channel {contact.channel!r}")
        for rotation in self.rotations:
            for member in [*rotation.members, *(o.person for o in rotation.overrides)]:
                if member not in people:
                    raise ValueError(f"rotations.{rotation.id}: unknown person {member!r}")
        for route in self.routes:
            for level in route.levels:
                for target in level.targets:
                    kind, _, name = target.partition(":")
                    known = people if kind == "person" else rotations if kind == "rotation" else None
                    if known is None or name not in known:
                        raise ValueError(f"routes.{route.id}: target {target!r} is not person:<id> or "
                                         "rotation:<id> of a configured one")
            for chat in route.chat:
                if chat not in channels or not isinstance(channels[chat], WebhookChannel):
                    raise ValueError(f"routes.{route.id}: chat {chat!r} is not a webhook channel")
        return self
