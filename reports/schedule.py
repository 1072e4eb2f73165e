"""The monthly compliance report, e-mailed (issue 7): APScheduler fires on `reports.schedule` (day of the month
and time of day in the site's zone); the job builds last month's report (the calendar month before today in the
site's zone), renders it in each of `reports.formats` and sends one message per recipient through an SMTP channel
of `notify.channels` (the paging channel's connection, TLS and login code, reused).

The job gathers the report the same way the CLI does (`reports.gather.open_sources`: what the service wrote,
read-only), in a worker thread so the service's event loop keeps serving. Clock, sources and trigger are
injectable, so a test sends "last month" at once instead of waiting for the first of the month.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import smtplib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from alarms.notify.channels.smtp import SmtpSender, envelope_sender
from alarms.notify.model import Delivery
from stackwatch.config.model import SiteConfig
from stackwatch.config.notify import SmtpChannel

from .gather import Sources, gather, open_sources
from .labels import Lang, label

log = logging.getLogger(__name__)
JOB_ID = "stackwatch-monthly-report"
_MIME = {"pdf": ("application", "pdf"), "csv": ("text", "csv"), "json": ("application", "json")}


def last_month(now: float, timezone: str) -> tuple[float, float]:
    """[first day of last month 00:00, first day of this month 00:00) in the site's zone, as epoch seconds."""
    zone = ZoneInfo(timezone)
    this_month = datetime.fromtimestamp(now, zone).date().replace(day=1)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return (datetime.combine(previous, clock_time(), zone).timestamp(),
            datetime.combine(this_month, clock_time(), zone).timestamp())


def smtp_channel(config: SiteConfig) -> SmtpChannel:
    """The channel `reports.channel` names, else the first SMTP channel; ValueError when there is none."""
    wanted = config.reports.channel
    for channel in config.notify.channels:
        if isinstance(channel, SmtpChannel) and (wanted is None or channel.id == wanted):
            return channel
    if wanted is not None:
        raise ValueError(f"reports.channel: {wanted!r} is not an SMTP channel in notify.channels")
    raise ValueError("reports.recipients needs an SMTP channel in notify.channels to send through")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes


def attachments(report: dict[str, Any], history: Any, formats: Sequence[str], lang: Lang,
                stem: str) -> list[Attachment]:
    """The report in each format; the PDF draws its charts from `history` (hourly rows)."""
    from .cli import render  # the CLI's JSON and CSV, byte for byte
    from .pdf import report_pdf  # reportlab loaded only when a report is made

    found = []
    for fmt in formats:
        data = report_pdf(report, history, lang) if fmt == "pdf" else render(report, fmt).encode("utf-8")
        found.append(Attachment(f"{stem}.{fmt}", *_MIME[fmt], data))
    return found


def build_mail(sender: str, address: str, subject: str, text: str, files: Sequence[Attachment],
               lang: Lang) -> EmailMessage:
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = sender
    mail["To"] = address
    mail["Subject"] = subject
    mail["Date"] = email.utils.formatdate(localtime=True)
    domain = envelope_sender(sender).rpartition("@")[2] or "stackwatch.invalid"
    mail["Message-ID"] = email.utils.make_msgid(domain=domain)
    mail["Auto-Submitted"] = "auto-generated"
    mail["Content-Language"] = lang
    mail.set_content(text)
    for item in files:
        mail.add_attachment(item.data, maintype=item.maintype, subtype=item.subtype, filename=item.filename)
    return mail


class ReportMailer(SmtpSender):
    """The paging channel's SMTP connection (TLS, STARTTLS, login) sending a prepared message with attachments."""

    def send_mail(self, mail: EmailMessage, address: str) -> Delivery:
        def transact(smtp: smtplib.SMTP) -> Delivery:
            try:
                refused = smtp.send_message(mail, from_addr=envelope_sender(self.config.sender), to_addrs=[address])
            except smtplib.SMTPRecipientsRefused as error:  # the only recipient refused: its own code and reply
                refused = error.recipients
            if refused:
                code, reply = refused[address]
                return Delivery(ok=False, retryable=400 <= code < 500, status=f"smtp {code}",
                                response=reply.decode("utf-8", "replace"))
            return Delivery(ok=True, retryable=False, status="smtp 250")

        return self.session(transact)


def _summary(report: dict[str, Any], lang: Lang) -> str:
    """The mail's body: the key figures per room as text, so the inbox already tells which room needs a look."""
    zone = ZoneInfo(str(report["site"].get("timezone", "UTC")))
    period = report["period"]
    days = [datetime.fromtimestamp(period[k], zone).strftime("%Y-%m-%d %H:%M") for k in ("from", "to")]
    lines = [f"{label('title', lang)}: {report['site'].get('name', '')}",
             f"{label('period', lang)}: {days[0]} – {days[1]} ({zone.key})", "",
             f"{label('key_figures', lang)}:"]
    for room in report.get("rooms", []):
        key = room.get("key_figures", {})

        def pct(name: str, figures: dict[str, Any] = key) -> str:
            value = figures.get(name)
            return "–" if value is None else f"{value * 100:.1f} %"

        lines.append(f"- {room.get('name')} ({room.get('room')}): {label('t_within', lang)} "
                     f"{pct('temperature_share_within')}, {label('rh_within', lang)} {pct('humidity_share_within')}, "
                     f"{label('twpi', lang)} {key.get('twpi')}, {label('mould_days', lang)} "
                     f"{key.get('mould_risk_days')}, {label('completeness', lang)} {pct('completeness')}")
    audit = (report.get("integrity") or {}).get("audit")
    if isinstance(audit, dict):
        state = (label("audit_ok", lang).format(rows=audit.get("rows")) if audit.get("ok") else
                 label("audit_broken", lang).format(first=audit.get("first_broken"), reason=audit.get("reason")))
        lines += ["", f"{label('audit_chain', lang)}: {state}"]
    return "\n".join(lines) + "\n"


SourceOpener = Callable[[], AbstractContextManager[Sources]]


@dataclass
class MonthlyReport:
    """Last month's report to `reports.recipients`. `clock`, `sources` are injectable (tests)."""

    config: SiteConfig
    config_path: str | Path
    clock: Callable[[], float] = time.time
    sources: SourceOpener | None = None
    sent: list[tuple[str, Delivery]] = field(default_factory=list)

    def run(self) -> list[tuple[str, Delivery]]:
        """Build and send; returns each recipient's outcome (also logged). Blocking: call it in a thread."""
        settings = self.config.reports
        channel = smtp_channel(self.config)
        now = self.clock()
        start, end = last_month(now, self.config.site.timezone)
        opener = self.sources or (lambda: open_sources(self.config, self.config_path))
        with opener() as sources:
            report = gather(self.config, sources, start, end, rooms=settings.rooms or None, generated=now)
            month = datetime.fromtimestamp(start, ZoneInfo(self.config.site.timezone)).strftime("%Y-%m")
            files = attachments(report, sources.history, settings.formats, settings.lang,
                                f"compliance-{self.config.site.id}-{month}")
        subject = f"{label('title', settings.lang)} {month} · {self.config.site.name or self.config.site.id}"
        body = _summary(report, settings.lang)
        mailer = ReportMailer(channel)
        outcomes = []
        for address in settings.recipients:
            delivery = mailer.send_mail(build_mail(channel.sender, address, subject, body, files, settings.lang),
                                        address)
            outcomes.append((address, delivery))
            if delivery.ok:
                log.info("monthly report %s sent to %s", month, address)
            else:
                log.error("monthly report %s to %s failed: %s %s", month, address, delivery.status,
                          delivery.response)
        self.sent += outcomes
        return outcomes


def schedule(scheduler: BaseScheduler, job: MonthlyReport, *, trigger: Any = None) -> Any:
    """Add the monthly job (APScheduler `Job`), or None when `reports.recipients` is empty.

    No SMTP channel to send through is logged as an error at once (not on the first of the month) and the job is
    not added: a mail setting never stops the monitoring. `trigger`: any APScheduler trigger (tests fire it
    now); default a cron trigger on `reports.schedule` in the site's time zone.
    """
    settings = job.config.reports
    if not settings.recipients:
        return None
    try:
        smtp_channel(job.config)
    except ValueError as error:
        log.error("no monthly report: %s", error)
        return None
    if trigger is None:
        hour, minute = settings.schedule.time.split(":")
        trigger = CronTrigger(day=settings.schedule.day, hour=int(hour), minute=int(minute),
                              timezone=job.config.site.timezone)

    async def monthly() -> None:
        try:
            await asyncio.to_thread(job.run)
        except Exception:  # InfluxDB down, a bad font: logged, the service goes on; next month tries again
            log.exception("monthly report failed")

    return scheduler.add_job(monthly, trigger, id=JOB_ID, name="monthly compliance report", max_instances=1,
                             coalesce=True, misfire_grace_time=6 * 3600, replace_existing=True)

