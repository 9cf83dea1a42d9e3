"""Backfill throughput, Odoo sandbox -> Kafka, against the sandbox's raw search_read.

Both figures come from the same run, the same seeded sandbox (served over HTTP on
127.0.0.1) and the same client, so their ratio says what the poller costs on top of
reading Odoo: Kafka transactions, fact envelopes, line and variant look-ups.

    python bench/odoo_backfill.py --partners 20000 --products 2000 --orders 3000

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from clientify_odoo.stack.broker import throwaway_broker
from connectors.faults import Faults
from connectors.kafka.admin import ensure_topics
from connectors.kafka.publisher import Publisher
from connectors.odoo import OdooClient, OdooConfig
from connectors.odoo.sandbox import Credentials, Profile, create_app, open_database, seed
from producers.odoo import OdooPoller, PollerOptions
from producers.odoo.entities import STREAMS
from schemas.topics import Topics

KEY = "b" * 40


async def raw_read(client: OdooClient, page: int) -> tuple[int, float]:
    """search_read of every entity model by id pages, the fields the poller reads."""
    rows = 0
    started = time.monotonic()
    for stream in STREAMS:
        if stream.indirect:
            continue
        last = 0
        while True:
            batch = await client.search_read(
                stream.model, [("id", ">", last)], list(stream.entity.fields),
                order="id asc", limit=page, context={"active_test": False},
            )  # fmt: skip
            if not batch:
                break
            rows += len(batch)
            last = batch[-1]["id"]
    return rows, time.monotonic() - started


async def bench(args: argparse.Namespace, bootstrap: str) -> Table:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, Topics(prefix).declared(args.partitions))
    database = open_database(Profile(args.profile), Credentials("bench", "admin", KEY), None)
    seeded = seed(database, args.partners, args.products, args.orders)
    faults = Faults(latency_ms=args.latency_ms)
    server = TestServer(create_app(database, faults), host="127.0.0.1", port=0)
    await server.start_server()
    config = OdooConfig(
        url=str(server.make_url("")), db="bench", login="admin", api_key=SecretStr(KEY)
    )
    try:
        async with OdooClient(config) as client:
            protocol = client.protocol
            raw_rows, raw_seconds = await raw_read(client, args.page_size)
            publisher = Publisher(bootstrap, transactional_id=f"{prefix}bench-poller")
            async with publisher:
                poller = OdooPoller(
                    client, publisher, bootstrap, topics=Topics(prefix),
                    options=PollerOptions(page_size=args.page_size),
                )  # fmt: skip
                await poller.start()
                report = await poller.backfill()
    finally:
        await server.close()
    raw_rate = raw_rows / raw_seconds
    backfill_rate = report.published / report.seconds
    table = Table(
        title=f"Odoo {args.profile} sandbox ({protocol}) -> Kafka ({seeded.partners} partners, "
        f"{seeded.products} products, {seeded.orders} orders; pages of {args.page_size}; "
        f"{args.latency_ms:g} ms added per request)"
    )
    for column in ("measure", "records", "seconds", "records/s"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("raw search_read (HTTP)", str(raw_rows), f"{raw_seconds:.2f}", f"{raw_rate:,.0f}")
    table.add_row(
        "backfill to Kafka (facts)", str(report.published), f"{report.seconds:.2f}",
        f"{backfill_rate:,.0f}",
    )  # fmt: skip
    table.add_row("ratio backfill / raw", "", "", f"{backfill_rate / raw_rate:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=int, default=17, choices=(14, 16, 17, 18, 19))
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0,
        help="added to every sandbox request, like a remote Odoo's network and workers",
    )  # fmt: skip
    args = parser.parse_args()
    with throwaway_broker("bench-kafka-") as bootstrap:
        Console().print(asyncio.run(bench(args, bootstrap)))


if __name__ == "__main__":
    main()
