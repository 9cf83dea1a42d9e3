"""`clientify-odoo replay tables|source`: rebuild state from the log, re-run a topic."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    add_mapping_argument,
    add_partitions_argument,
    add_worker_dir_argument,
    bootstrap_servers,
    load_mapping_for,
)
from processors import replay_source, replay_tables
from schemas.envelope import Command
from schemas.topics import SOURCES, Topics

SOURCE_NAMES = [spec.name for spec in SOURCES]


def _tables(args: argparse.Namespace, context: Context) -> int:
    mapping = load_mapping_for(args.mapping, context)
    bootstrap = bootstrap_servers(args, context)
    prefix = context.settings.topic_prefix

    async def run() -> int:
        with context.console.status("Rebuilding the worker's tables from the log...") as status:
            rebuilt = await replay_tables.rebuild(
                bootstrap, prefix, mapping, progress=lambda line: status.update(line)
            )
            current = await replay_tables.current_tables(bootstrap, prefix)
        _show_diff(context, replay_tables.diff(current, rebuilt))
        if args.dry_run:
            context.console.print("Dry run: nothing written. Run again without --dry-run.")
            return 0
        sent = await replay_tables.write_tables(
            bootstrap, prefix, args.partitions, current, rebuilt
        )
        wiped = replay_tables.wipe_local_state(args.data_dir, prefix)
        context.console.print(
            f"Wrote {sent} table entries to the changelogs"
            + (f"; removed the local state in {wiped}" if wiped else "")
            + ". Start the worker: it recovers the tables and resumes where it stopped.",
            highlight=False,
        )
        return 0

    try:
        return asyncio.run(run())
    except replay_tables.ReplayError as exc:
        raise CommandError(str(exc)) from None


def _show_diff(context: Context, diff: replay_tables.Diff) -> None:
    table = Table(title="rebuilt tables against the current changelogs", title_justify="left")
    for column in ("table", "same", "changed", "added", "removed"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name in diff.same:
        table.add_row(
            name,
            str(diff.same[name]),
            str(diff.changed[name]),
            str(diff.added[name]),
            str(diff.removed[name]),
        )
    context.console.print(table)


def _source(args: argparse.Namespace, context: Context) -> int:
    mapping = load_mapping_for(args.mapping, context)
    bootstrap = bootstrap_servers(args, context)
    prefix = context.settings.topic_prefix
    since = _parse_since(args.since)
    topics = [Topics(prefix).scoped(name) for name in args.topics]

    async def run() -> int:
        with context.console.status(f"Reading {', '.join(args.topics)}..."):
            replayed = await replay_source.newest_facts(bootstrap, topics, since)
        context.console.print(
            f"{replayed.read} facts read; the newest version of {len(replayed.facts)} "
            "records is replayed"
        )
        if args.dry_run:
            commands = await replay_source.dry_run(bootstrap, prefix, mapping, replayed)
            _show_commands(context, commands)
            context.console.print("Dry run: nothing published. Run again without --dry-run.")
            return 0
        await replay_source.publish(bootstrap, replayed)
        context.console.print(
            f"Published {len(replayed.facts)} facts again; the worker maps them with the "
            "current mapping and the writers apply only what changed."
        )
        return 0

    return asyncio.run(run())


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--since {text!r} is not a date or time: use ISO 8601, e.g. 2026-11-01 or "
            "2026-11-01T08:00:00+01:00 (UTC when no offset is given)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _show_commands(context: Context, commands: list[Command]) -> None:
    if not commands:
        context.console.print("Nothing would be written: the targets already hold it all.")
        return
    table = Table(title=f"{len(commands)} writes the replay would cause", title_justify="left")
    for column in ("target", "flow", "business key", "fields"):
        table.add_column(column, overflow="fold")
    for command in commands:
        fields = ", ".join(f"{name}={value!r}" for name, value in command.fields.items())
        table.add_row(command.target.value, command.entity, command.business_key, fields)
    context.console.print(table)


def register(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="rebuild the worker's tables from the log, or re-run a source topic",
        description=(
            "Everything the sync knows is derived from its topics, so it can be rebuilt "
            "from them. `tables` recomputes the worker's tables (links, last-known state, "
            "the lookups orders need) from the source facts and the writers' results, "
            "exactly as far as the worker had read, after local state or changelogs were "
            "lost. `source` replays the newest version of every record of source topics "
            "through the current mapping, e.g. after adding a field: only what changed is "
            "written. Both take --dry-run to show what would happen first. The reporting "
            "consumer rebuilds its own store with `clientify-odoo reporter --rebuild`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  clientify-odoo replay tables --dry-run        compare rebuilt and current\n"
            "  clientify-odoo replay tables                  (worker stopped) rebuild\n"
            "  clientify-odoo replay source odoo.partner --dry-run\n"
            "  clientify-odoo replay source odoo.product --since 2026-11-01"
        ),
    )
    actions = replay.add_subparsers(dest="action", metavar="<what>", required=True)
    tables = actions.add_parser(
        "tables",
        help="rebuild the worker's tables from the source and result topics",
        description=(
            "Stop the worker first. Recomputes its tables with its own steps from the "
            "source facts and results it had read, writes them over its changelog topics "
            "(creating them if they were deleted), and removes its local RocksDB state, so "
            "on start it recovers the rebuilt tables and resumes from its committed offsets."
        ),
    )
    add_worker_dir_argument(tables, "the worker's --data-dir, whose local state is removed")
    add_partitions_argument(tables, "changelogs created anew")
    source = actions.add_parser(
        "source",
        help="replay source topics through the current mapping",
        description=(
            "Publish again the newest version of each record of the given source topics "
            "(from --since, else from the beginning); the running worker maps them with the "
            "current mapping and emits commands only for fields whose value it did not know."
        ),
    )
    source.add_argument(
        "topics",
        nargs="+",
        choices=SOURCE_NAMES,
        metavar="topic",
        help=f"one or more of: {', '.join(SOURCE_NAMES)}",
    )
    source.add_argument(
        "--since",
        default=None,
        help="only records changed from this time on (ISO 8601; UTC unless an offset is given)",
    )
    for parser, handler in ((tables, _tables), (source, _source)):
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be written; write nothing"
        )
        add_mapping_argument(parser)
        add_bootstrap_argument(parser)
        parser.set_defaults(handler=handler)
