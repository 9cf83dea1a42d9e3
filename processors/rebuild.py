"""Rebuild the worker's tables from the log: the source facts and the writers' results.

The tables are a fold of the worker's inputs, so they can be computed again with the
same steps (`processors.steps`) over plain dicts. The rebuild stops exactly where the
worker stopped: source facts up to its committed offsets, except those whose routed
copy it has not decided yet, and results up to its committed offset. The worker then
resumes from its committed offsets as if nothing had happened: what it had not decided
yet, it decides (and emits) then. Inputs are folded in the order they were appended
(Kafka timestamps), the order the live worker saw them in, give or take a few
milliseconds between topics.

Rebuilt tables are written as the Faust changelogs the worker recovers from on start
(its local RocksDB state is removed): a new value per key, a tombstone for a key that
should no longer be there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from clientify_odoo.lag import sync_groups
from clientify_odoo.topic_reader import partitions_of, read_to_end
from clientify_odoo.topics import RESULTS, ROUTED
from processors.app import SOURCES
from processors.routing import Router
from processors.steps import DecideStep, RoutedFact, RouteStep
from schemas.envelope import EnvelopeError, Fact, decode
from schemas.mapping import MappingFile

log = logging.getLogger(__name__)

ROUTE_TABLES = ("states", "links")  # partitioned like sync.routed
LOOKUP_TABLES = ("odoo_partners", "odoo_products", "waiting_orders", "odoo_customers",
                 "odoo_partner_facts")  # fmt: skip  # global tables
CREATE_ATTEMPTS = 20
OUTBOX = "outbox"  # live-worker bookkeeping in `states`: not rebuilt, not compared


class ReplayError(Exception):
    """The rebuild cannot run; the message says why and what to do."""


def app_id(prefix: str) -> str:
    return sync_groups(prefix)["worker"]


def changelog(prefix: str, table: str) -> str:
    return f"{app_id(prefix)}-{table}-changelog"


@dataclass
class Tables:
    by_name: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {name: {} for name in (*ROUTE_TABLES, *LOOKUP_TABLES)}
    )

    def comparable(self) -> dict[str, dict[str, Any]]:
        """The tables without the live worker's outbox (redelivery bookkeeping)."""
        out = {name: dict(rows) for name, rows in self.by_name.items()}
        out["states"] = {
            key: {k: v for k, v in value.items() if k != OUTBOX}
            for key, value in out["states"].items()
        }
        return out


@dataclass
class Diff:
    """Per table: keys added, changed and removed by the rebuild."""

    added: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    same: dict[str, int] = field(default_factory=dict)


def diff(current: Tables, rebuilt: Tables) -> Diff:
    out = Diff()
    now, new = current.comparable(), rebuilt.comparable()
    for name in new:
        before, after = now.get(name, {}), new[name]
        out.added[name] = len(after.keys() - before.keys())
        out.removed[name] = len(before.keys() - after.keys())
        common = after.keys() & before.keys()
        out.changed[name] = sum(1 for key in common if after[key] != before[key])
        out.same[name] = len(common) - out.changed[name]
    return out


async def committed_offsets(bootstrap: str, prefix: str) -> dict[TopicPartition, int]:
    """The worker group's committed offsets; refuses while a worker is running."""
    group = app_id(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.to_object()["groups"]
        members = described["members"]
        if members:
            raise ReplayError(
                f"the worker (consumer group {group}) is running with {len(members)} "
                "member(s): stop it first (Ctrl-C, or stop the `worker` service), then replay"
            )
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta is not None}


async def rebuild(
    bootstrap: str,
    prefix: str,
    mapping: MappingFile,
    progress: Callable[[str], None] = lambda _line: None,
) -> Tables:
    """The tables as the worker had them when it stopped (see the module doc)."""
    committed = await committed_offsets(bootstrap, prefix)
    sources = [prefix + spec.name for spec in SOURCES]
    routed_topic, results_topic = prefix + ROUTED.name, prefix + RESULTS.name
    upto = {tp: offset for tp, offset in committed.items() if tp.topic != routed_topic}
    progress("reading the source facts and the results")
    # A partition the group never committed on was never read: nothing of it is folded.
    records = await read_to_end(bootstrap, [*sources, results_topic], upto=upto)
    # Routed copies the worker has not decided yet: their facts are decided on restart.
    routed_done = {tp: o for tp, o in committed.items() if tp.topic == routed_topic}
    pending = {
        RoutedFact.model_validate_json(r.value).fact.event_id
        for r in await _after(bootstrap, routed_topic, routed_done)
    }
    tables = Tables()
    t = tables.by_name
    router = Router(mapping)
    route_step = RouteStep(router, t["odoo_partners"], t["odoo_products"], t["waiting_orders"],
                           t["odoo_customers"], t["odoo_partner_facts"])  # fmt: skip
    decide_step = DecideStep(router, t["states"], t["links"])
    records.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    progress(f"folding {len(records)} facts and results")
    for record in records:
        if record.topic == results_topic:
            decide_step.on_message(_key(record), record.value or b"", None)
            continue
        try:
            fact = decode(record.value or b"")
        except EnvelopeError:
            continue  # the live worker skipped it too
        if not isinstance(fact, Fact):
            continue
        for out in route_step.on_fact(fact):
            if isinstance(out, RoutedFact) and out.fact.event_id not in pending:
                decide_step.on_message(out.route_key, out.model_dump_json().encode(), None)
    return tables


def _key(record: ConsumerRecord[bytes, bytes]) -> str:
    return (record.key or b"").decode()


async def _after(
    bootstrap: str, topic: str, committed: dict[TopicPartition, int]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of `topic` after the committed offsets (all of it where none is)."""
    everything = await read_to_end(bootstrap, [topic])
    start = {tp.partition: offset for tp, offset in committed.items()}
    return [r for r in everything if r.offset >= start.get(r.partition, 0)]


async def current_tables(bootstrap: str, prefix: str) -> Tables:
    """The tables as their changelogs hold them now (newest value per key)."""
    tables = Tables()
    for name in tables.by_name:
        for record in await read_to_end(bootstrap, [changelog(prefix, name)]):
            key = json.loads(record.key or b"null")
            if record.value is None:
                tables.by_name[name].pop(key, None)
            else:
                tables.by_name[name][key] = json.loads(record.value)
    return tables


async def write_tables(
    bootstrap: str, prefix: str, partitions: int, current: Tables, rebuilt: Tables
) -> int:
    """Write `rebuilt` over the changelogs (creating missing ones); returns messages sent."""
    await _ensure_changelogs(bootstrap, prefix, partitions)
    route_partition = DefaultPartitioner()
    sent = 0
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for name, rows in rebuilt.by_name.items():
            topic = changelog(prefix, name)
            stale = current.by_name.get(name, {}).keys() - rows.keys()
            entries: list[tuple[str, Any]] = [(key, None) for key in stale]
            entries += list(rows.items())
            for key, value in entries:
                partition = None
                if name in ROUTE_TABLES:
                    # Where the live worker keeps it: the partition of its routed facts.
                    every = list(range(partitions))
                    partition = route_partition(key.encode(), every, every)
                body = None if value is None else json.dumps(value).encode()
                await producer.send(topic, body, key=json.dumps(key).encode(),
                                    partition=partition)  # fmt: skip
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _ensure_changelogs(bootstrap: str, prefix: str, partitions: int) -> None:
    names = [changelog(prefix, name) for name in Tables().by_name]
    existing = {tp.topic for tp in await partitions_of(bootstrap, *names)}
    missing = [name for name in names if name not in existing]
    if not missing:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name in missing:
            topic = NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "compact"})
            # A changelog deleted a moment ago may still be on its way out.
            for _attempt in range(CREATE_ATTEMPTS):
                try:
                    await admin.create_topics([topic])
                    break
                except TopicAlreadyExistsError:
                    await asyncio.sleep(0.5)
            else:
                raise ReplayError(f"cannot create {name}: it is still being deleted; retry")
    finally:
        await admin.close()


def wipe_local_state(data_dir: Path, prefix: str) -> Path | None:
    """Remove the worker's RocksDB state so it recovers from the changelogs on start."""
    local = data_dir / f"{app_id(prefix)}-data"
    if not local.is_dir():
        return None
    shutil.rmtree(local)
    return local
