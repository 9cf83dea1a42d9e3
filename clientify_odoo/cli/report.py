"""`clientify-odoo reporter` (keeps the report database up to date) and `report` (prints it)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table as RichTable

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    bootstrap_servers,
)
from clientify_odoo.cli.progress import progress_bar
from clientify_odoo.cli.service import kafka_quiet, stop_on_signals
from clientify_odoo.stack.plan import DEFAULT_STACK_DIR, reporting_db
from connectors.kafka.admin import reachable
from consumers.base.sink import SinkConfig, SinkConsumer, SinkError, Store, open_read_only
from consumers.reporting.sink import ReportingSink
from consumers.reporting.tables import TABLE_NAMES, TABLES, Table, freshness, read_table

MONEY_COLUMNS = {"untaxed", "total", "amount"}


def _db(args: argparse.Namespace, context: Context) -> Path:
    if args.db:
        return Path(args.db)
    # The database `up`'s reporter keeps, as the worker's default --data-dir is `up`'s.
    return reporting_db(DEFAULT_STACK_DIR, context.settings.topic_prefix)


# ------------------------------------------------------------------ reading the topics


class _Bar:
    """The catch-up's progress on a rich bar, on stderr (stdout may be a report)."""

    def __init__(self, progress: Progress, title: str) -> None:
        self._progress = progress
        self._task: TaskID = progress.add_task(title, total=None)

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


async def _consume(
    args: argparse.Namespace, context: Context, db: Path, bootstrap: str, *, follow: bool
) -> tuple[SinkConsumer, bool]:
    """Catch up (then follow, if asked); returns the consumer and whether it caught up."""
    config = SinkConfig(bootstrap, topic_prefix=context.settings.topic_prefix)
    stop = stop_on_signals()
    with Store(db, ReportingSink(), config.topic_prefix, fresh=args.rebuild) as store:
        async with SinkConsumer(store, config) as consumer:
            title = "Replaying the topics" if args.rebuild else "Catching up"
            with progress_bar(context.errors, unit="msg") as progress:
                caught_up = await consumer.catch_up(stop, _Bar(progress, title))
            if caught_up:
                context.errors.print(
                    f"{db}: up to date with Kafka {bootstrap} ({consumer.applied} messages "
                    f"applied, {consumer.rejected} unusable)",
                    highlight=False,
                )
            if caught_up and follow:
                context.errors.print("Following new messages (Ctrl-C stops)")
                await consumer.follow(stop)
    return consumer, caught_up


def _run_consumer(
    args: argparse.Namespace, context: Context, *, follow: bool
) -> tuple[SinkConsumer, bool]:
    db = _db(args, context)
    bootstrap = bootstrap_servers(args, context)
    with kafka_quiet():
        up = reachable(bootstrap)
    if not up:
        raise CommandError(
            f"cannot reach Kafka at {bootstrap}. Start it with `clientify-odoo kafka up`, or "
            "set KAFKA_BOOTSTRAP_SERVERS (or --bootstrap) to your cluster.",
            2,
        )
    try:
        return asyncio.run(_consume(args, context, db, bootstrap, follow=follow))
    except SinkError as exc:
        hint = " (`clientify-odoo report --rebuild`)" if exc.needs_rebuild else ""
        raise CommandError(f"{exc}{hint}", 2) from None
    except KafkaError as exc:
        raise CommandError(f"Kafka at {bootstrap}: {exc}", 2) from None


def _reporter(args: argparse.Namespace, context: Context) -> int:
    consumer, _caught_up = _run_consumer(args, context, follow=not args.once)
    context.errors.print(
        f"stopped: {consumer.applied} messages applied, {consumer.rejected} unusable"
    )
    return 0


# ------------------------------------------------------------------ printing the report


def _tables(args: argparse.Namespace, db: Path) -> tuple[list[Table], str | None, int]:
    chosen = [spec for spec in TABLES if not args.tables or spec.name in args.tables]
    try:
        connection = open_read_only(db)
    except SinkError:
        raise CommandError(
            f"there is no report database at {db} yet. Fill it with `clientify-odoo "
            "report --rebuild` (reads the topics once), or keep it up to date with "
            "`clientify-odoo reporter`.",
        ) from None
    try:
        fresh = freshness(connection)
        return [read_table(connection, spec) for spec in chosen], fresh.updated_at, fresh.rejects
    except sqlite3.DatabaseError as exc:
        raise CommandError(
            f"{db} is not a report database of this release ({exc}): rebuild it with "
            "`clientify-odoo report --rebuild`, or choose another --db",
        ) from None
    finally:
        connection.close()


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in MONEY_COLUMNS:
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


def _print_rich(console: Console, tables: list[Table]) -> None:
    for table in tables:
        shown = RichTable(title=table.spec.title, title_justify="left")
        for index, column in enumerate(table.columns):
            numeric = any(isinstance(row[index], int | float) for row in table.rows)
            shown.add_column(column, justify="right" if numeric else "left")
        for row in table.rows:
            shown.add_row(*(_cell(c, v) for c, v in zip(table.columns, row, strict=True)))
        if not table.rows:
            shown.caption = "nothing yet"
        console.print(shown)


def _report(args: argparse.Namespace, context: Context) -> int:
    if args.format == "csv" and len(args.tables) != 1:
        raise CommandError(
            "--format csv prints one table: name it, e.g. `clientify-odoo report sales "
            f"--format csv` (tables: {', '.join(TABLE_NAMES)})",
            2,
        )
    db = _db(args, context)
    if args.rebuild and not _run_consumer(args, context, follow=False)[1]:
        raise CommandError(
            f"stopped before the end of the topics: {db} holds only part of them. Run "
            "`clientify-odoo report --rebuild` again, or `clientify-odoo reporter` to go on.",
            130,
        )
    tables, updated_at, rejects = _tables(args, db)
    if args.format == "json":
        sys.stdout.write(json.dumps({t.spec.name: t.records() for t in tables}, indent=2) + "\n")
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(tables[0].columns)
        writer.writerows(tables[0].rows)
    else:
        _print_rich(context.console, tables)
        context.console.print(
            f"[dim]{db}, updated {updated_at or 'never'} (UTC)[/dim]", highlight=False
        )
    if rejects:
        context.errors.print(
            f"[yellow]warning:[/yellow] {rejects} message(s) could not be used; they are "
            f"listed in the table sink_rejects of {db}",
            highlight=False,
        )
    return 0


# ------------------------------------------------------------------ the commands


def _table_name(value: str) -> str:
    # argparse's `choices` rejects an empty `nargs="*"` on Python 3.11: checked here.
    if value not in TABLE_NAMES:
        raise argparse.ArgumentTypeError(
            f"no table {value!r}: choose from {', '.join(TABLE_NAMES)}"
        )
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="the report database (default: the one `up` keeps, reporting.sqlite3 in "
        f"{DEFAULT_STACK_DIR}, one per TOPIC_PREFIX)",
    )
    add_bootstrap_argument(parser)


def register(subparsers: Any) -> None:
    reporter = subparsers.add_parser(
        "reporter",
        help="run the reporting consumer: keep the report database up to date",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Read the sale order, partner and product facts and the sync's outcomes (results,
echoes, skips, conflicts, dead letters) from Kafka into a SQLite database:
confirmed sales per customer and month, product totals and sync health per day.

It first catches up with what the topics hold (a progress bar shows how far), then
follows new messages until Ctrl-C. Each batch is written with the position reached
in one transaction, so a stop or a crash anywhere loses nothing and counts nothing
twice; the next start goes on from there. `clientify-odoo report` prints the tables,
also while this runs.""",
        epilog="""\
examples:
  clientify-odoo reporter                  catch up, then follow (Ctrl-C stops)
  clientify-odoo reporter --once           catch up, then exit (e.g. from cron)
  clientify-odoo reporter --rebuild        wipe the database and replay every topic""",
    )
    reporter.add_argument(
        "--rebuild",
        action="store_true",
        help="wipe the database first and replay the topics from the beginning",
    )
    reporter.add_argument(
        "--once", action="store_true", help="exit once caught up instead of following"
    )
    _common(reporter)
    reporter.set_defaults(handler=_reporter)

    report = subparsers.add_parser(
        "report",
        help="print the report: sales per customer and month, products, sync health",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Print the tables of the report database that `clientify-odoo reporter` keeps:
  sales     confirmed orders (state sale or done) per customer and month (UTC):
            number of orders, untaxed and total amounts, per currency; a contact's
            orders count for its company
  products  quantity and untaxed amount sold per product, unit and currency
  health    per day: writes (commands applied), echoes dropped, skips, conflicts
            and dead letters

Each order counts once, in its newest version: duplicates and redeliveries change
nothing. With --rebuild the database is wiped and refilled from the topics first
(the numbers come out the same: the topics are the source of truth).""",
        epilog="""\
examples:
  clientify-odoo report                          all three tables
  clientify-odoo report sales --format csv       one table as CSV, for a spreadsheet
  clientify-odoo report --format json | jq .health
  clientify-odoo report --rebuild                rebuild from the topics, then print""",
    )
    report.add_argument(
        "tables",
        nargs="*",
        type=_table_name,
        metavar="table",
        help=f"which tables ({', '.join(TABLE_NAMES)}; default: all)",
    )
    report.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (default, for people), csv (one table) or json (for tools)",
    )
    report.add_argument(
        "--rebuild",
        action="store_true",
        help="wipe the database and replay the topics from the beginning first (stop a "
        "running reporter before)",
    )
    _common(report)
    report.set_defaults(handler=_report)
