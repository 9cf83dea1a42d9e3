"""The worker's producer flush, which Faust runs before every offset commit, returns
only when every queued table write is in Kafka, also when the broker stalls.

Faust's own flush gave up after 0.1 s without progress, so a commit could go through
with changelog records still queued, and a kill -9 then lost them (the chaos run).
This test stalls its own broker (SIGSTOP) while table-sized writes are queued."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from connectors.kafka.reader import read_to_end
from processors.app import WorkerConfig, create_app
from schemas.mapping import load_mapping

pytestmark = pytest.mark.broker
QUEUED = 60
# Bigger than a producer batch (16 KiB): each write waits for the one before to leave,
# so while the broker is stalled they stay queued in Faust's buffer.
WRITE = b"x" * 20_000


async def test_a_flush_waits_for_every_queued_table_write(tmp_path: Path) -> None:
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port_pair())
    await asyncio.to_thread(broker.up, on_progress=lambda _line: None)
    try:
        bootstrap = broker.bootstrap
        name = "stall.changelog"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        config = WorkerConfig(
            bootstrap, "stall.", tmp_path / "state", load_mapping(), partitions=1,
            store="memory://",
        )  # fmt: skip
        app = create_app(config)
        topic = app.topic(name, key_serializer="raw", value_serializer="raw")
        producer = app.producer
        await producer.start()
        try:
            await topic.send(key=b"warm", value=b"metadata known")
            pid = broker.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                for n in range(QUEUED):  # as a table write does: queued, not awaited
                    topic.send_soon(key=str(n).encode(), value=WRITE)
                flushing = asyncio.create_task(producer.flush())
                await asyncio.sleep(1.5)
                assert not flushing.done(), "the flush returned while Kafka was stalled"
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.wait_for(flushing, timeout=60)
            landed = await read_to_end(bootstrap, [name])
            assert len(landed) == 1 + QUEUED, "a flush returned before its writes landed"
        finally:
            await producer.stop()
    finally:
        await asyncio.to_thread(broker.down)
