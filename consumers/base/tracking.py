"""The record of applied commands (the *tracking* pattern), kept in a compacted topic.

Each applied command leaves one record on `sync.applied`: key = its id, value = the
messages its effect produced (its Result, a dead letter). The record is written in the
same Kafka transaction as those messages, so either both exist or neither does. A
command delivered again (a crash between that transaction and the offset commit, a
rebalance, a replay) is then recognised and its stored messages are published again
instead of being applied twice.

A writer holds every applied record in memory (it must answer any redelivery at once),
so it keeps them compressed against a preset dictionary of what every record repeats
(the envelope's field names, topics, statuses): a company's Result shrinks to a third.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.kafka.admin import partitions_of
from connectors.kafka.publisher import Outgoing
from connectors.kafka.reader import records_to_end
from schemas import Result, ResultStatus, System, decode, encode


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


# What applied records have in common, for zlib to refer to instead of repeating it in
# each compressed value (only ever used in memory, so it may change between versions).
_SKELETON = Result(
    command_id="00000000-0000-0000-0000-000000000000", target=System.CLIENTIFY,
    entity="contact", business_key="", status=ResultStatus.APPLIED, target_id="",
    finished_at=datetime(2026, 1, 1, tzinfo=UTC),
)  # fmt: skip
_SHARED = stored([Outgoing("sync.results", "company:", _SKELETON)]) + (
    b"odoo clientify failed company contact product order dead_letters dead_letter "
    b"name display_name first_name phone mobile street city state country zip customer "
    b"price sku items quantity currency reason attempts fields expected caused_by issued_at"
)


def _pack(value: bytes) -> bytes:
    packer = zlib.compressobj(1, zdict=_SHARED)
    return packer.compress(value) + packer.flush()


def _unpack(packed: bytes) -> bytes:
    unpacker = zlib.decompressobj(zdict=_SHARED)
    return unpacker.decompress(packed) + unpacker.flush()


class AppliedRecord:
    """Every applied record: command id -> its stored value, compressed in memory."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._values)

    @property
    def nbytes(self) -> int:
        """The stored values' size in memory, compressed."""
        return sum(map(len, self._values.values()))

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._values

    def get(self, command_id: str) -> bytes | None:
        packed = self._values.get(command_id)
        return None if packed is None else _unpack(packed)

    def add(self, command_id: str, value: bytes) -> None:
        self._values[command_id] = _pack(value)


async def load_applied(bootstrap: str, topic: str) -> AppliedRecord:
    """Every applied record on `topic` up to its current end (committed ones only), read
    one at a time: the list of a large topic's messages alone would double the peak."""
    if not await partitions_of(bootstrap, topic):
        raise RuntimeError(f"topic {topic} does not exist: run `clientify-odoo kafka topics`")
    applied = AppliedRecord()
    async for message in records_to_end(bootstrap, [topic]):
        if message.key is not None and message.value is not None:
            applied.add(message.key.decode(), message.value)
    return applied
