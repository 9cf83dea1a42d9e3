"""A tiny Faust app for the foundation test: an agent that counts per key in a table.

Configured from the environment so the test can point it at its own broker, topics and
state dir, and run it as a real `faust worker` process.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import faust

PREFIX = os.environ["FAUST_TEST_PREFIX"]

app = faust.App(
    f"{PREFIX}roundtrip",
    broker=f"kafka://{os.environ['FAUST_TEST_BROKER']}",
    store="rocksdb://",
    datadir=os.environ["FAUST_TEST_DATADIR"],
    topic_partitions=1,
    topic_replication_factor=1,
    web_enabled=False,
)
inputs = app.topic(f"{PREFIX}ft.in", key_type=bytes, value_type=bytes, value_serializer="raw")
outputs = app.topic(f"{PREFIX}ft.out", key_type=bytes, value_type=bytes, value_serializer="raw")
counts = app.Table("counts", default=int, partitions=1)


@app.agent(inputs, concurrency=1)  # >1 loses messages: faust-streaming issue #606
async def count(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    async for key, _value in stream.items():
        name = key.decode()
        counts[name] += 1
        await outputs.send(key=key, value=f"{name}={counts[name]}".encode())
        yield None
