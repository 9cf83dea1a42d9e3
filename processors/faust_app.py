"""The worker's Faust app class: Faust's own, with a producer buffer that a commit
really drains.

Table writes (`states[key] = ...`) are synchronous, so Faust queues their changelog
records in a buffer that a background task hands to the Kafka producer. Before it
commits the input offsets, Faust flushes that buffer, but its flush stops at the first
0.1 s in which no record went out. When the broker is slow (a restart, a full batch),
the commit then goes through with changelog records still queued; the commands the
same inputs caused are sent before every commit, so a kill -9 at that moment leaves
commands in Kafka whose table state is lost for good: the restarted worker restores
an older state and never sees those inputs again. The chaos run caught it: a company's
phone update decided against a state from before its creation. Here the flush waits
until every queued record has reached the producer, which then flushes it to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust
from faust.transport.producer import ProducerBuffer

log = logging.getLogger(__name__)

WAIT_LOGGED_AFTER = 5.0  # seconds a flush waits before saying so


class DrainingBuffer(ProducerBuffer):
    """A producer buffer whose `flush` returns only once it is empty and no record is
    on its way into the producer (taken from the queue, not yet handed over)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handing_over = 0

    async def _send_pending(self, fut: Any) -> None:
        self.handing_over += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.handing_over -= 1

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        started, told = loop.time(), False
        while self.size or self.handing_over:
            if self.state != "running":
                # Nothing will send them: the commit must fail, so that the inputs
                # are processed again after a restart rather than lost.
                raise RuntimeError(f"cannot flush {self.size} table writes: producer stopped")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)
            if not told and loop.time() - started > WAIT_LOGGED_AFTER:
                told = True
                log.warning(
                    "waiting for Kafka to take %d table writes before committing", self.size
                )


class SyncApp(faust.App):
    """faust.App whose producer buffers table writes in a `DrainingBuffer`."""

    def _new_producer(self) -> Any:
        producer = super()._new_producer()
        # Replaced before the producer starts, which starts its buffer as a dependency.
        buffer = DrainingBuffer(loop=producer.loop, beacon=producer.beacon)
        buffer.app = self
        producer.buffer = buffer
        return producer
