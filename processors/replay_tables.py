"""Rebuild the worker's tables from the log: facts, routed facts, the writers' results
and the requeued dead letters.

The tables are a fold of the worker's inputs, so they can be computed again with the
same steps (`processors.routing`, `processors.decide`) over plain dicts: the order
lookups from the source facts (route step), the per-route states and links from what
the decide agent read, `sync.routed`, `sync.results` and `sync.requeues`, in the order
they were appended (routed facts past the topic's retention are routed again from their
sources). The
rebuild stops exactly where the worker stopped, at its committed offsets; the worker
then resumes from there as if nothing had happened, deciding (and emitting) what it
had not read yet.

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

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from connectors.kafka import clients
from connectors.kafka.admin import cluster_replication, committed_offsets, partitions_of
from connectors.kafka.reader import read_to_end
from processors.decide import OUTBOX, ROUTE_TABLES, DecideStep
from processors.routing import LOOKUP_TABLES, Router, RouteStep
from schemas.envelope import EnvelopeError, Fact, Routed, decode
from schemas.mapping import MappingFile
from schemas.topics import REQUEUES, RESULTS, ROUTED, SOURCES, Topics

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 20


class ReplayError(Exception):
    """The rebuild cannot run; the message says why and what to do."""


def app_id(prefix: str) -> str:
    """The Faust app id: its consumer group, and the prefix of its changelog topics."""
    return Topics(prefix).group("worker")


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


async def worker_offsets(bootstrap: str, prefix: str) -> dict[TopicPartition, int]:
    """The worker group's committed offsets; refuses while a worker is running."""
    group = app_id(prefix)
    async with clients.admin(bootstrap) as admin:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.to_object()["groups"]
        members = described["members"]
        if members:
            raise ReplayError(
                f"the worker (consumer group {group}) is running with {len(members)} "
                "member(s): stop it first (Ctrl-C, or stop the `worker` service), then replay"
            )
        offsets = await committed_offsets(admin, group)
    return {tp: meta.offset for tp, meta in offsets.items() if meta is not None}


async def rebuild(
    bootstrap: str,
    prefix: str,
    mapping: MappingFile,
    progress: Callable[[str], None] = lambda _line: None,
) -> Tables:
    """The tables as the worker had them when it stopped (see the module doc)."""
    committed = await worker_offsets(bootstrap, prefix)
    topics = Topics(prefix)
    sources = topics.names(SOURCES)
    routed_topic = topics[ROUTED]
    decided = topics.names((RESULTS, REQUEUES))
    progress("reading the source facts, the routed facts, the results and the requeues")
    # Up to the committed offsets: what the worker had not read yet, it reads on restart.
    # A partition the group never committed on was never read: nothing of it is folded.
    facts = await read_to_end(bootstrap, sources, upto=committed)
    routed = await read_to_end(bootstrap, [routed_topic], upto=committed)
    results = await read_to_end(bootstrap, decided, upto=committed)
    tables = Tables()
    t = tables.by_name
    router = Router(mapping)
    route_step = RouteStep.over(router, t)
    decide_step = DecideStep(router, t["states"])
    # The decide agent read sync.routed, sync.results and sync.requeues: folding those, in
    # the order they were appended, repeats its inputs as they came. Routed facts older than the
    # topic's retention (7 days) are routed again from the sources they came from.
    kept_since = min((r.timestamp for r in routed), default=None)
    truncated = any(r.offset > 0 for r in _firsts(routed)) or (not routed and bool(facts))
    inputs: list[tuple[int, str, Routed | bytes]] = []
    progress(f"routing {len(facts)} source facts")
    for record in sorted(facts, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset)):
        for out in _route(route_step, record):
            older = kept_since is None or record.timestamp < kept_since
            if truncated and older:
                inputs.append((record.timestamp, out.route_key, out))
    inputs += [(r.timestamp, _key(r), r.value or b"") for r in [*routed, *results]]
    progress(f"folding {len(inputs)} routed facts, results and requeues")
    for _timestamp, key, value in sorted(inputs, key=lambda i: i[0]):
        decide_step.on_message(key, value, None)
    return tables


def _route(route_step: RouteStep, record: ConsumerRecord[bytes, bytes]) -> list[Routed]:
    try:
        fact = decode(record.value or b"")
    except EnvelopeError:
        return []  # the live worker skipped it too
    if not isinstance(fact, Fact):
        return []
    return [out for out in route_step.on_fact(fact) if isinstance(out, Routed)]


def _firsts(records: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
    """The first record read of each partition."""
    first: dict[int, ConsumerRecord[bytes, bytes]] = {}
    for record in records:
        first.setdefault(record.partition, record)
    return list(first.values())


def _key(record: ConsumerRecord[bytes, bytes]) -> str:
    return (record.key or b"").decode()


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
    await ensure_changelogs(bootstrap, prefix, partitions)
    route_partition = DefaultPartitioner()
    sent = 0
    producer = clients.producer(bootstrap)
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


async def ensure_changelogs(bootstrap: str, prefix: str, partitions: int) -> None:
    """Create the tables' changelog topics that are missing (compacted), as Faust would.

    The worker creates them before Faust starts too: on fresh topics Faust's consumer
    could subscribe before the broker's metadata listed the changelogs it had just
    created ("not found in cluster metadata"), and the worker then stalled with every
    global table unrecovered (twice in the scale-out benchmark, on 6 partitions)."""
    names = [changelog(prefix, name) for name in Tables().by_name]
    existing = {tp.topic for tp in await partitions_of(bootstrap, *names)}
    missing = [name for name in names if name not in existing]
    if not missing:
        return
    replication = await cluster_replication(bootstrap)
    async with clients.admin(bootstrap) as admin:
        for name in missing:
            configs = {"cleanup.policy": "compact", **replication.configs()}
            topic = NewTopic(name, partitions, replication.factor, topic_configs=configs)
            # A changelog deleted a moment ago may still be on its way out.
            for _attempt in range(CREATE_ATTEMPTS):
                try:
                    await admin.create_topics([topic])
                    break
                except TopicAlreadyExistsError:
                    await asyncio.sleep(0.5)
            else:
                raise ReplayError(f"cannot create {name}: it is still being deleted; retry")


def wipe_local_state(data_dir: Path, prefix: str) -> Path | None:
    """Remove the worker's RocksDB state so it recovers from the changelogs on start."""
    local = data_dir / f"{app_id(prefix)}-data"
    if not local.is_dir():
        return None
    shutil.rmtree(local)
    return local
