"""The Clientify writer's index of keys (consumers/writers/clientify_index.py) against the sandbox
over HTTP: creates without lookups, and every way a record the index did not expect
still ends as one record, not two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from connectors.clientify import ClientifyClient
from connectors.clientify.client import Page
from connectors.clientify.errors import ClientifyServerError
from connectors.clientify.sandbox.app import ClientifySandbox
from consumers.base.tracked import NotReady
from consumers.writers.clientify import ClientifyTarget
from consumers.writers.command_writer import CommandWriter
from schemas import Result, ResultStatus
from schemas.mapping import load_mapping
from schemas.mapping.mapper import FlowMapper
from schemas.topics import Topics
from tests.support.clientify_fixtures import sandbox_at
from tests.support.commands import ACME
from tests.support.commands import clientify_command as command

PERSON = {"name": "Ana Ruiz", "phone": "911000000", "country": "Spain"}
STALE_FOR_THE_TEST = 3600.0  # no refresh by time: only what the test does moves the index


class LosingClient(ClientifyClient):
    """A client whose next POST reaches Clientify but whose answer is lost on the way
    back, as when the connection drops after the server committed."""

    lose_next_post = False

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        answer = await super().request(method, path_or_url, params=params, body=body)
        if method == "POST" and self.lose_next_post:
            self.lose_next_post = False
            raise ClientifyServerError(f"{method} {path_or_url}: connection lost")
        return answer


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[ClientifySandbox, LosingClient]]:
    async with sandbox_at() as (sandbox, url), LosingClient(url, sandbox.api_key) as client:
        yield sandbox, client


async def contacts_with(client: ClientifyClient, tax_id: str) -> list[dict[str, Any]]:
    return await client.find_by_tax_id(client.contacts, tax_id)


def order_fields() -> dict[str, Any]:
    raw = {
        "name": "S00042", "partner_key": "12345678Z", "date_order": "2024-05-01 10:00:00",
        "state": "sale", "currency_id": [1, "EUR"],
        "lines": [{"name": "Widget", "barcode": False, "default_code": "SKU-1",
                   "price_unit": 10.0, "product_uom_qty": 2.0}],
    }  # fmt: skip
    return FlowMapper(load_mapping().flows["order"]).from_odoo(raw)


async def test_creates_skip_their_lookups_and_dependents_read_the_index(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    """Requests per record: one listing per resource on first use, then one request per
    create; a company's contact takes the company's name and an order its contact's
    url from the index. A record already in Clientify (its tax id typed differently) is
    found and updated, not created again."""
    server, client = sandbox
    existing = await client.companies.create(
        {"name": "Old SL", "taxpayer_identification_number": "B-11.111.111"}
    )
    writer = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)

    def spent() -> int:
        return server.requests - before

    before = server.requests
    updated = await writer.apply(command("company", "B11111111", {"phone": "+34 911 000 000"}))
    assert updated.target_id == str(existing["id"]) and updated.written
    assert len([c async for c in client.companies.list()]) == 1

    before = server.requests
    company = await writer.apply(command("company", "B12345678", ACME))
    assert spent() == 1  # the create only

    before = server.requests
    contact = await writer.apply(command("contact", "B12345678", {"phone": "+34 911 111 111"}))
    assert spent() == 2  # the contacts' listing, the create: the name came from the index
    record = await client.contacts.get(contact.target_id or "")
    assert record["company_details"]["id"] == int(company.target_id or 0)

    before = server.requests
    person = await writer.apply(command("contact", "12345678Z", PERSON))
    assert spent() == 1 and person.written == PERSON

    before = server.requests
    await writer.apply(command("product", "SKU-1", {"name": "Widget", "price": 10.0}))
    assert spent() == 2  # the products' listing, the create

    before = server.requests
    order = await writer.apply(command("order", "S00042", order_fields()))
    assert spent() == 2  # the orders' listing, the create: the contact's url from the index
    [stored] = [o async for o in client.orders.list()]
    assert stored["id"] == int(order.target_id or 0)
    assert stored["contact"] == (await client.contacts.get(person.target_id or ""))["url"]


async def test_a_record_made_in_clientify_since_the_last_listing(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    """Someone creates the record in Clientify after the writer listed: a fresh enough
    index sees it and the command updates it; an index older than the record would
    create a second one, the window `--index-refresh-seconds` bounds."""
    _, client = sandbox
    fresh = ClientifyTarget(client, load_mapping(), index_refresh=0.0)
    stale = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    await fresh.apply(command("contact", "00000001R", PERSON))
    await stale.apply(command("contact", "00000002W", PERSON))

    made = await client.contacts.create(
        {"first_name": "Luis", "taxpayer_identification_number": "12345678Z"}
    )
    result = await fresh.apply(command("contact", "12345678Z", PERSON))
    assert result.target_id == str(made["id"]) and "name" in result.written
    assert len(await contacts_with(client, "12345678Z")) == 1

    await client.contacts.create(
        {"first_name": "Eva", "taxpayer_identification_number": "X1234567L"}
    )
    await stale.apply(command("contact", "X1234567L", PERSON))
    assert len(await contacts_with(client, "X1234567L")) == 2  # what the window allows


async def test_after_a_rebalance_the_index_is_listed_again(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    """Partitions that come to this copy may have had records created by another copy
    until just now: `reassigned` makes the next use list again."""
    server, client = sandbox
    writer = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    await writer.apply(command("contact", "00000001R", PERSON))
    other = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    made = await other.apply(command("contact", "12345678Z", PERSON))

    CommandWriter(writer, Topics()).reassigned()
    before = server.requests
    again = await writer.apply(command("contact", "12345678Z", {"phone": "600000000"}))
    assert again.target_id == made.target_id
    assert server.requests - before == 4  # listing, lookup, read, update
    assert len(await contacts_with(client, "12345678Z")) == 1


async def test_a_create_whose_answer_was_lost_is_found_on_retry(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    """The create landed but its answer never came: the key was held before it was
    sent, so the retry looks it up and finds it instead of creating it again."""
    _, client = sandbox
    target = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    writer = CommandWriter(target, Topics(), backoff=0.01)
    await target.apply(command("contact", "00000001R", PERSON))  # the index is listed
    client.lose_next_post = True
    [outgoing] = await writer.handle(command("contact", "12345678Z", PERSON))
    result = outgoing.value
    assert isinstance(result, Result) and result.status is ResultStatus.APPLIED
    [stored] = await contacts_with(client, "12345678Z")
    assert result.target_id == str(stored["id"])


async def test_an_order_whose_indexed_contact_was_deleted_waits_and_looks_it_up(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    _, client = sandbox
    writer = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    person = await writer.apply(command("contact", "12345678Z", PERSON))
    await client.contacts.delete(person.target_id or "")
    order = command("order", "S00042", order_fields())
    with pytest.raises(NotReady, match=r"12345678Z.*Object does not exist"):
        await writer.apply(order)
    with pytest.raises(NotReady, match=r"contact 12345678Z \(this order's customer\)$"):
        await writer.apply(order)  # looked up this time: not there
    again = await client.contacts.create(
        {"first_name": "Ana", "taxpayer_identification_number": "12345678Z"}
    )
    await writer.apply(order)
    [stored] = [o async for o in client.orders.list()]
    assert stored["contact"].endswith(f"/contacts/{again['id']}/")


async def test_companies_sharing_a_tax_id_are_left_to_the_lookup(
    sandbox: tuple[ClientifySandbox, LosingClient],
) -> None:
    """Two Clientify companies with one tax id: the index holds no name for it, so the
    contact is linked as the lookup decides (the oldest), whatever the listing order."""
    _, client = sandbox
    oldest = await client.companies.create(
        {"name": "Acme Old", "taxpayer_identification_number": "B12345678"}
    )
    await client.companies.create(
        {"name": "Acme New", "taxpayer_identification_number": "B12345678"}
    )
    writer = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
    contact = await writer.apply(command("contact", "B12345678", {"phone": "+34 911 111 111"}))
    record = await client.contacts.get(contact.target_id or "")
    assert record["company_details"]["id"] == oldest["id"]


class DeletingClient(ClientifyClient):
    """A client during whose listings someone deletes a contact before each second
    page is fetched (`deletions` times), shifting the later records one place back."""

    deletions = 0

    async def get_page(self, path_or_url: str, params: Mapping[str, str] | None) -> Page:
        if self.deletions and "page=2" in path_or_url:
            self.deletions -= 1
            first = await self.contacts.page({"ordering": "id"}, page_size=1)
            await self.contacts.delete(first.results[0]["id"])
        return await super().get_page(path_or_url, params)


@pytest.mark.parametrize("deletions", [1, 3])
async def test_a_delete_while_listing_never_hides_a_record(deletions: int) -> None:
    """One delete during the first listing: it is made again and holds every key. A
    listing that never holds still (a delete each time) leaves the index incomplete:
    creates look their key up, so the record already there is found, not duplicated."""
    async with sandbox_at() as (sandbox, url), DeletingClient(url, sandbox.api_key) as client:
        made = [
            await client.contacts.create(
                {"first_name": f"C{n}", "taxpayer_identification_number": f"{n:08d}A"}
            )
            for n in range(150)
        ]
        writer = ClientifyTarget(client, load_mapping(), index_refresh=STALE_FOR_THE_TEST)
        client.deletions = deletions
        # The first delete moves the 101st contact onto the first page, already read.
        shifted = made[100]["taxpayer_identification_number"]
        result = await writer.apply(command("contact", shifted, PERSON))
        assert result.target_id == str(made[100]["id"])  # found, and updated
        assert len(await contacts_with(client, shifted)) == 1
        assert writer.index is not None
        assert writer.index.flows["contact"].complete is (deletions < 3)
