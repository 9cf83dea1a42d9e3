"""The Faust worker: facts in, commands, skips and conflict reports out.

Two agents, each with concurrency 1 (faust-streaming issue #606 loses messages above):

- `route` reads every source topic, keeps the Odoo lookups orders need (partners and
  products by id, in global tables), and re-keys each fact by route, `flow:business
  key`, onto `sync.routed`; facts that cannot be synced go to `sync.skips`.
- `decide` reads `sync.routed`, `sync.results` and `sync.requeues` (keyed alike, so
  co-partitioned), keeps per route the sync state, the link and the outbox in one
  changelog-backed table, and emits commands for the writers (requeued dead letters
  too), conflict reports and echo notices.

Everything about one record is therefore handled in order, in one partition, by one
worker; tables survive restarts (RocksDB locally, changelog topics in Kafka). What each
step does is in `processors.routing` and `processors.decide`, shared with `replay
tables`; this module only wires them to Faust.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from processors.decide import ROUTE_TABLES, DecideStep, Outcome
from processors.faust_parts import ENVELOPE, SyncApp, Unreadable, key_partitioned
from processors.metrics import WORKER_FACTS, WORKER_SKIPS, count_outcome
from processors.routing import LOOKUP_TABLES, Router, RouteStep, Unsynced
from schemas.envelope import (
    AnyEnvelope,
    Command,
    ConflictReport,
    Fact,
    Routed,
    Skip,
    decode,
    encode,
    utc_now,
)
from schemas.health import ServiceHealth, partition_names
from schemas.mapping import MappingFile
from schemas.topics import (
    COMMANDS,
    CONFLICTS,
    ECHOES,
    REQUEUES,
    RESULTS,
    ROUTED,
    SKIPS,
    SOURCES,
    Topics,
    TopicSpec,
)

log = logging.getLogger(__name__)
TABLE_HELP = {
    "states": "route key -> its sync state, link and outbox",
    "odoo_partners": "Odoo partner id -> its tax id, commercial entity and last fact",
    "odoo_products": "Odoo product id -> its barcode and internal reference",
    "waiting_orders": "partner:N / product:N -> the orders parked until that record comes",
    "odoo_customers": "Odoo partner ids with a confirmed order",
}


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    prefix: str
    datadir: Path
    mapping: MappingFile
    partitions: int
    # Copies of the topics Faust creates itself (its leader topic): as the declared ones.
    replication: int = 1
    store: str = "rocksdb://"
    suppress_echoes: bool = True
    health: ServiceHealth | None = None  # what /health says; a fresh one when None


@dataclass
class Tally:
    """What the worker did since it started, logged every 30 s."""

    facts: int = 0
    commands: int = 0
    echoes: int = 0
    skips: int = 0
    conflicts: int = 0
    stale: int = 0
    duplicates: int = 0

    def add(self, outcome: Outcome) -> None:
        self.commands += len(outcome.commands)
        self.echoes += len(outcome.echoes)
        self.conflicts += len(outcome.conflicts)
        self.stale += int(outcome.stale)
        self.duplicates += int(outcome.duplicate)


class SyncWorker:
    """The app, its topics and tables, and its two agents."""

    def __init__(self, config: WorkerConfig) -> None:
        topics = Topics(config.prefix)
        self.app = SyncApp(
            topics.group("worker"),
            broker=f"kafka://{config.bootstrap}",
            store=config.store,
            datadir=str(config.datadir),
            topic_partitions=config.partitions,
            topic_replication_factor=config.replication,
            producer_acks=-1,
            web_enabled=False,
            autodiscover=False,
            # Each fact costs the worker several records (routed fact, table writes,
            # commands): waiting 10 ms to fill a produce request makes several times
            # fewer of them, 20 % less CPU per fact in bench.processor, at 10 ms per hop.
            producer_linger=0.01,
        )

        def topic(*specs: TopicSpec, codec: str = "raw") -> Any:
            return self.app.topic(
                *topics.names(specs), key_type=bytes, key_serializer="raw", value_serializer=codec
            )

        # Read as envelopes; written as the bytes the steps encoded.
        sources = topic(*SOURCES, codec=ENVELOPE)
        decided = topic(ROUTED, RESULTS, REQUEUES, codec=ENVELOPE)
        self.routed = topic(ROUTED)
        self.skips = topic(SKIPS)
        self.conflicts = topic(CONFLICTS)
        self.echoes = topic(ECHOES)
        self.commands = {system: topic(spec) for system, spec in COMMANDS.items()}

        router = Router(config.mapping)
        # The lookups orders need, read by whichever worker routes an order: global.
        on_disk = config.store.startswith("rocksdb:")
        lookups = {
            name: self.app.GlobalTable(
                name,
                use_partitioner=True,
                store=key_partitioned(name) if on_disk else config.store,
                help=TABLE_HELP[name],
            )
            for name in LOOKUP_TABLES
        }
        [states_table] = ROUTE_TABLES  # partitioned like the routed facts
        states = self.app.Table(
            states_table, partitions=config.partitions, help=TABLE_HELP[states_table]
        )
        self.route_step = RouteStep.over(router, lookups)
        self.decide_step = DecideStep(router, states, config.suppress_echoes)
        self.tally = Tally()
        self.health = config.health or ServiceHealth("worker")

        self.app.agent(sources, name="route", concurrency=1)(self.route)
        self.app.agent(decided, name="decide", concurrency=1)(self.decide)
        self.app.timer(30.0)(self.report)
        self.app.timer(10.0)(self.beat)

    async def route(self, stream: Any) -> AsyncIterator[None]:
        async for fact in stream:
            if not isinstance(fact, Fact):
                self.not_a_fact(fact)
                yield None
                continue
            self.tally.facts += 1
            try:
                outs = self.route_step.on_fact(fact)
            except Exception as exc:  # a bug must not lose the record: it becomes a skip
                log.exception("routing %s %s failed", fact.entity, fact.source_id)
                outs = [Unsynced(fact, None, f"the processors failed on it: {exc!r}")]
            for out in outs:
                if isinstance(out, Routed):
                    WORKER_FACTS.labels(out.flow).inc()
                    await self.routed.send(key=out.route_key.encode(), value=encode(out))
                else:
                    await self.skip(out)
            yield None

    async def decide(self, stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            message, key = event.message, event.key.decode()
            if isinstance(event.value, Unreadable):  # no record to skip: logged only
                log.error(
                    "unreadable message on the routed/results/requeues topics, ignored: %s",
                    event.value.reason,
                )
                yield None
                continue
            place = (message.topic, message.partition, message.offset)
            try:
                outcome, texts = self.decide_step.on_message(key, event.value, place)
            except Exception as exc:  # a bug must not lose the record: it becomes a skip
                log.exception("deciding on %s at %s failed", key, place)
                if isinstance(event.value, Routed):
                    reason = f"the processors failed on it: {exc!r}"
                    await self.skip(Unsynced(event.value.fact, event.value.flow, reason))
                yield None
                continue
            if outcome is not None:
                self.count(key, outcome)
                emitted: list[AnyEnvelope] = list(outcome.messages)
            else:  # what a message delivered again emitted the first time, if anything
                emitted = [decode(text) for text in texts]
            await self.send(event.key, emitted, texts)
            yield None

    def not_a_fact(self, value: AnyEnvelope | Unreadable) -> None:
        """A message on a source topic that is no fact: unreadable ones are skips."""
        if isinstance(value, Unreadable):
            log.error("unreadable message on a source topic, not synced: %s", value.reason)
            self.tally.skips += 1
            WORKER_SKIPS.labels("").inc()
        else:
            log.error("a %s on a source topic, ignored: only facts belong there", value.kind)

    async def skip(self, unsynced: Unsynced) -> None:
        fact = unsynced.fact
        self.tally.skips += 1
        WORKER_SKIPS.labels(unsynced.flow or "").inc()
        log.info("skipped %s %s %s: %s", fact.system.value, fact.entity, fact.source_id,
                 unsynced.reason)  # fmt: skip
        notice = Skip(
            event_id=fact.event_id, system=fact.system, entity=fact.entity,
            source_id=fact.source_id, flow=unsynced.flow, reason=unsynced.reason, at=utc_now(),
        )  # fmt: skip
        await self.skips.send(key=fact.source_id.encode(), value=encode(notice))

    def count(self, key: str, outcome: Outcome) -> None:
        self.tally.add(outcome)
        flow = key.partition(":")[0]  # the route key is flow:key
        count_outcome(
            flow,
            [command.target.value for command in outcome.commands],
            echoes=len(outcome.echoes),
            conflicts=len(outcome.conflicts),
            stale=outcome.stale,
        )
        for conflict in outcome.conflicts:
            log.info(
                "conflict on %s %s field %s: %s won (%r over %r)", conflict.flow,
                conflict.business_key, conflict.field, conflict.winner.value,
                conflict.winning_value, conflict.losing_value,
            )  # fmt: skip

    async def send(self, key: bytes, emitted: list[AnyEnvelope], texts: list[str]) -> None:
        """Publish what a decision emitted, each on its topic, as the step encoded it."""
        for envelope, text in zip(emitted, texts, strict=True):
            if isinstance(envelope, Command):
                destination = self.commands[envelope.target]
            else:
                destination = (
                    self.conflicts if isinstance(envelope, ConflictReport) else self.echoes
                )
            await destination.send(key=key, value=text.encode())

    async def report(self) -> None:
        tally = self.tally
        log.info(
            "facts %d, commands %d, echoes dropped %d, skips %d, conflicts %d, stale %d, "
            "delivered again %d", tally.facts, tally.commands, tally.echoes, tally.skips,
            tally.conflicts, tally.stale, tally.duplicates,
        )  # fmt: skip

    async def beat(self) -> None:
        """The loop runs and the app is up: /health stays ok."""
        self.health.succeeded(partitions=partition_names(self.app.consumer.assignment()))


def create_app(config: WorkerConfig) -> faust.App:
    return SyncWorker(config).app
