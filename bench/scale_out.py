"""Scale-out benchmark: the same backfill with one worker and one writer of each kind,
then with two of each, on topics of `--partitions` partitions (6).

The second copies join the consumer groups `--join-after` seconds into the backfill,
so the groups rebalance under load. Each copy runs as its own process, as a second
machine would: its own state dir, metrics port and transactional instance name. The
proof that the rebalance lost and duplicated nothing is in the counts: every record
exactly once in Clientify (by business key), the Odoo partners neither multiplied nor
missing their write-back, and every command the worker emitted answered by a Result.
Run from the repository root:

    python -m bench.scale_out --partners 2000 --products 500 --orders 500

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from bench.common import (
    WORKER_AND_WRITERS,
    Backfill,
    BenchStack,
    Seeded,
    ratio,
    run_backfill,
    run_benchmark,
    seed_odoo,
    verdict,
)
from schemas import Command, Result
from schemas.topics import COMMANDS_CLIENTIFY, COMMANDS_ODOO, RESULTS
from tests.support.stack_fixtures import topic_messages


@dataclass
class Run:
    copies: int
    backfill: Backfill
    commands: int  # distinct commands the worker(s) emitted, to both systems
    answered: int  # of which with a Result
    results: int  # Results published (a redelivered command publishes its Result again)
    partners: int  # Odoo partners at the end
    partner_keys: int  # distinct refs among them


async def one_run(
    args: argparse.Namespace, bootstrap: str, tmp: Path, template: Path, copies: int
) -> Run:
    shutil.copytree(template, tmp / "odoo")
    bench = BenchStack(bootstrap, tmp, partitions=args.partitions, poll_interval=args.interval)
    extra = [bench.add_copy(name, 2) for name in WORKER_AND_WRITERS] if copies == 2 else []

    async def join() -> None:
        await asyncio.sleep(args.join_after)
        await bench.start(*extra)

    try:
        await bench.up()
        joining = asyncio.create_task(join()) if extra else None
        backfill = await run_backfill(bench, max(5.0, 2 * args.interval), args.within)
        if joining is not None:
            await joining
        commands: set[str] = set()
        for spec in (COMMANDS_CLIENTIFY, COMMANDS_ODOO):
            messages = await topic_messages(bootstrap, bench.prefix + spec.name)
            commands |= {m.command_id for m in messages if isinstance(m, Command)}
        results = [
            m
            for m in await topic_messages(bootstrap, bench.prefix + RESULTS.name)
            if isinstance(m, Result)
        ]
        async with bench.stack.odoo() as odoo:
            partners = await odoo.search_read("res.partner", [("ref", "!=", False)], ["ref"])
    finally:
        bench.down()
    return Run(
        copies, backfill, len(commands), len(commands & {r.command_id for r in results}),
        len(results), len(partners), len({p["ref"] for p in partners}),
    )  # fmt: skip


def show(seeded: Seeded, runs: list[Run], args: argparse.Namespace) -> Table:
    one, two = runs
    table = Table(
        title=f"Scale out: {seeded.describe()}, {args.partitions} partitions; the second "
        f"worker and writers join {args.join_after:g} s into the backfill (2 cores, shared)",
        title_justify="left",
    )
    table.add_column("measure")
    for run in runs:
        table.add_column(f"{run.copies} of each", justify="right")
    table.add_column("ratio 2 / 1", justify="right")
    table.add_row(
        "records/s, end to end", *(f"{r.backfill.rate():,.1f}" for r in runs),
        ratio(two.backfill.rate(), one.backfill.rate()),
    )  # fmt: skip
    table.add_row("seconds, end to end", *(f"{r.backfill.seconds:,.0f}" for r in runs), "")
    rows: list[tuple[str, list[str], bool]] = [
        ("Clientify records (expected " + f"{seeded.records:,})",
         [f"{r.backfill.total:,}" for r in runs],
         all(r.backfill.records == seeded.expected for r in runs)),
        ("  sharing a business key (duplicates)",
         [str(r.backfill.duplicates) for r in runs],
         all(r.backfill.duplicates == 0 for r in runs)),
        ("Odoo partners with a tax id / distinct tax ids",
         [f"{r.partners:,} / {r.partner_keys:,}" for r in runs],
         all(r.partners == r.partner_keys == runs[0].partners for r in runs)),
        ("commands emitted / answered by a Result",
         [f"{r.commands:,} / {r.answered:,}" for r in runs],
         all(r.commands == r.answered for r in runs)),
        ("Results published (again for a redelivered command)",
         [f"{r.results:,}" for r in runs], True),
        ("failed writes (dead letters)",
         [str(r.backfill.failed) for r in runs], all(r.backfill.failed == 0 for r in runs)),
    ]  # fmt: skip
    for measure, values, ok in rows:
        table.add_row(measure, *values, verdict(ok))
    for run in runs:
        if run.backfill.failed:
            table.add_row(f"  why ({run.copies} of each): {run.backfill.why_failed()}")
    return table


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    template = tmp / "odoo-template"
    seeded = seed_odoo(template, args.partners, args.products, args.orders)
    runs = [await one_run(args, bootstrap, tmp / f"run{n}", template, n) for n in (1, 2)]
    return show(seeded, runs, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=2_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--join-after", type=float, default=60.0,
                        help="seconds into the backfill the second copies start (60)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (5 s)")
    parser.add_argument("--within", type=float, default=3 * 3600.0, help="seconds to drain")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
