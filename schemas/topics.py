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


def registry(
    prefix: str = "", partitions: int | None = None, specs: Iterable[TopicSpec] = ALL_TOPICS
) -> tuple[TopicSpec, ...]:
    """The declarations with names under `prefix` (several syncs on one cluster, isolated
    tests) and, optionally, another partition count (scale-out)."""
    return tuple(
        replace(spec, name=prefix + spec.name, partitions=partitions or spec.partitions)
        for spec in specs
    )


@dataclass(frozen=True)
class ConsumerGroup:
    """A service's consumer group and the topics it reads (named as the services name
    them: processors/app.py's Faust app id, cli/write.py's writer groups)."""

    service: str
    suffix: str
    topics: tuple[TopicSpec, ...]

    def group_id(self, prefix: str) -> str:
        return prefix + self.suffix


CONSUMER_GROUPS = (
    ConsumerGroup("worker", "clientify-odoo-sync", (*SOURCES, ROUTED, RESULTS)),
    ConsumerGroup("clientify-writer", "clientify-odoo.writer.clientify", (COMMANDS_CLIENTIFY,)),
    ConsumerGroup("odoo-writer", "clientify-odoo.writer.odoo", (COMMANDS_ODOO,)),
)
