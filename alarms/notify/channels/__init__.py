"""How a message reaches a person: SMTP, HTTP SMS gateways, chat robots and webhooks."""

from __future__ import annotations

from stackwatch.config.notify import Channel, HttpSmsChannel, SmtpChannel, WebhookChannel

from ..model import Sender
from .sms import HttpSmsSender
from .smtp import SmtpSender
from .webhook import WebhookSender

__all__ = ["HttpSmsSender", "SmtpSender", "WebhookSender", "build_sender"]


def build_sender(config: Channel) -> Sender:
    """One place maps a channel's configuration to its sender, so the notifier never tests types."""
    if isinstance(config, SmtpChannel):
        return SmtpSender(config)
    if isinstance(config, HttpSmsChannel):
        return HttpSmsSender(config)
    if isinstance(config, WebhookChannel):
        return WebhookSender(config)
    raise TypeError(f"no sender for channel type {type(config).__name__}")
