"""The one place the product builds Kafka clients, so that every client reads and
writes the same way.

- Consumers read committed records only: the poller, the writers and the worker write
  in transactions, and a record of an aborted or fenced transaction must never count.
  They never commit on their own (each runtime commits when its effect is done), and a
  partition with no committed offset starts at its beginning: with Kafka's default,
  "latest", the reset an assignment triggers can land after a seek to the beginning
  and silently skip everything.
- Producers wait for every in-sync replica (`acks="all"`), idempotently, so an
  acknowledged record is durable and a retried send is not written twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

CLIENT_ID = "clientify-odoo"
ANY_BROKER_TRIES = 30  # 0.5 s apart: the time a cluster takes to drop a dead broker


def consumer(
    bootstrap: str,
    *topics: str,
    client_id: str = CLIENT_ID,
    group_id: str | None = None,
    auto_offset_reset: str = "earliest",
    **options: Any,
) -> AIOKafkaConsumer:
    """A consumer of committed records that commits nothing by itself (`topics`: subscribe
    at once; else assign or subscribe later)."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        isolation_level="read_committed",
        **options,
    )


def producer(
    bootstrap: str,
    *,
    client_id: str = CLIENT_ID,
    transactional_id: str | None = None,
    **options: Any,
) -> AIOKafkaProducer:
    """An idempotent producer whose sends are acknowledged by every in-sync replica;
    transactional when given a `transactional_id`."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        transactional_id=transactional_id,
        **options,
    )


class _Admin(AIOKafkaAdminClient):  # type: ignore[misc]
    """An admin client that asks another broker when the one it picked is down.

    Questions for any broker (metadata, topic configs) go to one picked at random among
    those the cluster lists; a broker killed a moment ago stays listed until the
    controllers notice (seconds), and aiokafka fails the question at once. With one
    broker of three down, a service starting then would say "cannot reach Kafka"."""

    async def _send_request(self, request: Any, node_id: int | None = None) -> Any:
        if node_id is not None:
            return await super()._send_request(request, node_id)
        for attempt in range(ANY_BROKER_TRIES):
            try:
                return await super()._send_request(request)
            except (NodeNotReadyError, KafkaConnectionError):
                if attempt == ANY_BROKER_TRIES - 1:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable: the last attempt returns or raises")


@asynccontextmanager
async def admin(
    bootstrap: str, *, client_id: str = CLIENT_ID, **options: Any
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on leaving the block."""
    client = _Admin(bootstrap_servers=bootstrap, client_id=client_id, **options)
    try:
        await client.start()
        yield client
    finally:
        await client.close()
