"""The local broker and the topic registry, against a real Kafka (no mocks)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from clientify_odoo.stack.broker import (
    BrokerError,
    KafkaJars,
    LocalBroker,
    LocalCluster,
    check_java,
    free_port_pair,
)
from connectors.kafka.admin import (
    Replication,
    TopicConfigError,
    _topic_configs,
    ensure_topics,
    replication_of,
)
from connectors.kafka.clients import consumer
from connectors.kafka.publisher import Outgoing, Publisher
from schemas import Fact, System, decode
from schemas.topics import ALL_TOPICS, Cleanup, Topics, TopicSpec

pytestmark = pytest.mark.broker
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def fact(n: int) -> Fact:
    return Fact.observe(
        system=System.ODOO, entity="partner", source_id=n, version=f"v{n}",
        payload={"id": n, "name": f"Partner {n}"}, occurred_at=WHEN, business_key=f"B{n:08d}",
    )  # fmt: skip


async def read_all(bootstrap: str, topic: str, expected: int, within: float = 20) -> list[Fact]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    out: list[Fact] = []
    try:
        async with asyncio.timeout(within):
            while len(out) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        envelope = decode(record.value)
                        assert isinstance(envelope, Fact)
                        out.append(envelope)
    finally:
        await consumer.stop()
    return out


async def test_envelopes_round_trip_through_the_broker(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    topic = topic_prefix + "odoo.partner"
    sent = [fact(n) for n in range(20)]
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all([Outgoing(topic, f.business_key or "", f) for f in sent])
    received = await read_all(kafka_bootstrap, topic, len(sent))
    assert received == sent


async def test_transactional_batch_is_all_or_nothing(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    topic = topic_prefix + "odoo.partner"
    publisher = Publisher(kafka_bootstrap, transactional_id=f"{topic_prefix}tx")
    await publisher.start()
    try:
        await publisher.publish_all(
            [Outgoing(topic, "k1", fact(1)), Outgoing(topic, "k2", fact(2))]
        )
    finally:
        await publisher.stop()
    assert [f.source_id for f in await read_all(kafka_bootstrap, topic, 2)] == ["1", "2"]


async def test_topics_are_created_once_and_a_second_start_changes_nothing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    specs = Topics(topic_prefix).declared(2)
    first = await ensure_topics(kafka_bootstrap, specs)
    assert sorted(first.created) == sorted(spec.name for spec in specs)
    configs_before = await _describe(kafka_bootstrap, specs)
    second = await ensure_topics(kafka_bootstrap, specs)
    assert second.created == ()
    assert sorted(second.existing) == sorted(spec.name for spec in specs)
    assert await _describe(kafka_bootstrap, specs) == configs_before
    compacted = {s.name for s in specs if s.cleanup is Cleanup.COMPACT}
    assert compacted == {
        topic_prefix + n for n in ("odoo.cursors", "clientify.cursors", "sync.applied")
    }
    assert all(configs_before[name]["cleanup.policy"] == "compact" for name in compacted)
    assert configs_before[topic_prefix + "odoo.partner"]["cleanup.policy"] == "delete"


async def test_fresh_topics_are_served_when_ensure_topics_returns(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Creating the topics, then what `up` does next (a consumer reads every fresh
    topic from its end), logs no error: had a partition no leader serving it yet,
    aiokafka would log NotLeaderForPartition at ERROR, read by a newcomer as a failure."""
    specs = Topics(topic_prefix).declared(3)
    reader = consumer(kafka_bootstrap, *(spec.name for spec in specs), auto_offset_reset="latest")
    with caplog.at_level(logging.WARNING, logger="aiokafka"):
        await ensure_topics(kafka_bootstrap, specs)
        await reader.start()
        try:
            await reader.getmany(timeout_ms=3000)
            positions = [await reader.position(tp) for tp in reader.assignment()]
        finally:
            await reader.stop()
    assert len(positions) == sum(spec.partitions for spec in specs)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _describe(bootstrap: str, specs: tuple[TopicSpec, ...]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await _topic_configs(admin, [spec.name for spec in specs])
    finally:
        await admin.close()


async def test_a_wrong_existing_topic_config_is_reported_with_the_fix(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    cursors = topic_prefix + "odoo.cursors"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(cursors, 1, 1, topic_configs={"cleanup.policy": "delete"})]
        )
    finally:
        await admin.close()
    with pytest.raises(TopicConfigError) as error:
        await ensure_topics(kafka_bootstrap, Topics(topic_prefix).declared(1))
    message = str(error.value)
    assert f"{cursors}: cleanup.policy is 'delete', needs 'compact'" in message
    assert "--add-config cleanup.policy=compact" in message


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "clientify_odoo", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env,
    )  # fmt: skip


def test_kafka_down_then_up_keeps_earlier_messages(tmp_path: Path) -> None:
    port = free_port_pair()
    where = ["--port", str(port), "--data-dir", str(tmp_path / "kafka")]
    up = cli("kafka", "up", *where)
    assert up.returncode == 0, up.stderr
    assert "is up at 127.0.0.1" in up.stdout and str(tmp_path / "kafka") in up.stdout
    bootstrap = f"127.0.0.1:{port}"
    try:
        assert cli("kafka", "topics", *where).returncode == 0
        sent = [fact(n) for n in range(5)]

        async def publish() -> None:
            async with Publisher(bootstrap) as publisher:
                await publisher.publish_all([Outgoing("odoo.partner", "k", f) for f in sent])

        asyncio.run(publish())
        down = cli("kafka", "down", *where)
        assert down.returncode == 0 and "Kafka stopped" in down.stdout
        stopped = cli("kafka", "status", *where)
        assert stopped.returncode == 1 and "not running" in stopped.stdout
        again = cli("kafka", "up", *where)
        assert again.returncode == 0, again.stderr
        status = cli("kafka", "status", *where)
        assert status.returncode == 0 and "running" in status.stdout
        assert "odoo.partner" in status.stdout
        assert asyncio.run(read_all(bootstrap, "odoo.partner", len(sent))) == sent
    finally:
        cli("kafka", "down", *where)


def test_with_bootstrap_servers_set_nothing_is_started(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "unused"
    run = cli(
        "kafka", "up", "--data-dir", str(data_dir), env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    )
    assert run.returncode == 0, run.stderr
    assert f"Using the Kafka cluster at {kafka_bootstrap}" in run.stdout
    assert not data_dir.exists()


def test_an_unreachable_bootstrap_server_is_a_clear_error(tmp_path: Path) -> None:
    run = cli("kafka", "up", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, timeout=60)
    assert run.returncode == 1
    assert "no Kafka broker answers at 127.0.0.1:1" in run.stderr
    assert "unset the variable" in run.stderr


def test_a_taken_port_is_reported_not_fought_over(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(data_dir=tmp_path, port=port)
        with pytest.raises(BrokerError, match=f"port {port} .* is taken by another process"):
            broker.up(on_progress=lambda _line: None)


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(BrokerError) as error:
        check_java()
    assert "Java 17+" in str(error.value)
    assert "apt-get install openjdk-17-jre-headless" in str(error.value)
    assert "docker compose up" in str(error.value)


def test_missing_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError) as error:
        KafkaJars(cache_dir=tmp_path).fetch()
    assert "apt-get install maven" in str(error.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(error.value)


def test_ports_drawn_before_anything_binds_them_never_meet() -> None:
    """A stack draws all its ports (sandboxes, receiver, metrics, a broker's pair) before
    it starts a process: none may be drawn twice, nor be another's p+1."""
    drawn = [free_port_pair() for _ in range(400)]
    taken = [port for p in drawn for port in (p, p + 1)]
    assert len(set(taken)) == len(taken)


@pytest.mark.parametrize(
    ("brokers", "factor", "min_insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_replication_follows_the_cluster_size(brokers: int, factor: int, min_insync: int) -> None:
    assert Replication.for_brokers(brokers) == Replication(factor, min_insync)


async def test_on_one_broker_topics_have_one_copy_and_need_one(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...]
) -> None:
    copies = await replication_of(kafka_bootstrap, [spec.name for spec in topics])
    assert set(copies) == {spec.name for spec in topics}
    assert set(copies.values()) == {(1, "1")}


def test_a_data_dir_keeps_the_cluster_size_it_was_made_with(tmp_path: Path) -> None:
    for node in (1, 2, 3):
        (tmp_path / f"node-{node}").mkdir()
        (tmp_path / f"node-{node}" / "server.properties").write_text("")
    assert LocalCluster(tmp_path).size == 3  # down and status need no --brokers
    with pytest.raises(BrokerError, match=r"holds a 3-broker cluster, not 1.*--data-dir"):
        LocalCluster(tmp_path, brokers=1)


async def publish_in_one_transaction(bootstrap: str, facts: list[Fact]) -> None:
    publisher = Publisher(bootstrap, transactional_id="c.tx")
    await publisher.start()
    try:
        await publisher.publish_all([Outgoing("c.odoo.partner", "k", f) for f in facts])
    finally:
        await publisher.stop()


def test_kafka_up_brokers_3_replicates_three_times_and_transactions_survive_a_lost_broker(
    tmp_path: Path,
) -> None:
    port = free_port_pair(brokers=3)
    where = ["--port", str(port), "--data-dir", str(tmp_path / "kafka")]
    up = cli("kafka", "up", "--brokers", "3", *where)
    assert up.returncode == 0, up.stderr
    cluster = LocalCluster(tmp_path / "kafka", port=port)
    assert "3 brokers" in up.stdout and cluster.bootstrap in up.stdout.replace("\n", "")
    try:
        topics = cli("kafka", "topics", *where, env={"TOPIC_PREFIX": "c."})
        assert topics.returncode == 0, topics.stderr
        assert "replication factor 3, min.insync.replicas 2, on 3 brokers" in " ".join(
            topics.stdout.split()
        )
        names = Topics("c.").names(ALL_TOPICS)
        copies = asyncio.run(replication_of(cluster.bootstrap, names))
        assert copies == {name: (3, "2") for name in names}
        status = cli("kafka", "status", *where, env={"TOPIC_PREFIX": "c."})
        assert status.returncode == 0
        assert all(f"broker {n} at" in status.stdout for n in (1, 2, 3))

        asyncio.run(publish_in_one_transaction(cluster.bootstrap, [fact(1), fact(2)]))
        cluster.node(2).kill()  # kill -9: two of three copies remain, enough to write
        asyncio.run(publish_in_one_transaction(cluster.bootstrap, [fact(3), fact(4)]))
        down = cli("kafka", "status", *where)
        assert "broker 2 at" in down.stdout and "down" in down.stdout
        read = asyncio.run(read_all(cluster.bootstrap, "c.odoo.partner", 4))
        assert sorted(int(f.source_id) for f in read) == [1, 2, 3, 4]
    finally:
        stopped = cli("kafka", "down", *where)
    assert stopped.returncode == 0 and "Kafka stopped" in stopped.stdout
    assert cluster.status().running == 0
