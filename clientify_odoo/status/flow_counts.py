"""Per-flow counts of what passes through the sync, read from its topics.

The topics are the truth the view reports: facts routed, commands issued, writes done,
echoes dropped, skips, conflicts and dead letters, per flow, counted from the moment
the view starts (reading a year of retained history first would make `up` slow on a
long-lived cluster). Reading topics, rather than scraping each service, also works
when the services run elsewhere (compose, other hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from connectors.kafka import clients
from schemas import (
    Command,
    ConflictReport,
    DeadLetter,
    EchoNotice,
    EnvelopeError,
    Result,
    ResultStatus,
    Routed,
    Skip,
    decode,
)
from schemas.topics import (
    COMMANDS_CLIENTIFY,
    COMMANDS_ODOO,
    CONFLICTS,
    DEAD_LETTERS,
    ECHOES,
    RESULTS,
    ROUTED,
    SKIPS,
    Topics,
)

log = logging.getLogger(__name__)

COLUMNS = ("facts", "commands", "writes", "echoes", "skips", "conflicts", "dead letters")
WATCHED = (ROUTED, COMMANDS_CLIENTIFY, COMMANDS_ODOO, RESULTS, ECHOES, SKIPS, CONFLICTS,
           DEAD_LETTERS)  # fmt: skip
NO_FLOW = "(none)"  # skips of records no flow reads


@dataclass
class FlowCounts:
    by_flow: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    )

    def add(self, flow: str | None, column: str) -> None:
        self.by_flow[flow or NO_FLOW][column] += 1

    def count(self, value: bytes) -> None:
        """Count one message of one of the `WATCHED` topics."""
        try:
            envelope = decode(value)
        except EnvelopeError:
            return
        match envelope:
            case Routed():
                self.add(envelope.flow, "facts")
            case Command():
                self.add(envelope.entity, "commands")
            case Result() if envelope.status is not ResultStatus.FAILED:
                self.add(envelope.entity, "writes")
            case EchoNotice():
                self.add(envelope.flow, "echoes")
            case Skip():
                self.add(envelope.flow, "skips")
            case ConflictReport():
                self.add(envelope.flow, "conflicts")
            case DeadLetter():
                self.add(envelope.command.entity, "dead letters")


async def follow(bootstrap: str, prefix: str, counts: FlowCounts, stop: asyncio.Event) -> None:
    """Count new messages on the watched topics until `stop`; reconnects on errors."""
    names = Topics(prefix).names(WATCHED)
    while not stop.is_set():
        consumer = clients.consumer(bootstrap, *names, auto_offset_reset="latest")
        try:
            await consumer.start()
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        counts.count(record.value or b"")
        except Exception as exc:  # noqa: BLE001 - the view shows the broker as down meanwhile
            log.debug("flow counts interrupted: %s", exc)
            await asyncio.sleep(2)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
