"""The record of applied commands (the *tracking* pattern), kept in a compacted topic.

Each applied command leaves one record on `sync.applied`: key = its id, value = the
messages its effect produced (its Result, a dead letter). The record is written in the
same Kafka transaction as those messages, so either both exist or neither does. A
command delivered again (a crash between that transaction and the offset commit, a
rebalance, a replay) is then recognised and its stored messages are published again
instead of being applied twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer

from producers.publisher import Outgoing
from schemas import decode, encode

END_WAIT_MS = 1000
ASSIGN_TIMEOUT = 30.0


def stored(records: Sequence[Outgoing]) -> bytes:
    """The value of an applied record: what to publish again on a redelivery."""
    return json.dumps(
        [{"topic": r.topic, "key": r.key, "value": _text(r.value)} for r in records]
    ).encode()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else encode(value).decode()


def replayed(value: bytes) -> list[Outgoing]:
    return [
        Outgoing(item["topic"], item["key"], decode(item["value"])) for item in json.loads(value)
    ]


async def load_applied(bootstrap: str, topic: str) -> dict[str, bytes]:
    """Every applied record on `topic` up to its current end (committed ones only)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise RuntimeError(f"topic {topic} does not exist: run `clientify-odoo kafka topics`")
        # Subscribing without a group assigns every partition (and fetches their metadata).
        consumer.subscribe([topic])
        async with asyncio.timeout(ASSIGN_TIMEOUT):
            while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no event
                await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        applied: dict[str, bytes] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=END_WAIT_MS)
            for messages in batches.values():
                for message in messages:
                    if message.key is not None and message.value is not None:
                        applied[message.key.decode()] = message.value
        return applied
    finally:
        await consumer.stop()
