"""`clientify-odoo dlq list | show | requeue`: the commands the writers could not apply,
and sending them back once the cause is fixed (consumers.writers.dead_letters)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from rich.table import Table
from rich.text import Text

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    bootstrap_servers,
)
from clientify_odoo.cli.service import kafka_quiet, no_kafka
from consumers.writers.dead_letters import (
    SHORT_ID,
    Book,
    Entry,
    MissingTopics,
    Planned,
    UnknownDeadLetter,
    read_book,
    send,
)
from schemas.topics import COMMANDS, DEAD_LETTERS, REQUEUES, Topics

T = TypeVar("T")


def _kafka(run: Coroutine[Any, Any, T], bootstrap: str) -> T:
    try:
        with kafka_quiet():
            return asyncio.run(run)
    except MissingTopics as exc:
        raise CommandError(str(exc), exit_code=2) from None
    except KafkaError as exc:
        raise no_kafka(bootstrap, exc, exit_code=2) from None


def _book(args: argparse.Namespace, context: Context) -> tuple[Book, Topics, str]:
    bootstrap = bootstrap_servers(args, context)
    topics = Topics(context.settings.topic_prefix)
    return _kafka(read_book(bootstrap, topics), bootstrap), topics, bootstrap


def _find(book: Book, wanted: str) -> Entry:
    try:
        return book.find(wanted)
    except UnknownDeadLetter as exc:
        raise CommandError(str(exc), exit_code=2) from None


def _when(entry: Entry) -> str:
    return entry.letter.at.strftime("%Y-%m-%d %H:%M:%S")


def _fate(entry: Entry) -> str:
    """What became of a dead letter, in a few words."""
    requeue = entry.requeue
    if requeue is None:
        return "no"
    if requeue.command_id is None:
        newer = sorted({dead_id[:SHORT_ID] for dead_id in requeue.superseded.values()})
        return f"superseded by {', '.join(newer)}"
    outcome = entry.outcome.value if entry.outcome else "sent, not applied yet"
    return f"{requeue.at:%Y-%m-%d %H:%M}: {outcome}"


def _list(args: argparse.Namespace, context: Context) -> int:
    book, topics, _bootstrap = _book(args, context)
    entries = book.open() if args.open else book.entries
    if not entries:
        what = "open dead letters" if args.open else "dead letters"
        context.console.print(f"No {what} on {topics[DEAD_LETTERS]}.")
        return 0
    table = Table(title=f"Dead letters on {topics[DEAD_LETTERS]} (times UTC)")
    for column in ("id", "when", "target", "entity", "business key", "tries"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)
    table.add_column("requeued", no_wrap=True)
    for entry in entries:
        command = entry.letter.command
        cells = (
            entry.id[:SHORT_ID],
            _when(entry),
            command.target.value,
            command.entity,
            command.business_key,
            str(entry.letter.attempts),
            " ".join(entry.letter.reason.split()),
            _fate(entry),
        )
        table.add_row(*map(Text, cells))  # as text: a reason may hold "[...]", not markup
    context.console.print(table)
    context.console.print(
        f"{len(book.entries)} dead letter(s), {len(book.open())} not requeued. "
        "`dlq show ID` shows one whole; fix the cause, then `dlq requeue --id ID`.",
        highlight=False,
    )
    return 0


def _show(args: argparse.Namespace, context: Context) -> int:
    book, _topics, _bootstrap = _book(args, context)
    entry = _find(book, args.id)
    requeue = entry.requeue
    shown = {
        "dead_letter": entry.letter.model_dump(mode="json"),
        "requeue": None
        if requeue is None
        else {
            **requeue.model_dump(mode="json", exclude={"kind", "schema_version"}),
            "outcome": entry.outcome.value if entry.outcome else None,
        },
    }
    # JSON as is: no markup, no highlighting, no line breaks added (it may be piped).
    context.console.print(
        json.dumps(shown, indent=2, ensure_ascii=False),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _plan_table(plans: list[Planned], topics: Topics) -> Table:
    table = Table(title="To send back")
    for column in ("dead letter", "as command", "to", "entity", "business key"):
        table.add_column(column, no_wrap=True)
    table.add_column("fields", overflow="fold", ratio=1)
    for planned in plans:
        command = planned.entry.letter.command
        sent = planned.command
        fields = ", ".join(sorted(sent.fields)) if sent else "none"
        if planned.superseded:
            newer = ", ".join(
                f"{name} ({dead_id[:SHORT_ID]})"
                for name, dead_id in sorted(planned.superseded.items())
            )
            fields += f"; newer dead letter has: {newer}"
        cells = (
            planned.entry.id[:SHORT_ID],
            sent.command_id[:SHORT_ID] if sent else "-",
            topics[COMMANDS[command.target]],
            command.entity,
            command.business_key,
            fields,
        )
        table.add_row(*map(Text, cells))
    return table


def _requeue(args: argparse.Namespace, context: Context) -> int:
    book, topics, bootstrap = _book(args, context)
    chosen = [_find(book, wanted) for wanted in args.id] if args.id else book.open()
    for entry in chosen:
        if entry.requeue is not None:
            context.console.print(
                f"{entry.id[:SHORT_ID]} was requeued before ({_fate(entry)}): not sent again",
                highlight=False,
            )
    plans = book.plan(entry for entry in chosen if entry.requeue is None)
    if not plans:
        context.console.print("Nothing to requeue.")
        return 0
    context.console.print(_plan_table(plans, topics))
    if args.dry_run:
        context.console.print("Dry run: nothing sent.")
        return 0
    transactional_id = Topics(context.settings.topic_prefix).scoped("clientify-odoo.dlq")
    _kafka(send(bootstrap, topics, plans, transactional_id), bootstrap)
    sent = sum(planned.command is not None for planned in plans)
    context.console.print(
        f"Sent {sent} command(s) back through the worker to their writers ({len(plans)} "
        f"requeue(s) on {topics[REQUEUES]}; the worker issues them once it runs, without a "
        "field a newer edit took meanwhile). `clientify-odoo dlq list` shows how they end.",
        highlight=False,
    )
    return 0


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect dead letters (commands the writers could not apply) and requeue them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "A command a writer cannot apply (rejected by Odoo or Clientify, or still\n"
            "failing after its retries) goes to sync.dead_letters whole, with the reason.\n"
            "Read it (list, show), fix the cause (a setting, the record in the target,\n"
            "the mapping), then send it back through the worker to its writer (requeue).\n\n"
            "A requeued command gets a new id derived from the dead one, and the writers\n"
            "apply each command id once: requeuing the same dead letter again, or from\n"
            "two terminals, never writes twice. When several dead letters of a record\n"
            "carry the same field, only the newest value is sent back, and the worker\n"
            "drops a field a newer edit took since (it knows each record's state)."
        ),
        epilog=(
            "examples:\n"
            "  clientify-odoo dlq list                     every dead letter, and its fate\n"
            "  clientify-odoo dlq show 3f2a9c1e            one in full, as JSON\n"
            "  clientify-odoo dlq requeue --id 3f2a9c1e    send it back after the fix\n"
            "  clientify-odoo dlq requeue --all --dry-run  what --all would send"
        ),
    )
    actions = dlq.add_subparsers(dest="action", metavar="<action>", required=True)
    listing = actions.add_parser("list", help="dead letters with their reason and fate")
    listing.add_argument("--open", action="store_true", help="only those not requeued yet")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one dead letter in full, command included (JSON)")
    show.add_argument("id", help="its id, or a unique start of it, as `dlq list` shows")
    show.set_defaults(handler=_show)
    requeue = actions.add_parser(
        "requeue",
        help="send dead letters back through their writer (after fixing the cause)",
        description=(
            "Send dead letters back to their writer, through the worker (sync.requeues), "
            "which must run for them to go out. One already requeued "
            "is not sent again (`dlq list` shows how it ended); one that fails again "
            "becomes a new dead letter, to requeue after the next fix."
        ),
    )
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--id",
        action="append",
        metavar="ID",
        help="a dead letter's id or a unique start of it (repeatable)",
    )
    which.add_argument("--all", action="store_true", help="every dead letter not requeued yet")
    requeue.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send nothing"
    )
    requeue.set_defaults(handler=_requeue)
    for parser in (listing, show, requeue):
        add_bootstrap_argument(parser)
