"""What each message of a route emitted, so a redelivery emits the same again.

The decide agent changes a route's state and then sends what the change produced. A
crash (kill -9) can fall between the two: the state change is already in RocksDB and
its changelog while the messages never left, and the input offsets were not committed,
so Kafka redelivers every message since the last commit. Folding a redelivered message
into a state that already holds it produces nothing (the state is idempotent), which
would lose those messages. So per route the state keeps, for each input topic-partition,
the last offset folded in, and for the recent messages what each emitted: a message at
or below that offset is a redelivery, and its messages are sent again with the same ids
(the writers' tracking drops the copies that did arrive).

Redeliveries reach back to the last offset commit (seconds), so a few dozen messages per
route are plenty; `KEPT` bounds the state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

KEPT = 64


@dataclass
class Outbox:
    seen: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> offset
    sent: dict[str, list[str]] = field(default_factory=dict)  # "topic:partition:offset"

    def emitted_by(self, topic: str, partition: int, offset: int) -> list[str] | None:
        """The messages to send again when this input was folded in before, else None."""
        last = self.seen.get(f"{topic}:{partition}")
        if last is None or offset > last:
            return None
        messages = self.sent.get(f"{topic}:{partition}:{offset}")
        if messages is None:
            log.warning(
                "%s:%d:%d redelivered after more than %d newer messages of its route; "
                "what it emitted is no longer known and is not sent again",
                topic, partition, offset, KEPT,
            )  # fmt: skip
            return []
        return messages

    def record(self, topic: str, partition: int, offset: int, messages: list[str]) -> None:
        self.seen[f"{topic}:{partition}"] = offset
        self.sent[f"{topic}:{partition}:{offset}"] = messages
        for old in list(self.sent)[:-KEPT]:
            del self.sent[old]

    def to_json(self) -> dict[str, Any]:
        return {"seen": self.seen, "sent": self.sent}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Outbox:
        data = data or {}
        return cls(dict(data.get("seen", {})), dict(data.get("sent", {})))
