"""Every topic the product uses, declared once, and their idempotent creation.

Facts (what a system said) are kept by time (`delete` with a long retention) so they can
be replayed; state (cursors, links, applied commands) is compacted so the newest value per
key is kept forever. Partitions are one number for all keyed topics so Faust's tables and
their source topics stay co-partitioned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_PARTITIONS = 3
FACT_RETENTION_MS = 365 * DAY_MS
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    cleanup: Cleanup
    retention_ms: int = -1
    partitions: int = DEFAULT_PARTITIONS
    replication: int = 1

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": self.cleanup.value}
        if self.cleanup is Cleanup.DELETE:
            configs["retention.ms"] = str(self.retention_ms)
        return configs


def _fact(name: str, purpose: str) -> TopicSpec:
    return TopicSpec(name, purpose, Cleanup.DELETE, FACT_RETENTION_MS)


# Source topics: one per system and entity, raw records as observed.
ODOO_PARTNER = _fact("odoo.partner", "res.partner versions seen by the Odoo poller")
ODOO_PRODUCT = _fact("odoo.product", "product.product versions (template prices included)")
ODOO_SALE_ORDER = _fact("odoo.sale_order", "sale.order versions with their lines")
CLIENTIFY_CONTACT = _fact("clientify.contact", "Clientify contacts from webhooks/reconciliation")
CLIENTIFY_COMPANY = _fact("clientify.company", "Clientify companies from webhooks/reconciliation")
CLIENTIFY_PRODUCT = _fact("clientify.product", "Clientify products from webhooks/reconciliation")

# What the processors read, per system.
ODOO_SOURCES = (ODOO_PARTNER, ODOO_PRODUCT, ODOO_SALE_ORDER)
CLIENTIFY_SOURCES = (CLIENTIFY_CONTACT, CLIENTIFY_COMPANY, CLIENTIFY_PRODUCT)
SOURCES = (*ODOO_SOURCES, *CLIENTIFY_SOURCES)

# Commands for the writers, keyed by business key.
COMMANDS_CLIENTIFY = _fact("sync.commands.clientify", "upserts for the Clientify writer")
COMMANDS_ODOO = _fact("sync.commands.odoo", "upserts for the Odoo writer")

# Facts re-keyed by route (`flow:business key`) for the processors; derivable from the
# source topics, so kept for a week only.
ROUTED = TopicSpec(
    "sync.routed", "facts re-keyed by flow and business key", Cleanup.DELETE, 7 * DAY_MS
)

# Outcomes and the records the user must be able to see.
RESULTS = _fact("sync.results", "writer outcomes: applied (with target id) or failed")
DEAD_LETTERS = _fact("sync.dead_letters", "commands that could not be applied, with reason")
SKIPS = _fact("sync.skips", "records not synced (no or invalid business key), with reason")
CONFLICTS = _fact("sync.conflicts", "same field changed on both sides: winner and loser")
ECHOES = _fact("sync.echoes", "facts dropped as the sync's own writes coming back")
# Kept as long as the dead letters they describe.
REQUEUES = _fact("sync.requeues", "dead letters sent back to their writer, with the new id")

# State: newest value per key, kept forever.
ODOO_CURSORS = TopicSpec(
    "odoo.cursors", "Odoo poller cursors, written with the facts they cover", Cleanup.COMPACT
)
CLIENTIFY_CURSORS = TopicSpec(
    "clientify.cursors", "Clientify reconciliation cursors", Cleanup.COMPACT
)
APPLIED_COMMANDS = TopicSpec(
    "sync.applied", "ids of commands whose effect is done (tracking)", Cleanup.COMPACT
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    ODOO_PARTNER,
    ODOO_PRODUCT,
    ODOO_SALE_ORDER,
    CLIENTIFY_CONTACT,
    CLIENTIFY_COMPANY,
    CLIENTIFY_PRODUCT,
    COMMANDS_CLIENTIFY,
    COMMANDS_ODOO,
    ROUTED,
    RESULTS,
    DEAD_LETTERS,
    SKIPS,
    CONFLICTS,
    ECHOES,
    REQUEUES,
    ODOO_CURSORS,
    CLIENTIFY_CURSORS,
    APPLIED_COMMANDS,
)


class TopicConfigError(Exception):
    """An existing topic differs from its declaration in a way the product cannot fix."""


@dataclass(frozen=True)
class EnsureReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]


def registry(
    prefix: str = "", partitions: int | None = None, specs: Iterable[TopicSpec] = ALL_TOPICS
) -> tuple[TopicSpec, ...]:
    """The declarations with names under `prefix` (several syncs on one cluster, isolated
    tests) and, optionally, another partition count (scale-out)."""
    return tuple(
        replace(spec, name=prefix + spec.name, partitions=partitions or spec.partitions)
        for spec in specs
    )


async def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec] = ALL_TOPICS
) -> EnsureReport:
    """Create missing topics and check existing ones; safe to call at every start-up.

    Raises `TopicConfigError` listing every mismatch (wrong cleanup policy, fewer
    partitions than declared) with the command that fixes it.
    """
    wanted = {spec.name: spec for spec in specs}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="clientify-odoo")
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in present]
        created: list[str] = await _create(admin, missing) if missing else []
        # A topic can exist yet be absent from a stale metadata answer: creating it then
        # says "already exists", and it is checked like the others.
        existing = sorted(name for name in wanted if name not in created)
        problems = await _mismatches(admin, [wanted[name] for name in existing])
        if problems:
            raise TopicConfigError(
                "existing topics differ from what the product needs:\n  " + "\n  ".join(problems)
            )
        if created:
            log.info("created topics: %s", ", ".join(created))
        return EnsureReport(tuple(created), tuple(existing))
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    topics = [
        NewTopic(
            name=spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication,
            topic_configs=spec.configs(),
        )
        for spec in specs
    ]
    response = await admin.create_topics(topics)
    created: list[str] = []
    for name, code, message in response.topic_errors:
        if code == TOPIC_ALREADY_EXISTS:
            continue  # another process won the race, or stale metadata: checked below
        if code != 0:
            raise TopicConfigError(f"could not create topic {name}: error {code}: {message}")
        created.append(name)
    return created


async def _mismatches(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
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
