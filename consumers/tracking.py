"""The record of applied commands (the *tracking* pattern), kept in a compacted topic.

Each applied command leaves one record on `sync.applied`: key = its id, value = the
messages its effect produced (its Result, a dead letter). The record is written in the
same Kafka transaction as those messages, so either both exist or neither does. A
command delivered again (a crash between that transaction and the offset commit, a
rebalance, a replay) is then recognised and its stored messages are published again
instead of being applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from clientify_odoo.topic_reader import partitions_of, read_to_end
from producers.publisher import Outgoing
from schemas import decode, encode


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
    if not await partitions_of(bootstrap, topic):
        raise RuntimeError(f"topic {topic} does not exist: run `clientify-odoo kafka topics`")
    return {
        message.key.decode(): message.value
        for message in await read_to_end(bootstrap, [topic])
        if message.key is not None and message.value is not None
    }
