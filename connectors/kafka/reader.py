"""Read topics from their beginning (or a time) up to a fixed end, without a group.

For everything that rebuilds state from the log (cursors, applied commands, tables,
dead letters): the end is taken when reading starts (or given), so a topic that keeps
growing still gives a finite, well-defined read. Only committed records are read: the
end of a partition is its last stable offset, and a record of an aborted or fenced
transaction (a poller killed mid-page) is never returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from connectors.kafka import clients
from connectors.kafka.admin import partitions_of

FETCH_WAIT_MS = 500
# Checks, 0.25 s apart, that a topic exists before calling it missing: a topic created
# a moment ago may not be in every broker's metadata yet.
TOPIC_CHECKS = 12


class ReadError(Exception):
    """A topic could not be read to its end; the text says what to check."""


async def read_to_end(
    bootstrap: str,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    upto: Mapping[TopicPartition, int] | None = None,
    newest: int | None = None,
    must_exist: bool = False,
    give_up_after: float | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Committed records of `topics`, in offset order per partition (see
    `records_to_end`); a read that has not reached its end after `give_up_after` seconds
    raises `ReadError`."""
    records = records_to_end(
        bootstrap, topics, since=since, upto=upto, newest=newest, must_exist=must_exist
    )
    try:
        async with asyncio.timeout(give_up_after):
            return [record async for record in records]
    except TimeoutError:
        raise ReadError(
            f"reading {', '.join(topics)} did not reach the end in {give_up_after:.0f}s: is Kafka "
            "overloaded, or a transaction left open?"
        ) from None


async def records_to_end(
    bootstrap: str,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    upto: Mapping[TopicPartition, int] | None = None,
    newest: int | None = None,
    must_exist: bool = False,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Committed records of `topics` from the beginning up to `upto` per partition
    (default: the ends when the read starts), one at a time, for reads too large to hold.

    `since` (naive: UTC) starts at the first record at or after it; `newest` keeps at
    most that many of the last records per partition. A topic that does not exist is
    read as empty, or raises `ReadError` with `must_exist`.
    """
    partitions = await _partitions(bootstrap, topics, must_exist)
    if not partitions:
        return
    consumer = clients.consumer(bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = dict(upto) if upto is not None else await consumer.end_offsets(partitions)
        starts = await _starts(consumer, partitions, ends, since, newest)
        await consumer.seek_to_beginning(*partitions)
        for tp, start in starts.items():
            if start > 0:
                consumer.seek(tp, start)
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
        await stop_quietly(consumer)


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer. aiokafka cancels a fetch that is waiting to retry (a broker just
    died) and awaits it, so `stop()` raises CancelledError in a task nobody cancelled;
    that one is swallowed, a real cancellation of this task is not."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _partitions(
    bootstrap: str, topics: Sequence[str], must_exist: bool
) -> list[TopicPartition]:
    for _check in range(TOPIC_CHECKS if must_exist else 1):
        partitions = await partitions_of(bootstrap, *topics)
        missing = set(topics) - {tp.topic for tp in partitions}
        if not must_exist or not missing:
            return partitions
        await asyncio.sleep(0.25)
    raise ReadError(
        f"topic {', '.join(sorted(missing))} does not exist: create the topics with "
        "`clientify-odoo kafka topics`"
    )


async def _starts(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    ends: Mapping[TopicPartition, int],
    since: datetime | None,
    newest: int | None,
) -> dict[TopicPartition, int]:
    """Per partition, the first offset to read (0: the beginning)."""
    starts = dict.fromkeys(partitions, 0)
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        found = await consumer.offsets_for_times(
            dict.fromkeys(partitions, int(moment.timestamp() * 1000))
        )
        for tp in partitions:
            hit = found.get(tp)
            starts[tp] = ends.get(tp, 0) if hit is None else hit.offset
    if newest is not None:
        starts = {tp: max(start, ends.get(tp, 0) - newest) for tp, start in starts.items()}
    return starts
