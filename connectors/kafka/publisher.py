"""Publishing facts to Kafka so that an acknowledged fact is durable.

`acks="all"` with idempotence: a send returns only once the broker has the record, so
a caller that answers "accepted" after `publish` never loses it. The transactional
form writes facts and the cursor that covers them atomically (read_committed readers
see both or neither), which is how the Odoo poller never skips a change after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from connectors.kafka import clients
from schemas import AnyEnvelope, encode


@dataclass(frozen=True)
class Outgoing:
    """One record to write: its topic, key and envelope (or raw bytes for cursors)."""

    topic: str
    key: str
    value: AnyEnvelope | bytes


class Publisher:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = clients.CLIENT_ID,
        transactional_id: str | None = None,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._producer = clients.producer(
            bootstrap_servers,
            client_id=client_id,
            transactional_id=transactional_id,
            linger_ms=5,
            request_timeout_ms=request_timeout_ms,
        )
        self._transactional = transactional_id is not None

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def publish(self, record: Outgoing) -> None:
        """Send one record and wait until the broker acknowledged it."""
        await self._producer.send_and_wait(
            record.topic, _value(record.value), key=record.key.encode()
        )

    async def publish_all(self, records: Sequence[Outgoing]) -> None:
        """Send records and wait for all of them; atomically when transactional."""
        if self._transactional:
            async with self._producer.transaction():
                await self._send_batch(records)
        else:
            await self._send_batch(records)

    async def _send_batch(self, records: Sequence[Outgoing]) -> None:
        futures = [
            await self._producer.send(r.topic, _value(r.value), key=r.key.encode()) for r in records
        ]
        for future in futures:
            await future


def _value(value: AnyEnvelope | bytes) -> bytes:
    return value if isinstance(value, bytes) else encode(value)
