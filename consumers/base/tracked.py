"""The small base every consumer stands on: typed envelopes in, effects, tracked output.

A consumer is a `Handler`: it gets each decoded envelope and returns the messages its
effect produced. The base does the rest, the same way for every consumer:

- subscribes to its topics in a consumer group (the group id carries the topic prefix),
  reading only committed messages;
- at-least-once: offsets are committed only after the effect and its messages;
- *tracking*: the handler's id for an envelope (a command id) is recorded on the
  compacted `sync.applied` topic in one Kafka transaction with the messages, so a
  redelivered envelope is not handled again: its stored messages are published again
  (the record is read to its end before the first message of a newly assigned
  partition, so it also covers what another instance applied before a rebalance);
- `NotReady`: an envelope that depends on something not there yet is retried with
  backoff while other keys go on; later envelopes with the same key wait behind it
  (order per key is kept) and offsets are not committed past it. It gives up after
  `wait_budget` seconds *with nothing else to handle*: while the consumer works through
  a backlog (a backfill, a throttled API), what it waits for may be in that backlog.

A third-party consumer (reporting, auditing) is a `Handler` of a few lines.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from connectors.kafka import clients
from connectors.kafka.publisher import Outgoing, Publisher
from consumers.base.tracking import AppliedRecord, load_applied, replayed, stored
from consumers.metrics import REDELIVERIES
from schemas import AnyEnvelope, EnvelopeError, decode
from schemas.health import ServiceHealth, partition_names

log = logging.getLogger(__name__)


class NotReady(Exception):
    """The envelope cannot be handled yet; `reason` says what it waits for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Handler(Protocol):
    def tracking_id(self, envelope: AnyEnvelope) -> str:
        """The id recorded on `sync.applied` once the envelope's effect is done."""

    async def handle(self, envelope: AnyEnvelope) -> list[Outgoing]:
        """Apply the envelope; return the messages to publish (raise `NotReady` to wait)."""

    async def give_up(self, envelope: AnyEnvelope, reason: str, tries: int) -> list[Outgoing]:
        """The messages to publish when a `NotReady` envelope waited its whole budget."""


@runtime_checkable
class Reassignable(Protocol):
    """A handler (or a writer's target) that keeps a view of the target system (the
    Clientify writer's index): told when partitions come to this copy, as another copy
    may have written until then."""

    def reassigned(self) -> None: ...


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap: str
    topics: Sequence[str]
    group_id: str
    applied_topic: str
    # Names this running copy: unique per copy, stable across its restarts (the host
    # name by default), so a restart fences the crashed copy's producer and aborts its
    # open transaction at once instead of leaving readers blocked until it times out.
    instance: str = field(default_factory=socket.gethostname)
    wait_budget: float = 60.0  # idle seconds a NotReady envelope may wait (module doc)
    first_wait: float = 0.5
    max_wait: float = 8.0
    poll_ms: int = 500
    turn: int = 10  # messages of one partition handled before the next partition's


@dataclass
class _Parked:
    message: Any  # aiokafka ConsumerRecord
    envelope: AnyEnvelope
    since: float  # on the idle clock (`TrackingConsumer.idle`)
    retry_at: float
    wait: float
    tries: int
    reason: str


class TrackingConsumer:
    def __init__(
        self, config: ConsumerConfig, handler: Handler, health: ServiceHealth | None = None
    ) -> None:
        self.config = config
        self.handler = handler
        # Each turn of the consume loop is progress; its partitions are the details.
        self.health = health or ServiceHealth(config.group_id)
        self.applied = AppliedRecord()
        self.handled = 0
        self.replays = 0
        # Seconds spent waiting for messages with none coming: the clock of wait budgets.
        self.idle = 0.0
        # Waiting envelopes per (partition, key), oldest first.
        self._waiting: dict[tuple[TopicPartition, bytes | None], deque[_Parked]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # Partitions whose applied records are loaded: aiokafka may hand out records of a
        # new assignment before its listener has run, so the check is made per record.
        self._loaded_for: set[TopicPartition] = set()
        self._revocations = 0  # rebalances that took partitions away, so far
        self._publisher = Publisher(
            config.bootstrap,
            client_id=config.group_id,
            transactional_id=f"{config.group_id}.{config.instance}",
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; exceptions from the handler stop the consumer."""
        consumer = clients.consumer(
            self.config.bootstrap, group_id=self.config.group_id, client_id=self.config.group_id
        )
        self._consumer = consumer
        await self._publisher.start()
        try:
            await consumer.start()
            try:
                consumer.subscribe(list(self.config.topics), listener=_Listener(self))
                while not stop.is_set():
                    await self._handle_turn(await self._next_turn(consumer))
                    await self._retry_due()
                    await self._commit()
                    self.health.succeeded(partitions=partition_names(consumer.assignment()))
            finally:
                await consumer.stop()
        finally:
            await self._publisher.stop()

    # -- messages

    async def _next_turn(self, consumer: AIOKafkaConsumer) -> list[Any]:
        """Up to `turn` messages of each assigned partition, partition after partition.

        Kafka fetches up to 1 MiB per partition, and a slow consumer (a writer paced by
        its API) that handled a whole fetch of one partition before the next would be
        minutes apart between partitions whose messages were produced together. A
        command waiting for a record another partition's command creates (a company's
        contact for its company, an order for its contact) would then outlive its wait
        budget and be dead-lettered. Taken in small turns, the partitions stay within a
        few turns of each other."""
        turns: list[Any] = []
        for tp in sorted(consumer.assignment()):
            fetched = await consumer.getmany(tp, max_records=self.config.turn)
            turns += fetched.get(tp, [])
        if turns:
            return turns
        # Nothing buffered: wait for the next fetch, whichever partition it brings.
        started = time.monotonic()
        fetched = await consumer.getmany(
            timeout_ms=self.config.poll_ms, max_records=self.config.turn
        )
        turns = [message for messages in fetched.values() for message in messages]
        if not turns:
            self.idle += time.monotonic() - started
        return turns

    async def _handle_turn(self, messages: list[Any]) -> None:
        """The turn's messages in order, until a rebalance comes in the middle of it.

        After a rebalance every partition is fetched again from its committed offset,
        so the rest of the turn comes again, in order. Handling it here instead, past a
        message skipped because its partition was away for a moment, would apply a later
        command of a record before an earlier one, which, redelivered, then undoes it."""
        revocations = self._revocations
        for message in messages:
            if self._revocations != revocations:
                return
            await self._receive(message)

    async def _receive(self, message: Any) -> None:
        tp = TopicPartition(message.topic, message.partition)
        assert self._consumer is not None
        if tp not in self._consumer.assignment():
            # Fetched before a rebalance gave the partition to another copy, which goes
            # on from the offset committed on revoke (at or before this message).
            return
        if tp not in self._loaded_for:
            await self._load_applied()
            if isinstance(self.handler, Reassignable):
                self.handler.reassigned()
        try:
            envelope = decode(message.value)
        except EnvelopeError as exc:
            log.error("%s offset %d is not an envelope, ignored: %s", tp, message.offset, exc)
            self._next[tp] = message.offset + 1
            return
        queue = self._waiting.get((tp, message.key))
        now = time.monotonic()
        parked = _Parked(message, envelope, self.idle, now, self.config.first_wait, 0, "")
        if not queue:
            await self._attempt(tp, message.key, parked)
        else:
            parked.reason = "an earlier message with the same key"
            queue.append(parked)
        # Only once it is done or parked: a rebalance commits while the write is under
        # way (its listener runs while this awaits the API), and must not pass it.
        self._next[tp] = message.offset + 1

    async def _attempt(self, tp: TopicPartition, key: bytes | None, parked: _Parked) -> bool:
        """Handle one envelope; True when done, False when it must wait (it is queued)."""
        envelope = parked.envelope
        ident = self.handler.tracking_id(envelope)
        previous = self.applied.get(ident)
        if previous is not None:
            self.replays += 1
            REDELIVERIES.labels(self.health.service).inc()
            log.info("%s was applied before: its outcome is published again", ident)
            await self._publisher.publish_all(replayed(previous))
            return True
        parked.tries += 1
        try:
            outgoing = await self.handler.handle(envelope)
        except NotReady as exc:
            now = time.monotonic()
            if self.idle - parked.since < self.config.wait_budget:
                parked.reason = exc.reason
                parked.retry_at = now + parked.wait
                parked.wait = min(parked.wait * 2, self.config.max_wait)
                queue = self._waiting.setdefault((tp, key), deque())
                if not queue or queue[0] is not parked:
                    queue.appendleft(parked)
                log.info("%s waits (%s); retry in %.1fs", ident, exc.reason, parked.retry_at - now)
                return False
            outgoing = await self.handler.give_up(envelope, exc.reason, parked.tries)
        record = stored(outgoing)
        await self._publisher.publish_all(
            [*outgoing, Outgoing(self.config.applied_topic, ident, record)]
        )
        self.applied.add(ident, record)
        self.handled += 1
        return True

    async def _retry_due(self) -> None:
        self._forget_unassigned()
        now = time.monotonic()
        for (tp, key), queue in list(self._waiting.items()):
            while queue and queue[0].retry_at <= now:
                if not await self._attempt(tp, key, queue[0]):
                    break
                queue.popleft()
                if queue:  # the next one was only waiting for this one: its turn now
                    queue[0].retry_at, queue[0].since = now, self.idle
            if not queue:
                self._waiting.pop((tp, key), None)

    # -- offsets

    def _safe_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset before which everything is done."""
        safe = dict(self._next)
        for (tp, _key), queue in self._waiting.items():
            if queue and tp in safe:
                safe[tp] = min(safe[tp], min(p.message.offset for p in queue))
        return safe

    def _forget_unassigned(self) -> None:
        """Drop the offsets and waiting messages of partitions this copy no longer has.

        Messages fetched before a rebalance are still handled after `on_revoked` has
        forgotten their partitions (a turn holds several partitions' messages, and a
        paced writer takes seconds over it): they set an offset again, or park again.
        Committing that offset once the partition belongs to another copy raises
        IllegalStateError and would stop the writer (a second copy joining under
        load)."""
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        for tp in [tp for tp in self._next if tp not in assigned]:
            del self._next[tp]
            self._committed.pop(tp, None)
        for waiting in [k for k in self._waiting if k[0] not in assigned]:
            del self._waiting[waiting]  # not committed: the new owner handles them

    async def _commit(self) -> None:
        assert self._consumer is not None
        self._forget_unassigned()
        due = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._safe_offsets().items()
            if self._committed.get(tp) != offset
        }
        if due:
            try:
                await self._consumer.commit(due)
            except CommitFailedError as exc:
                # The group is rebalancing: these offsets are committed on revoke, or
                # the next turn tries again; what was handled is on sync.applied.
                log.warning("offsets not committed, the group is rebalancing: %s", exc)
                return
            self._committed.update({tp: meta.offset for tp, meta in due.items()})

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        self._revocations += 1
        try:
            await self._commit()
        except Exception as exc:  # noqa: BLE001 - the group moved on; redelivery is safe
            log.warning("could not commit before the rebalance: %s", exc)
        self._loaded_for -= partitions
        for tp in partitions:
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
        for waiting in [k for k in self._waiting if k[0] in partitions]:
            del self._waiting[waiting]  # their offsets were not committed: redelivered

    async def _load_applied(self) -> None:
        assert self._consumer is not None
        self._loaded_for = set(self._consumer.assignment())
        self.applied = await load_applied(self.config.bootstrap, self.config.applied_topic)
        log.info(
            "handling %s; %d applied commands on record (%d KiB in memory)",
            ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in self._loaded_for)),
            len(self.applied), self.applied.nbytes // 1024,
        )  # fmt: skip


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TrackingConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do here: the applied record is loaded when a record needs it."""
