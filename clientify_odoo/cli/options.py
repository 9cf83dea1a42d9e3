"""What every sub-command gets (the settings, where to print, the global options) and
the options several of them share, each declared once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from clientify_odoo.services import SERVICE_BY_NAME
from clientify_odoo.settings import Settings
from clientify_odoo.stack.broker import DEFAULT_PORT
from processors import DEFAULT_WORKER_DIR
from schemas.mapping import DEFAULT_MAPPING, MappingError, MappingFile, load_mapping
from schemas.topics import DEFAULT_PARTITIONS


class CommandError(Exception):
    """A failure to report as one clear line (no traceback) with an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Context:
    settings: Settings
    console: Console
    errors: Console


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The global options' values when given nowhere (see `CommandParser`).
GLOBAL_DEFAULTS: dict[str, Any] = {"env_file": None, "log_level": "INFO"}


class CommandParser(argparse.ArgumentParser):
    """The parser of `clientify-odoo` and of each of its sub-commands, however deep: each
    takes the global options, so `clientify-odoo connect --env-file F` works as
    `clientify-odoo --env-file F connect` does.

    `add_subparsers` makes sub-command parsers of the parser's own class, so every one
    declares the options here, and none can be left out. They default to SUPPRESS: a
    sub-command not given an option leaves what the parsers above it took, and only the
    top one sets the real defaults (`GLOBAL_DEFAULTS`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.add_argument_group("global options (before or after the command)")
        group.add_argument(
            "--env-file",
            type=Path,
            default=argparse.SUPPRESS,
            help="read settings from this file instead of ./.env",
        )
        group.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            default=argparse.SUPPRESS,
            help="how much to log (default: INFO)",
        )

    @classmethod
    def top(cls, **kwargs: Any) -> CommandParser:
        parser = cls(**kwargs)
        parser.set_defaults(**GLOBAL_DEFAULTS)
        return parser


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    """`--bootstrap`, for services that use a running cluster but never start one."""
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS, else the local "
        f"broker at 127.0.0.1:{DEFAULT_PORT})",
    )


def bootstrap_servers(args: argparse.Namespace, context: Context) -> str:
    chosen = args.bootstrap or context.settings.kafka_bootstrap_servers
    return str(chosen or f"127.0.0.1:{DEFAULT_PORT}")


def add_mapping_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="mapping file (default: MAPPING_FILE, else the built-in schemas/mapping/mapping.yaml)",
    )


def mapping_path(flag: Path | None, context: Context) -> Path:
    """The mapping in force: the flag, else MAPPING_FILE, else the built-in one."""
    return Path(flag or context.settings.mapping_file or DEFAULT_MAPPING)


def load_mapping_for(flag: Path | None, context: Context) -> MappingFile:
    try:
        return load_mapping(mapping_path(flag, context))
    except MappingError as exc:
        raise CommandError(str(exc)) from None


def add_partitions_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`--partitions`: how many partitions the keyed topics `what` has (or gets)."""
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of {what} (default {DEFAULT_PARTITIONS})",
    )


def add_worker_dir_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`--data-dir`: the worker's local table state."""
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_WORKER_DIR, help=f"{what} (default: %(default)s)"
    )


def add_metrics_arguments(parser: argparse.ArgumentParser, service: str) -> None:
    """`--metrics-port` and `--metrics-host`, shared by every long-running service."""
    port = SERVICE_BY_NAME[service].port
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=port,
        help=f"serve Prometheus /metrics and JSON /health on this port (default {port}, "
        "the port `clientify-odoo status` checks; 0 turns them off)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for --metrics-port (default 127.0.0.1: this machine only; "
        "0.0.0.0 in a container)",
    )
