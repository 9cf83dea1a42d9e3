"""Every topic the product uses and every consumer group that reads them, declared once.

Facts (what a system said) are kept by time (`delete` with a long retention) so they can
be replayed; state (cursors, links, applied commands) is compacted so the newest value per
key is kept forever. Partitions are one number for all keyed topics so Faust's tables and
their source topics stay co-partitioned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from schemas.envelope import System

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_PARTITIONS = 3
FACT_RETENTION_MS = 365 * DAY_MS


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

    def configs(self) -> dict[str, str]:
        """The topic-level configs it is created with (replication is the cluster's
        choice: `connectors.kafka.admin.Replication`)."""
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

# Odoo's pushed hints (automation-rule webhooks): which record to read now. Only the
# poller reads them, as they come; a lost one is caught by the next poll.
ODOO_HINTS = TopicSpec(
    "odoo.hints", "records Odoo said changed, for the poller to read now", Cleanup.DELETE, DAY_MS
)

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
    ODOO_HINTS,
)


# The commands for each target system.
COMMANDS = {System.ODOO: COMMANDS_ODOO, System.CLIENTIFY: COMMANDS_CLIENTIFY}


@dataclass(frozen=True)
class ConsumerGroup:
    """A service's consumer group and the topics it reads: the one declaration that the
    services (the worker's Faust app id, the writers' groups) and `status` (their lag)
    both use."""

    service: str
    suffix: str
    topics: tuple[TopicSpec, ...]


CONSUMER_GROUPS = (
    ConsumerGroup("worker", "clientify-odoo-sync", (*SOURCES, ROUTED, RESULTS, REQUEUES)),
    ConsumerGroup("clientify-writer", "clientify-odoo.writer.clientify", (COMMANDS_CLIENTIFY,)),
    ConsumerGroup("odoo-writer", "clientify-odoo.writer.odoo", (COMMANDS_ODOO,)),
)
GROUP_OF = {group.service: group for group in CONSUMER_GROUPS}


@dataclass(frozen=True)
class Topics:
    """Every topic, consumer group and transactional id by its name under one prefix:
    several syncs share a cluster with a `TOPIC_PREFIX` each, and tests isolate
    themselves so."""

    prefix: str = ""

    def __getitem__(self, spec: TopicSpec) -> str:
        return self.prefix + spec.name

    def names(self, specs: Iterable[TopicSpec]) -> list[str]:
        return [self[spec] for spec in specs]

    def declared(
        self, partitions: int | None = None, specs: Iterable[TopicSpec] = ALL_TOPICS
    ) -> tuple[TopicSpec, ...]:
        """The declarations under the prefix, optionally with another partition count
        (scale-out)."""
        return tuple(
            replace(spec, name=self[spec], partitions=partitions or spec.partitions)
            for spec in specs
        )

    def group(self, service: str) -> str:
        """The consumer group id of `service` (see `CONSUMER_GROUPS`)."""
        return self.prefix + GROUP_OF[service].suffix

    def scoped(self, name: str) -> str:
        """Any other name under the prefix: a topic given by its declared name, an id two
        syncs on one cluster must not share (a transactional id)."""
        return self.prefix + name

    def unprefixed(self, name: str) -> str:
        """The declared name of the topic called `name` under the prefix."""
        return name.removeprefix(self.prefix)
