"""Read topics from their beginning (or a time) up to a fixed end, without a group.

For everything that rebuilds state from the log: the end is taken when reading starts
(or given), so a topic that keeps growing still gives a finite, well-defined read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

FETCH_WAIT_MS = 500


async def partitions_of(bootstrap: str, *topics: str) -> list[TopicPartition]:
    """The partitions of the `topics` that exist (others are left out), asked of the
    cluster: a fresh consumer has no metadata for topics it is not subscribed to."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described: Any = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(entry["topic"], partition["partition"])
        for entry in described
        if entry["topic"] in topics and not entry["error_code"]
        for partition in sorted(entry["partitions"], key=lambda p: int(p["partition"]))
    ]


async def read_to_end(
    bootstrap: str,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    upto: Mapping[TopicPartition, int] | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Committed records of `topics` from the beginning (or the first at or after `since`)
    up to `upto` per partition (default: the ends when the read starts)."""
    return [record async for record in records_to_end(bootstrap, topics, since=since, upto=upto)]


async def records_to_end(
    bootstrap: str,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    upto: Mapping[TopicPartition, int] | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """`read_to_end` one record at a time, for reads too large to hold as a list."""
    partitions = await partitions_of(bootstrap, *topics)
    if not partitions:
        return
    # "earliest": with the default "latest", the reset an assignment triggers can land
    # after the seek to the beginning and silently skip everything.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = dict(upto) if upto is not None else await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        if since is not None:
            stamp = int(since.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, stamp))
            for tp in partitions:
                hit = found.get(tp)
                consumer.seek(tp, ends.get(tp, 0) if hit is None else hit.offset)
        while True:
            behind = [tp for tp in partitions if await consumer.position(tp) < ends.get(tp, 0)]
            if not behind:
                return
            batches = await consumer.getmany(*behind, timeout_ms=FETCH_WAIT_MS)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < ends.get(tp, 0):
                        yield message
    finally:
        await consumer.stop()
