"""`clientify-odoo reconcile`: what Clientify's webhooks missed, as facts on Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    add_metrics_arguments,
    bootstrap_servers,
)
from clientify_odoo.cli.progress import progress_bar
from clientify_odoo.cli.service import (
    ensure_declared_topics,
    lead_or_stand_by,
    metrics_served,
    service_health,
    stop_on_signals,
)
from clientify_odoo.settings import SettingsError, clientify_client
from connectors.clientify import ClientifyError
from connectors.kafka.publisher import Publisher
from producers.clientify.reconcile import DEFAULT_OVERLAP, Reconciler
from schemas.topics import CLIENTIFY_CURSORS, Topics

# A reconciler quiet for this long (and at least 3 intervals) is reported stuck; each
# batch of facts published counts as progress, so a long first pass is not.
RECONCILE_STALE_AFTER = 900.0


def _reconcile(args: argparse.Namespace, context: Context) -> int:
    if args.interval <= 0 or args.overlap < 0:
        raise CommandError(
            f"--interval must be > 0 and --overlap >= 0 (got {args.interval} and {args.overlap})"
        )
    settings = context.settings
    try:
        client = clientify_client(settings)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    bootstrap = bootstrap_servers(args, context)
    health = service_health("reconciler", stale_after=max(RECONCILE_STALE_AFTER, 3 * args.interval))

    topics = Topics(settings.topic_prefix)

    async def reconcile(done: asyncio.Event) -> None:
        """A first pass with progress, then one pass per interval until `done`."""
        async with Publisher(bootstrap, client_id="clientify-reconcile") as publisher:
            reconciler = Reconciler(
                client,
                publisher,
                topics,
                bootstrap,
                overlap=timedelta(seconds=args.overlap),
                health=health,
            )
            with progress_bar(context.console) as progress:
                tasks: dict[str, Any] = {}

                def advance(entity: str, count: int, total: int | None) -> None:
                    if entity not in tasks:
                        tasks[entity] = progress.add_task(f"Clientify {entity}s", total=total)
                    progress.update(tasks[entity], completed=count)

                reconciler.progress = advance
                report = await reconciler.run_once()
            context.console.print(f"First pass done; new facts: {report.emitted}")
            if args.once:
                return
            reconciler.progress = None
            context.console.print(f"Reconciling every {args.interval:.0f}s; Ctrl-C stops")
            await reconciler.run(args.interval, done)

    async def run() -> None:
        await ensure_declared_topics(bootstrap, topics)
        async with client:
            await client.check_key()
            if args.once:
                await reconcile(asyncio.Event())
                return
            # Two copies would read the same pages twice against one rate limit.
            await lead_or_stand_by(
                bootstrap, topics.scoped("clientify-odoo.reconciler"), topics[CLIENTIFY_CURSORS],
                stop_on_signals(), reconcile, context=context, health=health,
                standby="another copy reconciles this Clientify account; this one takes "
                "over when it stops",
            )  # fmt: skip

    # A single pass (--once) serves nothing: it would take the running service's port.
    with contextlib.nullcontext() if args.once else metrics_served(args, context, health):
        try:
            asyncio.run(run())
        except ClientifyError as exc:
            raise CommandError(str(exc)) from None
    return 0


def register(subparsers: Any) -> None:
    reconcile = subparsers.add_parser(
        "reconcile",
        help="catch Clientify changes webhooks missed (first run: full sync with progress)",
        description=(
            "List Clientify records modified since the last pass (with an overlap) and "
            "publish a fact for every version not published before. Without a cursor "
            "in clientify.cursors the first pass reads everything (initial full sync)."
        ),
    )
    reconcile.add_argument("--once", action="store_true", help="one pass, then exit")
    add_metrics_arguments(reconcile, "reconciler")
    reconcile.add_argument(
        "--interval", type=float, default=300.0, help="seconds between passes (default 300)"
    )
    reconcile.add_argument(
        "--overlap",
        type=float,
        default=DEFAULT_OVERLAP.total_seconds(),
        help="seconds re-read before the cursor (default %(default)s)",
    )
    add_bootstrap_argument(reconcile)
    reconcile.set_defaults(handler=_reconcile)
