"""One active copy among several: a source that must not run twice at once (the Odoo
poller, whose transactional id fences any other copy) elects its leader through a
Kafka consumer group, as Kafka Connect hands out its tasks.

Every copy joins the same group, subscribed to a topic it already owns (its cursor
topic), and never reads it: its partitions stay paused. The copy that holds partition 0
leads; the others stand by, and take over within a session timeout when the leader
stops or dies. The sticky assignor keeps partition 0 where it is when a copy joins, so
starting a standby does not move the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from connectors.kafka.clients import consumer

log = logging.getLogger(__name__)

# A dead leader is replaced after this long without heartbeats (Kafka's default 45 s
# would leave a source silent for most of a minute).
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 3_000


class Leadership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Whether this copy leads now (`leading`), and events for gaining and losing it."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.gained = asyncio.Event()
        self.lost = asyncio.Event()
        self.error: Exception | None = None  # why this copy left the election, if it did

    @property
    def leading(self) -> bool:
        return self.gained.is_set()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Kafka's (eager) rebalance takes every partition from every member before it
        # hands them out again, at each join: what counts is the next assignment.
        pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        holds = TopicPartition(self.topic, 0) in assigned
        if holds and not self.leading:
            self.lost.clear()
            self.gained.set()
            log.info("this copy is the active one (it holds partition 0 of %s)", self.topic)
        elif self.leading and not holds:
            # The other copy may have started a moment ago: its transactional id
            # fenced this one's producer, so nothing this copy still sends can land.
            self.gained.clear()
            self.lost.set()
            log.warning("no longer the active copy (the group moved partition 0 of %s)", self.topic)


@asynccontextmanager
async def leadership(bootstrap: str, group_id: str, topic: str) -> AsyncIterator[Leadership]:
    """Join the election of `group_id` over `topic` for as long as the block runs; on
    leaving, the group hands the lead to a standby at once (no session timeout)."""
    state = Leadership(topic)
    member = consumer(
        bootstrap,
        group_id=group_id,
        client_id=f"{group_id}.member",
        partition_assignment_strategy=(StickyPartitionAssignor,),
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    member.subscribe([topic], listener=state)
    await member.start()

    async def stay_in_group() -> None:
        # Rebalances are joined inside getmany; the partitions are paused, so it
        # returns nothing and costs nothing.
        try:
            while True:
                member.pause(*member.assignment())
                await member.getmany(timeout_ms=1000)
        except Exception as exc:  # noqa: BLE001 - out of the election: never lead blind
            log.error("left the election of %s: %s", group_id, exc)
            state.error = exc
            state.gained.clear()
            state.lost.set()

    staying = asyncio.create_task(stay_in_group())
    try:
        yield state
    finally:
        staying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await staying
        await member.stop()  # leaves the group: a standby is assigned partition 0 now
