"""Bad records through the real processes over Kafka, mixed with good ones.

Every service runs as in production (`SyncStack`: both sandboxes, the Odoo poller, the
webhook receiver, the Faust worker and both writers). Odd records are made in the Odoo
sandbox, where the poller finds them, and posted to the receiver as Clientify would.
Each bad one ends where the user can see it with its reason (a refused webhook, a skip,
a refused field, a dead letter), the good ones of the same batch land on the other side,
and no service crashes on the way.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from schemas import AnyEnvelope, Command, DeadLetter, Result, Skip
from tests.support.stack_fixtures import SyncStack, eventually, topic_messages

pytestmark = pytest.mark.broker
T = TypeVar("T")
LONG_NAME = "株式会社テスト" * 40  # 280 characters; Clientify takes 200 at most


async def make_odoo_records(stack: SyncStack) -> dict[str, int]:
    async with stack.odoo() as odoo:
        [spain] = await odoo.search("res.country", [("code", "=", "ES")])
        partners = {
            "good": {"name": "Talleres Ruiz", "ref": "B11111111", "is_company": True,
                     "country_id": spain},
            "no key": {"name": "Sin NIF", "ref": False, "phone": False, "street": False,
                       "city": False, "zip": False, "country_id": False},
            "dashes": {"name": "Guiones", "ref": "- . -"},  # a tax id of noise only
            "long": {"name": LONG_NAME, "ref": "B22222222", "is_company": True},
            "greek": {"name": "Ἀλέξανδρος Ωμέγα", "ref": "12345678Z"},
        }  # fmt: skip
        ids = {
            label: await odoo.create("res.partner", values) for label, values in partners.items()
        }
        ids["no sku"] = await odoo.create("product.product", {"name": "Sin código"})
        ids["sku"] = await odoo.create(
            "product.product", {"name": "Tornillo", "default_code": "TOR-1", "list_price": 2}
        )
        return ids


def hook(event: str, **data: Any) -> bytes:
    body = {"hook": {"id": 1, "event": event, "target": "https://sync.example/hooks"}, "data": data}
    return json.dumps(body, ensure_ascii=False).encode()


WEBHOOKS: list[tuple[bytes, int]] = [
    (hook("contact.saved", id=9002, first_name=None, last_name=None, status=None,
          taxpayer_identification_number=None, phones=None, addresses=None, company=None), 200),
    (hook("contact.saved", id=9003, first_name="Nadie", taxpayer_identification_number="11223344B",
          addresses=[{"city": "Xanadú", "country": "Atlantis"}]), 200),
    (hook("contact.saved", id=9010, first_name="Comodín",
          taxpayer_identification_number="55667788C",
          addresses=[{"country": "%"}]), 200),  # a wildcard to Odoo's =ilike
    # Shapes no Clientify sends: phones as an object, addresses as text.
    (hook("company.saved", id=9004, name="Formas", business_name="Formas SL",
          taxpayer_identification_number="B33333333", phones={"phone": "911"},
          addresses="Calle Mayor 1"), 200),
    (hook("product.saved", id=9005, name="Roto", sku="P-ABC", price="abc"), 200),
    (hook("product.saved", id=9006, name="Enorme", sku="P-BIG", price=10**400), 200),
    (b'{"hook": {"id": 1, "event": "product.saved"', 400),  # cut short
    (hook("product.saved", id=9007, sku="P-DIG").replace(b'"P-DIG"', b"1" * 5000), 400),
    (hook("deal.saved", id=9008, name="no such event"), 400),
]  # fmt: skip


async def delivered(http: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """The receiver's answer, asking again while Kafka is too slow to take the fact."""
    for _ in range(10):
        async with http.post(url, data=body) as response:
            if response.status != 503:
                return response.status
        await asyncio.sleep(3)
    return 503


def of(messages: list[AnyEnvelope], kind: type[T]) -> list[T]:
    return [m for m in messages if isinstance(m, kind)]


async def test_bad_records_are_refused_or_skipped_with_reasons_and_good_ones_land(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    await stack.up()
    try:
        ids = await make_odoo_records(stack)
        async with stack.clientify() as clientify:  # a good one, really in Clientify
            lucia = await clientify.contacts.create(
                {"first_name": "Lucía", "taxpayer_identification_number": "87654321X",
                 "addresses": [{"city": "Sevilla", "country": "Spain"}]}
            )  # fmt: skip
        url = f"http://127.0.0.1:{stack.hook_port}/hooks/{stack.webhook_secret}"
        # Its webhook again (the REST shape makes the same fact): the sandbox's own gets
        # a 503 when Kafka is slow on a busy machine, and neither Clientify nor this stack
        # (no reconciler) sends it again.
        again = (hook("contact.saved", **lucia), 200)
        async with aiohttp.ClientSession() as http:
            for body, status in [again, *WEBHOOKS]:
                assert await delivered(http, url, body) == status, body[:80]

        def topic(name: str) -> str:
            return f"{stack.prefix}{name}"

        expected_skips = {
            ("odoo", str(ids["no key"])): "has no ref or vat",
            ("odoo", str(ids["dashes"])): "has no ref or vat",
            ("odoo", str(ids["no sku"])): "has no default_code",
            ("clientify", "9002"): "has no taxpayer_identification_number",
            ("clientify", "9005"): "price: expected a number, got 'abc'",
            ("clientify", "9006"): "price: expected a number, got 1000",
        }

        async def all_skipped() -> dict[tuple[str, str], str] | None:
            messages = await topic_messages(stack.bootstrap, topic("sync.skips"))
            skips = {(s.system.value, s.source_id): s.reason for s in of(messages, Skip)}
            return skips if set(expected_skips) <= set(skips) else None

        skips = await eventually(all_skipped, stack, "every bad record skipped")
        for where, reason in expected_skips.items():
            assert reason in skips[where], (where, skips[where])
        assert set(skips) == set(expected_skips)  # nothing good was skipped

        async def dead_letters() -> dict[tuple[str, str], str] | None:
            messages = await topic_messages(stack.bootstrap, topic("sync.dead_letters"))
            found = {(d.command.entity, d.command.business_key): d.reason
                     for d in of(messages, DeadLetter)}  # fmt: skip
            return found if ("company", "B22222222") in found else None

        dead = await eventually(dead_letters, stack, "a name too long for Clientify refused")
        assert "200" in dead["company", "B22222222"]  # Clientify's limit, in its words

        # A country Odoo does not have is refused, the rest of the contact written: the
        # partner exists without a country, and no dead letter holds the whole record.
        async def refused() -> dict[str, Result] | None:
            messages = await topic_messages(stack.bootstrap, topic("sync.results"))
            found = {r.business_key: r for r in of(messages, Result) if r.refused}
            return found if {"11223344B", "55667788C"} <= set(found) else None

        results = await eventually(refused, stack, "the unknown countries refused")
        for key, country in (("11223344B", "Atlantis"), ("55667788C", "%")):
            result = results[key]
            assert result.refused == {"country": country} and "name" in result.written
            assert f"no country named {country!r}" in (result.error or "")  # not the first
        assert set(dead) == {("company", "B22222222")}

        async def landed_in_odoo() -> list[dict[str, Any]] | None:
            async with stack.odoo() as odoo:
                found: list[dict[str, Any]] = await odoo.search_read(
                    "res.partner",
                    [("ref", "in", ["87654321X", "B33333333", "11223344B"])],
                    ["name", "ref", "country_id"],
                )
            return found if len(found) == 3 else None

        landed = await eventually(landed_in_odoo, stack, "good Clientify records in Odoo")
        countries = {p["ref"]: p["country_id"] and p["country_id"][1] for p in landed}
        assert {p["ref"]: p["name"] for p in landed} == {
            "87654321X": "Lucía", "B33333333": "Formas SL", "11223344B": "Nadie",
        }  # fmt: skip
        assert countries == {"87654321X": "Spain", "B33333333": False, "11223344B": False}

        async def landed_in_clientify() -> tuple[Any, ...] | None:
            async with stack.clientify() as clientify:
                company = await clientify.find_by_tax_id(clientify.companies, "B11111111")
                person = await clientify.find_by_tax_id(clientify.contacts, "12345678Z")
                products = [p async for p in clientify.products.list() if p["sku"] == "TOR-1"]
            return (company, person, products) if company and person and products else None

        _company, [person], [product] = await eventually(
            landed_in_clientify, stack, "good Odoo records in Clientify"
        )
        # Non-Latin text whole, split into first and last name.
        assert (person["first_name"], person["last_name"]) == ("Ἀλέξανδρος", "Ωμέγα")
        assert product["name"] == "Tornillo"

        commands = await topic_messages(stack.bootstrap, topic("sync.commands.odoo"))
        keys = {c.business_key for c in of(commands, Command)}
        assert not keys & {"P-ABC", "P-BIG"}  # skipped records make no command
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} exited:\n{stack.logs()}"
        worker_log = (tmp_path / "worker.log").read_text(errors="replace")
        assert "Crashed" not in worker_log, worker_log[-3000:]  # no agent died on a record
        receiver_log = (tmp_path / "webhook-receiver.log").read_text(errors="replace")
        assert "Error handling request" not in receiver_log, receiver_log[-3000:]
    finally:
        stack.down()
