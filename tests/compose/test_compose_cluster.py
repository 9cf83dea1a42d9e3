"""The compose stack on three brokers (docker-compose.cluster.yml): a three-node KRaft
cluster, each broker reachable from the host on its own port, every topic replicated
three times and refusing writes that fewer than two replicas hold, and records flowing
both ways on it."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from connectors.kafka.clients import admin
from schemas.topics import ALL_TOPICS, Topics
from tests.support.chaos import Changes, apply_changes
from tests.support.compose_stack import ComposeStack, converge, no_dead_letters, running

CHANGES = 30
FIRST_CHANGE = 2000  # past the sandboxes' seeded records
CONVERGE_WITHIN = 240.0
BROKERS = 3
MIN_INSYNC = "2"
TOPICS_WITHIN = 60  # seconds


async def brokers(bootstrap: str) -> dict[int, str]:
    """The cluster's brokers by node id, each with the address it gives the host."""
    async with admin(bootstrap) as client:
        cluster: dict[str, Any] = await client.describe_cluster()
    return {b["node_id"]: f"{b['host']}:{b['port']}" for b in cluster["brokers"]}


async def replication(bootstrap: str) -> dict[str, tuple[int, str]]:
    """Every topic's replication factor (its smallest partition's replica count) and
    min.insync.replicas."""
    async with admin(bootstrap) as client:
        names: list[str] = await client.list_topics()
        described: Any = await client.describe_topics(names)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        responses: Any = await client.describe_configs(resources)
    factors = {
        topic["topic"]: min(len(p["replicas"]) for p in topic["partitions"]) for topic in described
    }
    min_insync: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            _code, _message, _type, name, entries = resource[:5]
            configs = {entry[0]: entry[1] for entry in entries}
            min_insync[name] = configs.get("min.insync.replicas", "?")
    return {name: (factors[name], min_insync.get(name, "?")) for name in names}


async def every_topic(bootstrap: str) -> dict[str, tuple[int, str]]:
    """`replication` once every kind of topic exists: `up --wait` can return before the
    first consumer group makes Kafka create its offsets topic."""
    wanted = {"__consumer_offsets", *Topics().names(ALL_TOPICS)}
    deadline = time.monotonic() + TOPICS_WITHIN
    while True:
        found = await replication(bootstrap)
        missing = wanted - found.keys()
        if not any(name.endswith("-changelog") for name in found):
            missing.add("the worker's changelogs")
        if not missing:
            return found
        assert time.monotonic() < deadline, f"topics missing after {TOPICS_WITHIN}s: {missing}"
        await asyncio.sleep(1)


async def test_compose_cluster_has_three_brokers_replicates_every_topic_and_syncs(
    tmp_path: Path,
) -> None:
    stack = ComposeStack(tmp_path, cluster=True)
    changes = Changes(CHANGES, random.Random(23), first=FIRST_CHANGE)
    with running(stack):
        # Three nodes, each advertised to the host on its own published port.
        published = {node: f"127.0.0.1:{port}" for node, port in enumerate(stack.kafka_ports, 1)}
        assert len(published) == BROKERS
        assert await brokers(stack.bootstrap) == published

        # Every topic: the declared ones (`topics`), the changelogs of the worker's
        # tables and Faust's leader election, Kafka's consumer offsets. Each must survive
        # the loss of a broker and take no write that only one broker holds.
        found = await every_topic(stack.bootstrap)
        short = {name: rf_isr for name, rf_isr in found.items() if rf_isr != (BROKERS, MIN_INSYNC)}
        assert not short, f"topics without RF {BROKERS} / min.insync.replicas {MIN_INSYNC}: {short}"

        await apply_changes(stack, changes)
        stack.seconds["converge"] = round(await converge(stack, changes, CONVERGE_WITHIN), 1)
        await no_dead_letters(stack.bootstrap)
