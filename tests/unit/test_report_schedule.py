"""The monthly e-mailed report: last month in the site's zone, sent through a real (aiosmtpd) SMTP server by the
APScheduler job fired by an injected trigger and clock; refusals and a missing channel reported, never raised."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import logging
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from pydantic import ValidationError
from pypdf import PdfReader

from reports.gather import Sources
from reports.pdf import find_font
from reports.schedule import JOB_ID, MonthlyReport, last_month, schedule
from stackwatch.config.model import SiteConfig
from stackwatch.config.notify import NotifyConfig, SmtpChannel
from stackwatch.config.reports import ReportsConfig
from tests.integration.test_notify_channels import Inbox, smtp_server
from tests.unit.test_api_routes import SITE
from tests.unit.test_compliance_report import Hourly

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 06:00 on 1 February in Shanghai is still 31 January in UTC: last month must be January, not December.
NOW = datetime(2026, 2, 1, 6, 0, tzinfo=SHANGHAI).timestamp()
JANUARY = (datetime(2026, 1, 1, tzinfo=SHANGHAI).timestamp(), datetime(2026, 2, 1, tzinfo=SHANGHAI).timestamp())


def site(port: int, **reports: Any) -> SiteConfig:
    channel = SmtpChannel(type="smtp", id="mail", host="127.0.0.1", port=port, security="none",
                          sender="stackwatch <reports@archive.test>", timeout=5)
    settings = {"recipients": ["inspector@archive.test", "head@archive.test"], "formats": ["pdf", "csv"],
                "lang": "zh", **reports}
    return SITE.model_copy(update={"notify": NotifyConfig(channels=[channel]),
                                   "reports": ReportsConfig.model_validate(settings)})


def job(config: SiteConfig) -> MonthlyReport:
    return MonthlyReport(config, "site.yaml", clock=lambda: NOW,
                         sources=lambda: contextlib.nullcontext(Sources(history=Hourly(), config_digest="abc")))


def test_last_month_is_the_calendar_month_before_today_in_the_site_zone() -> None:
    assert last_month(NOW, "Asia/Shanghai") == JANUARY
    start, end = last_month(datetime(2026, 3, 31, 23, 0, tzinfo=SHANGHAI).timestamp(), "Asia/Shanghai")
    assert (end - start) / 86400 == 28  # February 2026


def test_settings_are_checked() -> None:
    assert ReportsConfig().recipients == [] and ReportsConfig().formats == ["pdf"]
    with pytest.raises(ValidationError, match="time of day"):
        ReportsConfig.model_validate({"schedule": {"day": 1, "time": "25:00"}})
    with pytest.raises(ValidationError, match="less than or equal to 28"):
        ReportsConfig.model_validate({"schedule": {"day": 31}})
    with pytest.raises(ValidationError, match="not an e-mail address"):
        ReportsConfig.model_validate({"recipients": ["inspector"]})


def test_the_default_trigger_fires_on_the_configured_day_and_time_in_the_site_zone() -> None:
    scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
    added = schedule(scheduler, job(site(25, schedule={"day": 3, "time": "07:30"})))
    assert added.id == JOB_ID and isinstance(added.trigger, CronTrigger)
    fire = added.trigger.get_next_fire_time(None, datetime(2026, 1, 31, 12, 0, tzinfo=SHANGHAI))
    assert fire == datetime(2026, 2, 3, 7, 30, tzinfo=SHANGHAI)


def test_no_recipients_or_no_smtp_channel_adds_no_job(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
    assert schedule(scheduler, job(site(25, recipients=[]))) is None
    without_channel = SITE.model_copy(update={"reports": ReportsConfig(recipients=["a@archive.test"])})
    with caplog.at_level(logging.ERROR):
        assert schedule(scheduler, job(without_channel)) is None
    assert "needs an SMTP channel" in caplog.text


def attachments(raw: bytes) -> dict[str, bytes]:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    found = {}
    for part in mail.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = payload
    return found


@pytest.mark.skipif(find_font() is None, reason="fonts-wqy-microhei is not installed")
async def test_the_job_mails_last_months_report_to_every_recipient() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monthly = job(site(port))
        scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
        schedule(scheduler, monthly, trigger=DateTrigger(run_date=datetime.now(SHANGHAI)))
        scheduler.start()
        try:
            for _ in range(300):  # the job runs in a worker thread; a PDF takes well under a second
                if len(inbox.received) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown(wait=False)
    assert sorted(r[1][0] for r in inbox.received) == ["head@archive.test", "inspector@archive.test"]
    assert [d.status for _, d in monthly.sent] == ["smtp 250", "smtp 250"]
    sender, _, raw = inbox.received[0]
    assert sender == "reports@archive.test"
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert "2026-01" in str(mail["Subject"]) and "环境合规报告" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None and "Stack 101 (r1)" in body.get_content()
    files = attachments(raw)
    assert set(files) == {"compliance-archive-2026-01.pdf", "compliance-archive-2026-01.csv"}
    assert files["compliance-archive-2026-01.csv"].decode().startswith("room,name,profile,")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(files["compliance-archive-2026-01.pdf"])).pages)
    assert "环境合规报告" in text and "2026-01-01 00:00 – 2026-02-01 00:00" in text


def test_a_refused_recipient_is_reported_and_the_others_still_get_it() -> None:
    inbox = Inbox()
    inbox.refuse["head@archive.test"] = "550 5.1.1 no such mailbox"
    with smtp_server(inbox) as port:
        outcomes = dict(job(site(port, formats=["csv"])).run())
    assert outcomes["inspector@archive.test"].ok
    refused = outcomes["head@archive.test"]
    assert not refused.ok and not refused.retryable and refused.status == "smtp 550"
    assert [r[1] for r in inbox.received] == [["inspector@archive.test"]]


@pytest.mark.parametrize(("section", "expected"), [
    ("reports: {recipients: [a@archive.test]}", "reports.recipients (line"),
    ("reports: {recipients: [a@archive.test], channel: sms}", "reports.channel"),
    ("reports: {rooms: [nowhere]}", "reports.rooms[0] (line"),
])
def test_the_site_file_says_when_the_monthly_report_could_not_be_sent(section: str, expected: str) -> None:
    from stackwatch.config import ConfigError, parse_config

    text = ("site: {id: s}\nbuildings: [{id: b}]\nrooms: [{id: r1, building: b, profile: paper}]\n"
            "notify: {channels: [{type: sms-http, id: sms, url: 'http://127.0.0.1:9/', body: '{text}'}]}\n"
            + section + "\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml")
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
