"""The Odoo poller against the sandbox over HTTP and the real Kafka broker, and the
tests that need no sandbox knob against real Odoo 16-19 as well.

A real server's database holds what earlier tests made, and other runs may write to it
meanwhile: there the tests count only the facts of the records they made. The clock
(late commits, a frozen second), fault injection and seeding are the sandbox's knobs, so
those tests run on the sandbox only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import ReadError, read_to_end
from connectors.odoo import OdooAccessDenied, OdooClient
from connectors.odoo.sandbox import SUPPORTED_VERSIONS, seed
from producers.odoo import OdooPoller, PollerError, PollerOptions
from producers.odoo.cursor import Cursor, load_cursors
from schemas import Fact
from schemas.topics import Topics, TopicSpec
from tests.support.odoo_fixtures import (
    Sandbox,
    facts_on,
    odoo_peer,
    peers,
    running_sandbox,
    transactional_publisher,
)

pytestmark = pytest.mark.broker


def topic(topics: tuple[TopicSpec, ...], base: str) -> str:
    """The name under this test's prefix of the declared topic `base`."""
    (found,) = [spec.name for spec in topics if spec.name.endswith("." + base)]
    return found


async def started_poller(
    client: OdooClient, bootstrap: str, prefix: str, publisher: Publisher, **options: Any
) -> OdooPoller:
    poller = OdooPoller(
        client, publisher, bootstrap, topics=Topics(prefix), options=PollerOptions(**options)
    )
    await poller.start()
    return poller


def mine(facts: list[Fact], ids: list[int]) -> list[Fact]:
    """The facts of these records, in topic order."""
    wanted = {str(i) for i in ids}
    return [fact for fact in facts if fact.source_id in wanted]


@asynccontextmanager
async def polling(
    version: int, bootstrap: str, prefix: str, **options: Any
) -> AsyncIterator[tuple[Sandbox, OdooClient, OdooPoller]]:
    """A sandbox of `version`, a client of it and a started poller publishing to Kafka."""
    async with (
        running_sandbox(version) as sandbox,
        sandbox.client() as client,
        transactional_publisher(bootstrap, prefix) as publisher,
    ):
        yield sandbox, client, await started_poller(client, bootstrap, prefix, publisher, **options)


@pytest.mark.parametrize("peer_name", peers(sandboxes=SUPPORTED_VERSIONS))
async def test_one_fact_per_change_on_the_right_topic(
    peer_name: str, kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with (
        odoo_peer(peer_name) as peer,
        peer.client() as client,
        transactional_publisher(kafka_bootstrap, topic_prefix) as publisher,
    ):
        poller = await started_poller(
            client, kafka_bootstrap, topic_prefix, publisher, page_size=50, overlap=30
        )
        await poller.poll_once()  # what the database holds already (a real one: plenty)

        async def changes() -> Counter[str]:
            """Facts of the records made here since the last call, per entity."""
            await poller.poll_once()
            facts = {
                entity: mine(await facts_on(kafka_bootstrap, topic(topics, name)), ids)
                for entity, name, ids in (
                    ("partner", "odoo.partner", [partner]),
                    ("product", "odoo.product", [product]),
                    ("sale_order", "odoo.sale_order", [order]),
                )
            }
            counts = Counter({entity: len(found) for entity, found in facts.items()})
            new = counts - seen
            seen.update(new)
            return new

        seen: Counter[str] = Counter()
        partner = await client.create(
            "res.partner", {"name": "Talleres Ruiz S.L.", "ref": "B12345674", "is_company": True}
        )
        product = await client.create(
            "product.product", {"name": "Tornillo M8", "default_code": "SKU-1", "list_price": 2}
        )
        order = await client.create("sale.order", {"partner_id": partner, "order_line": [
            [0, 0, {"product_id": product, "product_uom_qty": 3}]]})  # fmt: skip
        assert await changes() == {"partner": 1, "product": 1, "sale_order": 1}

        await peer.next_second()
        await client.write("res.partner", [partner], {"phone": "+34 911 000 000"})
        assert await changes() == {"partner": 1}

        await peer.next_second()  # a price written on the template, not the variant
        (variant,) = await client.read("product.product", [product], ["product_tmpl_id"])
        template = variant["product_tmpl_id"][0]
        await client.write("product.template", [template], {"list_price": 3})
        assert await changes() == {"product": 1}
        (priced,) = await client.read("product.template", [template], ["write_date"])

        await peer.next_second()  # a line change, seen as a change of its order
        (row,) = await client.read("sale.order", [order], ["order_line"])
        await client.write("sale.order.line", row["order_line"], {"name": "Tornillo M8 x 3"})
        assert await changes() == {"sale_order": 1}
        assert await client.call("sale.order", "action_confirm", [order]) is True
        assert await changes() == {"sale_order": 1}
        assert await changes() == {}  # nothing changed: nothing new

        partners = mine(await facts_on(kafka_bootstrap, topic(topics, "odoo.partner")), [partner])
        products = mine(await facts_on(kafka_bootstrap, topic(topics, "odoo.product")), [product])
        orders = mine(await facts_on(kafka_bootstrap, topic(topics, "odoo.sale_order")), [order])
    version = peer.version
    assert [f.payload.get("phone") for f in partners] == [False, "+34 911 000 000"]
    assert partners[0].business_key == "B12345674" and partners[0].entity == "partner"
    assert ("mobile" in partners[0].payload) is (version <= 18)
    assert [f.payload["list_price"] for f in products] == [2.0, 3.0]
    # Dated when the template changed, also on 16 where the variant's write_date stays.
    priced_at = datetime.strptime(priced["write_date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert products[1].occurred_at == priced_at
    assert (products[1].payload["write_date"] == priced["write_date"]) is (version >= 17)
    assert products[1].business_key == "SKU-1"
    assert [f.payload["state"] for f in orders] == ["draft", "draft", "sale"]
    assert orders[1].payload["lines"][0]["name"] == "Tornillo M8 x 3"
    uom = "product_uom_id" if version >= 19 else "product_uom"
    assert orders[0].payload["lines"][0][uom][1] == "Units"
    assert orders[0].business_key == orders[0].payload["name"]
    every = partners + products + orders
    assert len({f.event_id for f in every}) == len(every)
    assert all(isinstance(f.occurred_at, datetime) and f.occurred_at.tzinfo for f in every)


async def test_500_records_in_one_second_are_all_captured_once(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with polling(17, kafka_bootstrap, topic_prefix, page_size=64, overlap=30) as (
        sandbox,
        client,
        poller,
    ):
        # Every call below happens in the same server second, several between polls.
        sandbox.database.freeze(datetime(2026, 3, 2, 10, 0, 0, 100))
        created: list[int] = []
        for batch in range(5):
            created += await client.create_many(
                "res.partner", [{"name": f"P{batch}-{i}"} for i in range(100)]
            )
            if batch % 2:
                await poller.poll_once()
        # Rows written later in the same second but with lower ids (edits of old rows)
        # are behind the (second, id) cursor: the overlap re-scan finds them.
        await client.write("res.partner", created[:10], {"phone": "600"})
        await poller.poll_once()
        await poller.poll_once()
        written = {
            row["write_date"] for row in await client.search_read("res.partner", [], ["write_date"])
        }
        facts = await facts_on(kafka_bootstrap, topic(topics, "odoo.partner"))
    assert written == {"2026-03-02 10:00:00"}
    per_id = Counter(int(f.source_id) for f in facts)
    assert set(per_id) == set(created)
    assert sorted(per_id.values()) == [1] * 490 + [2] * 10  # each version exactly once
    assert len({f.event_id for f in facts}) == 510


@pytest.mark.parametrize("peer_name", peers(sandboxes=(16,)))
async def test_cursor_is_committed_with_the_facts_and_resumes(
    peer_name: str, kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with odoo_peer(peer_name) as peer, peer.client() as client:
        made = await client.create_many("res.partner", [{"name": f"N{i}"} for i in range(30)])
        async with transactional_publisher(kafka_bootstrap, topic_prefix) as publisher:
            first = await started_poller(client, kafka_bootstrap, topic_prefix, publisher,
                                         page_size=7)  # fmt: skip
            await first.backfill()
        db = peer.db
        cursors = await load_cursors(kafka_bootstrap, topic(topics, "odoo.cursors"))
        assert cursors[f"{db}/res.partner"] == first.cursors["res.partner"]
        assert set(cursors) == {f"{db}/{m}" for m in first.cursors}
        await peer.next_second()
        new = await client.create("res.partner", {"name": "later"})
        async with transactional_publisher(kafka_bootstrap, topic_prefix) as publisher:
            second = await started_poller(client, kafka_bootstrap, topic_prefix, publisher,
                                          page_size=7, overlap=60)  # fmt: skip
            assert second.cursors == first.cursors  # read back from Kafka
            # The 30 partners are inside the re-scan window, but their facts are read
            # back from Kafka at start: only the new partner is published.
            await second.poll_once()
        facts = mine(await facts_on(kafka_bootstrap, topic(topics, "odoo.partner")), [*made, new])
    assert [int(f.source_id) for f in facts] == [*made, new]  # each once, in order


async def test_backfill_reports_progress(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.expected = 0
            self.done = 0

        def total(self, count: int) -> None:
            self.expected = count

        def advance(self, count: int) -> None:
            self.done += count

    async with running_sandbox(18) as sandbox, sandbox.client() as client:
        seed(sandbox.database, partners=120, products=30, orders=40)
        async with transactional_publisher(kafka_bootstrap, topic_prefix) as publisher:
            poller = await started_poller(client, kafka_bootstrap, topic_prefix, publisher,
                                          page_size=50)  # fmt: skip
            recorder = Recorder()
            report = await poller.backfill(recorder)
    assert report.facts == {"partner": 120, "product": 30, "sale_order": 40}
    assert recorder.expected >= 190 and recorder.done >= 190
    assert recorder.done <= recorder.expected


async def test_late_commits_inside_the_overlap_are_caught(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with polling(18, kafka_bootstrap, topic_prefix, page_size=20, overlap=120) as (
        sandbox,
        client,
        poller,
    ):
        first = await client.create("res.partner", {"name": "early"})
        sandbox.advance(10)
        await client.create("res.partner", {"name": "now"})
        assert (await poller.poll_once()).facts == {"partner": 2}
        # A long transaction that started 60 s ago commits now, with its old write_date:
        # behind the cursor, inside the overlap window.
        sandbox.advance(-60)
        await client.write("res.partner", [first], {"name": "late"})
        sandbox.advance(60)
        assert (await poller.poll_once()).facts == {"partner": 1}
        # Beyond the window it would be lost: that is what the overlap is sized for.
        sandbox.advance(-600)
        await client.write("res.partner", [first], {"name": "too late"})
        sandbox.advance(600)
        assert (await poller.poll_once()).published == 0
        facts = await facts_on(kafka_bootstrap, topic(topics, "odoo.partner"))
    assert [f.payload["name"] for f in facts] == ["early", "now", "late"]


async def test_run_polls_until_stopped(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with polling(19, kafka_bootstrap, topic_prefix, interval=0.2, overlap=10) as (
        sandbox,
        client,
        poller,
    ):
        stop = asyncio.Event()
        running = asyncio.create_task(poller.run(stop))
        await client.create("product.product", {"name": "Casco", "default_code": "C-1"})
        sandbox.faults.error_rate = 0.5  # the poller waits outages out
        product_topic = topic(topics, "odoo.product")
        for _ in range(100):
            if await facts_on(kafka_bootstrap, product_topic):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(running, 10)
        facts = await facts_on(kafka_bootstrap, product_topic)
    assert [f.business_key for f in facts] == ["C-1"]
    assert sandbox.faults.injected > 0


@pytest.mark.parametrize("peer_name", peers(sandboxes=(17,)))
async def test_a_stuck_kafka_stops_the_poller_and_a_restart_loses_nothing(
    peer_name: str, kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with odoo_peer(peer_name) as peer, peer.client() as client:
        made = await client.create_many("res.partner", [{"name": f"S{i}"} for i in range(25)])
        stuck = transactional_publisher(kafka_bootstrap, topic_prefix)
        await stuck.start()
        poller = await started_poller(
            client, kafka_bootstrap, topic_prefix, stuck, page_size=10, publish_timeout=1e-4
        )
        with pytest.raises(PollerError, match="cursor was not moved"):
            await poller.backfill()
        with contextlib.suppress(Exception):  # its transaction was cut short
            await stuck.stop()
        cursors = await load_cursors(kafka_bootstrap, topic(topics, "odoo.cursors"))
        assert cursors.get(f"{peer.db}/res.partner", Cursor()) == Cursor()
        async with transactional_publisher(kafka_bootstrap, topic_prefix) as publisher:
            restarted = await started_poller(
                client, kafka_bootstrap, topic_prefix, publisher, page_size=10
            )
            await restarted.backfill()
        facts = await facts_on(kafka_bootstrap, topic(topics, "odoo.partner"))
    assert sorted(int(f.source_id) for f in mine(facts, made)) == sorted(made)  # each once
    assert len(facts) == len({f.source_id for f in facts})  # the cut one was aborted


async def test_reading_back_is_bounded_by_time_and_count(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    name = topic(topics, "odoo.cursors")
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all([Outgoing(name, f"k{i}", b"%d" % i) for i in range(10)])
    everything = await read_to_end(kafka_bootstrap, [name])
    assert [r.value for r in everything] == [b"%d" % i for i in range(10)]
    newest = await read_to_end(kafka_bootstrap, [name], newest=3)
    assert [r.value for r in newest] == [b"7", b"8", b"9"]
    assert await read_to_end(kafka_bootstrap, [name], since=datetime(2999, 1, 1)) == []
    assert len(await read_to_end(kafka_bootstrap, [name], since=datetime(2000, 1, 1))) == 10
    with pytest.raises(ReadError, match="does not exist"):
        await read_to_end(kafka_bootstrap, [name + ".typo"], must_exist=True)


async def test_run_waits_out_concurrency_faults_but_stops_on_real_ones(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with polling(17, kafka_bootstrap, topic_prefix, interval=0.1, overlap=5) as (
        sandbox,
        client,
        poller,
    ):
        await client.create("res.partner", {"name": "Insistente"})
        sandbox.database.serialization_failures = 12  # more than the client's retries
        stop = asyncio.Event()
        running = asyncio.create_task(poller.run(stop))
        for _tick in range(100):
            if sandbox.database.serialization_failures == 0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert not running.done()  # transient: waited out
        # Revoking the key is not transient: run() stops with the error.
        sandbox.database.credentials = replace(sandbox.database.credentials, api_key="revoked")
        with pytest.raises(OdooAccessDenied):
            await asyncio.wait_for(running, 10)
        facts = await facts_on(kafka_bootstrap, topic(topics, "odoo.partner"))
    assert [f.payload["name"] for f in facts] == ["Insistente"]
