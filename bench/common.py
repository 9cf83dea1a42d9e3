"""What the end-to-end benchmarks share: a seeded Odoo, the product running as real
processes (the test harness's `SyncStack`), and the measures taken from outside it:
Clientify counts, the writers' results, consumer lag and /proc.

The scripts run from the repository root as modules (`python -m bench.backfill`),
because they drive the product through the test harness (tests/support/stack_fixtures.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clientify_odoo.stack.broker import free_port_pair, throwaway_broker
from clientify_odoo.status.kafka_state import inspect_kafka
from connectors.clientify import AdaptiveRateLimiter, ClientifyClient
from connectors.clientify.client import Listing
from connectors.kafka.admin import ensure_topics
from connectors.odoo.sandbox import Credentials, Profile, open_database, parse_modules, seed
from schemas import Result, ResultStatus, System
from schemas.keys import normalise_sku, normalise_tax_id
from schemas.topics import RESULTS, Topics
from tests.support.stack_fixtures import ODOO_KEY, SyncStack, topic_messages, wait_http

FLOWS = ("company", "contact", "product", "order")
RESOURCES = {
    "company": "companies", "contact": "contacts", "product": "products", "order": "orders"
}  # fmt: skip
ODOO_PROFILE = 17
ODOO_MODULES = "account,sale_stock"  # what SyncStack's Odoo sandbox runs with
LINES_PER_ORDER = 3
SANDBOXES = ("odoo-sandbox", "clientify-sandbox")
WORKER_AND_WRITERS = ("worker", "clientify-writer", "odoo-writer")
WIDTH = 130  # the tables' width, also when the output goes to a file
KEY_LIKE = re.compile(r"\b[A-Z]?\d[\dA-Z-]{4,}\b")  # tax ids, SKUs, order names in reasons


# ------------------------------------------------------------------ the Odoo data


@dataclass(frozen=True)
class Seeded:
    """What was seeded, and how many Clientify records each flow must end with."""

    partners: int
    products: int
    orders: int
    expected: dict[str, int]

    @property
    def records(self) -> int:
        return sum(self.expected.values())

    def describe(self) -> str:
        return (
            f"{self.partners:,} partners, {self.products:,} products, {self.orders:,} "
            f"confirmed orders of {LINES_PER_ORDER} lines"
        )


def seed_odoo(data_dir: Path, partners: int, products: int, orders: int) -> Seeded:
    """Seed the database SyncStack's Odoo sandbox opens from `data_dir`: the sandbox's
    demo partners (companies and persons, a tenth without a tax id, so not synced) and
    products, then `orders` confirmed orders of three lines, each for a customer with a
    tax id so that every order syncs."""
    profile = Profile(ODOO_PROFILE, parse_modules(ODOO_MODULES))
    database = open_database(profile, Credentials("odoo", "admin", ODOO_KEY), data_dir)
    try:
        seed(database, partners, products, 0)
        table = database.store.table
        keyed = [p for p in table("res.partner").values() if p.get("ref")]
        customers = sorted(int(p["id"]) for p in keyed)
        catalogue = sorted(int(p["id"]) for p in table("product.product").values())
        rng = random.Random(7)
        for start in range(0, orders, 500):
            rows = [
                {
                    "partner_id": rng.choice(customers),
                    "order_line": [
                        [0, 0, {"product_id": product, "product_uom_qty": rng.randint(1, 9)}]
                        for product in rng.sample(catalogue, LINES_PER_ORDER)
                    ],
                }
                for _ in range(min(500, orders - start))
            ]
            ids = database.execute(2, "sale.order", "create", [rows], {})
            database.execute(2, "sale.order", "action_confirm", [ids], {})
        # Partners sharing a tax id (random ones can collide) are one Clientify record.
        expected = {
            "company": len({p["ref"] for p in keyed if p.get("is_company")}),
            "contact": len({p["ref"] for p in keyed}),
            "product": sum(1 for p in table("product.product").values() if p.get("default_code")),
            "order": orders,
        }
    finally:
        database.close()
    return Seeded(partners, products, orders, expected)


# ------------------------------------------------------------------ the product


class BenchStack:
    """A SyncStack with the benchmark's settings, started service by service so the
    clock can start when everything but the poller is up."""

    def __init__(
        self,
        bootstrap: str,
        tmp: Path,
        *,
        partitions: int = 3,
        poll_interval: float = 5.0,
        throttle: float = 0.0,
        webhooks: bool = True,
    ) -> None:
        self.stack = SyncStack(bootstrap, f"bench{uuid.uuid4().hex[:8]}.", tmp)
        self.partitions = partitions
        commands = self.stack.commands
        poller = commands["odoo-poller"]
        poller[poller.index("--interval") + 1] = f"{poll_interval:g}"
        for name in WORKER_AND_WRITERS:
            commands[name] += ["--partitions", str(partitions)]
        if throttle:
            commands["clientify-sandbox"] += ["--throttle", f"{throttle:g}"]
        if not webhooks:
            sandbox = commands["clientify-sandbox"]
            del sandbox[sandbox.index("--webhook-target") : sandbox.index("--webhook-target") + 2]

    @property
    def bootstrap(self) -> str:
        return self.stack.bootstrap

    @property
    def prefix(self) -> str:
        return self.stack.prefix

    async def start(self, *names: str) -> None:
        """Start services and wait until each answers over HTTP."""
        stack = self.stack
        for name in names:
            stack.start(name)
        for name in names:
            if name == "odoo-sandbox":
                await wait_http(f"http://127.0.0.1:{stack.odoo_port}/web/version", stack, name)
            elif name == "clientify-sandbox":
                url = f"{stack.clientify_admin_url}/stats/"
                await wait_http(url, stack, name, stack.clientify_key)
            else:
                await wait_http(f"{stack.metrics_url(name)}/health", stack, name)

    async def up(self) -> None:
        """Everything but the poller and the reconciler: starting the poller starts the
        backfill."""
        await ensure_topics(self.bootstrap, Topics(self.prefix).declared(self.partitions))
        await self.start(*SANDBOXES)
        await self.start("webhook-receiver", *WORKER_AND_WRITERS)

    def add_copy(self, name: str, number: int) -> str:
        """Declare another running copy of the worker or a writer, in the same consumer
        group (own metrics port, state dir and transactional instance name)."""
        copy = f"{name}-{number}"
        command = list(self.stack.commands[name])
        command = command[: command.index("--metrics-port")]
        if name == "worker":
            command[command.index("--data-dir") + 1] = str(self.stack.tmp / copy)
        else:
            command += ["--instance", f"bench-{copy}"]
        port = free_port_pair()
        self.stack.commands[copy] = [*command, "--metrics-port", str(port)]
        self.stack.metrics_ports[copy] = port
        return copy

    def down(self) -> None:
        self.stack.down()

    # -- measures from outside

    def peak_rss_mb(self) -> dict[str, float]:
        """Peak resident memory (VmHWM) of each running service, in MiB."""
        return {
            name: peak_rss_mb(process.pid)
            for name, process in self.stack.processes.items()
            if process.poll() is None
        }

    async def lag(self, services: Iterable[str] = WORKER_AND_WRITERS) -> int:
        """Messages the consumer groups of `services` have not consumed yet, in all.

        The worker's lag on sync.results is left out: Faust moves its committed offset
        there by about one message per commit interval (each result comes in a writer
        transaction, and Faust commits slowly across the commit markers' offsets), so
        it reads as hundreds behind for minutes while the results themselves are folded
        within milliseconds (their states changelog records follow them at once)."""
        state = await inspect_kafka(self.bootstrap, self.prefix, self.partitions)
        if state.error:
            raise RuntimeError(f"cannot read the consumer lag: {state.error}")
        results = self.prefix + RESULTS.name
        return sum(
            partition.lag
            for group in state.groups
            if group.service in services
            for partition in group.partitions
            if not (group.service == "worker" and partition.topic == results)
        )

    async def wait_drained(
        self, settle: float, within: float, services: Iterable[str] = WORKER_AND_WRITERS
    ) -> None:
        """Until `services` have nothing left to consume twice in a row, `settle` seconds
        apart (a poll interval or more, so a write's fact coming back is waited for)."""
        deadline = time.monotonic() + within
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still not drained after {within:.0f}s\n{self.stack.logs()}")
            for name, process in self.stack.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited\n{self.stack.logs()}")
            quiet = quiet + 1 if await self.lag(services) == 0 else 0
            await asyncio.sleep(settle)

    async def results(self, target: System) -> list[Result]:
        """Every Result the writers of `target` published."""
        messages = await topic_messages(self.bootstrap, self.prefix + RESULTS.name)
        return [m for m in messages if isinstance(m, Result) and m.target is target]

    @asynccontextmanager
    async def clientify(self) -> AsyncIterator[ClientifyClient]:
        """A client of the stack's Clientify sandbox for measuring, not paced like the
        writer's (its requests are not part of any figure)."""
        async with unpaced_client(self.stack.clientify_url, self.stack.clientify_key) as client:
            yield client


def unpaced_client(url: str, key: str) -> ClientifyClient:
    limiter = AdaptiveRateLimiter(initial_rate=1000, max_rate=1000, name="bench")
    return ClientifyClient(url, key, limiter=limiter)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of `pid` (the peak of its resident set), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time `pid` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ Clientify's side


async def clientify_counts(client: ClientifyClient) -> dict[str, int]:
    """How many records each flow's Clientify resource holds."""
    counts = {}
    for flow in FLOWS:
        listing: Listing = getattr(client, RESOURCES[flow])
        counts[flow] = (await listing.page(page_size=1)).count
    return counts


async def clientify_keys(client: ClientifyClient) -> dict[str, list[str]]:
    """Per flow, the business key of every Clientify record (one entry per record, so
    a duplicate shows twice)."""
    keys: dict[str, list[str]] = {}
    for flow in FLOWS:
        listing: Listing = getattr(client, RESOURCES[flow])
        found = []
        async for record in listing.list():
            if flow == "order":
                found.append(normalise_sku(str(record.get("order_id") or "")) or "")
            elif flow == "product":
                found.append(normalise_sku(record.get("sku")) or "")
            else:
                found.append(normalise_tax_id(record.get("taxpayer_identification_number")) or "")
        keys[flow] = found
    return keys


# ------------------------------------------------------------------ raw creates


@dataclass
class RawRate:
    creates: int
    seconds: float
    warm_up: float  # seconds the pacer took to reach its ceiling (or was given)

    @property
    def rate(self) -> float:
        return self.creates / self.seconds


def contact(n: int) -> dict[str, Any]:
    """A contact as the writer creates one for a partner (first sync: every field)."""
    return {
        "first_name": f"Contacto {n} García López",
        "taxpayer_identification_number": f"{90000000 + n:08d}R",
        "phones": [{"phone": f"+34 9{n:08d}", "type": 1}],
        "addresses": [{"street": "Calle Mayor, 1", "city": "Madrid", "country": "Spain"}],
    }


async def raw_creates(
    client: ClientifyClient, seconds: float, first: int, *, warm_up: float
) -> RawRate:
    """Contacts created in a tight loop for `seconds`, timed once the client's pacer
    stopped rising or after `warm_up` seconds (its additive increase takes over a
    minute from 10 to 50 requests/s; against a throttle it settles below the limit)."""
    n = first
    started = time.monotonic()
    limiter = client.limiter
    while limiter.rate < limiter.max_rate and time.monotonic() - started < warm_up:
        await client.contacts.create(contact(n))
        n += 1
    warm_up = time.monotonic() - started
    start, measured_from = time.monotonic(), n
    while time.monotonic() - start < seconds:
        await client.contacts.create(contact(n))
        n += 1
    return RawRate(n - measured_from, time.monotonic() - start, warm_up)


# ------------------------------------------------------------------ a backfill


@dataclass
class Backfill:
    """A backfill through the running product, timed from the poller's start."""

    seconds: float  # until the last Clientify write
    records: dict[str, int]  # Clientify records per flow at the end
    finished: dict[str, float]  # per flow, seconds until its last Clientify write
    first_write: float  # seconds until the first Clientify write
    writes: int  # Clientify Results applied (creates and updates)
    failed: int  # Clientify Results failed (dead-lettered)
    failures: Counter[str]  # why, with record keys blanked out
    duplicates: int  # Clientify records sharing a business key
    # (seconds, requests answered, of which 429) of the Clientify sandbox, every second
    samples: list[tuple[float, int, int]]
    endpoints: Counter[str]  # Clientify requests per endpoint ("PUT /v1/contacts/{id}/")

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def rate(self, flow: str | None = None) -> float:
        """Records per second, of one flow (until that flow's last write) or all."""
        if flow is None:
            return self.total / self.seconds
        return self.records[flow] / self.finished[flow] if self.finished.get(flow) else 0.0

    def why_failed(self) -> str:
        """The failed writes' reasons, most frequent first."""
        return "; ".join(f"{n} x {reason}" for reason, n in self.failures.most_common())

    def requests(self, start: float = 0.0, end: float = float("inf")) -> tuple[float, int, int]:
        """Seconds, requests answered and 429s between the samples nearest `start` and
        `end` (the whole run by default)."""
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples
        first, last = inside[0], inside[-1]
        return last[0] - first[0], last[1] - first[1], last[2] - first[2]


async def run_backfill(bench: BenchStack, settle: float, within: float) -> Backfill:
    """Start the poller on the seeded Odoo and wait until the product has drained. The
    figures come from the writers' Results and the sandbox's own counters; Clientify's
    API is asked only at the end, so a throttled budget is the writer's alone."""
    samples: list[tuple[float, int, int]] = []
    started = time.time()

    async def sample() -> None:
        while True:
            stats = await bench.stack.clientify_stats()
            samples.append((time.time() - started, stats["requests"], stats["throttled"]))
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample())
    try:
        await bench.start("odoo-poller")
        deadline = time.monotonic() + within
        while await bench.lag() == 0:  # the poller's first page is not out yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"the poller published nothing\n{bench.stack.logs()}")
            await asyncio.sleep(1)
        await bench.wait_drained(settle, deadline - time.monotonic())
    finally:
        sampler.cancel()
    endpoints = Counter((await bench.stack.clientify_stats())["requests_by_endpoint"])
    results = await bench.results(System.CLIENTIFY)
    times = [r.finished_at.timestamp() - started for r in results]
    finished: dict[str, float] = {}
    for result, at in zip(results, times, strict=True):
        finished[result.entity] = max(finished.get(result.entity, 0.0), at)
    async with bench.clientify() as client:
        keys = await clientify_keys(client)
    failed = [r for r in results if r.status is ResultStatus.FAILED]
    return Backfill(
        seconds=max(times),
        records={flow: len(found) for flow, found in keys.items()},
        finished=finished,
        first_write=min(times),
        writes=sum(1 for r in results if r.written),
        failed=len(failed),
        failures=Counter(KEY_LIKE.sub("<key>", r.error or "") for r in failed),
        duplicates=sum(len(found) - len(set(found)) for found in keys.values()),
        samples=samples,
        endpoints=endpoints,
    )


# ------------------------------------------------------------------ figures


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 of `values`."""
    if len(values) < 2:
        only = values[0] if values else float("nan")
        return only, only, only
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def run_benchmark(
    parser: argparse.ArgumentParser,
    bench: Callable[[argparse.Namespace, str, Path], Awaitable[Table]],
) -> None:
    """A benchmark's main: parse its command line, run it on a throw-away broker and
    data dir, print its table."""
    args = parser.parse_args()
    with throwaway_broker("bench-kafka-") as bootstrap, tempfile.TemporaryDirectory() as tmp:
        Console(width=WIDTH).print(asyncio.run(bench(args, bootstrap, Path(tmp))))


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}" if baseline else "-"


def verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[red]missed[/]"
