"""The Faust worker end to end on a real broker: facts in, commands, skips and
conflicts out, echoes dropped, state surviving a restart; and its producer flush, which
Faust runs before every offset commit, returns only when every queued table write is in
Kafka, also when the broker stalls (Faust's own flush gave up after 0.1 s without
progress, so a commit could go through with changelog records still queued)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from clientify_odoo.status.kafka_state import inspect_kafka
from connectors.kafka.admin import committed_offsets, partitions_of
from connectors.kafka.clients import admin as admin_client
from connectors.kafka.clients import consumer as kafka_consumer
from connectors.kafka.clients import producer as kafka_producer
from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from processors.app import WorkerConfig, create_app
from processors.replay_tables import Tables, changelog
from schemas import AnyEnvelope, Command, Fact, Result, ResultStatus, Skip, System, encode
from schemas.mapping import load_mapping
from schemas.topics import TopicSpec
from tests.support.kafka import Reader
from tests.support.worker import Worker

pytestmark = pytest.mark.broker
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

ACME = {
    "id": 7, "name": "Acme Soluciones", "display_name": "Acme Soluciones SL",
    "ref": "B12345678", "is_company": True, "commercial_partner_id": [7, "Acme"],
    "phone": "+34 911 111 111", "mobile": False, "street": "Calle Mayor 1", "city": "Madrid",
    "state_id": [46, "Madrid"], "country_id": [68, "Spain"], "zip": "28001", "customer_rank": 0,
}  # fmt: skip


def partner_fact(payload: dict[str, Any], seconds: int) -> Fact:
    return Fact.observe(
        system=System.ODOO, entity="partner", source_id=payload["id"], version=str(seconds),
        payload=payload, occurred_at=T0 + timedelta(seconds=seconds),
    )  # fmt: skip


def acme(prefix: str) -> Outgoing:
    return Outgoing(prefix + "odoo.partner", "7", partner_fact(ACME, 0))


def order_fact(
    order_id: int, seconds: int, *, product_id: int = 3, partner: tuple[int, str] = (7, "Acme")
) -> Fact:
    """A confirmed order `S<id>` of one line of `product_id`, for `partner`."""
    order = {
        "id": order_id, "name": f"S{order_id:05d}", "state": "sale", "partner_id": list(partner),
        "date_order": "2024-05-01 10:30:00", "currency_id": [1, "EUR"],
        "lines": [{"id": order_id, "name": "Widget", "product_id": [product_id, "[PW-1] Widget"],
                   "price_unit": 10.0, "product_uom_qty": 2.0}],
    }  # fmt: skip
    return Fact.observe(
        system=System.ODOO, entity="sale_order", source_id=order_id, version=f"o{order_id}",
        payload=order, occurred_at=T0 + timedelta(seconds=seconds),
    )  # fmt: skip


def widget_fact() -> Fact:
    """The product every order here is of (id 3, SKU PW-1)."""
    return Fact.observe(
        system=System.ODOO, entity="product", source_id=3, version="p1", occurred_at=T0,
        payload={"id": 3, "name": "Widget", "default_code": "PW-1", "barcode": "8412345678905",
                 "list_price": 10.0},
    )  # fmt: skip


async def test_worker_maps_links_skips_and_drops_its_echo(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    with Worker(kafka_bootstrap, topic_prefix, tmp_path).running() as worker:
        async with (
            Publisher(kafka_bootstrap) as publisher,
            Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands,
            Reader(kafka_bootstrap, topic_prefix + "sync.skips") as skips,
        ):
            no_ref = {**ACME, "id": 8, "ref": False, "is_company": False}
            await publisher.publish_all([
                acme(topic_prefix),
                Outgoing(topic_prefix + "odoo.partner", "8", partner_fact(no_ref, 0)),
            ])  # fmt: skip
            created = await commands.until(2)
            by_flow = {c.entity: c for c in created if isinstance(c, Command)}
            assert set(by_flow) == {"company", "contact"}
            assert by_flow["company"].fields["name"] == "Acme Soluciones"
            assert by_flow["contact"].business_key == "B12345678"
            [skip] = await skips.until(1)
            assert isinstance(skip, Skip) and "has no ref" in skip.reason

            # The writer's result and the webhook echo of its save: nothing more is sent.
            company = by_flow["company"]
            result = Result(
                command_id=company.command_id, target=System.CLIENTIFY, entity="company",
                business_key="B12345678", status=ResultStatus.APPLIED, target_id="501",
                written=company.fields, finished_at=T0,
            )  # fmt: skip
            echo = Fact.observe(
                system=System.CLIENTIFY, entity="company", source_id=501, version="e1",
                occurred_at=T0 + timedelta(seconds=5), payload={
                    "id": 501, "name": "Acme Soluciones SL", "business_name": "Acme Soluciones",
                    "taxpayer_identification_number": "B12345678",
                    "phones": [{"phone": "+34 911 111 111", "type": 1}],
                    "addresses": [{"street": "Calle Mayor 1", "city": "Madrid",
                                   "state": "Madrid", "country": "Spain",
                                   "postal_code": "28001", "type": 1}],
                },
            )  # fmt: skip
            await publisher.publish_all([
                Outgoing(topic_prefix + "sync.results", "company:B12345678", result),
                Outgoing(topic_prefix + "clientify.company", "501", echo),
                # Every fact delivered twice changes nothing the second time.
                Outgoing(topic_prefix + "clientify.company", "501", echo),
                acme(topic_prefix),
            ])  # fmt: skip
            assert len(await commands.quiet_for(8)) == 2

            # A real change in Odoo after a restart (state recovered) goes across alone.
            worker.stop()
            worker.start()
            renamed = {**ACME, "name": "Acme Group"}
            await publisher.publish(
                Outgoing(topic_prefix + "odoo.partner", "7", partner_fact(renamed, 20))
            )
            after = await commands.until(3)
            change = after[2]
            assert isinstance(change, Command) and change.entity == "company"
            assert change.fields == {"name": "Acme Group"}, worker.tail()
            assert change.expected == {"name": "Acme Soluciones"}
            assert change.target_id == "501"


async def test_a_worker_on_fresh_six_partition_topics_has_its_changelogs_and_routes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The scale-out benchmark's stall (issue 6): on fresh 6-partition topics Faust could
    subscribe before the changelogs it had just created were in the broker's metadata,
    and its global tables never recovered. The worker now creates every changelog with
    the other topics before Faust starts."""
    worker = Worker(kafka_bootstrap, topic_prefix, tmp_path, partitions=6)
    worker.start()
    partners = [{**ACME, "id": 100 + i, "ref": f"B{10000000 + i}"} for i in range(12)]
    try:
        async with (
            Publisher(kafka_bootstrap) as publisher,
            Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands,
        ):
            await publisher.publish_all([
                Outgoing(topic_prefix + "odoo.partner", str(p["id"]), partner_fact(p, 0))
                for p in partners
            ])  # fmt: skip
            sent = await commands.until(24)
        keys = {(c.entity, c.business_key) for c in sent if isinstance(c, Command)}
        assert keys == {(flow, p["ref"]) for p in partners for flow in ("company", "contact")}
        names = [changelog(topic_prefix, table) for table in Tables().by_name]
        partitions = await partitions_of(kafka_bootstrap, *names)
        assert len(partitions) == 6 * len(names), worker.tail()
    finally:
        worker.stop()


async def test_a_confirmed_order_makes_its_customer_a_client_and_waits_for_it(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    with Worker(kafka_bootstrap, topic_prefix, tmp_path).running() as worker:
        async with (
            Publisher(kafka_bootstrap) as publisher,
            Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands,
        ):
            # The order comes before its customer: it waits, then goes once Acme is known.
            await publisher.publish_all([
                Outgoing(topic_prefix + "odoo.product", "3", widget_fact()),
                Outgoing(topic_prefix + "odoo.sale_order", "40", order_fact(40, 30)),
            ])  # fmt: skip
            assert [c.entity for c in await commands.until(1)] == ["product"]
            await publisher.publish(acme(topic_prefix))
            seen = await commands.until(4)
            by_flow: dict[str, list[Command]] = {}
            for command in seen:
                assert isinstance(command, Command)
                by_flow.setdefault(command.entity, []).append(command)
            [order_command] = by_flow["order"]
            assert order_command.fields["contact"] == "B12345678"
            assert order_command.fields["items"][0]["sku"] == "PW-1"  # the product's key
            # The order made Acme a current customer before its contact was first sent.
            [contact] = by_flow["contact"]
            assert contact.fields["customer"] == "client", worker.tail()
            # A later partner with its first confirmed order: its contact turns `client`.
            person = {**ACME, "id": 9, "ref": "12345678Z", "is_company": False,
                      "commercial_partner_id": [9, "Ana"], "name": "Ana Ruiz"}  # fmt: skip
            await publisher.publish(
                Outgoing(topic_prefix + "odoo.partner", "9", partner_fact(person, 40))
            )
            [ana] = (await commands.until(5))[4:]
            assert isinstance(ana, Command) and ana.fields.get("customer") is None
            second = order_fact(41, 50, partner=(9, "Ana"))
            await publisher.publish(Outgoing(topic_prefix + "odoo.sale_order", "41", second))
            after = await commands.until(7)
            assert {(c.entity, c.business_key) for c in after[5:]} == {
                ("order", "S00041"), ("contact", "12345678Z"),
            }  # fmt: skip
            [turned] = [c for c in after[5:] if c.entity == "contact"]
            assert turned.fields == {"customer": "client"}


async def test_a_redelivered_message_emits_the_same_commands_again_never_new_ones(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    # A crash after the state change reached the changelog but before the commands
    # left would lose them; redelivery of the same message re-emits them instead.
    with Worker(kafka_bootstrap, topic_prefix, tmp_path).running() as worker:
        async with (
            Publisher(kafka_bootstrap) as publisher,
            Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands,
        ):
            await publisher.publish(acme(topic_prefix))
            first = list(await commands.until(2))
            worker.stop()
            await rewind(
                kafka_bootstrap, f"{topic_prefix}clientify-odoo-sync", topic_prefix + "sync.routed"
            )
            worker.start()
            again = await commands.until(4)
            ids = [c.command_id for c in again if isinstance(c, Command)]
            assert sorted(ids[2:]) == sorted(c.command_id for c in first if isinstance(c, Command))
            assert len(await commands.quiet_for(5)) == 4


async def test_a_record_kafka_refuses_stops_the_worker_before_it_commits_past_its_input(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    """Faust only warns when a record it sends is refused, and commits past the input
    that made it: the routed fact would be lost for good. Here sync.routed takes no
    record of that size: the worker stops without committing, to read the fact again."""
    routed = topic_prefix + "sync.routed"
    async with admin_client(kafka_bootstrap) as admin:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, routed, {"max.message.bytes": "200"})]
        )
    worker = Worker(kafka_bootstrap, topic_prefix, tmp_path)
    with worker.running():
        async with Publisher(kafka_bootstrap) as publisher:
            await publisher.publish(acme(topic_prefix))
        for _ in range(120):
            if worker.exited():
                break
            await asyncio.sleep(0.5)
        assert worker.exited(), f"the worker went on after losing a record\n{worker.tail()}"
    assert worker.process is not None and worker.process.returncode != 0
    assert "Kafka refused a record for " + routed in worker.log.read_text(errors="replace")
    async with admin_client(kafka_bootstrap) as admin:
        committed = await committed_offsets(admin, f"{topic_prefix}clientify-odoo-sync")
    source = TopicPartition(topic_prefix + "odoo.partner", 0)
    assert committed.get(source, OffsetAndMetadata(0, "")).offset == 0, committed


async def test_a_partition_that_begins_with_an_aborted_transaction_is_committed(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    """The first records of odoo.partner are an aborted transaction (a poller whose
    broker went away mid-publish): the worker is never given them, nor the marker, so
    its first record comes after offsets it never sees. Its commits must still go past
    them (a commit held there would have every restart read the partition again)."""
    source = TopicPartition(topic_prefix + "odoo.partner", 0)
    aborted = kafka_producer(kafka_bootstrap, transactional_id=f"{topic_prefix}aborting")
    await aborted.start()
    try:
        await aborted.begin_transaction()
        for _ in range(3):
            await aborted.send_and_wait(source.topic, encode(partner_fact(ACME, 0)), key=b"7")
        await aborted.abort_transaction()
    finally:
        await aborted.stop()
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish(acme(topic_prefix))
    ends = kafka_consumer(kafka_bootstrap)
    await ends.start()
    try:
        end = (await ends.end_offsets([source]))[source]
    finally:
        await ends.stop()
    with Worker(kafka_bootstrap, topic_prefix, tmp_path).running() as worker:
        async with Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands:
            await commands.until(2)  # the fact after the aborted ones was routed and decided
        group = f"{topic_prefix}clientify-odoo-sync"
        committed: dict[TopicPartition, OffsetAndMetadata] = {}
        for _ in range(60):
            async with admin_client(kafka_bootstrap) as admin:
                committed = await committed_offsets(admin, group)
            if source in committed and committed[source].offset >= end - 1:
                break
            await asyncio.sleep(1)
        assert source in committed and committed[source].offset >= end - 1, (
            f"committed {committed.get(source)} of {end}\n{worker.tail()}"
        )


async def rewind(bootstrap: str, group: str, topic: str) -> None:
    """Move `group`'s committed offset on `topic` back to the start (worker stopped)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: OffsetAndMetadata(0, "")})
    finally:
        await consumer.stop()


async def test_orders_parked_from_several_partitions_all_go_when_their_product_comes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The full-size backfill lost 91 of 5,000 orders (issue 6). Orders waiting for one
    product are kept as one entry of a global table, read, extended and written back.
    Faust's RocksDB store put each write in the partition of the order being routed, so
    an entry written from two source partitions had a copy in each; once more than
    1,000 other keys had been written, a read found the stale copy and the next write
    dropped the orders parked in between. Each order here comes from another partition
    than the one before, with 1,100 other parked orders in between."""
    partitions = 3
    worker = Worker(kafka_bootstrap, topic_prefix, tmp_path, partitions=partitions)
    worker.start()
    orders_topic = topic_prefix + "odoo.sale_order"
    # Two order ids per partition of the orders topic (keyed by id), coming from the
    # partitions in turn: whatever order the store searches its partitions in, some
    # read then finds a stale copy.
    spread: dict[int, list[int]] = {}
    for order_id in range(1, 100):
        partition = DefaultPartitioner()(str(order_id).encode(), list(range(partitions)), [])
        spread.setdefault(partition, []).append(order_id)
    waiting = [spread[partition][turn] for turn in (0, 1) for partition in range(partitions)]

    def order(order_id: int, product_id: int) -> Outgoing:
        return Outgoing(orders_topic, str(order_id), order_fact(order_id, 0, product_id=product_id))

    async def routed_all() -> None:  # the worker has routed every order published so far
        async with asyncio.timeout(90):
            while True:
                state = await inspect_kafka(kafka_bootstrap, topic_prefix, partitions)
                [group] = [g for g in state.groups if g.service == "worker"]
                lags = [p.lag for p in group.partitions if p.topic == orders_topic]
                if lags and not any(lags):
                    return
                await asyncio.sleep(0.5)

    try:
        async with (
            Publisher(kafka_bootstrap) as publisher,
            Reader(kafka_bootstrap, topic_prefix + "sync.commands.clientify") as commands,
        ):
            await publisher.publish(acme(topic_prefix))
            others = iter(range(1000, 10**6))
            for order_id in waiting:
                await publisher.publish(order(order_id, 3))
                await routed_all()
                # Other orders, each waiting for a product that never comes.
                await publisher.publish_all(
                    [order(other, other) for other in itertools.islice(others, 1100)]
                )
                await routed_all()
            await publisher.publish(Outgoing(topic_prefix + "odoo.product", "3", widget_fact()))
            deadline = asyncio.get_running_loop().time() + 60
            while len(_orders(commands.seen)) < len(waiting):
                if asyncio.get_running_loop().time() > deadline:
                    break  # the assertion says what came
                await commands.quiet_for(0.5)
            await commands.quiet_for(3)
            assert _orders(commands.seen) == sorted(f"S{order_id:05d}" for order_id in waiting), (
                worker.tail()
            )
    finally:
        worker.stop()


def _orders(seen: list[AnyEnvelope]) -> list[str]:
    return sorted(c.business_key for c in seen if isinstance(c, Command) and c.entity == "order")


QUEUED = 60
# Bigger than a producer batch (16 KiB): each write waits for the one before to leave,
# so while the broker is stalled they stay queued in Faust's buffer.
WRITE = b"x" * 20_000


async def test_a_flush_waits_for_every_queued_table_write(tmp_path: Path) -> None:
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port_pair())
    await asyncio.to_thread(broker.up, on_progress=lambda _line: None)
    try:
        bootstrap = broker.bootstrap
        name = "stall.changelog"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        config = WorkerConfig(
            bootstrap, "stall.", tmp_path / "state", load_mapping(), partitions=1,
            store="memory://",
        )  # fmt: skip
        app = create_app(config)
        topic = app.topic(name, key_serializer="raw", value_serializer="raw")
        producer = app.producer
        await producer.start()
        try:
            await topic.send(key=b"warm", value=b"metadata known")
            pid = broker.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                for n in range(QUEUED):  # as a table write does: queued, not awaited
                    topic.send_soon(key=str(n).encode(), value=WRITE)
                flushing = asyncio.create_task(producer.flush())
                await asyncio.sleep(1.5)
                assert not flushing.done(), "the flush returned while Kafka was stalled"
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.wait_for(flushing, timeout=60)
            landed = await read_to_end(bootstrap, [name])
            assert len(landed) == 1 + QUEUED, "a flush returned before its writes landed"
        finally:
            await producer.stop()
    finally:
        await asyncio.to_thread(broker.down)
