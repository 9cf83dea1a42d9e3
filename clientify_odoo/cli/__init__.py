"""The `clientify-odoo` command: one module per sub-command, named after it, registered
below; `options` and `service` hold what they share."""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from clientify_odoo.cli import (
    connect,
    dlq,
    kafka,
    odoo_hooks,
    poll,
    reconcile,
    replay,
    report,
    sandbox,
    status,
    up,
    webhooks,
    worker,
    write,
)
from clientify_odoo.cli.options import CommandError, CommandParser, Context
from clientify_odoo.logs import secret_filter, setup_logging
from clientify_odoo.settings import SettingsError, load_settings

# Each module adds its sub-commands with `register(subparsers)`.
COMMAND_GROUPS = (
    up,
    kafka,
    sandbox,
    poll,
    webhooks,
    odoo_hooks,
    reconcile,
    worker,
    write,
    connect,
    report,
    dlq,
    status,
    replay,
)

DESCRIPTION = """\
Keep Odoo and Clientify in sync through Apache Kafka.

Odoo changes are polled, Clientify changes arrive by webhook; both become facts on
Kafka topics, Faust processors map them and emit commands, and writers apply the
commands to the other system idempotently. Without settings for real systems it runs
on built-in sandboxes, so `clientify-odoo up` works on a fresh machine.

Settings come from the environment or a .env file in the current directory:
  ODOO_URL, ODOO_USER, ODOO_API_KEY, ODOO_DB   the four Odoo connection settings
  CLIENTIFY_API_KEY, CLIENTIFY_URL             Clientify (URL defaults to the public API)
  WEBHOOK_SECRET                               secret path of the webhook URL
  ODOO_HOOK_SECRET                             secret path of Odoo's hook URL (odoo-hooks)
  KAFKA_BOOTSTRAP_SERVERS                      use this cluster; nothing is started
  MAPPING_FILE                                 what syncs (default: built-in mapping)
  TOPIC_PREFIX                                 several syncs on one cluster
Secrets are never printed."""

EPILOG = """\
examples:
  clientify-odoo up                          start everything and watch it run (Ctrl-C stops)
  clientify-odoo kafka up                    start only the local Kafka broker
  clientify-odoo kafka status                is it running, which topics exist
  clientify-odoo sandbox odoo --seed 20      a local Odoo with demo data
  clientify-odoo poll odoo --backfill        every Odoo record into Kafka, then exit
  clientify-odoo webhooks secret             make the webhook URL's secret (once)
  clientify-odoo worker                      run the processors
  clientify-odoo <command> --help            details of one command"""


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser.top(
        prog="clientify-odoo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version",
        version=f"%(prog)s {importlib.metadata.version('clientify-odoo')}",
    )  # fmt: skip
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Long-running services are often piped (compose logs, supervisors): flush per line.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    console = Console(stderr=True)
    try:
        settings = load_settings(args.env_file)
    except SettingsError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 2
    setup_logging(args.log_level, settings.secret_values())
    context = Context(settings=settings, console=Console(), errors=console)
    try:
        code: int = args.handler(args, context)
    except CommandError as exc:
        console.print(
            f"[red]error:[/red] {secret_filter().redact(str(exc))}", highlight=False, soft_wrap=True
        )
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        logging.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
