"""Reconciliation cursors, kept in the compacted topic `clientify.cursors` (key: entity).

A cursor says up to which `modified` time Clientify has been read, and which versions
of the records inside the overlap window were already emitted, so the next pass can
re-read that window (clocks and commits are not instantaneous) without emitting them
again.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from connectors.kafka.reader import read_to_end


class Cursor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    entity: str
    modified_upto: datetime
    seen: dict[str, str] = {}  # record id -> version emitted, inside the overlap window

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


async def load_cursors(bootstrap: str, topic: str) -> dict[str, Cursor]:
    """The newest cursor per entity: read the topic from the start to its current end."""
    cursors: dict[str, Cursor] = {}
    for record in await read_to_end(bootstrap, [topic]):
        if record.value is not None:
            cursor = Cursor.model_validate_json(record.value)
            cursors[cursor.entity] = cursor
    return cursors
