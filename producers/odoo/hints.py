"""Odoo's pushes: an automation rule's webhook says a record changed, and the poller
reads that record at once instead of at its next poll.

Odoo (17+) POSTs `{"_model", "_id", "_action", <fields>}` from inside the transaction
that made the change, before the commit, with a 1 s timeout and no retry. So a hint is
only ever a nudge, never a fact: the receiver stores it on `odoo.hints`, and the poller
reads the record from committed state. A read right after the hint may still show the
old version (the commit has not happened yet), so the read is tried again a few times,
briefly; a change that rolled back never shows, and its hint produces nothing. Whatever
a lost POST misses, the regular poll still catches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from connectors.kafka import clients
from producers.odoo.entities import STREAMS
from schemas import EnvelopeError, Hint, decode

log = logging.getLogger(__name__)

# The models the poller reads: a hint for any other is refused (a misconfigured rule).
HINTED_MODELS = frozenset(stream.model for stream in STREAMS)
# After a hint, the record is read at once and, while it shows no new version (its
# transaction not committed yet), again after these pauses: about 8 s in all, far
# longer than Odoo's own 1 s POST timeout lets a transaction go on after posting.
RETRY_PAUSES = (0.2, 0.4, 0.8, 1.6, 3.2)
# Hints that come within this long of each other are read together.
GATHER_SECONDS = 0.05
Pair = tuple[str, int]


class BadHint(ValueError):
    """The body is not an Odoo webhook hint; the text says what is wrong."""


def parse_hint(raw: bytes, received_at: datetime) -> Hint:
    """Odoo's webhook body -> a `Hint`; only `_model` and `_id` are used, and the record's
    fields in the body are ignored on purpose (they may not be committed)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadHint(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadHint(f"expected a JSON object, got {type(body).__name__}")
    model, record_id, action = body.get("_model"), body.get("_id"), body.get("_action", "")
    if not isinstance(model, str) or not model:
        raise BadHint('"_model" is missing: is this an Odoo "Send Webhook Notification" rule?')
    if model not in HINTED_MODELS:
        raise BadHint(
            f"{model} is not a model the sync reads ({', '.join(sorted(HINTED_MODELS))}); "
            "the rule posting it should not point at this URL"
        )
    if not isinstance(record_id, int) or isinstance(record_id, bool) or record_id <= 0:
        raise BadHint(f'"_id" must be a positive record id, got {record_id!r}')
    return Hint(model=model, record_id=record_id, action=str(action)[:200], received_at=received_at)


def hint_key(hint: Hint) -> str:
    return f"{hint.model}:{hint.record_id}"


@dataclass
class _Waiting:
    pair: Pair
    attempt: int
    due: float


class HintFollower:
    """Reads `odoo.hints` as they come (from the end: hints older than this poller are
    covered by its first poll) and has `read` fetch the hinted records; the pairs that
    showed no new version are read again after `RETRY_PAUSES`, then left to the poll."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        read: Callable[[set[Pair]], Awaitable[set[Pair]]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._read = read
        self._clock = clock
        self._waiting: list[_Waiting] = []
        self.last_hint_at: float | None = None  # on `clock`
        self.hints = 0
        self.retries = 0  # reads again of a hinted record that showed nothing new yet
        self.gave_up = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = clients.consumer(self.bootstrap, self.topic, auto_offset_reset="latest")
        await consumer.start()
        try:
            while not stop.is_set():
                fresh = await self._take(consumer)
                await self._read_now(fresh)
        finally:
            await consumer.stop()

    async def _take(self, consumer: AIOKafkaConsumer) -> set[Pair]:
        """The pairs hinted since the last call (waiting at most until the next retry)."""
        now = self._clock()
        wait = min((w.due for w in self._waiting), default=now + 1.0) - now
        batch = await consumer.getmany(timeout_ms=max(1, int(min(wait, 1.0) * 1000)))
        if batch:
            with contextlib.suppress(TimeoutError):  # gather a burst into one read
                more = await asyncio.wait_for(
                    consumer.getmany(timeout_ms=int(GATHER_SECONDS * 1000)), GATHER_SECONDS * 4
                )
                for tp, records in more.items():
                    batch.setdefault(tp, []).extend(records)
        return set(self._pairs(record.value for records in batch.values() for record in records))

    def _pairs(self, values: Iterable[bytes | None]) -> Iterable[Pair]:
        for value in values:
            if value is None:
                continue
            try:
                hint = decode(value)
            except EnvelopeError as exc:
                log.error("a message on %s is no hint, ignored: %s", self.topic, exc)
                continue
            if isinstance(hint, Hint):
                self.hints += 1
                self.last_hint_at = self._clock()
                yield hint.model, hint.record_id

    async def _read_now(self, fresh: set[Pair]) -> None:
        now = self._clock()
        due = [w for w in self._waiting if w.due <= now and w.pair not in fresh]
        self._waiting = [w for w in self._waiting if w.due > now and w.pair not in fresh]
        attempts = {w.pair: w.attempt for w in due} | dict.fromkeys(fresh, 0)
        if not attempts:
            return
        self.retries += len(due)
        unchanged = await self._read(set(attempts))
        for pair in unchanged:
            attempt = attempts.get(pair, 0)
            if attempt < len(RETRY_PAUSES):
                self._waiting.append(_Waiting(pair, attempt + 1, now + RETRY_PAUSES[attempt]))
            else:
                self.gave_up += 1
                log.info(
                    "hinted %s %s showed no new version (a change that rolled back, or "
                    "one the poll will read)", *pair,
                )  # fmt: skip
