"""Memory benchmark: peak resident memory (VmHWM) of every service once the worker's
tables hold about 100,000 links.

What drives each service to that state, in one run:

- the poller backfills the seeded Odoo (partners, products, orders) into facts;
- the webhook receiver takes `--webhooks` contact webhooks (new tax ids);
- the reconciler makes a first full pass over a Clientify sandbox seeded with
  `--clientify` companies, contacts and products;
- the worker routes and decides all of those facts: its `states` table then holds one
  state and link per (flow, business key), counted on the table's changelog;
- the writers hold in memory every command applied so far (`sync.applied`, loaded when
  they start): after 100,000 links that is at least 100,000 commands, so the topic is
  filled with `--applied` records shaped like real ones (a Result each) before they
  start; they then apply commands for `--writer-seconds`.

Each service's baseline is its own peak just after start-up, in the same run.
Run from the repository root:

    python -m bench.memory --partners 40000 --webhooks 30000

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp
from rich.table import Table

from bench.common import BenchStack, ratio, run_benchmark, seed_odoo
from bench.webhook_receiver import concurrently, webhook
from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from consumers.base.tracking import stored
from processors import replay_tables
from processors.decide import ROUTE_TABLES
from schemas import Result, ResultStatus, System
from schemas.envelope import utc_now
from schemas.topics import APPLIED_COMMANDS, RESULTS
from tests.support.stack_fixtures import eventually

PRODUCERS = ("odoo-poller", "webhook-receiver", "reconciler")
WRITERS = ("clientify-writer", "odoo-writer")


async def post_webhooks(bench: BenchStack, count: int) -> None:
    stack = bench.stack
    url = f"http://127.0.0.1:{stack.hook_port}/hooks/{stack.webhook_secret}"
    bodies = [json.dumps(webhook(n)).encode() for n in range(count)]
    async with aiohttp.ClientSession() as http:

        async def one(n: int) -> None:
            headers = {"Content-Type": "application/json"}
            async with http.post(url, data=bodies[n], headers=headers) as answer:
                answer.raise_for_status()

        await concurrently(count, 16, one)


async def seed_clientify(bench: BenchStack, count: int) -> None:
    stack = bench.stack
    url = f"{stack.clientify_admin_url}/seed/"
    headers = {"Authorization": f"Token {stack.clientify_key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"count": count}, headers=headers) as answer,
    ):
        answer.raise_for_status()


async def fill_applied(bench: BenchStack, count: int) -> None:
    """`count` records on sync.applied as the writers leave them: a command id, and the
    Result its effect published."""
    results = bench.prefix + RESULTS.name
    async with Publisher(bench.bootstrap) as publisher:
        for start in range(0, count, 1000):
            batch = []
            for n in range(start, min(start + 1000, count)):
                ident = str(uuid.uuid4())
                result = Result(
                    command_id=ident, target=System.CLIENTIFY, entity="contact",
                    business_key=f"{n:08d}A", status=ResultStatus.APPLIED, target_id=str(n),
                    written={"name": f"Persona {n} García López", "phone": "+34 600000000",
                             "city": "Madrid", "street": "Calle Mayor, 1", "zip": "28001"},
                    finished_at=utc_now(),
                )  # fmt: skip
                value = stored([Outgoing(results, f"contact:{n:08d}A", result)])
                batch.append(Outgoing(bench.prefix + APPLIED_COMMANDS.name, ident, value))
            await publisher.publish_all(batch)


async def reconciled(bench: BenchStack) -> bool:
    """Whether the reconciler finished a pass (its metrics count it)."""
    url = f"{bench.stack.metrics_url('reconciler')}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        metrics = await answer.text()
    return any(
        line.startswith('clientify_odoo_polls_total{source="clientify",status="ok"}')
        and float(line.split()[-1]) >= 1
        for line in metrics.splitlines()
    )


async def links(bench: BenchStack) -> int:
    """Distinct keys of the worker's `states` table (one link each), read on its changelog."""
    topic = replay_tables.changelog(bench.prefix, ROUTE_TABLES[0])
    return len({record.key for record in await read_to_end(bench.bootstrap, [topic])})


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    seed_odoo(tmp / "odoo", args.partners, args.products, args.orders)
    stack = BenchStack(bootstrap, tmp)
    try:
        await stack.up()  # the sandboxes, the receiver, the worker and both writers
        await seed_clientify(stack, args.clientify)  # before the reconciler's first pass
        await stack.start("odoo-poller", "reconciler")
        idle = stack.peak_rss_mb()  # just started, before the load
        # The writers load the applied record when their first command comes: they start
        # again once it is filled.
        for name in WRITERS:
            stack.stack.stop(name)
        started = time.monotonic()
        await post_webhooks(stack, args.webhooks)
        await eventually(lambda: reconciled(stack), stack.stack, "a reconciler pass", args.within)
        await stack.wait_drained(5.0, args.within, ["worker"])
        loading = time.monotonic() - started
        count = await links(stack)
        await fill_applied(stack, args.applied)
        await stack.start(*WRITERS)
        await asyncio.sleep(args.writer_seconds)
        peaks = stack.peak_rss_mb()
    finally:
        stack.down()
    table = Table(
        title=f"Peak RSS (VmHWM) with {count:,} links in the worker's tables, reached in "
        f"{loading:.0f} s: Odoo {args.partners:,} partners, {args.products:,} products, "
        f"{args.orders:,} orders; {args.webhooks:,} webhooks; a reconciler pass over "
        f"{args.clientify:,} records of each kind; writers with {args.applied:,} applied "
        f"commands, after {args.writer_seconds:g} s (2 cores, shared)",
        title_justify="left",
    )
    for column in ("service", "after start-up MiB", "peak MiB", "peak / start-up"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for name in (*PRODUCERS, "worker", *WRITERS, "odoo-sandbox", "clientify-sandbox"):
        table.add_row(
            name, f"{idle[name]:.0f}", f"{peaks[name]:.0f}", ratio(peaks[name], idle[name])
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=40_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=30_000)
    parser.add_argument("--clientify", type=int, default=2_000,
                        help="records of each kind the reconciler reads (2,000)")  # fmt: skip
    parser.add_argument("--applied", type=int, default=100_000)
    parser.add_argument("--writer-seconds", type=float, default=60.0)
    parser.add_argument("--within", type=float, default=3600.0, help="seconds to drain")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
