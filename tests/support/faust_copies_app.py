"""Two stages on the worker's own Faust app (`SyncApp`), for the test that runs two
copies of it and kills them at random: `in` -> route -> `mid` -> decide (a table write)
-> `out`, every message keyed by its name so the test can tell which ones came through.

Configured from the environment, and run as a real `faust worker` process.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from processors.faust_parts import SyncApp

PREFIX = os.environ["FAUST_TEST_PREFIX"]

app = SyncApp(
    f"{PREFIX}copies",
    broker=f"kafka://{os.environ['FAUST_TEST_BROKER']}",
    store="rocksdb://",
    datadir=os.environ["FAUST_TEST_DATADIR"],
    topic_partitions=int(os.environ["FAUST_TEST_PARTITIONS"]),
    topic_replication_factor=1,
    producer_acks=-1,
    web_enabled=False,
    autodiscover=False,
)


def topic(name: str) -> Any:
    return app.topic(
        f"{PREFIX}{name}", key_type=bytes, key_serializer="raw", value_serializer="raw"
    )


inputs, middle, outputs = topic("in"), topic("mid"), topic("out")
seen = app.Table("seen", default=int)


@app.agent(inputs, name="route", concurrency=1)
async def route(stream: Any) -> AsyncIterator[None]:
    async for event in stream.events():
        await middle.send(key=event.key, value=event.value)
        yield None


@app.agent(middle, name="decide", concurrency=1)
async def decide(stream: Any) -> AsyncIterator[None]:
    async for event in stream.events():
        seen[event.key.decode()] += 1
        await outputs.send(key=event.key, value=event.value)
        yield None
