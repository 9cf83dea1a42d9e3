"""`clientify-odoo up`: start what the product needs and show that it is healthy.

Today that is the broker and the topic registry; the services join the same supervised
group as they land. Ctrl-C stops, in order, what this command started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.live import Live
from rich.table import Table

from clientify_odoo.cli.common import Context
from clientify_odoo.cli.kafka import (
    add_broker_arguments,
    ensure_registry,
    local_broker,
    start_broker,
)
from clientify_odoo.topics import TopicSpec, registry


async def topic_sizes(bootstrap: str, specs: tuple[TopicSpec, ...]) -> dict[str, int]:
    """Messages currently held per declared topic (sum of end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads metadata for every topic
        partitions = [
            TopicPartition(spec.name, partition)
            for spec in specs
            for partition in sorted(consumer.partitions_for_topic(spec.name) or ())
        ]
        # aiokafka 0.14 raises CancelledError when stopping a consumer that never had
        # an assignment, so give it one (nothing is fetched: we only ask for offsets).
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = (
            await consumer.end_offsets(partitions) if partitions else {}
        )
    finally:
        await consumer.stop()
    sizes = {spec.name: 0 for spec in specs}
    for partition, offset in ends.items():
        sizes[partition.topic] += offset
    return sizes


def _view(
    bootstrap: str, specs: tuple[TopicSpec, ...], sizes: dict[str, int] | None, started: float
) -> Table:
    healthy = sizes is not None
    table = Table(
        title=f"clientify-odoo - Kafka at {bootstrap}: "
        + ("[green]healthy[/green]" if healthy else "[red]unreachable[/red]")
        + f" - up {time.monotonic() - started:.0f}s - Ctrl-C to stop",
        title_justify="left",
    )
    table.add_column("topic")
    table.add_column("messages", justify="right")
    table.add_column("purpose")
    for spec in specs:
        count = "-" if sizes is None else str(sizes.get(spec.name, 0))
        table.add_row(spec.name, count, spec.purpose)
    return table


async def _watch(bootstrap: str, context: Context, interval: float) -> None:
    """Refresh the view until SIGINT/SIGTERM. On a terminal it redraws in place; piped
    (compose logs, CI) it prints the table again only when a figure changed."""
    started = time.monotonic()
    specs = registry(context.settings.topic_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Said only now that Ctrl-C is handled here: from this line on, it stops cleanly.
    context.console.print("[green]healthy[/green]: broker reachable, all topics in place")
    live = Live(console=context.console, auto_refresh=False)
    if context.console.is_terminal:
        live.start()
    shown: list[dict[str, int] | None] = []  # what was printed last, when piped
    try:
        while not stop.is_set():
            try:
                sizes: dict[str, int] | None = await asyncio.wait_for(
                    topic_sizes(bootstrap, specs), 10
                )
            except Exception:  # noqa: BLE001 - shown as "unreachable" in the view
                sizes = None
            view = _view(bootstrap, specs, sizes, started)
            if context.console.is_terminal:
                live.update(view, refresh=True)
            elif shown != [sizes]:
                context.console.print(view)
                shown = [sizes]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        live.stop()


def _up(args: argparse.Namespace, context: Context) -> int:
    broker = local_broker(args)
    started_here = not context.settings.kafka_bootstrap_servers and broker.pid() is None
    bootstrap = start_broker(args, context)
    ensure_registry(bootstrap, context)
    try:
        asyncio.run(_watch(bootstrap, context, args.refresh))
    finally:
        if started_here and not args.keep_broker:
            with context.console.status("Stopping Kafka (clean shutdown)..."):
                broker.down()
            context.console.print("Kafka stopped; its data is kept for the next run")
    return 0


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="start the whole stack on this machine and show a live view (Ctrl-C stops)",
        description=(
            "Start the local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS is set), create "
            "the topics, and show a live view of the stack until Ctrl-C, which stops what "
            "was started here, cleanly and in order."
        ),
    )
    add_broker_arguments(up)
    up.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between view updates (default 2)"
    )
    up.add_argument(
        "--keep-broker", action="store_true",
        help="leave the broker running after Ctrl-C (it is stopped by default)",
    )  # fmt: skip
    up.set_defaults(handler=_up)
