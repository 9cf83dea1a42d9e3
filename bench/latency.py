"""Latency benchmark: from a save on one side to the write on the other, with the
product idle and then under a backfill.

- webhook path: a Clientify contact's first name saved through Clientify's API, until
  the Odoo writer has written the partner's name (webhook, receiver, worker, writer);
- poll path: an Odoo partner's name written through Odoo's API, until the Clientify
  writer has written the contact's first name (poller, worker, writer).

Each save carries a unique value; its latency ends at the `finished_at` of the writer's
Result that wrote that value. The idle figures are the baseline of the loaded ones,
taken in the same run on the same records: first the seeded partners are synced, then
saves are made on linked persons one every `--gap` seconds; then `--load` new partners
are created in Odoo at once (a backfill for the poller and both writers) and the same
saves are made while it drains. Run from the repository root:

    python -m bench.latency --saves 50 --load 3000

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from bench.common import BenchStack, quantiles, run_backfill, run_benchmark, seed_odoo
from connectors.spanish_tax_ids import nif
from schemas import Result, System
from schemas.keys import normalise_tax_id

PATHS = {"webhook": System.ODOO, "poll": System.CLIENTIFY}  # path -> where it ends


@dataclass(frozen=True)
class Person:
    key: str
    odoo_id: int
    clientify_id: int


@dataclass(frozen=True)
class Save:
    path: str
    value: str
    at: float  # epoch seconds, just before the save was sent


async def linked_persons(bench: BenchStack) -> list[Person]:
    """Persons (not companies) synced on both sides, by tax id."""
    async with bench.stack.odoo() as odoo:
        partners = await odoo.search_read(
            "res.partner", [("is_company", "=", False), ("ref", "!=", False)], ["ref"]
        )
    by_key = {normalise_tax_id(p["ref"]): int(p["id"]) for p in partners}
    async with bench.clientify() as client:
        return [
            Person(key, by_key[key], int(contact["id"]))
            async for contact in client.contacts.list()
            if (key := normalise_tax_id(contact.get("taxpayer_identification_number"))) in by_key
        ]


async def make_saves(
    bench: BenchStack, persons: list[Person], count: int, gap: float, tag: str
) -> list[Save]:
    """`count` saves per path, alternating paths, one every `gap` seconds, each on a
    person of its own (a second save of one record could supersede the first before it
    is written): the webhook path edits the first half of `persons`, the poll path the
    second."""
    half = len(persons) // 2
    if count > half:
        raise SystemExit(f"{count} saves need {2 * count} linked persons, found {len(persons)}: "
                         "seed more --partners")  # fmt: skip
    saves: list[Save] = []
    async with bench.clientify() as clientify, bench.stack.odoo() as odoo:
        for n in range(count):
            for path, person in (("webhook", persons[n]), ("poll", persons[half + n])):
                value = f"Latencia {tag} {n} {uuid.uuid4().hex[:6]}"
                at = time.time()
                if path == "webhook":
                    await clientify.contacts.update(
                        person.clientify_id, {"first_name": value, "last_name": ""}
                    )
                else:
                    await odoo.write("res.partner", [person.odoo_id], {"name": value})
                saves.append(Save(path, value, at))
                await asyncio.sleep(gap / 2)
    return saves


def latencies(saves: list[Save], results: list[Result]) -> dict[str, list[float]]:
    """Seconds from each save to the Result that wrote its value (by path)."""
    written = {
        (r.target, r.written["name"]): r.finished_at.timestamp()
        for r in results
        if isinstance(r.written.get("name"), str)
    }
    out: dict[str, list[float]] = {path: [] for path in PATHS}
    for save in saves:
        done = written.get((PATHS[save.path], save.value))
        if done is None:
            raise AssertionError(f"{save.path} save {save.value!r} never reached the other side")
        out[save.path].append(done - save.at)
    return out


async def create_load(bench: BenchStack, partners: int) -> None:
    """`partners` new partners (a third of them companies) in Odoo, 500 per call."""
    async with bench.stack.odoo() as odoo:
        for start in range(0, partners, 500):
            await odoo.create_many(
                "res.partner",
                [
                    {
                        "name": f"Carga {n}", "is_company": n % 3 == 0, "ref": nif(70_000_000 + n),
                        "phone": f"+34 91{n:07d}", "city": "Madrid", "street": "Calle Mayor, 2",
                    }
                    for n in range(start, min(start + 500, partners))
                ],
            )  # fmt: skip


async def bench(args: argparse.Namespace, bootstrap: str, tmp: Path) -> Table:
    seed_odoo(tmp / "odoo", args.partners, 0, 0)
    stack = BenchStack(bootstrap, tmp, poll_interval=args.interval)
    settle = max(5.0, 2 * args.interval)
    try:
        await stack.up()
        await run_backfill(stack, settle, args.within)  # the seeded partners, linked
        persons = await linked_persons(stack)
        idle = await make_saves(stack, persons, args.saves, args.gap, "idle")
        await stack.wait_drained(settle, args.within)
        loaded_at = time.monotonic()
        await create_load(stack, args.load)
        loaded = await make_saves(stack, persons, args.saves, args.gap, "load")
        saving = time.monotonic() - loaded_at
        await stack.wait_drained(settle, args.within)
        draining = time.monotonic() - loaded_at
        results = await stack.results(System.ODOO) + await stack.results(System.CLIENTIFY)
    finally:
        stack.down()
    before, during = latencies(idle, results), latencies(loaded, results)
    table = Table(
        title=f"Latency, save -> write on the other side ({args.saves} saves per path and "
        f"phase, one every {args.gap:g} s; poll interval {args.interval:g} s; under a backfill "
        f"of {args.load:,} new partners, saves made in its first {saving:.0f} s of "
        f"{draining:.0f} s; 2 cores, shared)",
        title_justify="left",
    )
    for column in ("path", "phase", "p50 s", "p95 s", "p99 s", "p50 / idle p50"):
        table.add_column(column, justify="left" if column in ("path", "phase") else "right")
    for path, label in (("webhook", "Clientify save -> Odoo write"),
                        ("poll", "Odoo write -> Clientify write")):  # fmt: skip
        idle_q = quantiles(before[path])
        for phase, figures in (("idle", before[path]), ("under the backfill", during[path])):
            q = quantiles(figures)
            table.add_row(
                label if phase == "idle" else "", phase, *(f"{v:.2f}" for v in q),
                f"{q[0] / idle_q[0]:.1f}",
            )  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--partners", type=int, default=300,
        help="seeded and synced first; the saves need 2 linked persons each (300)",
    )  # fmt: skip
    parser.add_argument("--saves", type=int, default=50, help="per path and phase (50)")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between saves (2)")
    parser.add_argument("--load", type=int, default=3000, help="partners of the backfill")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (5 s)")
    parser.add_argument("--within", type=float, default=3600.0, help="seconds to drain")
    run_benchmark(parser, bench)


if __name__ == "__main__":
    main()
