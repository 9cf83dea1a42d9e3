"""Mixed changes on both sides while the worker and the writers are killed (-9) at random
points: afterwards both sandboxes hold exactly the expected records, none twice."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.keys import normalise_tax_id
from tests.stack_fixtures import SyncStack

pytestmark = pytest.mark.broker
CHANGES = int(os.environ.get("CRASH_CHANGES", "2000"))
VICTIMS = ("worker", "clientify-writer", "odoo-writer")


def nif(n: int) -> str:
    return f"B{70000000 + n:08d}"


def person_nif(n: int) -> str:
    return f"{50000000 + n:08d}Z"


class Changes:
    """The changes to make, and the state they must lead to."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.partners: dict[str, dict[str, Any]] = {}  # Odoo companies by ref
        self.products: dict[str, dict[str, Any]] = {}  # by SKU
        self.contacts: dict[str, dict[str, Any]] = {}  # Clientify persons by tax id
        self.steps: list[tuple[str, str, dict[str, Any]]] = []
        for n in range(count):
            kind = rng.choice(("partner", "product", "contact"))
            pool = {"partner": self.partners, "product": self.products, "contact": self.contacts}[
                kind
            ]
            if pool and rng.random() < 0.5:  # update an existing record
                key = rng.choice(sorted(pool))
                change = self._update(kind, n)
                pool[key] = {**pool[key], **change}
            else:
                key, change = self._create(kind, n)
                pool[key] = change
            self.steps.append((kind, key, change))

    @staticmethod
    def _create(kind: str, n: int) -> tuple[str, dict[str, Any]]:
        if kind == "partner":
            return nif(n), {"name": f"Empresa {n} SL", "phone": f"+34 91{n:07d}", "city": "Madrid"}
        if kind == "product":
            return f"SKU-{n:05d}", {"name": f"Producto {n}", "list_price": float(n % 97 + 1)}
        return person_nif(n), {"first_name": f"Persona {n}", "phone": f"+34 6{n:08d}"}

    @staticmethod
    def _update(kind: str, n: int) -> dict[str, Any]:
        if kind == "partner":
            return {"city": f"Ciudad {n}", "phone": f"+34 93{n:07d}"}
        if kind == "product":
            return {"list_price": float(n % 89 + 2)}
        return {"first_name": f"Persona cambiada {n}"}


async def apply_changes(stack: SyncStack, changes: Changes) -> None:
    odoo_ids: dict[str, int] = {}
    clientify_ids: dict[str, int] = {}
    async with stack.odoo() as odoo, stack.clientify() as clientify:
        for kind, key, change in changes.steps:
            if kind == "partner":
                if key in odoo_ids:
                    await odoo.write("res.partner", [odoo_ids[key]], change)
                else:
                    odoo_ids[key] = await odoo.create(
                        "res.partner", {**change, "ref": key, "is_company": True}
                    )
            elif kind == "product":
                if key in odoo_ids:
                    await odoo.write("product.product", [odoo_ids[key]], change)
                else:
                    odoo_ids[key] = await odoo.create(
                        "product.product", {**change, "default_code": key}
                    )
            else:
                body = dict(change)
                if "phone" in body:
                    body["phones"] = [{"phone": body.pop("phone"), "type": 1}]
                if key in clientify_ids:
                    await clientify.contacts.update(clientify_ids[key], body)
                else:
                    created = await clientify.contacts.create(
                        {**body, "taxpayer_identification_number": key}
                    )
                    clientify_ids[key] = int(created["id"])


async def kill_randomly(stack: SyncStack, stop: asyncio.Event, rng: random.Random) -> int:
    kills = 0
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 5.0))
        victim = rng.choice(VICTIMS)
        stack.processes[victim].kill()  # kill -9: no clean shutdown, no offset commit
        stack.processes[victim].wait()
        stack.start(victim)
        kills += 1
    return kills


async def differences(stack: SyncStack, changes: Changes) -> list[str]:
    """What still differs from the expected state (empty when all is in place)."""
    problems: list[str] = []
    async with stack.clientify() as clientify:
        companies = [c async for c in clientify.companies.list()]
        contacts = [c async for c in clientify.contacts.list()]
        products = [p async for p in clientify.products.list()]
    async with stack.odoo() as odoo:
        partners = await odoo.search_read(
            "res.partner", [("ref", "!=", False)], ["ref", "name", "phone", "city"]
        )
        odoo_products = await odoo.search_read(
            "product.product", [("default_code", "!=", False)], ["default_code", "list_price"]
        )
    by_tax = _group(companies, "taxpayer_identification_number")
    contacts_by_tax = _group(contacts, "taxpayer_identification_number")
    for key, want in changes.partners.items():
        found = by_tax.get(key, [])
        if len(found) != 1:
            problems.append(f"company {key}: {len(found)} in Clientify")
            continue
        company = found[0]
        phones = [p["phone"] for p in company.get("phones", []) if p.get("type") == 1]
        city = (company.get("addresses") or [{}])[0].get("city")
        if (company["business_name"], phones, city) != (
            want["name"],
            [want["phone"]],
            want["city"],
        ):
            problems.append(
                f"company {key}: {company['business_name']}, {phones}, {city} != {want}"
            )
        if len(contacts_by_tax.get(key, [])) != 1:
            problems.append(f"contact of company {key}: {len(contacts_by_tax.get(key, []))}")
    skus = _group(products, "sku")
    for key, want in changes.products.items():
        found = skus.get(key, [])
        if len(found) != 1 or float(found[0]["price"]) != want["list_price"]:
            problems.append(f"product {key}: {[(p['sku'], p['price']) for p in found]} != {want}")
    refs = _group(partners, "ref")
    for key, want in changes.contacts.items():
        found = refs.get(key, [])
        if len(found) != 1 or found[0]["name"] != want["first_name"]:
            problems.append(f"partner {key}: {[p['name'] for p in found]} != {want['first_name']}")
    for key in changes.products:
        if len([p for p in odoo_products if p["default_code"] == key]) != 1:
            problems.append(f"Odoo product {key} duplicated or missing")
    return problems


def _group(records: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        value = record.get(field)
        if value:
            key = normalise_tax_id(str(value)) if field != "sku" else str(value)
            out.setdefault(key, []).append(record)
    return out


async def eventually_equal(
    check: Callable[[], Awaitable[list[str]]], stack: SyncStack, within: float
) -> None:
    deadline = time.monotonic() + within
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = await check()
        if not problems:
            return
        await asyncio.sleep(3)
    raise AssertionError(f"{len(problems)} differences, e.g. {problems[:10]}\n{stack.logs()}")


async def test_kill_9_during_mixed_changes_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    changes = Changes(CHANGES, rng)
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    await stack.up()
    try:
        stop = asyncio.Event()
        killer = asyncio.create_task(kill_randomly(stack, stop, rng))
        await apply_changes(stack, changes)
        await asyncio.sleep(5)
        stop.set()
        kills = await killer
        assert kills >= 2
        canonical_partners = {normalise_tax_id(k): v for k, v in changes.partners.items()}
        changes.partners = canonical_partners
        await eventually_equal(lambda: differences(stack, changes), stack, within=240)
    finally:
        stack.down()
