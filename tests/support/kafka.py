"""Reading a topic in a test, from its start, until enough has come."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from connectors.kafka import clients
from schemas import AnyEnvelope, decode


class Reader:
    """Reads one topic from the start (committed records), remembering what it has seen."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = clients.consumer(bootstrap, topic)
        self.seen: list[AnyEnvelope] = []

    async def __aenter__(self) -> Reader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.consumer.stop()

    async def until(self, count: int, within: float = 90) -> list[AnyEnvelope]:
        """What it has seen, once that is at least `count` envelopes."""
        async with asyncio.timeout(within):
            while len(self.seen) < count:
                await self.quiet_for(0.3)
        return self.seen

    async def quiet_for(self, seconds: float) -> list[AnyEnvelope]:
        """What it has seen, after waiting up to `seconds` for more."""
        batch = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        for records in batch.values():
            self.seen += [decode(record.value) for record in records]
        return self.seen


@contextlib.asynccontextmanager
async def reading(bootstrap: str, topic: str) -> AsyncIterator[Reader]:
    async with Reader(bootstrap, topic) as reader:
        yield reader
