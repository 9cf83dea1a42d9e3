"""The Clientify writer against the sandbox over HTTP, command by command and field by
field: creates, partial updates that keep the other phones and address fields, skips
where Clientify changed meanwhile, company contacts, and orders created once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.clientify import ClientifyClient
from connectors.clientify.errors import ClientifyAuthError, ClientifyValidationError
from connectors.clientify.sandbox.app import SandboxOptions
from consumers.base.tracked import NotReady
from consumers.writers.clientify import ClientifyTarget
from consumers.writers.command_writer import NOTHING_LEFT, CommandWriter
from consumers.writers.plan import MappingMismatch
from schemas import DeadLetter, Result, ResultStatus
from schemas.mapping import load_mapping
from schemas.mapping.mapper import FlowMapper
from schemas.topics import DEAD_LETTERS, RESULTS, Topics
from tests.contracts.target import TargetContract
from tests.support.clientify_fixtures import sandbox_at
from tests.support.commands import ACME, COMPANY
from tests.support.commands import clientify_command as command


class ClientifyHarness:
    def __init__(self, target: ClientifyTarget) -> None:
        self.target = target

    def company(self) -> dict[str, Any]:
        return {"display_name": "Acme Soluciones SL", **COMPANY}

    async def make(self, entity: str, key: str, fields: dict[str, Any]) -> str:
        mapper = self.target.lookup.mappers[entity]
        payload = mapper.to_clientify(fields, create=True) | {mapper.flow.key.clientify: key}
        payload.setdefault("name", fields["name"])  # Clientify requires a name
        created = await self.target.lookup.records(entity).create(payload)
        return str(created["id"])

    async def change(self, entity: str, record_id: str, fields: dict[str, Any]) -> None:
        mapper = self.target.lookup.mappers[entity]
        await self.target.lookup.records(entity).update(record_id, mapper.to_clientify(fields))


class TestClientifyTarget(TargetContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ClientifyHarness]:
        async with sandbox_at() as (sandbox, url), ClientifyClient(url, sandbox.api_key) as client:
            yield ClientifyHarness(ClientifyTarget(client, load_mapping()))


@pytest.fixture
async def target() -> AsyncIterator[tuple[ClientifyTarget, ClientifyClient]]:
    async with sandbox_at() as (sandbox, url), ClientifyClient(url, sandbox.api_key) as client:
        yield ClientifyTarget(client, load_mapping()), client


async def test_company_created_then_updated_field_by_field(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    writer, client = target
    created = await writer.apply(command("company", "B12345678", ACME))
    assert created.written == ACME and created.target_id
    record = await client.companies.get(created.target_id)
    assert record["taxpayer_identification_number"] == "B12345678"
    assert record["name"] == "Acme Soluciones SL" and record["business_name"] == "Acme Soluciones"
    assert record["addresses"][0]["state"] == "Madrid"

    # One address field: the others stay. Linked by id, as the processors send it.
    moved = await writer.apply(
        command("company", "B12345678", {"city": "Getafe"}, expected={"city": "Madrid"},
                target_id=created.target_id)
    )  # fmt: skip
    assert moved.written == {"city": "Getafe"}
    address = (await client.companies.get(created.target_id))["addresses"][0]
    assert (address["street"], address["city"], address["postal_code"]) == (
        "Calle Mayor 1", "Getafe", "28001",
    )  # fmt: skip

    # The same value again: unchanged, nothing sent.
    again = await writer.apply(command("company", "B12345678", {"city": "Getafe"}))
    assert again.unchanged == {"city": "Getafe"} and not again.written

    # Clientify changed the street meanwhile: the command's street is not written.
    await client.companies.update(created.target_id, {"addresses": [{**address, "street": "X 2"}]})
    stale = await writer.apply(
        command("company", "B12345678", {"street": "Calle Nueva 3"},
                expected={"street": "Calle Mayor 1"})
    )  # fmt: skip
    assert stale.skipped == {"street": "Calle Nueva 3"} and stale.found == {"street": "X 2"}
    assert (await client.companies.get(created.target_id))["addresses"][0]["street"] == "X 2"


async def test_contact_phones_main_and_mobile_are_merged(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    writer, client = target
    person = {"name": "Ana Ruiz", "phone": "911000000", "mobile": None,
              "country": "Spain", "customer": None}  # fmt: skip
    created = await writer.apply(command("contact", "12345678Z", person))
    assert created.target_id
    contact = await client.contacts.get(created.target_id)
    assert contact["status"] == "cold-lead"  # not a customer: Clientify's own default
    mobile = await writer.apply(command("contact", "12345678Z", {"mobile": "600111222"}))
    assert mobile.written == {"mobile": "600111222"}
    phones = (await client.contacts.get(created.target_id))["phones"]
    assert sorted((p["type"], p["phone"]) for p in phones) == [(1, "911000000"), (2, "600111222")]
    # Main cleared, mobile kept; then a customer.
    await writer.apply(command("contact", "12345678Z", {"phone": None, "customer": "client"}))
    contact = await client.contacts.get(created.target_id)
    assert [(p["type"], p["phone"]) for p in contact["phones"]] == [(2, "600111222")]
    assert contact["status"] == "client"


async def test_company_partner_contact_is_linked_to_its_company(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    writer, client = target
    # The contact of a company partner has no name of its own: it waits for the company.
    contact_command = command("contact", "B12345678", {"phone": "+34 911 111 111"})
    with pytest.raises(NotReady, match="company B12345678"):
        await writer.apply(contact_command)
    company = await writer.apply(command("company", "B-12.345.678", ACME))
    contact = await writer.apply(contact_command)
    record = await client.contacts.get(contact.target_id or "")
    assert record["first_name"] == "Acme Soluciones SL"
    assert record["company_details"]["id"] == int(company.target_id or 0)


async def test_a_waiting_contact_asks_only_for_its_company_and_a_person_for_none() -> None:
    """Requests per record (issue 6's backfill profile): while a company's contact waits
    for its company, a retry asks only whether the company is there (the exact tax id,
    then its last digits), not for the contact again; a person's create asks nothing
    about companies (a contact lookup of two requests, then the create). Without the
    index (tests/integration/test_clientify_index.py), as every lookup is then made."""
    async with sandbox_at() as (sandbox, url), ClientifyClient(url, sandbox.api_key) as client:
        writer = ClientifyTarget(client, load_mapping(), index_refresh=None)
        waiting = command("contact", "B12345678", {"phone": "+34 911 111 111"})
        with pytest.raises(NotReady):
            await writer.apply(waiting)
        before = sandbox.requests
        with pytest.raises(NotReady, match="company B12345678"):
            await writer.apply(waiting)
        assert sandbox.requests - before == 2
        await writer.apply(command("company", "B12345678", ACME))
        before = sandbox.requests
        linked = await writer.apply(waiting)
        assert sandbox.requests - before == 4  # company, contact lookup (2), create
        assert (await client.contacts.get(linked.target_id or ""))["company_name"] == ACME[
            "display_name"
        ]
        before = sandbox.requests
        person = {"name": "Ana Ruiz", "phone": "911000000", "country": "Spain"}
        created = await writer.apply(command("contact", "12345678Z", person))
        assert sandbox.requests - before == 3 and created.written == person
        assert (await client.contacts.get(created.target_id or ""))["company"] is None


async def test_order_waits_for_its_contact_and_is_created_once(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    writer, client = target
    # The canonical fields as the processors map a confirmed Odoo order: the item SKU is
    # the internal reference (the product's key in Clientify); the quantity is qty_to_deliver, else
    # product_uom_qty (Odoo without the Inventory app has no qty_to_deliver).
    raw = {
        "name": "S00042", "partner_key": "12345678Z", "date_order": "2024-05-01 10:00:00",
        "currency_id": [1, "EUR"], "state": "sale",
        "lines": [
            {"name": "Widget", "barcode": "8400000000017", "default_code": "WID-1",
             "price_unit": 10.0, "qty_to_deliver": 3.0, "product_uom_qty": 3.0},
            {"name": "Gadget", "barcode": False, "default_code": "GAD-1",
             "price_unit": 5.5, "qty_to_deliver": 1.0, "product_uom_qty": 1.0},
            {"name": "Gizmo", "barcode": False, "default_code": "GIZ-1",
             "price_unit": 2.25, "product_uom_qty": 4.0},
        ],
    }  # fmt: skip
    fields = FlowMapper(load_mapping().flows["order"]).from_odoo(raw)
    assert [item["sku"] for item in fields["items"]] == ["WID-1", "GAD-1", "GIZ-1"]
    order = command("order", "S00042", fields)
    with pytest.raises(NotReady, match="contact 12345678Z"):
        await writer.apply(order)
    await writer.apply(command("contact", "12345678Z", {"name": "Ana"}))
    created = await writer.apply(order)
    assert created.written == fields
    [stored] = [o async for o in client.orders.list()]
    assert stored["order_id"] == "S00042" and stored["status"] == "confirmed"
    assert stored["ecommerce"] == "Odoo" and len(stored["items"]) == 3
    assert stored["items"][2] == {"name": "Gizmo", "sku": "GIZ-1", "price": "2.25",
                                  "quantity": "4.00"}  # fmt: skip

    # Redelivered: unchanged. Changed in Odoo later: reported, never posted again.
    assert (await writer.apply(order)).unchanged == fields
    changed = await writer.apply(command("order", "S00042", {"currency": "USD"}))
    assert changed.skipped == {"currency": "USD"} and changed.found == {"currency": "EUR"}
    assert changed.error and "no order update" in changed.error and not changed.written
    assert len([o async for o in client.orders.list()]) == 1


async def test_a_rejected_record_raises_the_validation_error(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    writer, _client = target
    with pytest.raises(ClientifyValidationError, match="name"):
        await writer.apply(command("company", "A11111111", {**ACME, "display_name": None}))


async def test_a_field_unknown_to_the_writers_mapping_is_refused_not_dropped(
    target: tuple[ClientifyTarget, ClientifyClient],
) -> None:
    """The worker runs a mapping with a field the writer's mapping lacks: the command is
    refused with what to do (it then goes to the dead letters), not silently skipped."""
    writer, client = target
    with pytest.raises(MappingMismatch, match=r"job of flow contact.*same MAPPING_FILE"):
        await writer.apply(command("contact", "12345678Z", {"job": "Gerente"}))
    assert [c async for c in client.contacts.list()] == []


async def test_transient_failures_are_retried_then_dead_lettered_and_a_bad_key_stops() -> None:
    topics = Topics()
    options = SandboxOptions(error_rate=1.0, fault_seed=1)  # every request answers 503
    async with sandbox_at(options) as (sandbox, url):
        async with ClientifyClient(url, sandbox.api_key, max_attempts=2) as client:
            writer = CommandWriter(ClientifyTarget(client, load_mapping()), topics, backoff=0.01)
            letter, result = await writer.handle(command("product", "W1", {"name": "W"}))
        assert isinstance(letter.value, DeadLetter) and letter.value.attempts == 3
        assert "503" in letter.value.reason and letter.topic == topics[DEAD_LETTERS]
        assert isinstance(result.value, Result) and result.value.status is ResultStatus.FAILED
        assert result.key == "product:W1" and result.value.skipped == {"name": "W"}
        async with ClientifyClient(url, "0" * 40) as client:
            writer = CommandWriter(ClientifyTarget(client, load_mapping()), topics)
            sandbox.faults.error_rate = 0.0
            with pytest.raises(ClientifyAuthError):
                await writer.handle(command("product", "W1", {"name": "W"}))


async def test_a_requeue_left_with_no_field_costs_no_request_and_says_why() -> None:
    """The worker drops the fields of a requeued dead letter that newer edits took; with
    none left the command still comes, for its Result to end the requeue in `dlq list`."""
    topics = Topics()
    async with sandbox_at() as (sandbox, url), ClientifyClient(url, sandbox.api_key) as client:
        writer = CommandWriter(ClientifyTarget(client, load_mapping()), topics)
        before = sandbox.requests
        [outgoing] = await writer.handle(command("company", "B12345678", {}))
    assert sandbox.requests == before
    result = outgoing.value
    assert isinstance(result, Result) and result.status is ResultStatus.APPLIED
    assert not (result.written or result.unchanged or result.skipped)
    assert result.error == NOTHING_LEFT and outgoing.topic == topics[RESULTS]
