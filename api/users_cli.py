"""`stackwatch users …`: API users from a shell, the way back in when no admin can log in.

It opens the same users.db as the running service (SQLite WAL allows both at
once), and changes take effect at the service's next request: roles and
disabled flags are read per request, not cached in tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alarms.cli import explained
from stackwatch.config import ConfigError, load_config
from stackwatch.config.loader import resolve_state_dir

from .audit import AuditTrail
from .auth import ADMIN_PASSWORD_FILE, UserError, UserStore, check_password, key_id
from .model import Role

Handler = Callable[[argparse.Namespace], int]


def _paths(config_path: str) -> tuple[Path, Path]:
    """The users file and the state folder, resolved as the service resolves them."""
    config = load_config(config_path)
    state_dir = resolve_state_dir(config, config_path)
    return state_dir / config.api.users, state_dir


def _store(args: argparse.Namespace, must_exist: bool = False) -> contextlib.AbstractContextManager[UserStore]:
    path, _ = _paths(args.config)
    return _open(args, path, must_exist)


@contextlib.contextmanager
def _open(args: argparse.Namespace, path: Path, must_exist: bool) -> Iterator[UserStore]:
    """The users store with its audit trail, both closed when the command is done."""
    if must_exist and not path.exists():
        raise ConfigError(args.config, [f"no users database at {path}: the service creates it (and the first "
                                        "admin) at its first start, or add a user with `stackwatch users add`"])
    config = load_config(args.config)
    audit = AuditTrail(path.parent / config.api.audit)
    store = UserStore(path, audit=audit, config=config.api)
    try:
        yield store
    finally:
        store.close()
        audit.close()


def _actor() -> str:
    """Who acted, for the audit trail: the shell account, since the CLI has no login of its own."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # containers without a passwd entry or $USER
        return "cli"


def _password(args: argparse.Namespace, name: str) -> str:
    """From standard input for scripts, else typed twice without echo: never from an argument, which would sit
    in the shell history and the process list."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ")
    return check_password(password, name)


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cmd_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if store.user(args.name) is not None:  # before the prompts: do not ask for a password to no avail
            raise UserError(f"user {args.name!r} already exists")
        store.add_user(args.name, args.role, _password(args, args.name), actor=_actor())
    print(f"added {args.name} ({args.role})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        users = store.list_users()
        keys = {u.name: [k for k in store.list_api_keys(u.name) if k.revoked is None] for u in users}
    if args.json:
        print(json.dumps([{"name": u.name, "role": u.role.value, "disabled": u.disabled, "created": u.created,
                           "apikeys": [{"id": k.id, "label": k.label, "created": k.created} for k in keys[u.name]]}
                          for u in users], indent=2, ensure_ascii=False))
        return 0
    if not users:
        print("no users")
    for u in users:
        labels = ", ".join(f"{k.id} {k.label}" for k in keys[u.name])
        print(f"{u.name:<24} {u.role.value:<10} {'disabled' if u.disabled else 'enabled':<9} "
              f"since {_when(u.created)}" + (f"  API keys: {labels}" if labels else ""))
    return 0


def _cmd_disable(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        store.disable_user(args.name, _actor(), reason=args.reason)
    print(f"disabled {args.name}: its login sessions ended, its API keys stop working")
    return 0


def _cmd_enable(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        store.enable_user(args.name, _actor())
    print(f"enabled {args.name}")
    return 0


def _cmd_role(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        store.set_role(args.name, args.role, _actor())
    print(f"{args.name} is now {args.role}")
    return 0


def _cmd_passwd(args: argparse.Namespace) -> int:
    path, state_dir = _paths(args.config)
    with _open(args, path, must_exist=True) as store:
        if store.user(args.name) is None:
            raise UserError(f"no user {args.name!r}")
        store.set_password(args.name, _password(args, args.name), _actor())
    print(f"password of {args.name} changed; its login sessions ended")
    first = state_dir / ADMIN_PASSWORD_FILE
    if args.name == "admin" and first.exists():  # it no longer opens anything; leave no stale secret behind
        first.unlink()
        print(f"removed {first}")
    return 0


def _cmd_apikey(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        secret = store.create_api_key(args.name, args.label, _actor())
    print(secret)
    print(f"API key {key_id(secret)} for {args.name} ({args.label.strip()}): shown only now, store it safely; "
          "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`", file=sys.stderr)
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    with _store(args, must_exist=True) as store:
        store.revoke_api_key(args.name, args.key, _actor())
    print(f"revoked API key {args.key} of {args.name}")
    return 0


def _refusals(handler: Handler) -> Handler:
    """A refused change is a message and exit code 1, not a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UserError as error:
            print(f"refused: {error}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, EOFError):
            print(file=sys.stderr)
            return 130
    return run


def add_commands(commands: Any) -> None:
    """Register `users` on the `stackwatch` command's sub-parsers."""
    users = commands.add_parser("users", help="API users, roles and API keys")
    sub = users.add_subparsers(dest="users_command", required=True)
    roles = [r.value for r in Role]

    def command(name: str, help_text: str, handler: Handler, target: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, help="site YAML file (the users file is in its state_dir)")
        if target:
            parser.add_argument("name", help="user name")
        parser.set_defaults(handler=explained(_refusals(handler)))
        return parser

    add = command("add", "add a user", _cmd_add)
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    listing = command("list", "users, their roles and working API keys", _cmd_list, target=False)
    listing.add_argument("--json", action="store_true")
    disable = command("disable", "disable a user (ends its sessions; its API keys stop working)", _cmd_disable)
    disable.add_argument("--reason", default="", help="why (audited)")
    command("enable", "enable a disabled user", _cmd_enable)
    role = command("role", "change a user's role", _cmd_role)
    role.add_argument("role", choices=roles)
    passwd = command("passwd", "set a user's password (ends its sessions)", _cmd_passwd)
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    apikey = command("apikey", "create an API key for a user; prints it once", _cmd_apikey)
    apikey.add_argument("--label", required=True, help="what uses the key, e.g. bms-export")
    revoke = command("revoke-key", "revoke one of a user's API keys", _cmd_revoke)
    revoke.add_argument("key", help="the key's id as `list` shows it")
