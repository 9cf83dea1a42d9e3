"""Keyset cursors on (write_date second, id), kept in the compacted `odoo.cursors` topic.

Odoo's `write_date` is the transaction start with microseconds, shown truncated to the
second, and many rows can share it (odoo-api.md section 4). A cursor `(second, last_id)`
means: every row written before `second` is done, and in `second` every row with
`id <= last_id`. Cursors are written in the same Kafka transaction as the facts they
cover, and read back with `read_committed`, so a crash never moves one past an
unpublished fact.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

WIRE = "%Y-%m-%d %H:%M:%S"
EPOCH = datetime(1970, 1, 1)
ONE_SECOND = timedelta(seconds=1)
READ_TIMEOUT = 120.0
# Checks, 0.25 s apart, that a topic exists before calling it missing.
TOPIC_CHECKS = 12


class CursorError(Exception):
    """The cursor topic cannot be read; the text says what to check."""


def parse_wire(value: str) -> datetime:
    return datetime.strptime(value, WIRE)


@dataclass(frozen=True)
class Cursor:
    second: datetime = EPOCH
    last_id: int = 0

    @property
    def wire(self) -> str:
        return self.second.strftime(WIRE)

    @property
    def next_wire(self) -> str:
        return (self.second + ONE_SECOND).strftime(WIRE)

    def rest_of_second(self) -> list[Any]:
        """Rows of the cursor's second not done yet (to read in id order)."""
        return [
            ("write_date", ">=", self.wire),
            ("write_date", "<", self.next_wire),
            ("id", ">", self.last_id),
        ]

    def later(self) -> list[Any]:
        """Rows of the seconds after the cursor's."""
        return [("write_date", ">=", self.next_wire)]

    def after(self) -> list[Any]:
        """Every row the cursor has not covered: the keyset predicate as one domain."""
        return ["|", *self.later(), "&", "&", *self.rest_of_second()]

    def encode(self, model: str) -> bytes:
        return json.dumps({"model": model, "second": self.wire, "last_id": self.last_id}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Cursor:
        try:
            data = json.loads(raw)
            return cls(parse_wire(data["second"]), int(data["last_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CursorError(f"unreadable cursor record {raw[:200]!r}: {exc}") from None


def cursor_key(db: str, model: str) -> str:
    return f"{db}/{model}"


async def read_committed(
    bootstrap: str, topic: str, since: datetime | None = None, newest: int | None = None
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic`, in offset order per partition, up to its end;
    only from `since` (a naive UTC time) and at most the `newest` per partition, when
    given.

    With read_committed the end is the last stable offset: records of an aborted or
    fenced transaction (a poller killed mid-page) are never returned.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="clientify-odoo-reader",
    )
    await consumer.start()
    try:
        # A topic created a moment ago may not be in every broker's metadata yet.
        for _attempt in range(TOPIC_CHECKS):
            if topic in await consumer.topics():  # fetches fresh metadata
                break
            await asyncio.sleep(0.25)
        else:
            raise CursorError(
                f"topic {topic} does not exist: create the topics with "
                "`clientify-odoo kafka topics`"
            )
        # Subscribing (without a group) makes the consumer fetch the topic's metadata
        # and take all its partitions.
        consumer.subscribe([topic])
        deadline = time.monotonic() + READ_TIMEOUT
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise CursorError(f"no partitions of {topic} assigned in {READ_TIMEOUT:.0f}s")
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        starts = {tp: 0 for tp in partitions}
        if since is not None:
            stamp = int(since.replace(tzinfo=UTC).timestamp() * 1000)
            found = await consumer.offsets_for_times({tp: stamp for tp in partitions})
            for tp in partitions:
                hit = found.get(tp)
                starts[tp] = ends[tp] if hit is None else hit.offset
        if newest is not None:
            starts = {tp: max(start, ends[tp] - newest) for tp, start in starts.items()}
        for tp, start in starts.items():
            if start > 0:
                consumer.seek(tp, start)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                return records
            if time.monotonic() > deadline:
                raise CursorError(f"reading {topic} did not reach its end in {READ_TIMEOUT:.0f}s")
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                records.extend(messages)
    finally:
        await consumer.stop()


async def load_cursors(bootstrap: str, topic: str) -> dict[str, Cursor]:
    """The newest committed cursor per key of the compacted cursor topic."""
    cursors: dict[str, Cursor] = {}
    for record in await read_committed(bootstrap, topic):
        if record.key is not None and record.value is not None:
            cursors[record.key.decode()] = Cursor.decode(record.value)
    return cursors
