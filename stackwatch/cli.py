"""The `stackwatch` command: the service, the site file, device library, profiles, alarms, paging, users, audit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import ConfigError, SiteConfig, load_config


def config_schema() -> dict[str, object]:
    """JSON Schema of the site file, for editors (YAML language servers read it)."""
    schema = SiteConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stackwatch site configuration"
    return schema


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    points = sum(len(device.points) for device in config.devices)
    actuators = len({name for room in config.control.rooms for name in room.actuators()})
    print(f"{args.file}: ok — site {config.site.id}, {len(config.buildings)} buildings, {len(config.rooms)} rooms, "
          f"{len(config.gateways)} gateways, {len(config.devices)} devices, {points} points"
          + (f", {len(config.control.rooms)} controlled rooms, {actuators} actuators" if config.control.rooms else ""))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from collector.models import describe_models

    models = describe_models()
    if args.json:
        print(json.dumps(models, indent=2, ensure_ascii=False))
        return 0
    for model in models:
        options = ", ".join(f"{k}={v!r}" for k, v in model["options"].items())
        print(f"{model['name']:<24} {model['protocol']:<7} {model['title']}")
        if options:
            print(f"{'':<32} options: {options}")
        print(f"{'':<32} source: {model['source']}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .service import run_service

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return run_service(config, args.config)


def _cmd_api(args: argparse.Namespace) -> int:
    from api.standalone import serve

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return serve(config, args.config, host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackwatch", description="Monitoring and control for archive stack rooms.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run collectors and the store until stopped")
    run.add_argument("--config", required=True, help="site YAML file")
    run.set_defaults(handler=_cmd_run)

    api = commands.add_parser("api", help="serve the HTTP API alone, beside a running `stackwatch run`")
    api.add_argument("--config", required=True, help="site YAML file of the running service")
    api.add_argument("--host", help="listen address (default: api.host of the site file)")
    api.add_argument("--port", type=int, help="port (default: api.port; give another one on the service's machine)")
    api.set_defaults(handler=_cmd_api)

    config = commands.add_parser("config", help="check or describe the site file")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="validate a site file; errors name the path and line")
    validate.add_argument("file")
    validate.set_defaults(handler=_cmd_validate)
    schema = config_commands.add_parser("schema", help="print the JSON Schema of the site file")
    schema.add_argument("-o", "--output", help="write to this file instead of standard output")
    schema.set_defaults(handler=_cmd_schema)

    models = commands.add_parser("models", help="list the device model library")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=_cmd_models)

    from alarms.cli import add_commands
    from alarms.notify.cli import add_commands as add_notify_commands
    from api.audit_cli import add_commands as add_audit_commands
    from api.users_cli import add_commands as add_user_commands
    from control.cli import add_commands as add_control_commands
    from reports.cli import add_commands as add_report_commands

    add_commands(commands)
    add_notify_commands(commands)
    add_user_commands(commands)
    add_audit_commands(commands)
    add_report_commands(commands)
    add_control_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:
        # The collector logs each device's failure once and its recovery once; pymodbus would log every retry.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:  # `stackwatch models | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
