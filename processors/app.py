"""The Faust app: facts in, commands, skips and conflict reports out.

Two agents, each with concurrency 1 (faust-streaming issue #606 loses messages above):

- `route` reads every source topic, keeps the Odoo lookups orders need (partners and
  products by id, in global tables), and re-keys each fact by route, `flow:business
  key`, onto `sync.routed`; facts that cannot be synced go to `sync.skips`.
- `decide` reads `sync.routed` and `sync.results` (keyed alike, so co-partitioned),
  keeps per route the sync state and the link in changelog-backed tables, and emits
  commands for the writers and conflict reports.

Everything about one record is therefore handled in order, in one partition, by one
worker; tables survive restarts (RocksDB locally, changelog topics in Kafka).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faust
from pydantic import BaseModel, ValidationError

from clientify_odoo.topics import (
    CLIENTIFY_COMPANY,
    CLIENTIFY_CONTACT,
    CLIENTIFY_PRODUCT,
    COMMANDS_CLIENTIFY,
    COMMANDS_ODOO,
    CONFLICTS,
    ECHOES,
    ODOO_PARTNER,
    ODOO_PRODUCT,
    ODOO_SALE_ORDER,
    RESULTS,
    ROUTED,
    SKIPS,
)
from processors.decide import Link, Outcome, on_fact, on_result
from processors.outbox import Outbox
from processors.routing import (
    Route,
    Router,
    Unroutable,
    Waiting,
    partner_entry,
    product_entry,
)
from processors.sync_state import RecordState
from schemas.envelope import (
    Command,
    ConflictReport,
    EnvelopeError,
    Fact,
    Result,
    Skip,
    System,
    decode,
    encode,
    utc_now,
)
from schemas.mapping import MappingFile

log = logging.getLogger(__name__)

SOURCES = (
    ODOO_PARTNER,
    ODOO_PRODUCT,
    ODOO_SALE_ORDER,
    CLIENTIFY_CONTACT,
    CLIENTIFY_COMPANY,
    CLIENTIFY_PRODUCT,
)


class RoutedFact(BaseModel):
    """A fact re-keyed for one route, with what the lookups added to its payload."""

    kind: Literal["routed"] = "routed"
    flow: str
    key: str
    payload: dict[str, Any]
    fact: Fact


@dataclass
class Counters:
    facts: int = 0
    commands: int = 0
    echoes: int = 0
    skips: int = 0
    conflicts: int = 0
    stale: int = 0


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    prefix: str
    datadir: Path
    mapping: MappingFile
    partitions: int
    store: str = "rocksdb://"
    suppress_echoes: bool = True


def create_app(config: WorkerConfig) -> faust.App:
    prefix = config.prefix
    app = faust.App(
        f"{prefix}clientify-odoo-sync",
        broker=f"kafka://{config.bootstrap}",
        store=config.store,
        datadir=str(config.datadir),
        topic_partitions=config.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        web_enabled=False,
        autodiscover=False,
    )

    def topic(*names: str) -> Any:
        return app.topic(
            *(prefix + name for name in names),
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        )  # fmt: skip

    sources = topic(*(spec.name for spec in SOURCES))
    routed_and_results = topic(ROUTED.name, RESULTS.name)
    routed = topic(ROUTED.name)
    skips = topic(SKIPS.name)
    conflicts = topic(CONFLICTS.name)
    echoes = topic(ECHOES.name)
    commands = {
        System.ODOO: topic(COMMANDS_ODOO.name),
        System.CLIENTIFY: topic(COMMANDS_CLIENTIFY.name),
    }

    states = app.Table("states", partitions=config.partitions)
    links = app.Table("links", partitions=config.partitions)
    # Lookups for orders, needed by whichever worker routes an order: global tables.
    partners = app.GlobalTable("odoo_partners", use_partitioner=True)
    products = app.GlobalTable("odoo_products", use_partitioner=True)
    waiting = app.GlobalTable("waiting_orders", use_partitioner=True)
    # Partners with a confirmed order are current customers (Clientify status `client`);
    # the last fact of each partner is kept to re-route it when it becomes one.
    customers = app.GlobalTable("odoo_customers", use_partitioner=True)
    partner_facts = app.GlobalTable("odoo_partner_facts", use_partitioner=True)

    router = Router(config.mapping)
    counters = Counters()

    async def skip(fact: Fact, flow: str | None, reason: str) -> None:
        counters.skips += 1
        log.info("skipped %s %s %s: %s", fact.system.value, fact.entity, fact.source_id, reason)
        notice = Skip(
            event_id=fact.event_id, system=fact.system, entity=fact.entity,
            source_id=fact.source_id, flow=flow, reason=reason, at=utc_now(),
        )  # fmt: skip
        await skips.send(key=fact.source_id.encode(), value=encode(notice))

    async def route_fact(fact: Fact) -> None:
        for outcome in router.routes(fact, partners, products, customers):
            if isinstance(outcome, Route):
                message = RoutedFact(
                    flow=outcome.flow, key=outcome.key, payload=outcome.payload, fact=fact
                )
                await routed.send(
                    key=outcome.route_key.encode(), value=message.model_dump_json().encode()
                )
                if outcome.flow == "order":
                    await mark_customer(str(outcome.payload["customer_id"]))
            elif isinstance(outcome, Waiting):
                parked = waiting.get(outcome.on) or {}
                parked[fact.source_id] = fact.model_dump(mode="json")
                waiting[outcome.on] = parked
            elif isinstance(outcome, Unroutable):
                await skip(fact, outcome.flow, outcome.reason)

    async def mark_customer(partner_id: str) -> None:
        if partner_id in customers:
            return
        customers[partner_id] = True
        last = partner_facts.get(partner_id)
        if last is not None:
            await route_fact(Fact.model_validate(last))

    async def remember_lookups(fact: Fact) -> None:
        if fact.system is not System.ODOO:
            return
        if fact.entity == "product":
            products[fact.source_id] = product_entry(fact.payload)
        elif fact.entity == "partner":
            partners[fact.source_id] = partner_entry(fact.payload)
            partner_facts[fact.source_id] = fact.model_dump(mode="json")
        else:
            return
        parked = waiting.pop(f"{fact.entity}:{fact.source_id}", None)
        for order in (parked or {}).values():
            await route_fact(Fact.model_validate(order))

    @app.agent(sources, concurrency=1)
    async def route(stream: Any) -> AsyncIterator[None]:
        async for value in stream:
            try:
                fact = decode(value)
            except EnvelopeError as exc:
                log.error("unreadable message on a source topic, not synced: %s", exc)
                counters.skips += 1
                yield None
                continue
            if not isinstance(fact, Fact):
                log.error("a %s on a source topic, ignored: only facts belong there", fact.kind)
                yield None
                continue
            counters.facts += 1
            await remember_lookups(fact)
            await route_fact(fact)
            yield None

    @app.agent(routed_and_results, concurrency=1)
    async def decide(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            key, value, message = event.key, event.value, event.message
            key_text = key.decode()
            stored = states.get(key_text) or {}
            outbox = Outbox.from_json(stored.get("outbox"))
            again = outbox.emitted_by(message.topic, message.partition, message.offset)
            if again is not None:
                await send(key, again)
                yield None
                continue
            state = RecordState.from_json(stored)
            link = Link.from_json(links.get(key_text))
            outcome = _decide_one(value, router, state, link, config.suppress_echoes)
            if outcome is None:
                yield None
                continue
            texts = [encode(emitted).decode() for emitted in outcome.messages]
            outbox.record(message.topic, message.partition, message.offset, texts)
            states[key_text] = {**state.to_json(), "outbox": outbox.to_json()}
            links[key_text] = link.to_json()
            _count(outcome, counters)
            await send(key, texts)
            yield None

    async def send(key: bytes, texts: list[str]) -> None:
        for text in texts:
            emitted = decode(text)
            if isinstance(emitted, Command):
                destination = commands[emitted.target]
            else:
                destination = conflicts if isinstance(emitted, ConflictReport) else echoes
            await destination.send(key=key, value=text.encode())

    async def report() -> None:
        log.info(
            "facts %d, commands %d, echoes dropped %d, skips %d, conflicts %d, stale %d",
            counters.facts, counters.commands, counters.echoes, counters.skips,
            counters.conflicts, counters.stale,
        )  # fmt: skip

    app.timer(30.0)(report)
    return app


def _decide_one(
    value: bytes, router: Router, state: RecordState, link: Link, suppress_echoes: bool
) -> Outcome | None:
    try:
        raw = json.loads(value)
        if isinstance(raw, dict) and raw.get("kind") == "result":
            result = decode(raw)
            if isinstance(result, Result):
                return on_result(result, state, link)
        routed = RoutedFact.model_validate(raw)
    except (ValueError, EnvelopeError, ValidationError) as exc:
        log.error("unreadable message on the routed/results topics, ignored: %s", exc)
        return None
    mapper = router.mappers.get(routed.flow)
    if mapper is None:
        log.warning("flow %s is no longer in the mapping; fact ignored", routed.flow)
        return None
    route = Route(routed.flow, routed.key, routed.fact, routed.payload)
    return on_fact(route, mapper, state, link, suppress_echoes=suppress_echoes)


def _count(outcome: Outcome, counters: Counters) -> None:
    counters.echoes += len(outcome.echoes)
    counters.stale += int(outcome.stale)
    counters.commands += len(outcome.commands)
    counters.conflicts += len(outcome.conflicts)
    for conflict in outcome.conflicts:
        log.info(
            "conflict on %s %s field %s: %s won (%r over %r)", conflict.flow,
            conflict.business_key, conflict.field, conflict.winner.value,
            conflict.winning_value, conflict.losing_value,
        )  # fmt: skip
