"""The reconciliation poller against the sandbox and the real broker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from connectors.clientify import AdaptiveRateLimiter, ClientifyClient
from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions
from connectors.kafka.publisher import Publisher
from producers.clientify.cursors import load_cursors
from producers.clientify.facts import to_fact
from producers.clientify.reconcile import Reconciler
from schemas.topics import (
    CLIENTIFY_COMPANY,
    CLIENTIFY_CONTACT,
    CLIENTIFY_CURSORS,
    CLIENTIFY_PRODUCT,
    Topics,
    TopicSpec,
)
from tests.support.clientify_fixtures import read_facts, receiver_at, sandbox_at

pytestmark = pytest.mark.broker
KEY = "reconcile-key-0123"


def unpaced(base: str) -> ClientifyClient:
    """A client that does not pace itself: for tests where throttling is not the point."""
    return ClientifyClient(
        base, KEY, limiter=AdaptiveRateLimiter(initial_rate=200, max_rate=200, name="unpaced")
    )


async def current_event_ids(sandbox: ClientifySandbox, client: ClientifyClient) -> set[str]:
    """The event id of the version of every record the sandbox holds now."""
    ids = set()
    for kind, entity in (
        ("contacts", "contact"),
        ("companies", "company"),
        ("products", "product"),
    ):
        for doc in sandbox.store.all(kind):
            detail = await client.request_record("GET", f"{kind}/{doc['id']}/")
            ids.add(to_fact(entity, detail).event_id)
    return ids


async def all_facts(bootstrap: str, topics: Topics) -> list[str]:
    return [
        fact.event_id
        for name in (
            topics[CLIENTIFY_CONTACT],
            topics[CLIENTIFY_COMPANY],
            topics[CLIENTIFY_PRODUCT],
        )
        for fact in await read_facts(bootstrap, name)
    ]


async def test_without_webhooks_every_change_still_arrives(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    names = Topics(topic_prefix)
    progress: list[tuple[str, int, int | None]] = []
    # 12 contacts: more than one batch of concurrent detail reads.
    options = SandboxOptions(api_key=KEY, webhooks=False, seed=12)
    async with (
        sandbox_at(options) as (sandbox, base),
        unpaced(base) as client,
        Publisher(kafka_bootstrap) as publisher,
    ):
        reconciler = Reconciler(
            client, publisher, names, kafka_bootstrap,
            progress=lambda *step: progress.append(step),
        )  # fmt: skip
        first = await reconciler.run_once()
        assert first.emitted == {"contact": 12, "company": 12, "product": 12}
        assert ("contact", 12, 12) in progress and ("product", 0, 12) in progress
        # Changes that no webhook reports.
        await client.contacts.update(1, {"title": "Gerente general"})
        await client.companies.update(2, {"company_sector": "Energía"})
        await client.products.create({"name": "Nuevo", "sku": "NEW-1", "price": "9.99"})
        second = await reconciler.run_once()
        assert second.emitted == {"contact": 1, "company": 1, "product": 1}
        # A pass with nothing new re-reads the overlap window and emits nothing.
        assert (await reconciler.run_once()).emitted == {"contact": 0, "company": 0, "product": 0}
        emitted = await all_facts(kafka_bootstrap, names)
        assert len(emitted) == len(set(emitted)) == 39
        assert await current_event_ids(sandbox, client) <= set(emitted)

        # A restarted poller reads its cursors back from clientify.cursors.
        cursors = await load_cursors(kafka_bootstrap, names[CLIENTIFY_CURSORS])
        assert set(cursors) == {"contact", "company", "product"}
        assert cursors["contact"].seen  # the overlap window remembers what it emitted
        restarted = Reconciler(client, publisher, names, kafka_bootstrap)
        assert (await restarted.run_once()).emitted == {"contact": 0, "company": 0, "product": 0}
        await client.products.update(1, {"price": "1.00"})
        assert (await restarted.run_once()).emitted["product"] == 1


async def test_the_window_after_the_overlap_is_not_read_again(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    names = Topics(topic_prefix)
    async with (
        sandbox_at(SandboxOptions(api_key=KEY, webhooks=False, seed=3)) as (_sandbox, base),
        unpaced(base) as client,
        Publisher(kafka_bootstrap) as publisher,
    ):
        reconciler = Reconciler(client, publisher, names, kafka_bootstrap, overlap=timedelta(0))
        assert (await reconciler.run_once()).listed == {"contact": 3, "company": 3, "product": 3}
        await client.products.update(2, {"price": "5.00"})
        second = await reconciler.run_once()
        # Only the changed record is listed: the cursor moved past the others.
        assert second.listed == {"contact": 0, "company": 0, "product": 1}
        assert second.emitted["product"] == 1


async def test_webhook_and_reconciliation_agree_on_event_ids(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    names = Topics(topic_prefix)
    async with receiver_at(kafka_bootstrap, topic_prefix) as (_receiver, hook_url):
        options = SandboxOptions(api_key=KEY, webhook_targets=[hook_url])
        async with (
            sandbox_at(options) as (sandbox, base),
            unpaced(base) as client,
            Publisher(kafka_bootstrap) as publisher,
        ):
            await client.contacts.create(
                {"first_name": "Ana", "company": "Acme", "email": "a@x.es"}
            )
            await client.products.create({"name": "P", "sku": "P-1", "price": 3})
            await sandbox.webhooks.drain()
            by_webhook = await all_facts(kafka_bootstrap, names)
            await Reconciler(client, publisher, names, kafka_bootstrap).run_once()
    assert len(by_webhook) == 3  # contact, its new company, product
    everything = await all_facts(kafka_bootstrap, names)
    assert set(everything) == set(by_webhook)  # the poller re-emitted the same ids only


async def test_the_periodic_loop_delivers_changes_until_stopped(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    names = Topics(topic_prefix)
    async with (
        sandbox_at(SandboxOptions(api_key=KEY, webhooks=False, seed=1)) as (_sandbox, base),
        unpaced(base) as client,
        Publisher(kafka_bootstrap) as publisher,
    ):
        stop = asyncio.Event()
        loop = asyncio.create_task(
            Reconciler(client, publisher, names, kafka_bootstrap).run(0.2, stop)
        )

        async def product_names() -> list[str]:
            return [
                f.payload["name"]
                for f in await read_facts(kafka_bootstrap, names[CLIENTIFY_PRODUCT])
            ]

        async def eventually(wanted: str) -> None:
            deadline = asyncio.get_running_loop().time() + 20
            while wanted not in await product_names():
                assert asyncio.get_running_loop().time() < deadline, f"{wanted} never arrived"
                await asyncio.sleep(0.3)

        original = (await client.products.get(1))["name"]
        await eventually(original)  # the first pass (full sync) is done
        await client.products.update(1, {"name": "Renombrado"})
        await eventually("Renombrado")  # a later pass found the change
        stop.set()
        await asyncio.wait_for(loop, 10)


async def test_a_full_sync_through_a_throttled_clientify_loses_nothing(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    """Concurrent contact reads meet DRF throttling (5/s): every record still arrives."""
    names = Topics(topic_prefix)
    options = SandboxOptions(api_key=KEY, webhooks=False, seed=12, throttle_rps=5)
    async with (
        sandbox_at(options) as (sandbox, base),
        ClientifyClient(base, KEY) as client,
        Publisher(kafka_bootstrap) as publisher,
    ):
        report = await Reconciler(client, publisher, names, kafka_bootstrap).run_once()
        assert sandbox.throttle.throttled >= 1
        assert report.emitted == {"contact": 12, "company": 12, "product": 12}
        # The check is not under test: no throttling, and a client not paced by the above.
        sandbox.throttle.rate = 0
        async with unpaced(base) as checker:
            expected = await current_event_ids(sandbox, checker)
        assert expected == set(await all_facts(kafka_bootstrap, names))
