"""Keyset cursors on (write_date second, id), kept in the compacted `odoo.cursors` topic.

Odoo's `write_date` is the transaction start with microseconds, shown truncated to the
second, and many rows can share it (odoo-api.md section 4). A cursor `(second, last_id)`
means: every row written before `second` is done, and in `second` every row with
`id <= last_id`. Cursors are written in the same Kafka transaction as the facts they
cover, and read back with `read_committed`, so a crash never moves one past an
unpublished fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.kafka.reader import read_to_end

WIRE = "%Y-%m-%d %H:%M:%S"
EPOCH = datetime(1970, 1, 1)
ONE_SECOND = timedelta(seconds=1)
READ_TIMEOUT = 120.0  # reading the cursors or the re-scan window back, at the most


class CursorError(Exception):
    """A cursor record cannot be read; the text says what to check."""


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


async def load_cursors(bootstrap: str, topic: str) -> dict[str, Cursor]:
    """The newest committed cursor per key of the compacted cursor topic."""
    cursors: dict[str, Cursor] = {}
    records = await read_to_end(bootstrap, [topic], must_exist=True, give_up_after=READ_TIMEOUT)
    for record in records:
        if record.key is not None and record.value is not None:
            cursors[record.key.decode()] = Cursor.decode(record.value)
    return cursors
