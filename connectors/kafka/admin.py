"""The cluster's side of the topic contract, and the questions asked of it.

`ensure_topics` creates the declared topics that are missing (returning once each of
their partitions is served) and checks the others (cleanup policy, partitions), safely
at every start-up; `topic_problems` is the same check without creating anything
(`status`). Topics are replicated as the cluster allows (`Replication`): one broker
holds the only copy, three or more hold three, and a write is acknowledged once two
have it, so losing any one broker loses nothing and stops nothing. The rest answers
what the product asks the cluster: which topics and partitions exist, whether it
answers at all, and what a consumer group has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.structs import OffsetAndMetadata

from connectors.kafka.clients import admin as admin_client
from connectors.kafka.clients import consumer
from schemas.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
COORDINATOR_TRIES = 20  # 0.5 s apart
SERVED_WITHIN = 30.0  # seconds for every partition of a fresh topic to get a serving leader
MAX_REPLICATION = 3  # copies of each partition on a cluster of three brokers or more


class TopicConfigError(Exception):
    """The declared topics cannot be made ready: an existing one differs from its
    declaration in a way the product cannot fix, or creating one failed."""


@dataclass(frozen=True)
class Replication:
    """How many copies of each partition, and how many must have a write before it is
    acknowledged (`acks=all` waits for `min_insync`)."""

    factor: int
    min_insync: int

    @classmethod
    def for_brokers(cls, brokers: int) -> Replication:
        """Three copies where three brokers exist (fewer on smaller clusters); a write
        needs all but one of them, never fewer than one: on three brokers one may be
        down and writes go on, on two one copy is enough to keep writing."""
        factor = max(1, min(MAX_REPLICATION, brokers))
        return cls(factor, max(1, min(MAX_REPLICATION - 1, factor - 1)))

    def configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}

    def __str__(self) -> str:
        return f"replication factor {self.factor}, min.insync.replicas {self.min_insync}"


@dataclass(frozen=True)
class EnsureReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]
    brokers: int
    replication: Replication
    # Existing topics with fewer copies than the cluster allows (created on a smaller
    # cluster): they work, but losing a broker may lose or block them. Not fixed here:
    # adding replicas moves data (kafka-reassign-partitions.sh), an operator's choice.
    under_replicated: tuple[str, ...] = ()


async def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec] = ALL_TOPICS
) -> EnsureReport:
    """Create missing topics and check existing ones; safe to call at every start-up.

    Raises `TopicConfigError` listing every mismatch (wrong cleanup policy, fewer
    partitions than declared) with the command that fixes it.
    """
    wanted = {spec.name: spec for spec in specs}
    async with admin_client(bootstrap_servers) as admin:
        brokers = await broker_count(admin)
        replication = Replication.for_brokers(brokers)
        present = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in present]
        created, raced = await _create(admin, missing, replication) if missing else ([], [])
        # A topic another copy created a moment ago ("already exists") may not be served
        # yet either: its metadata then shows no partitions, which is no mismatch.
        fresh = [wanted[name] for name in (*created, *raced)]
        await _until_served(admin, bootstrap_servers, fresh)
        existing = sorted(name for name in wanted if name not in created)
        problems = await topic_problems(admin, [wanted[name] for name in existing])
        if problems:
            raise TopicConfigError(
                "existing topics differ from what the product needs:\n  " + "\n  ".join(problems)
            )
        under = await _under_replicated(admin, existing, replication.factor)
        if created:
            log.info("created topics (%s): %s", replication, ", ".join(created))
        if under:
            log.warning(
                "%d topics have fewer than %d replicas, the most this %d-broker cluster "
                "allows: %s. They work, but losing a broker may stop or lose them; add "
                "replicas with kafka-reassign-partitions.sh",
                len(under), replication.factor, brokers, ", ".join(under),
            )  # fmt: skip
        return EnsureReport(tuple(created), tuple(existing), brokers, replication, under)


async def broker_count(admin: AIOKafkaAdminClient) -> int:
    """The brokers the cluster lists as alive right now."""
    cluster = await admin.describe_cluster()
    return len(cluster["brokers"])


async def cluster_replication(bootstrap: str) -> Replication:
    """The replication this cluster allows, for topics created outside `ensure_topics`
    (the worker's changelogs)."""
    async with admin_client(bootstrap) as admin:
        return Replication.for_brokers(await broker_count(admin))


async def _create(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: Replication
) -> tuple[list[str], list[str]]:
    """The topics this call created, and those that already existed (another process
    won the race, or the metadata listing them was stale)."""
    topics = [
        NewTopic(
            name=spec.name,
            num_partitions=spec.partitions,
            replication_factor=replication.factor,
            topic_configs={**spec.configs(), **replication.configs()},
        )
        for spec in specs
    ]
    response = await admin.create_topics(topics)
    created: list[str] = []
    raced: list[str] = []
    for name, code, message in response.topic_errors:
        if code == TOPIC_ALREADY_EXISTS:
            raced.append(name)
        elif code != 0:
            raise TopicConfigError(f"could not create topic {name}: error {code}: {message}")
        else:
            created.append(name)
    return created, raced


async def _until_served(admin: AIOKafkaAdminClient, bootstrap: str, specs: list[TopicSpec]) -> None:
    """Return once every partition of the fresh topics `specs` is served by its leader.

    A created topic exists at once, but the broker learns of it, and each partition's
    leader takes it up, a moment later. A client that asks meanwhile retries, yet
    aiokafka logs "not found in cluster metadata" and NotLeaderForPartition at ERROR,
    which read as failures. So: wait until the metadata shows a leader for every
    partition (asked through the admin client, which logs nothing), then ask each
    leader for its end offsets (retried at DEBUG until it answers).
    """
    if not specs:
        return
    deadline = time.monotonic() + SERVED_WITHIN
    while not await _led(admin, specs):
        if time.monotonic() > deadline:
            raise _not_served(specs)
        await asyncio.sleep(0.1)
    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
    probe = consumer(bootstrap, request_timeout_ms=left_ms)
    await probe.start()
    try:
        # A request per topic, all at once: the consumer learns of each topic on a
        # retry 100 ms later, so one request for all would take 100 ms a topic.
        ends = [
            probe.end_offsets([TopicPartition(spec.name, n) for n in range(spec.partitions)])
            for spec in specs
        ]
        await asyncio.gather(*ends)
    except KafkaTimeoutError:
        raise _not_served(specs) from None
    finally:
        await probe.stop()


async def _led(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> bool:
    """True when the metadata shows every partition of `specs` with a leader."""
    described: Any = await admin.describe_topics([spec.name for spec in specs])
    leaders = {
        entry["topic"]: [p["leader"] for p in entry["partitions"]]
        for entry in described
        if not entry["error_code"]
    }
    return all(
        len(leaders.get(spec.name, ())) == spec.partitions
        and all(leader >= 0 for leader in leaders[spec.name])
        for spec in specs
    )


def _not_served(specs: list[TopicSpec]) -> TopicConfigError:
    return TopicConfigError(
        f"created topics {', '.join(spec.name for spec in specs)}, but not every partition "
        f"had a leader serving it within {SERVED_WITHIN:.0f}s: is the broker healthy? "
        "(`clientify-odoo kafka status`, and the broker's log)"
    )


async def topic_problems(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """What differs between existing topics and their declarations, each with its fix."""
    if not specs:
        return []
    problems: list[str] = []
    partitions = await _partition_counts(admin, [spec.name for spec in specs])
    configs = await _topic_configs(admin, [spec.name for spec in specs])
    for spec in specs:
        have_policy = configs.get(spec.name, {}).get("cleanup.policy", "delete")
        if set(have_policy.split(",")) != {spec.cleanup.value}:
            problems.append(
                f"{spec.name}: cleanup.policy is {have_policy!r}, needs {spec.cleanup.value!r} "
                f"({spec.purpose}). Fix: kafka-configs.sh --bootstrap-server <servers> "
                f"--alter --entity-type topics --entity-name {spec.name} "
                f"--add-config cleanup.policy={spec.cleanup.value}"
            )
        have_partitions = partitions.get(spec.name, 0)
        if have_partitions < spec.partitions:
            problems.append(
                f"{spec.name}: has {have_partitions} partition(s), needs {spec.partitions}. "
                f"Fix: kafka-topics.sh --bootstrap-server <servers> --alter --topic "
                f"{spec.name} --partitions {spec.partitions} (keys then move partitions: "
                "do it while the stack is stopped)"
            )
    return problems


async def _under_replicated(
    admin: AIOKafkaAdminClient, names: list[str], factor: int
) -> tuple[str, ...]:
    """The topics among `names` with a partition of fewer than `factor` replicas."""
    if not names:
        return ()
    described: Any = await admin.describe_topics(names)
    return tuple(
        sorted(
            entry["topic"]
            for entry in described
            if not entry["error_code"]
            and any(len(p["replicas"]) < factor for p in entry["partitions"])
        )
    )


async def replication_of(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """Per topic: its replication factor (fewest replicas of any partition) and its
    `min.insync.replicas` ("" when the cluster does not say)."""
    async with admin_client(bootstrap) as admin:
        described: Any = await admin.describe_topics(names)
        configs = await _topic_configs(admin, names)
    return {
        entry["topic"]: (
            min(len(p["replicas"]) for p in entry["partitions"]),
            configs.get(entry["topic"], {}).get("min.insync.replicas", ""),
        )
        for entry in described
        if not entry["error_code"] and entry["partitions"]
    }


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described: Any = await admin.describe_topics(names)
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def _topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    responses: Any = await admin.describe_configs(resources)
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            _code, _message, _type, name, entries = resource[:5]
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


async def list_topics(bootstrap: str) -> list[str]:
    async with admin_client(bootstrap, request_timeout_ms=10_000) as admin:
        topics: list[str] = await admin.list_topics()
        return topics


async def answers(bootstrap: str, within: float) -> bool:
    """True when a cluster answers a metadata request at `bootstrap` `within` seconds."""
    try:
        await asyncio.wait_for(list_topics(bootstrap), timeout=within)
    except Exception:  # noqa: BLE001 - any failure means "not there (yet)"
        return False
    return True


def reachable(bootstrap: str, timeout: float = 10.0) -> bool:
    """`answers`, for code outside an event loop."""
    return asyncio.run(answers(bootstrap, within=timeout))


async def partitions_of(bootstrap: str, *topics: str) -> list[TopicPartition]:
    """The partitions of the `topics` that exist (others are left out), asked of the
    cluster: a fresh consumer has no metadata for topics it is not subscribed to."""
    async with admin_client(bootstrap) as admin:
        described: Any = await admin.describe_topics(list(topics))
    return [
        TopicPartition(entry["topic"], partition["partition"])
        for entry in described
        if entry["topic"] in topics and not entry["error_code"]
        for partition in sorted(entry["partitions"], key=lambda p: int(p["partition"]))
    ]


async def committed_offsets(
    admin: AIOKafkaAdminClient, group_id: str
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets. A fresh cluster creates its offsets topic on the
    first such question and answers "coordinator not available" meanwhile: wait."""
    for attempt in range(COORDINATOR_TRIES):
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata]
            offsets = await admin.list_consumer_group_offsets(group_id)
            return offsets
        except KafkaError as exc:
            if not exc.retriable or attempt == COORDINATOR_TRIES - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable: the last attempt returns or raises")
