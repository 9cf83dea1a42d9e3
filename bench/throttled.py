"""Throttled backfill: the seeded Odoo sandbox through the whole product into a Clientify
sandbox that answers 429 above `--throttle` requests per second (DRF throttling, as
Clientify does), against the allowed rate and the writer's own client in a tight loop
on an equally throttled sandbox (same run).

The rate is the Clientify requests the sandbox answered without a 429, per second,
between the pipeline's first and last Clientify write (counted by the sandbox itself;
nothing else asks Clientify meanwhile), and the same once the pacer has learned the
limit: from `--warm-up` seconds after the first write, as the baseline is measured (the
first 429, which teaches the pacer the limit, costs ~3 s of pace on its own). A failed
write is a dead-lettered command.
Run from the repository root:

    python -m bench.throttled --throttle 10 --partners 500 --products 150 --orders 150

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from bench.common import (
    BenchStack,
    ratio,
    raw_creates,
    run_backfill,
    run_benchmark,
    seed_odoo,
    verdict,
)
from connectors.clientify import ClientifyClient

GOAL = 0.95  # of the allowed rate


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    raw_stack = BenchStack(bootstrap, tmp / "raw", throttle=args.throttle, webhooks=False)
    (tmp / "raw").mkdir()
    try:
        await raw_stack.start("clientify-sandbox")
        stack = raw_stack.stack
        async with ClientifyClient(stack.clientify_url, stack.clientify_key) as client:
            raw = await raw_creates(client, args.raw_seconds, 0, warm_up=args.warm_up)
    finally:
        raw_stack.down()
    seeded = seed_odoo(tmp / "pipeline" / "odoo", args.partners, args.products, args.orders)
    product = BenchStack(bootstrap, tmp / "pipeline", throttle=args.throttle)
    try:
        await product.up()
        backfill = await run_backfill(product, max(5.0, 2 * args.interval), args.within)
    finally:
        product.down()
    seconds, requests, throttled = backfill.requests(backfill.first_write, backfill.seconds)
    overall = (requests - throttled) / seconds
    steady = backfill.requests(backfill.first_write + args.warm_up, backfill.seconds)
    sustained = (steady[1] - steady[2]) / steady[0]
    table = Table(
        title=f"Throttled backfill, Clientify at {args.throttle:g} requests/s: "
        f"{seeded.describe()} (2 cores, shared; poll interval {args.interval:g} s)",
        title_justify="left",
    )
    for column in ("measure", "value", "ratio to allowed", "goal"):
        table.add_column(column, justify="left" if column in ("measure", "goal") else "right")
    table.add_row("allowed rate", f"{args.throttle:g} requests/s", "1.00", "")
    table.add_row(
        f"writer's client alone, creates in a tight loop ({raw.seconds:.0f} s after "
        f"{raw.warm_up:.0f} s)", f"{raw.rate:.2f} requests/s", ratio(raw.rate, args.throttle),
        "",
    )  # fmt: skip
    table.add_row(
        f"pipeline, answered requests between first and last write ({seconds:.0f} s)",
        f"{overall:.2f} requests/s", ratio(overall, args.throttle), "",
    )  # fmt: skip
    table.add_row(
        f"pipeline, the same from {args.warm_up:.0f} s after the first write, as the "
        f"baseline ({steady[0]:.0f} s)",
        f"{sustained:.2f} requests/s", ratio(sustained, args.throttle),
        f">= {GOAL}: {verdict(sustained >= GOAL * args.throttle)}",
    )  # fmt: skip
    table.add_row("pipeline / writer's client alone", "", ratio(sustained, raw.rate), "")
    table.add_row("429 answers to the pipeline", f"{throttled:,} of {requests:,}", "", "")
    table.add_row(
        "failed writes (dead letters)", str(backfill.failed), "",
        f"0: {verdict(backfill.failed == 0)}",
    )  # fmt: skip
    if backfill.failed:
        table.add_row("  why", backfill.why_failed(), "", "")
    exact = backfill.records == seeded.expected and backfill.duplicates == 0
    table.add_row(
        "records in Clientify (expected), duplicates",
        f"{backfill.total:,} ({seeded.records:,}), {backfill.duplicates}", "", verdict(exact),
    )  # fmt: skip
    table.add_row(
        "records/s end to end", f"{backfill.rate():.2f} ({backfill.seconds:.0f} s)", "", ""
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--throttle", type=float, default=10.0, help="requests/s (10)")
    parser.add_argument("--partners", type=int, default=500)
    parser.add_argument("--products", type=int, default=150)
    parser.add_argument("--orders", type=int, default=150)
    parser.add_argument("--raw-seconds", type=float, default=60.0,
                        help="how long the tight loop is timed (60)")  # fmt: skip
    parser.add_argument("--warm-up", type=float, default=30.0,
                        help="seconds the tight loop runs before it is timed (30)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (5 s)")
    parser.add_argument("--within", type=float, default=3600.0, help="seconds to drain")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
