"""Consumer lag: how many messages each consumer group of the sync still has to read."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


def sync_groups(prefix: str) -> dict[str, str]:
    """The sync's consumer groups by service name (as the services name them)."""
    return {
        "worker": f"{prefix}clientify-odoo-sync",
        "clientify-writer": f"{prefix}clientify-odoo.writer.clientify",
        "odoo-writer": f"{prefix}clientify-odoo.writer.odoo",
    }


async def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Messages behind per service, over every partition its group has committed on
    (a group that never committed is left out: it has not started yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed: dict[str, dict[TopicPartition, int]] = {}
        for service, group in sync_groups(prefix).items():
            offsets = await admin.list_consumer_group_offsets(group)
            committed[service] = {tp: meta.offset for tp, meta in offsets.items() if meta}
    finally:
        await admin.close()
    partitions = {tp for offsets in committed.values() for tp in offsets}
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        # aiokafka 0.14 raises CancelledError stopping a consumer that never had an
        # assignment; nothing is fetched, only offsets asked.
        consumer.assign(sorted(partitions))
        ends: dict[TopicPartition, int] = await consumer.end_offsets(sorted(partitions))
        markers = await _trailing_markers(consumer, ends, committed)
    finally:
        await consumer.stop()
    return {
        service: sum(
            max(ends.get(tp, offset) - offset, 0) - int((tp, offset) in markers)
            for tp, offset in offsets.items()
        )
        for service, offsets in committed.items()
        if offsets
    }


async def _trailing_markers(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    committed: dict[str, dict[TopicPartition, int]],
) -> set[tuple[TopicPartition, int]]:
    """Committed positions one short of the end where that last offset holds no record.

    A topic written in transactions ends with a commit marker, an offset no consumer
    ever sees, so a group that committed "after the last record it saw" (Faust does)
    stays one behind forever. Fetching from there tells a marker from a real message.
    """
    suspects = {
        (tp, offset)
        for offsets in committed.values()
        for tp, offset in offsets.items()
        if ends.get(tp) == offset + 1
    }
    if not suspects:
        return set()
    for tp, offset in suspects:
        consumer.seek(tp, offset)
    fetched = await consumer.getmany(*{tp for tp, _ in suspects}, timeout_ms=300)
    with_records = {(tp, records[0].offset) for tp, records in fetched.items() if records}
    return {suspect for suspect in suspects if suspect not in with_records}
