"""Processor efficiency: facts per second through the Faust worker (route, lookups,
tables, decide, commands) against a bare aiokafka consume-transform-produce loop on the
same source topics with the same mapping code and no tables.

The seeded Odoo sandbox is backfilled onto the source topics first (the poller, in this
process); then the bare loop reads every fact, routes it with `RouteStep` over plain
dicts, maps it with the flow's mapper and produces one command per route (acks=all,
idempotent, offsets committed per batch); then the same loop again with the worker's
decide step over a dict too (the same work in one pass, without re-keying through Kafka
or changelogs: what the framework and the tables cost on top); then the worker
(`clientify-odoo worker`, its own process, no writers running) reads the same facts.
Each is timed from its first output to its last; the worker's from its Kafka record
timestamps, so its start-up is not counted. CPU seconds per thousand facts are given
too (steadier than rates on a shared machine). Run from the repository root:

    python -m bench.processor --partners 20000 --products 5000 --orders 5000

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.table import Table

from bench.common import BenchStack, cpu_seconds, ratio, run_benchmark, seed_odoo, verdict
from connectors.kafka.admin import ensure_topics
from connectors.kafka.publisher import Publisher
from connectors.kafka.reader import read_to_end
from processors.decide import DecideStep
from processors.routing import Router, RouteStep
from producers.odoo import OdooPoller
from schemas import Command, Routed, System, decode, encode
from schemas.envelope import Fact
from schemas.mapping import load_mapping
from schemas.topics import COMMANDS_CLIENTIFY, ROUTED, SOURCES, Topics

GOAL = 0.5  # of the bare loop's rate
BARE = "bare."  # the bare loop's output topics: a twin of the product's, under this prefix


@dataclass(frozen=True)
class Measured:
    facts: int
    commands: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.facts / self.seconds

    @property
    def cpu_per_thousand(self) -> float:
        return self.cpu / self.facts * 1000


async def backfill_facts(bench: BenchStack) -> int:
    """Every seeded Odoo record onto the source topics, as facts; how many."""
    async with (
        bench.stack.odoo() as odoo,
        Publisher(bench.bootstrap, transactional_id=f"{bench.prefix}bench-poller") as publisher,
    ):
        poller = OdooPoller(odoo, publisher, bench.bootstrap, topics=Topics(bench.prefix))
        await poller.start()
        return (await poller.backfill()).published


async def bare_loop(bench: BenchStack, facts: int, *, decide: bool) -> Measured:
    """The bare loop; with `decide`, it also runs the worker's decide step over a dict
    (in one pass: no re-keying through Kafka, no changelogs) and produces what it emits."""
    mapping = load_mapping()
    router = Router(mapping)
    step = RouteStep.in_memory(router)
    decide_step = DecideStep(router, {})
    out = bench.prefix + BARE + COMMANDS_CLIENTIFY.name
    consumer = AIOKafkaConsumer(
        *(bench.prefix + spec.name for spec in SOURCES), bootstrap_servers=bench.bootstrap,
        group_id=f"{bench.prefix}bench-bare-{decide}", enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bench.bootstrap, acks="all", enable_idempotence=True
    )
    await consumer.start()
    await producer.start()
    seen = commands = 0
    started: float | None = None
    cpu = time.process_time()
    try:
        while seen < facts:
            batches = await consumer.getmany(timeout_ms=1000)
            started = started or (time.monotonic() if batches else None)
            sends = []
            for records in batches.values():
                for record in records:
                    seen += 1
                    fact = decode(record.value)
                    assert isinstance(fact, Fact)
                    for routed in step.on_fact(fact):
                        if not isinstance(routed, Routed):
                            continue  # a skip: the worker publishes it, the bare loop not
                        key = routed.route_key.encode()
                        if decide:
                            value = routed.model_dump_json().encode()
                            _, texts = decide_step.on_message(routed.route_key, value, None)
                            for text in texts:
                                sends.append(await producer.send(out, text.encode(), key=key))
                            continue
                        command = Command.for_fact(
                            fact_id=fact.event_id, target=System.CLIENTIFY,
                            entity=routed.flow, business_key=routed.key,
                            fields=router.mappers[routed.flow].from_odoo(routed.payload),
                        )  # fmt: skip
                        sends.append(await producer.send(out, encode(command), key=key))
            await asyncio.gather(*sends)
            commands += len(sends)
            await consumer.commit()
        assert started is not None
        return Measured(seen, commands, time.monotonic() - started, time.process_time() - cpu)
    finally:
        await producer.stop()
        await consumer.stop()


async def faust_worker(bench: BenchStack, facts: int, within: float) -> Measured:
    await bench.start("worker")
    worker = bench.stack.processes["worker"]
    cpu = cpu_seconds(worker.pid)  # its start-up, not counted
    # Its group starts with every fact as lag: drained means all of them were processed.
    await bench.wait_drained(2.0, within, ["worker"])
    used = cpu_seconds(worker.pid) - cpu
    routed = await read_to_end(bench.bootstrap, [bench.prefix + ROUTED.name])
    commands = await read_to_end(bench.bootstrap, [bench.prefix + COMMANDS_CLIENTIFY.name])
    first = min(record.timestamp for record in routed)
    last = max(record.timestamp for record in commands)
    return Measured(facts, len(commands), (last - first) / 1000, used)


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    seed_odoo(tmp / "odoo", args.partners, args.products, args.orders)
    stack = BenchStack(bootstrap, tmp)
    await ensure_topics(bootstrap, Topics(stack.prefix).declared(stack.partitions))
    await ensure_topics(bootstrap, Topics(stack.prefix + BARE).declared(stack.partitions))
    try:
        await stack.start("odoo-sandbox")
        facts = await backfill_facts(stack)
        bare = await bare_loop(stack, facts, decide=False)
        same_steps = await bare_loop(stack, facts, decide=True)
        worker = await faust_worker(stack, facts, args.within)
    finally:
        stack.down()
    table = Table(
        title=f"Processor efficiency: {facts:,} Odoo facts ({args.partners:,} partners, "
        f"{args.products:,} products, {args.orders:,} orders), {stack.partitions} partitions "
        "(2 cores, shared)",
        title_justify="left",
    )
    for column in ("measure", "facts", "commands", "seconds", "facts/s", "CPU s per 1k facts"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for label, measured in (
        ("bare aiokafka loop (route + map, no tables)", bare),
        ("bare loop with the worker's steps (route + decide over dicts)", same_steps),
        ("Faust worker (route, lookups, tables, decide)", worker),
    ):
        table.add_row(
            label, f"{measured.facts:,}", f"{measured.commands:,}", f"{measured.seconds:.1f}",
            f"{measured.rate:,.0f}", f"{measured.cpu_per_thousand:.2f}",
        )  # fmt: skip
    efficiency = worker.rate / bare.rate
    table.add_row(
        "worker / bare loop", "", "", "", ratio(worker.rate, bare.rate),
        ratio(bare.cpu_per_thousand, worker.cpu_per_thousand),
    )  # fmt: skip
    table.add_row("goal", "", "", "", f">= {GOAL}: {verdict(efficiency >= GOAL)}", "")
    table.add_row(  # what Kafka, Faust and the tables cost on top of the same steps
        "worker / bare loop with the same steps", "", "", "",
        ratio(worker.rate, same_steps.rate),
        ratio(same_steps.cpu_per_thousand, worker.cpu_per_thousand),
    )  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--within", type=float, default=1800.0, help="seconds to drain")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
