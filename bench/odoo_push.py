"""Push latency, real Odoo -> Kafka: an Odoo save until its fact is on Kafka, with the
product's automation rules pushing hints, against the same saves polled only.

Both figures come from the same run, the same Odoo and the same poller (its interval,
5 s by default, is the poll path's): first `--saves` saves with the rules installed, one
every `--gap` seconds, then the rules removed and the same saves again. Needs a real
Odoo 17 or later in the settings (ODOO_URL, ODOO_DB, ODOO_USER, ODOO_API_KEY, from the
environment or .env), e.g. the one `../shared/odoo/real-odoo start 17` prints:

    python -m bench.odoo_push --saves 40

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker; the
receiver, rules and poller are the push tests' harness (tests/support/push.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from rich.table import Table

from bench.common import quantiles, ratio, run_benchmark
from clientify_odoo.settings import load_settings, odoo_config
from connectors.kafka import clients
from connectors.kafka.admin import ensure_topics
from connectors.odoo import OdooClient
from connectors.odoo.automation import remove_rules
from schemas import Fact, decode
from schemas.topics import ODOO_PARTNER, Topics
from tests.support.push import pushing


async def timed_saves(
    client: OdooClient, rid: int, bootstrap: str, topic: str, saves: int, gap: float
) -> list[float]:
    """Seconds from each save's call to its fact on Kafka."""
    consumer = clients.consumer(bootstrap, topic, auto_offset_reset="latest")
    await consumer.start()
    seen: dict[str, float] = {}
    latencies: list[float] = []
    try:
        await consumer.getmany(timeout_ms=500)  # at the end before the first save
        for n in range(saves):
            name = f"Bench {uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            await client.write("res.partner", [rid], {"name": name})
            while name not in seen:
                for records in (await consumer.getmany(timeout_ms=50)).values():
                    for record in records:
                        fact = decode(record.value)
                        if isinstance(fact, Fact) and fact.source_id == str(rid):
                            seen[str(fact.payload.get("name"))] = time.monotonic()
                if time.monotonic() - started > 60:
                    raise RuntimeError(f"save {n} never reached Kafka")
            latencies.append(seen[name] - started)
            await asyncio.sleep(gap)
    finally:
        await consumer.stop()
    return latencies


async def bench(args: argparse.Namespace, bootstrap: str, _tmp: Path) -> Table:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await ensure_topics(bootstrap, topics.declared(1))
    config = odoo_config(load_settings())
    async with pushing(config, bootstrap, topics, interval=args.interval) as push:
        client, topic = push.client, topics[ODOO_PARTNER]
        rid = await client.create("res.partner", {"name": "Bench push", "ref": uuid.uuid4().hex})
        pushed = await timed_saves(client, rid, bootstrap, topic, args.saves, args.gap)
        await remove_rules(client)
        polled = await timed_saves(client, rid, bootstrap, topic, args.saves, args.gap)
    table = Table(
        title=f"Odoo {client.version} save -> fact on Kafka, {args.saves} saves per path, "
        f"poll interval {args.interval:g} s"
    )
    for column in ("path", "p50 s", "p95 s", "p99 s", "max s", "p99 / poll p99"):
        table.add_column(column, justify="right" if column != "path" else "left")
    baseline = quantiles(polled)[2]
    for path, values in (("push (hint, then read)", pushed), ("poll only", polled)):
        p50, p95, p99 = quantiles(values)
        table.add_row(
            path, f"{p50:.2f}", f"{p95:.2f}", f"{p99:.2f}", f"{max(values):.2f}",
            ratio(p99, baseline),
        )  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=40, help="saves per path (40)")
    parser.add_argument("--gap", type=float, default=0.7, help="seconds between saves (0.7)")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (5 s)")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
