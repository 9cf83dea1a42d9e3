"""The Clientify client against the sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from connectors.clientify import (
    AdaptiveRateLimiter,
    ClientifyAuthError,
    ClientifyClient,
    ClientifyNotFound,
    ClientifyServerError,
    ClientifyValidationError,
    normalise_tax_id,
)
from connectors.clientify.client import _result
from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions
from tests.support.clientify_fixtures import sandbox_at


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[ClientifySandbox, ClientifyClient]]:
    async with sandbox_at(SandboxOptions()) as (sandbox, base):
        client = ClientifyClient(base, sandbox.api_key)
        async with client:
            yield sandbox, client


def test_tax_ids_are_normalised_as_the_mapping_says() -> None:
    assert normalise_tax_id(" b-12.345.678 ") == "B12345678" == normalise_tax_id("B12345678")
    assert normalise_tax_id(None) == ""


async def test_check_key_returns_the_account(
    sandbox: tuple[ClientifySandbox, ClientifyClient],
) -> None:
    _sandbox, client = sandbox
    assert (await client.check_key())["time_zone"] == "Europe/Madrid"


async def test_a_rejected_key_is_a_clear_error_without_the_key() -> None:
    async with (
        sandbox_at(SandboxOptions()) as (_sandbox, base),
        ClientifyClient(base, "not-the-key-123") as client,
    ):
        with pytest.raises(ClientifyAuthError, match="Clientify API key rejected") as caught:
            await client.check_key()
    assert "not-the-key-123" not in str(caught.value)
    with pytest.raises(ClientifyAuthError, match="Clientify API key rejected"):
        _result(
            "GET settings/my-account/",
            404,
            '{"detail":"Api key not provided."}',
            "application/json",
        )
    with pytest.raises(ClientifyAuthError, match="empty"):
        ClientifyClient(base, "  ")


async def test_pagination_yields_every_record_once(
    sandbox: tuple[ClientifySandbox, ClientifyClient],
) -> None:
    sandbox_, client = sandbox
    with sandbox_.records.unannounced():
        for n in range(230):
            sandbox_.records.create("products", {"name": f"P{n}", "sku": f"S{n}"})
    ids = [record["id"] async for record in client.products.list(page_size=100)]
    assert len(ids) == len(set(ids)) == 230
    assert (await client.products.page({"query": "P22"})).count == 11  # P22, P220..P229
    with pytest.raises(ValueError, match="page_size"):
        await client.products.page(page_size=101)


async def test_crud_and_typed_errors(sandbox: tuple[ClientifySandbox, ClientifyClient]) -> None:
    _sandbox, client = sandbox
    company = await client.companies.create(
        {"name": "Acme", "taxpayer_identification_number": "B-1"}
    )
    updated = await client.companies.update(company["id"], {"business_name": "Acme SL"})
    assert (updated["name"], updated["business_name"]) == ("Acme", "Acme SL")
    assert (await client.companies.get(company["id"]))["business_name"] == "Acme SL"
    with pytest.raises(ClientifyValidationError) as caught:
        await client.contacts.create({"emails": [{"email": "x"}], "status": "boss"})
    assert caught.value.problems == [
        "first_name: This field is required.",
        'status: "boss" is not a valid choice.',
        "emails[0].email: Enter a valid email address.",
    ]
    assert "emails[0].email: Enter a valid email address." in str(caught.value)
    with pytest.raises(ClientifyNotFound, match="Not found"):
        await client.contacts.get(999)
    with pytest.raises(ClientifyNotFound, match="no such endpoint"):
        await client.request("GET", "deals-that-do-not-exist/")
    await client.companies.delete(company["id"])
    with pytest.raises(ClientifyNotFound):
        await client.companies.get(company["id"])


async def test_orders_and_custom_fields(sandbox: tuple[ClientifySandbox, ClientifyClient]) -> None:
    _sandbox, client = sandbox
    contact = await client.contacts.create(
        {"first_name": "Ana", "custom_fields": [{"field": "odoo_id", "value": "7"}]}
    )
    order = {"order_id": "S1", "ecommerce": "Odoo", "contact": contact["url"],
             "items": [{"name": "x", "sku": "X", "price": "2.5", "quantity": 2}]}  # fmt: skip
    assert (await client.orders.create(order))["amount"] == "5.00"
    assert [o["order_id"] async for o in client.orders.list({"ecommerce": "Odoo"})] == ["S1"]
    fields = await client.custom_fields("contacts")
    assert [f["name"] for f in fields] == ["odoo_id"]


async def test_lookups_recheck_every_result(
    sandbox: tuple[ClientifySandbox, ClientifyClient],
) -> None:
    _sandbox, client = sandbox
    wanted = await client.companies.create(
        {"name": "Acme", "taxpayer_identification_number": "B-12.345.678"}
    )
    # `query` matches substrings: this one contains the key but is another company.
    await client.companies.create(
        {"name": "Other", "taxpayer_identification_number": "B12345678-9"}
    )
    await client.companies.create({"name": "B12345678 fans"})
    found = await client.find_by_tax_id(client.companies, "b12345678")
    assert [c["id"] for c in found] == [wanted["id"]]
    contact = await client.contacts.create(
        {"first_name": "Ana", "taxpayer_identification_number": "12345678Z", "email": "a@x.es"}
    )
    await client.contacts.create({"first_name": "Bea", "email": "b@x.es"})
    assert [c["id"] for c in await client.find_by_tax_id(client.contacts, "12.345.678-z")] == [
        contact["id"]
    ]
    assert [c["id"] for c in await client.find_contacts_by_email(" A@X.es")] == [contact["id"]]
    for sku in ("FER-1", "FER-10"):
        await client.products.create({"name": sku, "sku": sku})
    assert [p["sku"] for p in await client.find_products_by_sku("FER-1 ")] == ["FER-1"]
    with pytest.raises(ValueError, match="tax id"):
        await client.find_by_tax_id(client.contacts, " .- ")


async def test_server_errors_are_retried_for_reads_but_never_for_creates() -> None:
    async with sandbox_at(SandboxOptions(seed=5, error_rate=0.3, fault_seed=7)) as (sandbox, base):
        limiter = AdaptiveRateLimiter(initial_rate=50, name="test-5xx")
        async with ClientifyClient(
            base, sandbox.api_key, limiter=limiter, max_attempts=10
        ) as client:
            for _ in range(4):
                assert len([c async for c in client.contacts.list(page_size=2)]) == 5
            assert sandbox.faults.injected > 0
            sandbox.faults.error_rate = 1.0
            before = sandbox.faults.injected
            with pytest.raises(ClientifyServerError, match="503"):
                await client.contacts.create({"first_name": "Once"})
            assert sandbox.faults.injected == before + 1


async def test_a_1000_record_job_at_5_requests_per_second_never_fails() -> None:
    """The sandbox throttles at 5/s; the client starts at 10/s, learns, and loses nothing."""
    async with sandbox_at(SandboxOptions(throttle_rps=5)) as (sandbox, base):
        with sandbox.records.unannounced(), sandbox.store.batch():
            for n in range(1000):
                sandbox.records.create("products", {"name": f"P{n}", "sku": f"SKU-{n}", "price": 1})
        limiter = AdaptiveRateLimiter(initial_rate=10, name="test-1000")
        async with ClientifyClient(base, sandbox.api_key, limiter=limiter) as client:
            updates = [client.products.update(n, {"price": "2.00"}) for n in range(1, 11)]
            read, *written = await asyncio.gather(_read_all(client), *updates)
    assert len(read) == len(set(read)) == 1000
    assert all(record["price"] == "2.00" for record in written)
    assert sandbox.throttle.throttled >= 1  # it was throttled, and recovered every time
    assert limiter.throttles == sandbox.throttle.throttled
    assert limiter.throttles <= 6  # it learned the limit instead of hitting it all along
    # It learned a ceiling near the real limit (5/s, not its initial 10/s) and paces
    # itself below it; the gauge shows that pace.
    assert limiter.ceiling is not None and limiter.ceiling < 7
    rate = REGISTRY.get_sample_value("clientify_client_request_rate", {"client": "test-1000"})
    assert rate == limiter.rate <= limiter.ceiling * limiter.headroom
    throttles = REGISTRY.get_sample_value(
        "clientify_client_throttled_total", {"client": "test-1000"}
    )
    assert throttles == limiter.throttles


async def _read_all(client: ClientifyClient) -> list[int]:
    return [record["id"] async for record in client.products.list(page_size=40)]


async def test_requests_stay_apart_when_a_caller_wakes_up_late() -> None:
    """A busy event loop wakes a caller after its slot; the next request still goes a full
    1/rate after it, not at its own planned slot. Two requests closer than that can land
    in one window of a per-second limit (DRF's), which then throttles a pace that is
    below it on average."""
    limiter = AdaptiveRateLimiter(initial_rate=10, max_rate=10, name="test-late")
    loop = asyncio.get_running_loop()
    await limiter.acquire()
    # The loop is held past the next slot (0.1 s away) by other work.
    loop.call_soon(time.sleep, 0.15)
    await limiter.acquire()
    late = loop.time()
    await limiter.acquire()
    assert loop.time() - late >= 0.095


def test_the_pace_settles_at_95_percent_of_a_learned_limit() -> None:
    clock = [0.0]
    limiter = AdaptiveRateLimiter(initial_rate=10, name="test-settle", clock=lambda: clock[0])
    limiter.on_throttled(1.0, limiter.generation)  # a 429 at 10 requests/s
    for _ in range(1000):
        clock[0] += 0.1
        limiter.on_success()
    assert limiter.ceiling == 10
    assert limiter.rate == pytest.approx(9.5)


def test_the_pace_doubles_each_second_until_the_first_429_then_grows_slowly() -> None:
    clock = [0.0]
    limiter = AdaptiveRateLimiter(initial_rate=10, name="test-slow-start", clock=lambda: clock[0])

    def succeed_for(seconds: float) -> None:
        end = clock[0] + seconds
        while clock[0] < end:
            clock[0] += 1.0 / limiter.rate
            limiter.on_success()

    succeed_for(1.0)
    assert limiter.rate == pytest.approx(20, rel=0.1)
    succeed_for(2.0)
    assert limiter.rate == limiter.max_rate == 50
    limiter.on_throttled(1.0, limiter.generation)  # the limit: 50 requests/s
    assert limiter.rate == 25
    succeed_for(1.0)
    assert limiter.rate == pytest.approx(25.5, abs=0.05)  # additive from now on
