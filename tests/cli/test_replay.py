"""`clientify-odoo replay`: the worker's tables rebuilt from the log equal the lost ones,
and a source topic replayed after a field was added to the mapping writes only that
field, once. Everything runs as in production (tests/support/stack_fixtures.py)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from clientify_odoo.status.kafka_state import inspect_kafka
from processors import replay_tables
from schemas import Command
from schemas.mapping import DEFAULT_MAPPING
from tests.support.stack_fixtures import SyncStack, eventually, topic_messages

pytestmark = pytest.mark.broker


async def settled(stack: SyncStack) -> None:
    """Until every consumer group of the sync has read everything, three times running."""
    calm = 0
    while calm < 3:
        kafka = await inspect_kafka(stack.bootstrap, stack.prefix, None)
        calm = calm + 1 if kafka.groups and not any(g.total for g in kafka.groups) else 0
        await asyncio.sleep(1)


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ, as `path: before != after` lines."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in sorted(before.keys() | after.keys())
            for line in differences(before.get(key), after.get(key), f"{path}/{key}")
        ]
    return [] if before == after else [f"{path}: {before!r} != {after!r}"]


def replay(stack: SyncStack, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clientify_odoo", "replay", *argv],
        env=stack.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_rebuilt_tables_equal_the_lost_ones_and_the_worker_resumes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    await stack.up()
    try:
        async with stack.odoo() as odoo:
            partner = await odoo.create("res.partner", {
                "name": "Acme Soluciones", "ref": "B12345678", "is_company": True,
                "phone": "+34 911 111 111", "city": "Madrid",
            })  # fmt: skip
            product = await odoo.create(
                "product.product", {"name": "Widget", "default_code": "PW-1", "list_price": 10.0}
            )
            order = await odoo.create("sale.order", {
                "partner_id": partner,
                "order_line": [[0, 0, {"product_id": product, "product_uom_qty": 2}]],
            })  # fmt: skip
            await odoo.call("sale.order", "action_confirm", [order])
        async with stack.clientify() as clientify:
            await clientify.contacts.create(
                {"first_name": "Lucía", "taxpayer_identification_number": "12345678Z"}
            )

            async def synced() -> bool:
                orders = [o async for o in clientify.orders.list()]
                async with stack.odoo() as odoo:
                    lucia = await odoo.search("res.partner", [("ref", "=", "12345678Z")])
                return bool(orders and lucia)

            await eventually(synced, stack, "the order in Clientify and Lucía in Odoo")
        await settled(stack)
        stack.stop("worker")
        before = (await replay_tables.current_tables(kafka_bootstrap, topic_prefix)).comparable()
        assert before["states"] and before["odoo_customers"]
        assert all(state["link"]["odoo_id"] for state in before["states"].values())

        # Lose everything: the changelogs and the local state.
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([replay_tables.changelog(topic_prefix, t) for t in before])
        finally:
            await admin.close()
        shutil.rmtree(tmp_path / "worker")

        dry = replay(stack, "tables", "--dry-run", "--data-dir", str(tmp_path / "worker"))
        assert "nothing written" in dry
        out = replay(stack, "tables", "--data-dir", str(tmp_path / "worker"))
        assert "Wrote" in out
        after = (await replay_tables.current_tables(kafka_bootstrap, topic_prefix)).comparable()
        assert after == before, differences(before, after)

        # The worker recovers the rebuilt tables: a change syncs, nothing is duplicated.
        stack.start("worker")
        async with stack.odoo() as odoo:
            await odoo.write("res.partner", [partner], {"city": "Sevilla"})
        async with stack.clientify() as clientify:

            async def moved() -> bool:
                found = await clientify.find_by_tax_id(clientify.companies, "B12345678")
                address = (found[0].get("addresses") or [{}])[0] if found else {}
                return address.get("city") == "Sevilla"

            await eventually(moved, stack, "the new city in Clientify")
            assert len(await clientify.find_by_tax_id(clientify.companies, "B12345678")) == 1
            assert len([o async for o in clientify.orders.list()]) == 1
    finally:
        stack.down()


def mapping_with_job(path: Path) -> Path:
    """The default mapping plus one field: the partner's job title <-> contact title."""
    text = DEFAULT_MAPPING.read_text()
    anchor = (
        "      - {name: name, odoo: name, odoo_fallback: display_name, clientify: first_name, "
        "clientify_last_name: last_name, transform: full_name, persons_only: true}\n"
    )
    assert text.count(anchor) == 1
    added = "      - {name: job, odoo: function, clientify: title, persons_only: true}\n"
    path.write_text(text.replace(anchor, added + anchor))
    return path


async def test_a_field_added_to_the_mapping_is_written_once_by_a_replay(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    await stack.up()
    try:
        async with stack.odoo() as odoo:
            await odoo.create("res.partner", {
                "name": "Lucía Pérez", "ref": "12345678Z", "function": "Gerente",
                "phone": "+34 600 000 001",
            })  # fmt: skip
        async with stack.clientify() as clientify:

            async def contact() -> dict[str, Any] | None:
                found = await clientify.find_by_tax_id(clientify.contacts, "12345678Z")
                return await clientify.contacts.get(found[0]["id"]) if found else None

            assert (await eventually(contact, stack, "Lucía in Clientify"))["title"] == ""
            await settled(stack)
            # The user adds the field to their mapping file and restarts what reads it.
            stack.env["MAPPING_FILE"] = str(mapping_with_job(tmp_path / "mapping.yaml"))
            for service in ("worker", "clientify-writer", "odoo-writer"):
                stack.stop(service)
                stack.start(service)

            dry = replay(stack, "source", "odoo.partner", "--dry-run")
            assert "1 writes the replay would cause" in dry and "job='Gerente'" in dry
            assert "phone=" not in dry and "name=" not in dry.replace("job=", "")
            replay(stack, "source", "odoo.partner")

            async def titled() -> bool:
                found = await contact()
                return found is not None and found["title"] == "Gerente"

            await eventually(titled, stack, "the job title in Clientify")
            await settled(stack)
            replay(stack, "source", "odoo.partner")  # again: nothing new to write
            await settled(stack)
        commands = await topic_messages(kafka_bootstrap, topic_prefix + "sync.commands.clientify")
        with_job = [c for c in commands if isinstance(c, Command) and "job" in c.fields]
        assert [c.fields for c in with_job] == [{"job": "Gerente"}]
    finally:
        stack.down()
