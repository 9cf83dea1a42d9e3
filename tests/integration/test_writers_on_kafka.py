"""The writers on the real broker: commands in, Results and dead letters out, tracked on
sync.applied so a redelivered command (also after a kill -9 before the offset commit)
changes nothing; an order waits for its contact while the other commands go on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from connectors.clientify import ClientifyClient
from connectors.kafka.admin import ensure_topics
from connectors.kafka.publisher import Outgoing, Publisher
from consumers.base.tracked import ConsumerConfig, TrackingConsumer
from consumers.base.tracking import AppliedRecord, stored
from consumers.writers.clientify import ClientifyTarget
from consumers.writers.command_writer import CommandWriter
from schemas import (
    AnyEnvelope,
    Command,
    DeadLetter,
    Result,
    ResultStatus,
    System,
    decode,
    encode,
)
from schemas.mapping import load_mapping
from schemas.topics import Topics, TopicSpec
from tests.support.clientify_fixtures import sandbox_at
from tests.support.commands import SMALL_ACME as ACME
from tests.support.commands import clientify_command as command
from tests.support.commands import outgoing
from tests.support.kafka import reading
from tests.support.project import REPO

pytestmark = pytest.mark.broker


def test_a_dead_letter_keeps_the_whole_command() -> None:
    original = command("company", "B1", {"name": "X"})
    letter = DeadLetter(command=original, reason="400", attempts=1, at=original.issued_at)
    assert decode(letter.model_dump_json()) == letter


def test_the_applied_record_keeps_values_compressed_and_gives_them_back_whole() -> None:
    company = command("company", "B12345678", ACME)
    result = Result(
        command_id=company.command_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", status=ResultStatus.APPLIED, target_id="501",
        written=company.fields, finished_at=company.issued_at,
    )  # fmt: skip
    value = stored([Outgoing("p.sync.results", "company:B12345678", result)])
    applied = AppliedRecord()
    applied.add(company.command_id, value)
    assert applied.get(company.command_id) == value and company.command_id in applied
    assert applied.get("another") is None and len(applied) == 1
    assert applied.nbytes < len(value) * 0.4, (applied.nbytes, len(value))


async def run_writer(
    bootstrap: str,
    prefix: str,
    client: ClientifyClient,
    stop: asyncio.Event,
    wait_budget: float = 20,
) -> TrackingConsumer:
    config = ConsumerConfig(
        bootstrap=bootstrap, topics=[prefix + "sync.commands.clientify"],
        group_id=f"{prefix}writer", applied_topic=prefix + "sync.applied",
        wait_budget=wait_budget, first_wait=0.2, poll_ms=200,
    )  # fmt: skip
    topics = Topics(prefix)
    writer = CommandWriter(ClientifyTarget(client, load_mapping()), topics, backoff=0.05)
    consumer = TrackingConsumer(config, writer)
    await consumer.run(stop)
    return consumer


async def test_batch_with_a_rejected_record_a_waiting_order_and_a_redelivery(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    prefix = topic_prefix
    order = command("order", "S001", {
        "contact": "12345678Z", "currency": "EUR",
        "items": [{"name": "W", "sku": "W1", "price": 1.0, "quantity": 2.0}],
    })  # fmt: skip
    acme = command("company", "B12345678", ACME)
    batch = [
        order,  # its contact comes later in the batch
        acme,
        command("company", "A11111111", {**ACME, "display_name": None}),  # a 400
        command("product", "W1", {"name": "Widget", "price": 1.0}),
        command("contact", "12345678Z", {"name": "Ana"}),
        acme,  # delivered twice
    ]
    async with (
        sandbox_at() as (sandbox, url),
        ClientifyClient(url, sandbox.api_key) as client,
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, prefix + "sync.results") as results,
        reading(kafka_bootstrap, prefix + "sync.dead_letters") as dead,
    ):
        await publisher.publish_all(outgoing(prefix, *batch))
        stop = asyncio.Event()
        task = asyncio.create_task(run_writer(kafka_bootstrap, prefix, client, stop))
        seen = await results.until(6)
        by_key: dict[str, list[Result]] = {}
        for result in seen:
            assert isinstance(result, Result)
            by_key.setdefault(result.business_key, []).append(result)
        first, second = by_key["B12345678"]
        assert first == second  # the redelivery published the stored Result again
        [failed] = by_key["A11111111"]
        assert failed.status is ResultStatus.FAILED and failed.skipped["display_name"] is None
        assert not failed.found and failed.error and "name" in failed.error
        [letter] = await dead.until(1)
        assert isinstance(letter, DeadLetter) and letter.command.business_key == "A11111111"
        # The order waited for its contact and landed after it.
        keys = [r.business_key for r in seen if isinstance(r, Result)]
        assert keys.index("S001") > keys.index("12345678Z")
        [stored] = [o async for o in client.orders.list()]
        assert "/contacts/" in stored["contact"]
        stop.set()
        consumer = await task
        assert consumer.replays == 1
        companies = [c async for c in client.companies.list()]
        assert [c["taxpayer_identification_number"] for c in companies] == ["B12345678"]

        # Every offset committed: a restart reads nothing again and writes nothing.
        before = sandbox.requests
        stop = asyncio.Event()
        again = asyncio.create_task(run_writer(kafka_bootstrap, prefix, client, stop))
        await asyncio.sleep(3)
        stop.set()
        assert (await again).handled == 0 and sandbox.requests == before


async def test_a_wait_budget_runs_only_while_the_writer_has_nothing_else_to_do(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    """The throttled backfill's dead letters (issue 6): orders waited their whole budget
    while the contacts they needed were still in the writer's own backlog. An order
    parked in front of a backlog that takes longer than the budget now waits it out."""
    prefix, budget = topic_prefix, 1.0
    order = command("order", "S002", {
        "contact": "12345678Z", "currency": "EUR",
        "items": [{"name": "W", "sku": "W1", "price": 1.0, "quantity": 1.0}],
    })  # fmt: skip
    backlog = [command("product", f"W{i}", {"name": f"W {i}", "price": 1.0}) for i in range(60)]
    contact = command("contact", "12345678Z", {"name": "Ana"})
    async with (
        sandbox_at() as (sandbox, url),
        ClientifyClient(url, sandbox.api_key) as client,
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, prefix + "sync.results") as results,
    ):
        await publisher.publish_all(outgoing(prefix, order, *backlog, contact))
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(run_writer(kafka_bootstrap, prefix, client, stop, budget))
        seen = await results.until(62, within=120)
        took = time.monotonic() - started
        stop.set()
        consumer = await task
    last = seen[-1]
    assert isinstance(last, Result) and last.business_key == "S002", last
    assert last.status is ResultStatus.APPLIED and last.target_id
    assert took > 2 * budget  # the backlog did outlast the budget
    assert consumer.handled == 62


async def rewind_group(bootstrap: str, group: str, topic: str, within: float = 40) -> None:
    """Commit offset 0 for `group`, once the killed member has left it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        async with asyncio.timeout(within):
            while True:
                try:
                    await consumer.commit({tp: OffsetAndMetadata(0, "")})
                    return
                except KafkaError:
                    await asyncio.sleep(1)
    finally:
        await consumer.stop()


async def test_kill_9_before_the_offset_commit_writes_nothing_twice(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    prefix = topic_prefix
    log = tmp_path / "writer.log"
    async with (
        sandbox_at() as (sandbox, url),
        ClientifyClient(url, sandbox.api_key) as client,
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, prefix + "sync.results") as results,
    ):
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
               "CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": sandbox.api_key}  # fmt: skip
        argv = [sys.executable, "-m", "clientify_odoo", "write", "clientify", "--partitions", "1",
                "--metrics-port", "0"]  # fmt: skip

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("ab"),
                                    stderr=subprocess.STDOUT)  # fmt: skip

        writer = start()
        try:
            await publisher.publish_all(outgoing(prefix, command("company", "B12345678", ACME)))
            [result] = await results.until(1)
            assert isinstance(result, Result) and result.status is ResultStatus.APPLIED
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            record = await client.companies.get(result.target_id or "")
            # As if it died between the write and the offset commit.
            await rewind_group(
                kafka_bootstrap, f"{prefix}clientify-odoo.writer.clientify",
                prefix + "sync.commands.clientify",
            )  # fmt: skip
            writer = start()
            replayed = (await results.until(2))[1]
            assert replayed == result, log.read_text()
            assert "was applied before" in log.read_text()
            assert await client.companies.get(result.target_id or "") == record
            assert len([c async for c in client.companies.list()]) == 1
        finally:
            writer.send_signal(signal.SIGTERM)
            try:
                writer.wait(timeout=20)
            except subprocess.TimeoutExpired:
                writer.kill()


class Recorder:
    """A `Handler` that only notes which business keys it handled, in order."""

    def __init__(self, count: int, stop: asyncio.Event) -> None:
        self.keys: list[str] = []
        self.count, self.stop = count, stop
        self.assignments = 0

    def reassigned(self) -> None:
        self.assignments += 1

    def tracking_id(self, envelope: AnyEnvelope) -> str:
        assert isinstance(envelope, Command)
        return envelope.command_id

    async def handle(self, envelope: AnyEnvelope) -> list[Outgoing]:
        assert isinstance(envelope, Command)
        self.keys.append(envelope.business_key)
        if len(self.keys) == self.count:
            self.stop.set()
        return []

    async def give_up(self, envelope: AnyEnvelope, reason: str, tries: int) -> list[Outgoing]:
        raise AssertionError(f"nothing waits here: {reason}")


async def test_partitions_are_handled_in_small_turns(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A writer is slow (paced by its API) while its commands come in bursts: handled a
    whole fetch (1 MiB, a thousand commands) of one partition at a time, a command
    waiting for a record that a command of another partition creates (a company's
    contact, an order's contact) outlived its wait budget behind them and was
    dead-lettered in every large backfill (bench/throttled.py). The partitions are
    handled in turns of a few messages instead."""
    await ensure_topics(kafka_bootstrap, Topics(topic_prefix).declared(partitions=2))
    topic = topic_prefix + "sync.commands.clientify"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition in (0, 1):
            for n in range(300):
                sent = command("contact", f"p{partition}-{n}", {"name": "x" * 500})
                await producer.send(topic, encode(sent), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    stop = asyncio.Event()
    recorder = Recorder(600, stop)
    config = ConsumerConfig(
        bootstrap=kafka_bootstrap, topics=[topic], group_id=f"{topic_prefix}turns",
        applied_topic=topic_prefix + "sync.applied", poll_ms=200,
    )  # fmt: skip
    await asyncio.wait_for(TrackingConsumer(config, recorder).run(stop), 60)
    assert sorted(recorder.keys) == sorted(f"p{p}-{n}" for p in (0, 1) for n in range(300))
    assert recorder.assignments == 1  # told once, before the first message it was given
    for partition in (0, 1):  # each partition's own order is kept
        mine = [key for key in recorder.keys if key.startswith(f"p{partition}-")]
        assert mine == [f"p{partition}-{n}" for n in range(300)]
    # Never more than two turns apart, from the first messages on.
    for handled in range(20, 600, 20):
        first = recorder.keys[:handled]
        behind = abs(
            sum(k.startswith("p0-") for k in first) - sum(k.startswith("p1-") for k in first)
        )
        assert behind <= 2 * config.turn, (handled, behind)
