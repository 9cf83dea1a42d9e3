"""Reconciliation cursors, kept in the compacted topic `clientify.cursors` (key: entity).

A cursor says up to which `modified` time Clientify has been read, and which versions
of the records inside the overlap window were already emitted, so the next pass can
re-read that window (clocks and commits are not instantaneous) without emitting them
again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel, ConfigDict


class Cursor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    entity: str
    modified_upto: datetime
    seen: dict[str, str] = {}  # record id -> version emitted, inside the overlap window

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of `topic` (none if it does not exist), asked of the cluster: a
    fresh consumer has no metadata for topics it is not subscribed to."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described: Any = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, partition["partition"])
        for entry in described
        if entry["topic"] == topic and not entry["error_code"]
        for partition in entry["partitions"]
    ]


async def load_cursors(bootstrap: str, topic: str) -> dict[str, Cursor]:
    """The newest cursor per entity: read the topic from the start to its current end."""
    partitions = await partitions_of(bootstrap, topic)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        cursors: dict[str, Cursor] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    if message.value is not None:
                        cursor = Cursor.model_validate_json(message.value)
                        cursors[cursor.entity] = cursor
        return cursors
    finally:
        await consumer.stop()
