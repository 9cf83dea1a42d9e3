"""`clientify-odoo write clientify|odoo`: the writers that apply commands to each system."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    add_mapping_argument,
    add_metrics_arguments,
    add_partitions_argument,
    bootstrap_servers,
    load_mapping_for,
)
from clientify_odoo.cli.service import (
    ensure_declared_topics,
    metrics_served,
    service_health,
    stop_on_signals,
)
from clientify_odoo.settings import SettingsError, clientify_client, odoo_config
from connectors.clientify.errors import ClientifyAuthError, ClientifyError
from connectors.odoo import OdooClient
from connectors.odoo.errors import OdooConfigError, OdooError
from consumers.base.tracked import ConsumerConfig, TrackingConsumer
from consumers.writers.clientify import ClientifyTarget
from consumers.writers.clientify_index import DEFAULT_REFRESH_EVERY
from consumers.writers.command_writer import CommandWriter, Target, consumer_config
from consumers.writers.odoo import OdooTarget
from schemas import System
from schemas.health import ServiceHealth
from schemas.mapping import MappingFile
from schemas.topics import Topics

TargetFactory = Callable[[MappingFile], contextlib.AbstractAsyncContextManager[Target]]
# The consume loop turns every half second unless one command holds it (retries with
# backoff, a throttled API): this long without a turn is reported as stuck on /health.
STALE_AFTER = 300.0
INDEXED_MAX_WAIT = 1.0  # seconds between a waiting command's retries (Clientify, indexed)


async def _run(
    args: argparse.Namespace,
    context: Context,
    system: str,
    target: TargetFactory,
    health: ServiceHealth,
    max_wait: float,
) -> int:
    mapping = load_mapping_for(args.mapping, context)
    bootstrap = bootstrap_servers(args, context)
    topics = Topics(context.settings.topic_prefix)
    await ensure_declared_topics(bootstrap, topics, args.partitions, exit_code=2)
    config = consumer_config(
        bootstrap,
        topics,
        System(system),
        wait_budget=args.wait_seconds,
        max_wait=max_wait,
        instance=args.instance or socket.gethostname(),
    )
    stop = stop_on_signals()
    async with target(mapping) as chosen:
        for note in await chosen.setup():
            context.console.print(note)
        writer = CommandWriter(chosen, topics, attempts=args.attempts)
        consumer = TrackingConsumer(config, writer, health)
        context.console.print(
            f"Writing commands from {config.topics[0]} to {system} (Kafka {bootstrap}; Ctrl-C "
            "stops)",
            highlight=False,
        )
        await consumer.run(stop)
    context.console.print(
        f"stopped: {consumer.handled} commands handled, {consumer.replays} redeliveries, "
        f"{writer.dead} dead letters"
    )
    return 0


def _serve(
    args: argparse.Namespace,
    context: Context,
    system: str,
    target: TargetFactory,
    max_wait: float = ConsumerConfig.max_wait,
) -> int:
    """Run the writer for `system`, its metrics and health served meanwhile; a waiting
    command is retried at least every `max_wait` seconds. Failures are one line, exit
    code 2 as for the other commands (a setting or a system needs fixing)."""
    health = service_health(f"{system}-writer", stale_after=STALE_AFTER)
    with metrics_served(args, context, health):
        try:
            return asyncio.run(_run(args, context, system, target, health, max_wait))
        except (ClientifyAuthError, OdooConfigError) as exc:
            raise CommandError(str(exc), 2) from None
        except ClientifyError as exc:
            raise CommandError(f"cannot use Clientify ({exc}); check CLIENTIFY_URL", 2) from None
        except OdooError as exc:
            raise CommandError(f"Odoo failed: {exc}", 2) from None


def _write_clientify(args: argparse.Namespace, context: Context) -> int:
    try:
        client = clientify_client(context.settings)
    except SettingsError as exc:
        raise CommandError(str(exc), 2) from None
    refresh = args.index_refresh_seconds if args.index_refresh_seconds > 0 else None

    @contextlib.asynccontextmanager
    async def target(mapping: MappingFile) -> AsyncIterator[Target]:
        async with client:
            yield ClientifyTarget(client, mapping, index_refresh=refresh)

    # With the index, a waiting command's retry asks Clientify nothing (the index lists
    # at most once per refresh period), so it can be retried often: a long backoff left
    # the writer idle at the end of a backfill while what it waited for was there.
    max_wait = ConsumerConfig.max_wait if refresh is None else INDEXED_MAX_WAIT
    return _serve(args, context, "clientify", target, max_wait)


def _write_odoo(args: argparse.Namespace, context: Context) -> int:
    try:
        config = odoo_config(context.settings)
    except OdooConfigError as exc:
        raise CommandError(str(exc), 2) from None

    @contextlib.asynccontextmanager
    async def target(mapping: MappingFile) -> AsyncIterator[Target]:
        async with OdooClient(config) as client:
            yield OdooTarget(client, mapping)

    return _serve(args, context, "odoo", target)


def register(subparsers: Any) -> None:
    write = subparsers.add_parser(
        "write",
        help="run a writer: apply the processors' commands to Clientify or Odoo",
        description=(
            "Apply commands to one system idempotently: find the record by link or business "
            "key, then create it or write only the fields that changed (a field the target "
            "changed meanwhile is left alone and reported). Results go to sync.results; "
            "what cannot be applied goes to sync.dead_letters with the reason. Applied "
            "command ids are kept on sync.applied, so a redelivered command is a no-op."
        ),
    )
    systems = write.add_subparsers(dest="system", metavar="<system>", required=True)
    for name, handler, about in (
        ("clientify", _write_clientify, "companies, contacts, products and orders to Clientify"),
        ("odoo", _write_odoo, "partners and products to Odoo (creates x_clientify_status)"),
    ):
        parser = systems.add_parser(name, help=about, description=f"Write {about}.")
        add_mapping_argument(parser)
        parser.add_argument(
            "--wait-seconds",
            type=float,
            default=60.0,
            help="how long a command waits for a record it needs, e.g. an order for its "
            "contact, counted while the writer has nothing else to do (what it waits for "
            "may be in its backlog), before it goes to the dead letters (default "
            "%(default)s)",
        )
        parser.add_argument(
            "--attempts",
            type=int,
            default=3,
            help="tries per command on transient errors before the dead letters "
            "(default %(default)s)",
        )
        parser.add_argument(
            "--instance",
            default=None,
            help="name of this running copy, unique among copies and kept across restarts "
            "(default: the host name)",
        )
        add_partitions_argument(parser, "the keyed topics")
        if name == "clientify":
            parser.add_argument(
                "--index-refresh-seconds",
                type=float,
                default=DEFAULT_REFRESH_EVERY,
                help="the writer lists Clientify's keys once and keeps the list this fresh, "
                "so a record Clientify does not have is created without a lookup (one or "
                "two requests saved per create). A record someone else creates in Clientify "
                "with the same key within this window can be duplicated, as between a lookup "
                "and its create. 0 turns the index off: every create looks its key up "
                "(default %(default)s)",
            )
        add_bootstrap_argument(parser)
        add_metrics_arguments(parser, f"{name}-writer")
        parser.set_defaults(handler=handler)
