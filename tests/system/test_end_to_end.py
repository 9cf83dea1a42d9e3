"""End to end, every service running as in production: a change made on one side
reaches the other once, and the sync's own write coming back is dropped (the loop test,
on the sandbox and on real Odoo 16-19); concurrent edits of both sides. Every flow field
by field is in test_flows.py.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from connectors.spanish_tax_ids import cif
from schemas import Command
from tests.support.stack_fixtures import (
    ODOO_TARGETS,
    OdooTarget,
    SyncStack,
    clientify_company,
    create_acme,
    eventually,
    stack_for,
    topic_messages,
)

pytestmark = pytest.mark.broker
KEY = "B12345678"
FIELDS = ["name", "phone", "street", "city", "zip", "country_id", "x_clientify_status"]


async def commands_for(stack: SyncStack, target: str, key: str = KEY) -> list[Command]:
    """The commands for `key` in the order they were issued (the topic's partitions hold
    the company and the contact separately, so reading order is not issue order)."""
    messages = await topic_messages(stack.bootstrap, f"{stack.prefix}sync.commands.{target}")
    ours = [m for m in messages if isinstance(m, Command) and m.business_key == key]
    return sorted(ours, key=lambda command: command.issued_at)


@pytest.mark.parametrize("target", ODOO_TARGETS)
async def test_changes_cross_once_both_ways_and_echoes_stop(
    target: OdooTarget, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await asyncio.to_thread(stack_for, target, kafka_bootstrap, topic_prefix, tmp_path)
    # A real server's database outlives the test: a key of its own.
    key = cif("B", random.randrange(10**7))
    await stack.up()
    try:
        partner_id = await create_acme(stack, key)
        async with stack.odoo() as odoo:
            [before] = await odoo.read("res.partner", [partner_id], FIELDS)

        async def commands(target: str) -> list[Command]:
            return await commands_for(stack, target, key)

        # Odoo -> Clientify: the company and its contact are created, once.
        company = await eventually(
            lambda: clientify_company(stack, key), stack, "company created", within=180
        )
        assert company["business_name"] == "Acme Soluciones"
        assert company["name"] == "Acme Soluciones"
        await asyncio.sleep(6)  # the webhooks of those saves come back meanwhile
        to_clientify = await commands("clientify")
        assert sorted(c.entity for c in to_clientify) == ["company", "contact"], stack.logs()
        # What came back to Odoo is only what Clientify owns: the status it gave the new
        # contact ("estado en Clientify"); none of the fields the sync wrote there.
        back = await commands("odoo")
        assert [(c.entity, c.fields) for c in back] == [
            ("contact", {"clientify_status": "cold-lead"})
        ], stack.logs()
        async with stack.clientify() as clientify:
            assert len(await clientify.find_by_tax_id(clientify.contacts, key)) == 1

        async def status_landed() -> dict[str, Any] | None:
            async with stack.odoo() as odoo:
                [partner] = await odoo.read("res.partner", [partner_id], FIELDS)
            return partner if partner["x_clientify_status"] == "cold-lead" else None

        after = await eventually(status_landed, stack, "status written to Odoo")
        assert {f: after[f] for f in FIELDS[:-1]} == {f: before[f] for f in FIELDS[:-1]}
        await asyncio.sleep(4)  # the poller sees that write; it must go no further
        assert len(await commands("clientify")) == 2
        assert len(await commands("odoo")) == 1

        # Clientify -> Odoo: a rename arrives by webhook, and its echo stops too.
        async with stack.clientify() as clientify:
            await clientify.companies.update(company["id"], {"business_name": "Acme Group"})

        async def renamed() -> bool:
            async with stack.odoo() as odoo:
                [partner] = await odoo.read("res.partner", [partner_id], ["name"])
            return bool(partner["name"] == "Acme Group")

        await eventually(renamed, stack, "Odoo partner renamed")
        await asyncio.sleep(6)  # the poller sees the writer's change meanwhile
        to_odoo = await commands("odoo")
        assert [c.fields for c in to_odoo][1:] == [{"name": "Acme Group"}], stack.logs()
        # Odoo recomputed display_name from the new name, and display_name is Clientify's
        # company `name` (Odoo -> Clientify only): that goes across, and then it is quiet.
        to_clientify = await commands("clientify")
        assert [c.fields for c in to_clientify][2:] == [{"display_name": "Acme Group"}], (
            stack.logs()
        )
        await asyncio.sleep(4)
        assert len(await commands("clientify")) == 3, stack.logs()
        assert len(await commands("odoo")) == 2
    finally:
        stack.down()


async def test_without_echo_suppression_the_echo_bounces_back(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # The same change with the suppression switched off: the sync's own Clientify save
    # comes back as a change and is written to Odoo, which the test above forbids.
    stack = SyncStack(
        kafka_bootstrap, topic_prefix, tmp_path, worker_flags=("--no-echo-suppression",)
    )
    await stack.up()
    try:
        await create_acme(stack)
        await eventually(lambda: clientify_company(stack), stack, "company created")

        async def echoed_back() -> list[Command]:
            back = await commands_for(stack, "odoo")
            return [c for c in back if "name" in c.fields or "phone" in c.fields]

        await eventually(echoed_back, stack, "the sync's own write sent back to Odoo", 30)
    finally:
        stack.down()


async def test_concurrent_edits_both_survive_and_the_later_wins_a_conflict(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    await stack.up()
    try:
        partner_id = await create_acme(stack)
        company = await eventually(lambda: clientify_company(stack), stack, "company created")
        await asyncio.sleep(3)
        # Writers down: the edits below are made before either side hears of the other.
        stack.stop("clientify-writer")
        stack.stop("odoo-writer")
        async with stack.clientify() as clientify:
            address = dict(company["addresses"][0])
            await clientify.companies.update(
                company["id"],
                {"addresses": [{**address, "street": "Calle Sol 2", "postal_code": "08001"}]},
            )
        await asyncio.sleep(2)  # Odoo's edits are later
        async with stack.odoo() as odoo:
            await odoo.write(
                "res.partner", [partner_id], {"street": "Gran Via 9", "phone": "+34 900 000 000"}
            )
            await odoo.write("res.partner", [partner_id], {"city": "Barcelona"})
        await asyncio.sleep(4)  # the poller and the worker see both
        stack.start("clientify-writer")
        stack.start("odoo-writer")

        async def settled() -> dict[str, Any] | None:
            found = await clientify_company(stack)
            if found is None:
                return None
            async with stack.odoo() as odoo:
                [partner] = await odoo.read("res.partner", [partner_id], FIELDS)
            address = found["addresses"][0]
            same = (address["street"], address["city"]) == (partner["street"], partner["city"])
            return {"odoo": partner, "clientify": found} if same else None

        both = await eventually(settled, stack, "both sides agree")
        partner, found = both["odoo"], both["clientify"]
        # Different fields on both sides both survived; the same field: the later edit.
        assert partner["street"] == found["addresses"][0]["street"] == "Gran Via 9"
        assert partner["city"] == found["addresses"][0]["city"] == "Barcelona"
        assert partner["zip"] == found["addresses"][0]["postal_code"] == "08001"
        assert [p["phone"] for p in found["phones"] if p["type"] == 1] == ["+34 900 000 000"]
        conflicts = await topic_messages(stack.bootstrap, f"{stack.prefix}sync.conflicts")
        assert [(c.field, c.winning_value, c.losing_value) for c in conflicts] == [
            ("street", "Gran Via 9", "Calle Sol 2")
        ], stack.logs()
    finally:
        stack.down()
