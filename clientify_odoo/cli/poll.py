"""`clientify-odoo poll odoo`: Odoo's changes as facts on Kafka, backfill first."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from aiokafka.errors import KafkaError
from rich.progress import Progress

from clientify_odoo.cli.kafka import add_broker_arguments, start_broker
from clientify_odoo.cli.options import CommandError, Context, add_metrics_arguments
from clientify_odoo.cli.progress import progress_bar
from clientify_odoo.cli.service import (
    lead_or_stand_by,
    metrics_served,
    require_topics,
    service_health,
    stop_on_signals,
)
from clientify_odoo.settings import odoo_config
from connectors.kafka.publisher import Publisher
from connectors.kafka.reader import ReadError
from connectors.odoo import OdooClient, OdooConfig, OdooConfigError, OdooError
from producers.odoo import (
    OdooPoller,
    PollerError,
    PollerOptions,
    PollReport,
    transactional_id,
)
from producers.odoo.cursor import CursorError
from producers.odoo.hints import HintFollower
from schemas.health import ServiceHealth
from schemas.topics import (
    ODOO_CURSORS,
    ODOO_HINTS,
    ODOO_PARTNER,
    ODOO_PRODUCT,
    ODOO_SALE_ORDER,
    Topics,
)

# A poller quiet for this long (and at least 4 intervals) is reported stuck on /health;
# every page read counts as progress, so only a hung request or loop gets there.
STALE_AFTER = 120.0


class _Bar:
    """The backfill's progress (the poller's `Progress`) on the bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("Backfill from Odoo", total=None)

    def total(self, count: int) -> None:
        self._progress.update(self._task, total=count)

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)


def _summary(report: PollReport) -> str:
    facts = ", ".join(f"{count} {entity}" for entity, count in sorted(report.facts.items()))
    rate = report.scanned / report.seconds if report.seconds else 0.0
    return (
        f"{report.published} facts published ({facts or 'no changes'}); "
        f"{report.scanned} rows scanned in {report.seconds:.1f}s ({rate:.0f} rows/s)"
    )


async def _poll_odoo(
    args: argparse.Namespace,
    context: Context,
    config: OdooConfig,
    bootstrap: str,
    health: ServiceHealth,
) -> None:
    topics = Topics(context.settings.topic_prefix)
    await require_topics(
        bootstrap,
        topics.names((ODOO_PARTNER, ODOO_PRODUCT, ODOO_SALE_ORDER, ODOO_CURSORS, ODOO_HINTS)),
    )
    async with OdooClient(config) as client:
        context.console.print(
            f"Connected to Odoo {client.version} at {config.url} (db {config.db}, "
            f"{client.protocol})",
            highlight=False,
        )
        if args.once or args.backfill:
            await _poll_as_leader(args, context, client, bootstrap, health, asyncio.Event())
            return
        stop = stop_on_signals()

        async def poll(done: asyncio.Event) -> None:
            await _poll_as_leader(args, context, client, bootstrap, health, done)

        await lead_or_stand_by(
            bootstrap, topics.scoped(f"clientify-odoo.odoo-poller.{config.db}"),
            topics[ODOO_CURSORS], stop, poll, context=context, health=health,
            standby="another copy polls this Odoo database; this one takes over when it stops",
        )  # fmt: skip


async def _poll_as_leader(
    args: argparse.Namespace,
    context: Context,
    client: OdooClient,
    bootstrap: str,
    health: ServiceHealth,
    stop: asyncio.Event,
) -> None:
    """Backfill, then poll until `stop`: the work of the one active copy. Its
    transactional id fences any copy that still thinks it leads."""
    topics = Topics(context.settings.topic_prefix)
    options = PollerOptions(page_size=args.page_size, interval=args.interval, overlap=args.overlap)
    publisher = Publisher(
        bootstrap,
        client_id="clientify-odoo-poller",
        transactional_id=transactional_id(topics, client.config.db),
    )
    async with publisher:
        poller = OdooPoller(
            client, publisher, bootstrap, topics=topics, options=options, health=health
        )
        await poller.start()
        if args.once:
            context.console.print(_summary(await poller.poll_once()))
            return
        if args.backfill:
            with progress_bar(context.console) as bar:
                context.console.print(_summary(await poller.backfill(_Bar(bar))))
            return
        # Odoo's hints are followed from before the backfill: a live change made while
        # it runs is read at once, not when the backfill reaches it.
        follower = HintFollower(bootstrap, topics[ODOO_HINTS], poller.read_hinted)
        following = asyncio.create_task(follower.run(stop))
        try:
            with progress_bar(context.console) as bar:
                report = await poller.backfill(_Bar(bar))
            context.console.print(_summary(report))
            context.console.print(
                f"Polling every {args.interval:g}s (every {options.interval_with_pushes:g}s "
                f"while Odoo pushes its changes to {topics[ODOO_HINTS]}; overlap "
                f"{args.overlap:g}s); Ctrl-C stops",
                highlight=False,
            )
            await asyncio.gather(poller.run(stop), following)
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following


def _poll(args: argparse.Namespace, context: Context) -> int:
    try:
        config = odoo_config(context.settings, protocol=args.protocol)
    except (OdooConfigError, ValueError) as exc:
        raise CommandError(str(exc).splitlines()[0], exit_code=2) from None
    health = service_health("odoo-poller", stale_after=max(STALE_AFTER, 4 * args.interval))
    # One-shot runs serve nothing: they end before a scrape, and would take the port
    # of the poller service running beside them.
    one_shot = args.once or args.backfill
    with contextlib.nullcontext() if one_shot else metrics_served(args, context, health):
        bootstrap = start_broker(args, context)
        try:
            asyncio.run(_poll_odoo(args, context, config, bootstrap, health))
        except OdooConfigError as exc:
            raise CommandError(str(exc), exit_code=2) from None
        except OdooError as exc:
            raise CommandError(f"Odoo: {exc}") from None
        except (KafkaError, ReadError, CursorError, PollerError) as exc:
            raise CommandError(f"Kafka at {bootstrap}: {exc}") from None
    return 0


def register(subparsers: Any) -> None:
    """Add the Odoo-side top-level commands."""
    poll = subparsers.add_parser(
        "poll",
        help="poll a source system for changes and publish them as facts",
        description="Poll a source system for changes and publish them as facts on Kafka.",
    )
    systems = poll.add_subparsers(dest="system", metavar="<system>", required=True)
    odoo = systems.add_parser(
        "odoo",
        help="publish Odoo partner, product and order changes (backfill first)",
        description=(
            "Read changed partners, products and sale orders from Odoo (ODOO_URL, ODOO_USER, "
            "ODOO_API_KEY, ODOO_DB) by write_date and publish each new version as a fact "
            "on odoo.partner, odoo.product and odoo.sale_order. The cursor is stored in "
            "odoo.cursors in the same Kafka transaction as the facts, so a crash or kill "
            "resumes where it stopped. The first run backfills everything, with a progress "
            "bar; then it polls every --interval seconds."
        ),
    )
    mode = odoo.add_mutually_exclusive_group()
    mode.add_argument(
        "--backfill", action="store_true", help="catch up to now (with progress), then exit"
    )
    mode.add_argument("--once", action="store_true", help="one poll cycle, then exit")
    odoo.add_argument(
        "--interval", type=float, default=5.0, help="seconds between polls (default 5)"
    )
    odoo.add_argument(
        "--page-size", type=int, default=200, help="records per request (default 200)"
    )
    odoo.add_argument(
        "--overlap",
        type=float,
        default=240.0,
        help="seconds re-scanned behind the cursor for late commits (default 240)",
    )
    odoo.add_argument(
        "--protocol",
        choices=["auto", "xmlrpc", "jsonrpc", "json2"],
        default="auto",
        help="wire protocol (default auto: JSON-2 on Odoo 19+, XML-RPC below)",
    )
    add_broker_arguments(odoo)
    add_metrics_arguments(odoo, "odoo-poller")
    odoo.set_defaults(handler=_poll)
