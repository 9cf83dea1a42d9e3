"""Backfill benchmark: the seeded Odoo sandbox through the whole product into an empty
Clientify sandbox, against two baselines measured in the same run.

- raw create rate: contacts created in a tight loop with the writer's own client
  (`ClientifyClient` as `write clientify` builds it, with its pacer), the limit of this
  setup; also unpaced, to show what the sandbox itself could take;
- naive direct sync: one process reads Odoo page by page, routes and maps each record
  with the product's own code (`RouteStep`, the flow mappers) and applies it with the
  Clientify writer's own target, sequentially, without Kafka. As a hand-built flow does
  it, each record is found by key, then created or updated (the target without its
  index: the baseline of the goal); run again with the writer's index, to show what the
  index alone buys and what the pipeline adds or costs around it.

The product runs as real processes (both sandboxes, receiver, worker, both writers,
poller; tests/support/stack_fixtures.py); the clock starts with the poller and stops at the
last Clientify write. Run from the repository root:

    python -m bench.backfill --partners 20000 --products 5000 --orders 5000

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.common import (
    FLOWS,
    Backfill,
    BenchStack,
    RawRate,
    Seeded,
    clientify_counts,
    ratio,
    raw_creates,
    run_backfill,
    run_benchmark,
    seed_odoo,
    verdict,
)
from connectors.clientify import ClientifyClient
from connectors.odoo import OdooClient
from consumers.writers.clientify import ClientifyTarget
from processors.routing import Router, RouteStep
from producers.odoo.entities import PARTNER, PRODUCT, SALE_ORDER, Entity
from producers.odoo.poller import ALL_RECORDS, observe
from schemas import Command, Routed, System
from schemas.mapping import load_mapping

RAW_GOAL = 0.9  # of the raw create rate


class CountingClient(ClientifyClient):
    """The writer's client, counting requests per flow (`flow` is set by the caller)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__(base_url, api_key)
        self.flow = ""
        self.counted: Counter[str] = Counter()

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        self.counted[self.flow] += 1
        return await super().request(method, path_or_url, params=params, body=body)


# ------------------------------------------------------------------ the naive sync


@dataclass
class DirectSync:
    seconds: float = 0.0
    finished: dict[str, float] = field(default_factory=dict)  # flow -> its last write
    commands: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    records: dict[str, int] = field(default_factory=dict)

    def rate(self, flow: str | None = None) -> float:
        if flow is None:
            return sum(self.records.values()) / self.seconds
        return self.records[flow] / self.finished[flow] if self.finished.get(flow) else 0.0


async def odoo_pages(odoo: OdooClient, entity: Entity, size: int) -> AsyncIterator[list[Any]]:
    """Every record of `entity` in pages by id, order lines attached as the poller does."""
    last = 0
    while True:
        rows = await odoo.search_read(
            entity.model, [("id", ">", last)], list(entity.fields), order="id asc",
            limit=size, context=ALL_RECORDS,
        )  # fmt: skip
        if not rows:
            return
        if entity.lines is not None:
            lines = entity.lines
            children = await odoo.search_read(
                lines.model, [(lines.link, "in", [r["id"] for r in rows])], list(lines.fields),
                order="id asc", context=ALL_RECORDS,
            )  # fmt: skip
            for row in rows:
                row[lines.payload_key] = [c for c in children if c[lines.link][0] == row["id"]]
        yield rows
        last = rows[-1]["id"]


async def direct_sync(
    odoo: OdooClient, clientify: CountingClient, page: int, *, indexed: bool
) -> DirectSync:
    """Partners, then products, then orders: each record routed, mapped and written
    before the next is read (orders find their contacts already there); `indexed`: with
    the writer's index of Clientify's keys, else find-or-create."""
    mapping = load_mapping()
    router = Router(mapping)
    step = RouteStep.in_memory(router)
    target = ClientifyTarget(clientify, mapping, index_refresh=2.0 if indexed else None)
    report = DirectSync()
    started = time.monotonic()
    for entity in (PARTNER, PRODUCT, SALE_ORDER):
        async for rows in odoo_pages(odoo, entity, page):
            for row in rows:
                for out in step.on_fact(observe(entity, row)):
                    if not isinstance(out, Routed):
                        continue  # no business key: the product skips it too
                    fields = router.mappers[out.flow].from_odoo(out.payload)
                    command = Command.for_fact(
                        fact_id=out.fact.event_id, target=System.CLIENTIFY, entity=out.flow,
                        business_key=out.key, fields=fields,
                    )  # fmt: skip
                    clientify.flow = out.flow
                    await target.apply(command)
                    report.commands[out.flow] += 1
                    report.finished[out.flow] = time.monotonic() - started
    report.seconds = time.monotonic() - started
    report.requests = clientify.counted
    return report


# ------------------------------------------------------------------ the run


async def baselines(
    args: argparse.Namespace, bootstrap: str, tmp: Path, template: Path
) -> tuple[RawRate, RawRate, DirectSync, DirectSync | None]:
    """The raw create rates and the naive sync (find-or-create, then indexed unless
    `--no-indexed-naive`), on sandboxes of their own (no webhook target: nothing of
    theirs reaches the product)."""
    shutil.copytree(template, tmp / "odoo")
    bench = BenchStack(bootstrap, tmp, webhooks=False)
    await bench.start("odoo-sandbox", "clientify-sandbox")
    stack = bench.stack
    try:
        async with ClientifyClient(stack.clientify_url, stack.clientify_key) as client:
            paced = await raw_creates(client, args.raw_seconds, 0, warm_up=150.0)
        async with bench.clientify() as client:
            unpaced = await raw_creates(client, args.raw_seconds, 10**6, warm_up=0.0)
        direct = []
        for indexed in (False, True)[: 1 if args.no_indexed_naive else 2]:
            # Each naive sync starts on an empty Clientify, as the product does.
            stack.stop("clientify-sandbox")
            shutil.rmtree(tmp / "clientify")
            await bench.start("clientify-sandbox")
            async with (
                stack.odoo() as odoo,
                CountingClient(stack.clientify_url, stack.clientify_key) as clientify,
            ):
                direct.append(await direct_sync(odoo, clientify, args.page_size, indexed=indexed))
            async with bench.clientify() as client:
                direct[-1].records = await clientify_counts(client)
    finally:
        bench.down()
    return paced, unpaced, direct[0], direct[1] if len(direct) > 1 else None


async def pipeline(args: argparse.Namespace, bootstrap: str, tmp: Path, template: Path) -> Backfill:
    shutil.copytree(template, tmp / "odoo")
    bench = BenchStack(bootstrap, tmp, partitions=args.partitions, poll_interval=args.interval)
    try:
        await bench.up()
        return await run_backfill(bench, settle=max(5.0, 2 * args.interval), within=args.within)
    finally:
        bench.down()


def show(
    seeded: Seeded, paced: RawRate, unpaced: RawRate, direct: DirectSync,
    indexed: DirectSync | None,
    product: Backfill, args: argparse.Namespace,
) -> Table:  # fmt: skip
    table = Table(
        title=f"Backfill Odoo -> Clientify: {seeded.describe()} (2 cores, shared; poll "
        f"interval {args.interval:g} s, {args.partitions} partitions)",
        title_justify="left",
    )
    for column in ("measure", "records", "seconds", "records/s", "ratio", "goal"):
        table.add_column(column, justify="left" if column in ("measure", "goal") else "right")
    table.add_row(
        f"raw create, writer's client (pacer at its {paced.rate:.0f}/s ceiling after "
        f"{paced.warm_up:.0f} s)", f"{paced.creates:,}", f"{paced.seconds:.0f}",
        f"{paced.rate:,.1f}", "1.00", "",
    )  # fmt: skip
    table.add_row(
        "raw create, unpaced (the sandbox's capacity)", f"{unpaced.creates:,}",
        f"{unpaced.seconds:.0f}", f"{unpaced.rate:,.1f}", ratio(unpaced.rate, paced.rate), "",
    )  # fmt: skip
    direct_total = sum(direct.records.values())
    table.add_row(
        "naive direct sync (sequential, no Kafka; find-or-create)", f"{direct_total:,}",
        f"{direct.seconds:.0f}", f"{direct.rate():,.1f}", ratio(direct.rate(), paced.rate), "",
    )  # fmt: skip
    if indexed is not None:
        table.add_row(
            "naive direct sync with the writer's index", f"{sum(indexed.records.values()):,}",
            f"{indexed.seconds:.0f}", f"{indexed.rate():,.1f}",
            ratio(indexed.rate(), paced.rate), "",
        )  # fmt: skip
    met_raw = product.rate() >= RAW_GOAL * paced.rate
    table.add_row(
        "[bold]pipeline, end to end[/]", f"{product.total:,}", f"{product.seconds:.0f}",
        f"{product.rate():,.1f}", ratio(product.rate(), paced.rate),
        f">= {RAW_GOAL} of raw: {verdict(met_raw)}",
    )  # fmt: skip
    table.add_row(
        "pipeline / naive direct sync", "", "", "", ratio(product.rate(), direct.rate()),
        f"> 1: {verdict(product.rate() > direct.rate())}",
    )  # fmt: skip
    if indexed is not None:
        table.add_row(
            "pipeline / naive direct sync with the index", "", "", "",
            ratio(product.rate(), indexed.rate()), "",
        )  # fmt: skip
    for flow in FLOWS:
        table.add_row(
            f"  {flow}: pipeline (naive)",
            f"{product.records[flow]:,} ({direct.records.get(flow, 0):,})",
            f"{product.finished.get(flow, 0):.0f} ({direct.finished.get(flow, 0):.0f})",
            f"{product.rate(flow):,.1f} ({direct.rate(flow):,.1f})",
            ratio(product.rate(flow), direct.rate(flow)), "",
        )  # fmt: skip
    seconds, requests, _ = product.requests()
    table.add_row(
        "pipeline: Clientify requests/s (all, incl. lookups)", f"{requests:,}",
        f"{seconds:.0f}", f"{requests / seconds:,.1f}", ratio(requests / seconds, paced.rate), "",
    )  # fmt: skip
    for flow in FLOWS:
        made = direct.records.get(flow, 0)
        with_index = f" ({indexed.requests[flow] / made:.2f})" if indexed and made else ""
        table.add_row(
            f"  naive: requests per {flow} record{' (with the index)' if indexed else ''}",
            "", "",
            f"{direct.requests[flow] / made:.2f}{with_index}" if made else "-", "", "",
        )  # fmt: skip
    table.add_row(
        "pipeline: requests per record", "", "", f"{requests / product.total:.2f}", "", ""
    )
    for endpoint, count in product.endpoints.most_common():
        table.add_row(
            f"  {endpoint}", f"{count:,}", "", f"{count / product.total:.3f}", "", ""
        )  # fmt: skip
    exact = product.records == seeded.expected and product.duplicates == 0
    table.add_row(
        "pipeline: records as expected, duplicates, failed writes",
        f"{product.total:,}/{seeded.records:,}", "", "",
        f"{product.duplicates} / {product.failed}", verdict(exact and not product.failed),
    )  # fmt: skip
    if product.failed:
        table.add_row(f"  why: {product.why_failed()}", "", "", "", "", "")
    return table


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    template = tmp / "odoo-template"
    seeded = seed_odoo(template, args.partners, args.products, args.orders)
    paced, unpaced, direct, indexed = await baselines(args, bootstrap, tmp / "baselines", template)
    product = await pipeline(args, bootstrap, tmp / "pipeline", template)
    return show(seeded, paced, unpaced, direct, indexed, product, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--raw-seconds", type=float, default=30.0,
                        help="how long each raw create loop is timed (default 30)")  # fmt: skip
    parser.add_argument("--page-size", type=int, default=200, help="naive sync's Odoo pages")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (5 s)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--within", type=float, default=4 * 3600.0,
                        help="seconds the pipeline may take before the run fails")  # fmt: skip
    parser.add_argument("--no-indexed-naive", action="store_true",
                        help="skip the naive sync with the index (informative, not a goal's "
                        "baseline): a third less time at full size")  # fmt: skip
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
