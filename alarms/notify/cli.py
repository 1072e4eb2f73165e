"""`stackwatch notify test|log`: try a person's contacts before a real alarm does, and read the delivery log.

`test` sends through the same channels and settings as the service, one
contact after the other, and prints each provider's answer: the first thing
to do after configuring a gateway, and a check inspectors ask to see.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from stackwatch.config import load_config
from stackwatch.config.loader import resolve_state_dir

from ..cli import explained
from ..model import Priority
from .channels import build_sender
from .model import Message, NoticeKind
from .store import NotifyStore


def _test_message(site: str, person: str, language: str) -> Message:
    if language == "zh":
        text = f"stackwatch 测试消息：{site} 能联系到 {person}。无需操作。"
        subject = "stackwatch 测试"
    else:
        text = f"stackwatch test message: {site} can reach {person}. No action needed."
        subject = "stackwatch test"
    return Message(kind=NoticeKind.PAGE, priority=Priority.LOW, subject=subject, text=text, sms=text,
                   html=f"<p>{text}</p>", language=language, data={"test": True})


def _cmd_test(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    people = {p.id: p for p in config.notify.people}
    person = people.get(args.person)
    if person is None:
        print(f"no person {args.person!r} in notify.people ({', '.join(people) or 'none configured'})",
              file=sys.stderr)
        return 2
    channels = {c.id: c for c in config.notify.channels}
    message = _test_message(config.site.name or config.site.id, person.name or person.id,
                            person.language or config.notify.language)
    reached = False
    for contact in person.contacts:
        if args.channel and contact.channel != args.channel:
            continue
        outcome = build_sender(channels[contact.channel]).send(message, contact.address)
        reached = reached or outcome.ok
        print(f"{contact.channel:<12} {contact.address:<32} {'ok' if outcome.ok else 'FAILED':<7} {outcome.status}"
              f"{'  ' + outcome.response[:200] if outcome.response else ''}")
        if outcome.ok and not args.all:
            break
    return 0 if reached else 1


def _cmd_log(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    path = resolve_state_dir(config, args.config) / "notify.db"
    if not path.exists():
        print(f"no delivery log at {path}: has the service paged yet?", file=sys.stderr)
        return 2
    store = NotifyStore(path)
    try:
        attempts = store.attempts(since=time.time() - args.hours * 3600)
    finally:
        store.close()
    if args.json:
        print(json.dumps(attempts, indent=2, ensure_ascii=False))
        return 0
    for a in attempts:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a["ts"]))
        print(f"{when}  #{a['tickets']:<10} {a['person']:<16} {a['channel']:<10} {a['address']:<28} "
              f"{'ok' if a['ok'] else 'FAILED':<7} {a['status']}")
    return 0


def add_commands(commands: Any) -> None:
    notify = commands.add_parser("notify", help="test paging and read the delivery log")
    sub = notify.add_subparsers(dest="notify_command", required=True)
    test = sub.add_parser("test", help="send a test message to a person, contact by contact")
    test.add_argument("--config", required=True)
    test.add_argument("--person", required=True)
    test.add_argument("--channel", help="only this channel")
    test.add_argument("--all", action="store_true", help="every contact, not only until one works")
    test.set_defaults(handler=explained(_cmd_test))
    log = sub.add_parser("log", help="every delivery attempt: who, how, when, what the provider said")
    log.add_argument("--config", required=True)
    log.add_argument("--hours", type=float, default=24.0)
    log.add_argument("--json", action="store_true")
    log.set_defaults(handler=explained(_cmd_log))
