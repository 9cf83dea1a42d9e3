"""What Kafka says about the sync, for `clientify-odoo status` (and the live view).

Is the broker there, are the declared topics there and configured right, how far
behind each consumer group is per partition, how many skips, conflicts and dead letters
exist, which dead letters are still open (not requeued), and when the last poller
cursor moved or the last Clientify fact arrived. Read only: nothing is created, no
offset is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from connectors.kafka import clients
from connectors.kafka.admin import committed_offsets, topic_problems
from consumers.writers.dead_letters import read_open
from schemas import DeadLetter
from schemas.topics import (
    CLIENTIFY_SOURCES,
    CONFLICTS,
    CONSUMER_GROUPS,
    DEAD_LETTERS,
    ODOO_CURSORS,
    REQUEUES,
    SKIPS,
    Topics,
)

# Up to this many messages behind, the lag is counted record by record: offsets alone
# also count transaction markers (the poller and the writers publish in transactions),
# which would show an idle group as 1 behind forever. Above it, offsets are precise
# enough.
EXACT_LAG_UP_TO = 1000
# The newest record of a topic is found among its last few offsets per partition.
TAIL = 20
READ_TIMEOUT = 20.0


COUNTED = {"skips": SKIPS, "conflicts": CONFLICTS, "dead_letters": DEAD_LETTERS}


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here (it starts at the beginning)
    end: int
    lag: int


@dataclass(frozen=True)
class GroupLag:
    service: str
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(partition.lag for partition in self.partitions)


@dataclass(frozen=True)
class KafkaState:
    reachable: bool
    error: str | None = None
    missing_topics: tuple[str, ...] = ()
    topic_problems: tuple[str, ...] = ()
    groups: tuple[GroupLag, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    # Dead letters not requeued yet, oldest first: records waiting for a person.
    open_dead_letters: tuple[DeadLetter, ...] = ()
    last_cursor_move: float | None = None  # newest record on odoo.cursors
    last_clientify_fact: float | None = None  # newest record on clientify.*


@dataclass
class _Span:
    """What reading a range of one partition found."""

    records: int = 0
    newest_ms: int | None = None
    next_offset: int = 0  # the first offset not counted yet


async def inspect_kafka(bootstrap: str, prefix: str, partitions: int | None) -> KafkaState:
    """Everything the status needs from Kafka; `reachable=False` when it does not answer."""
    topics = Topics(prefix)
    specs = {spec.name: spec for spec in topics.declared(partitions)}
    async with contextlib.AsyncExitStack() as stack:
        try:
            admin = await stack.enter_async_context(
                clients.admin(bootstrap, client_id="clientify-odoo-status")
            )
            present = set(await admin.list_topics())
        except Exception as exc:  # noqa: BLE001 - whatever the cause, no usable broker
            return KafkaState(reachable=False, error=f"{type(exc).__name__}: {exc}")
        try:
            problems = await topic_problems(
                admin, [specs[name] for name in specs if name in present]
            )
            committed = {
                group.service: await committed_offsets(admin, topics.group(group.service))
                for group in CONSUMER_GROUPS
            }
            described: Any = await admin.describe_topics(sorted(present & set(specs)))
            layout = {
                topic["topic"]: sorted(p["partition"] for p in topic["partitions"])
                for topic in described
            }
            state = await _read_topics(bootstrap, topics, layout, committed)
            waiting: list[DeadLetter] = []
            if set(topics.names((DEAD_LETTERS, REQUEUES))) <= present:  # else: reported missing
                async with asyncio.timeout(READ_TIMEOUT):
                    waiting = [entry.letter for entry in await read_open(bootstrap, topics)]
        except (KafkaError, TimeoutError) as exc:
            return KafkaState(reachable=True, error=f"{type(exc).__name__}: {exc}")
    return replace(
        state,
        open_dead_letters=tuple(waiting),
        missing_topics=tuple(sorted(set(specs) - present)),
        topic_problems=tuple(problems),
    )


async def _read_topics(
    bootstrap: str,
    topics: Topics,
    layout: Mapping[str, list[int]],
    committed: Mapping[str, Mapping[TopicPartition, OffsetAndMetadata]],
) -> KafkaState:
    if not any(layout.values()):
        # No declared topic exists yet (reported as missing): nothing to read, and
        # aiokafka 0.14 raises CancelledError stopping a consumer never assigned anything.
        return KafkaState(reachable=True)
    # The offset reset an assignment triggers can land after a seek and read a range
    # again from its start: `_Reader` counts each offset once.
    consumer = clients.consumer(bootstrap)
    await consumer.start()
    try:
        every = [TopicPartition(name, p) for name, ps in layout.items() for p in ps]
        consumer.assign(every)
        begins: dict[TopicPartition, int] = await consumer.beginning_offsets(every)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(every)
        reader = _Reader(consumer, begins, ends)
        groups = await _lags(reader, topics, layout, committed)
        counted = await reader.read(
            {tp: (begins[tp], ends[tp]) for tp in every
             if tp.topic in topics.names(COUNTED.values())}
        )  # fmt: skip
        tails = await reader.read(
            {tp: (max(begins[tp], ends[tp] - TAIL), ends[tp]) for tp in every
             if tp.topic in topics.names((ODOO_CURSORS, *CLIENTIFY_SOURCES))}
        )  # fmt: skip
    finally:
        await consumer.stop()
    return KafkaState(
        reachable=True,
        groups=groups,
        counts={
            label: sum(span.records for tp, span in counted.items() if tp.topic == topics[spec])
            for label, spec in COUNTED.items()
        },
        last_cursor_move=_newest(tails, topics.names((ODOO_CURSORS,))),
        last_clientify_fact=_newest(tails, topics.names(CLIENTIFY_SOURCES)),
    )


def _newest(spans: Mapping[TopicPartition, _Span], topics: list[str]) -> float | None:
    stamps = [s.newest_ms for tp, s in spans.items() if tp.topic in topics and s.newest_ms]
    return max(stamps) / 1000 if stamps else None


async def _lags(
    reader: _Reader,
    topics: Topics,
    layout: Mapping[str, list[int]],
    committed: Mapping[str, Mapping[TopicPartition, OffsetAndMetadata]],
) -> tuple[GroupLag, ...]:
    """Per group and partition, what the group has not consumed yet."""
    lags: list[GroupLag] = []
    for group in CONSUMER_GROUPS:
        offsets = committed[group.service]
        starts: dict[TopicPartition, int | None] = {}
        for spec in group.topics:
            for partition in layout.get(topics[spec], []):
                tp = TopicPartition(topics[spec], partition)
                meta = offsets.get(tp)
                starts[tp] = meta.offset if meta and meta.offset >= 0 else None
        # A group that never committed reads from the beginning (auto_offset_reset).
        ranges = {
            tp: (reader.begins[tp] if start is None else start, reader.ends[tp])
            for tp, start in starts.items()
        }
        small = {tp: span for tp, span in ranges.items() if span[1] - span[0] <= EXACT_LAG_UP_TO}
        exact = await reader.read(small)
        partitions = tuple(
            PartitionLag(tp.topic, tp.partition, starts[tp], end,
                         exact[tp].records if tp in small else end - start)
            for tp, (start, end) in ranges.items()
        )  # fmt: skip
        lags.append(GroupLag(group.service, topics.group(group.service), partitions))
    return tuple(lags)


class _Reader:
    """Reads ranges of partitions (read_committed) and says what is in them."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        begins: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> None:
        self.consumer = consumer
        self.begins = begins
        self.ends = ends

    async def read(
        self, ranges: Mapping[TopicPartition, tuple[int, int]]
    ) -> dict[TopicPartition, _Span]:
        spans = {tp: _Span() for tp in ranges}
        todo = {tp: end for tp, (start, end) in ranges.items() if start < end}
        if not todo:
            return spans
        consumer = self.consumer
        # Only these partitions, so nothing else is fetched in the background.
        consumer.assign(list(todo))
        for tp, (start, _end) in ranges.items():
            if tp in todo:
                consumer.seek(tp, start)
        async with asyncio.timeout(READ_TIMEOUT):
            while todo:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    span, (start, end) = spans[tp], ranges[tp]
                    for record in records:
                        # Each offset once, even if a late reset re-reads the range.
                        if max(start, span.next_offset) <= record.offset < end:
                            span.records += 1
                            span.next_offset = record.offset + 1
                            span.newest_ms = max(span.newest_ms or 0, record.timestamp)
                for tp in list(todo):
                    # Transaction markers and aborted records advance the position too.
                    if await consumer.position(tp) >= todo[tp]:
                        del todo[tp]
        return spans
