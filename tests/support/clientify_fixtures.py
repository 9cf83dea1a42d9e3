"""Helpers for the Clientify tests: real servers on 127.0.0.1 ports, real Kafka reads."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer

from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions
from connectors.kafka.admin import partitions_of
from connectors.kafka.publisher import Publisher
from producers.receiver import ReceiverConfig, WebhookReceiver
from schemas import Fact, decode
from schemas.topics import Topics


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free 127.0.0.1 port; yields its origin, e.g. http://127.0.0.1:4711."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def sandbox_at(
    options: SandboxOptions | None = None,
) -> AsyncIterator[tuple[ClientifySandbox, str]]:
    """A running sandbox and its API base URL (`.../v1`)."""
    sandbox = ClientifySandbox(options)
    async with serving(sandbox.app()) as origin:
        yield sandbox, f"{origin}/v1"


class Capture:
    """A webhook target that records every POST it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        return web.Response(text="ok")


async def read_facts(bootstrap: str, topic: str) -> list[Fact]:
    """Every fact on `topic` right now, in partition order."""
    partitions = await partitions_of(bootstrap, topic)
    assert partitions, f"topic {topic} does not exist"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        facts: list[Fact] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    envelope = decode(message.value)
                    assert isinstance(envelope, Fact)
                    facts.append(envelope)
        return facts
    finally:
        await consumer.stop()


SECRET = "s3cret-path-0123456789abcdef"


@contextlib.asynccontextmanager
async def receiver_at(
    bootstrap: str, prefix: str, **config: Any
) -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """A running webhook receiver publishing under `prefix`; yields it and its hook URL."""
    settings = ReceiverConfig(secret=SECRET, topics=Topics(prefix), **config)
    async with Publisher(bootstrap, request_timeout_ms=5000) as publisher:
        receiver = WebhookReceiver(settings, publisher)
        async with serving(receiver.app()) as origin:
            yield receiver, f"{origin}/hooks/{SECRET}"
