"""The Faust app: facts in, commands, skips and conflict reports out.

Two agents, each with concurrency 1 (faust-streaming issue #606 loses messages above):

- `route` reads every source topic, keeps the Odoo lookups orders need (partners and
  products by id, in global tables), and re-keys each fact by route, `flow:business
  key`, onto `sync.routed`; facts that cannot be synced go to `sync.skips`.
- `decide` reads `sync.routed`, `sync.results` and `sync.requeues` (keyed alike, so
  co-partitioned), keeps per route the sync state and the link in changelog-backed
  tables, and emits commands for the writers (requeued dead letters too) and conflict
  reports.

Everything about one record is therefore handled in order, in one partition, by one
worker; tables survive restarts (RocksDB locally, changelog topics in Kafka). What each
step does lives in `processors.steps`, shared with `replay tables`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from pydantic import ValidationError

from processors.decide import Outcome
from processors.faust_app import SyncApp, key_partitioned
from processors.metrics import WORKER_FACTS, WORKER_SKIPS, count_outcome
from processors.routing import Router
from processors.steps import (
    LOOKUP_TABLES,
    ROUTE_TABLES,
    DecideStep,
    RoutedFact,
    RouteStep,
    Unsynced,
)
from schemas.envelope import (
    AnyEnvelope,
    Command,
    ConflictReport,
    EnvelopeError,
    Fact,
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


@dataclass
class Counters:
    facts: int = 0
    commands: int = 0
    echoes: int = 0
    skips: int = 0
    conflicts: int = 0
    stale: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    prefix: str
    datadir: Path
    mapping: MappingFile
    partitions: int
    store: str = "rocksdb://"
    suppress_echoes: bool = True
    health: ServiceHealth | None = None  # what /health says; a fresh one when None


def create_app(config: WorkerConfig) -> faust.App:
    names = Topics(config.prefix)
    app = SyncApp(
        names.group("worker"),
        broker=f"kafka://{config.bootstrap}",
        store=config.store,
        datadir=str(config.datadir),
        topic_partitions=config.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        web_enabled=False,
        autodiscover=False,
        # Each fact costs the worker several records (routed fact, table writes,
        # commands): waiting 10 ms to fill a produce request makes several times fewer
        # of them, 20 % less CPU per fact in bench.processor, at 10 ms per hop.
        producer_linger=0.01,
    )

    def topic(*specs: TopicSpec) -> Any:
        return app.topic(
            *names.names(specs),
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        )  # fmt: skip

    sources = topic(*SOURCES)
    decided = topic(ROUTED, RESULTS, REQUEUES)
    routed = topic(ROUTED)
    skips = topic(SKIPS)
    conflicts = topic(CONFLICTS)
    echoes = topic(ECHOES)
    commands = {system: topic(spec) for system, spec in COMMANDS.items()}

    # Per route: the sync state and the link; partitioned like the routed facts.
    states = app.Table(ROUTE_TABLES[0], partitions=config.partitions)
    router = Router(config.mapping)
    # The lookups orders need, read by whichever worker routes an order: global tables.
    on_disk = config.store.startswith("rocksdb:")
    lookups = {
        name: app.GlobalTable(
            name, use_partitioner=True, store=key_partitioned(name) if on_disk else config.store
        )
        for name in LOOKUP_TABLES
    }
    route_step = RouteStep.over(router, lookups)
    decide_step = DecideStep(router, states, config.suppress_echoes)
    counters = Counters()
    health = config.health or ServiceHealth("worker")

    async def skip(unsynced: Unsynced) -> None:
        fact = unsynced.fact
        counters.skips += 1
        WORKER_SKIPS.labels(unsynced.flow or "").inc()
        log.info("skipped %s %s %s: %s", fact.system.value, fact.entity, fact.source_id,
                 unsynced.reason)  # fmt: skip
        notice = Skip(
            event_id=fact.event_id, system=fact.system, entity=fact.entity,
            source_id=fact.source_id, flow=unsynced.flow, reason=unsynced.reason, at=utc_now(),
        )  # fmt: skip
        await skips.send(key=fact.source_id.encode(), value=encode(notice))

    @app.agent(sources, concurrency=1)
    async def route(stream: Any) -> AsyncIterator[None]:
        async for value in stream:
            try:
                fact = decode(value)
            except EnvelopeError as exc:
                log.error("unreadable message on a source topic, not synced: %s", exc)
                counters.skips += 1
                WORKER_SKIPS.labels("").inc()
                yield None
                continue
            if not isinstance(fact, Fact):
                log.error("a %s on a source topic, ignored: only facts belong there", fact.kind)
                yield None
                continue
            counters.facts += 1
            try:
                outs = route_step.on_fact(fact)
            except Exception as exc:  # a bug must not lose the record: it becomes a skip
                log.exception("routing %s %s failed", fact.entity, fact.source_id)
                outs = [Unsynced(fact, None, f"the processors failed on it: {exc!r}")]
            for out in outs:
                if isinstance(out, RoutedFact):
                    WORKER_FACTS.labels(out.flow).inc()
                    await routed.send(
                        key=out.route_key.encode(), value=out.model_dump_json().encode()
                    )
                else:
                    await skip(out)
            yield None

    @app.agent(decided, concurrency=1)
    async def decide(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            place = (message.topic, message.partition, message.offset)
            try:
                outcome, texts = decide_step.on_message(event.key.decode(), event.value, place)
            except Exception as exc:  # a bug must not lose the record: it becomes a skip
                log.exception("deciding on %s at %s failed", event.key.decode(), place)
                await unsynced(event.value, f"the processors failed on it: {exc!r}")
                yield None
                continue
            if outcome is not None:
                _count(outcome, counters)
                count_outcome(
                    event.key.decode().partition(":")[0],  # the route key is flow:key
                    [command.target.value for command in outcome.commands],
                    echoes=len(outcome.echoes),
                    conflicts=len(outcome.conflicts),
                    stale=outcome.stale,
                )
                messages: list[AnyEnvelope] = list(outcome.messages)
            else:  # what a message delivered again emitted the first time, if anything
                messages = [decode(text) for text in texts]
            await send(event.key, messages, texts)
            yield None

    async def unsynced(value: bytes, reason: str) -> None:
        """A routed fact the decide step failed on becomes a skip with the reason; a
        result it failed on is only logged (there is no record to skip)."""
        try:
            routed_fact = RoutedFact.model_validate_json(value)
        except ValidationError:
            return
        await skip(Unsynced(routed_fact.fact, routed_fact.flow, reason))

    async def send(key: bytes, messages: list[AnyEnvelope], texts: list[str]) -> None:
        for emitted, text in zip(messages, texts, strict=True):
            if isinstance(emitted, Command):
                destination = commands[emitted.target]
            else:
                destination = conflicts if isinstance(emitted, ConflictReport) else echoes
            await destination.send(key=key, value=text.encode())

    async def report() -> None:
        log.info(
            "facts %d, commands %d, echoes dropped %d, skips %d, conflicts %d, stale %d, "
            "delivered again %d", counters.facts, counters.commands, counters.echoes,
            counters.skips, counters.conflicts, counters.stale, counters.duplicates,
        )  # fmt: skip

    app.timer(30.0)(report)

    async def beat() -> None:  # the loop runs and the app is up: /health stays ok
        health.succeeded(partitions=partition_names(app.consumer.assignment()))

    app.timer(10.0)(beat)
    return app


def _count(outcome: Outcome, counters: Counters) -> None:
    counters.echoes += len(outcome.echoes)
    counters.stale += int(outcome.stale)
    counters.duplicates += int(outcome.duplicate)
    counters.commands += len(outcome.commands)
    counters.conflicts += len(outcome.conflicts)
    for conflict in outcome.conflicts:
        log.info(
            "conflict on %s %s field %s: %s won (%r over %r)", conflict.flow,
            conflict.business_key, conflict.field, conflict.winner.value,
            conflict.winning_value, conflict.losing_value,
        )  # fmt: skip
