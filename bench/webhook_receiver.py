"""Webhook receiver benchmark: throughput against aiokafka's raw produce rate, and the
latency from a save in the Clientify sandbox to its fact on Kafka.

All figures come from one run on one broker with the same acknowledgement settings
(acks=all, idempotent), so the throughput ratio says what HTTP, validation and the fact
envelope cost on top of producing:

- raw produce: `send_and_wait` of fact-sized records from `--concurrency` tasks;
- receiver: the same number of webhook POSTs from as many concurrent HTTP clients;
- latency: `--saves` contact updates through the sandbox's REST API, each timed from
  the request until the consumer of `clientify.contact` sees the fact (p50/p99).

    python bench/webhook_receiver.py --requests 3000 --concurrency 16 --saves 200

Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts a throw-away local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp.web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from clientify_odoo.stack.broker import throwaway_broker
from connectors.clientify import AdaptiveRateLimiter, ClientifyClient
from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions
from connectors.kafka.admin import ensure_topics, partitions_of
from connectors.kafka.publisher import Publisher
from producers.clientify.facts import to_fact
from producers.receiver import ReceiverConfig, WebhookReceiver
from schemas.topics import CLIENTIFY_CONTACT, Topics

SECRET = "bench-secret-" + "x" * 20
KEY = "bench-key-0123456789"


def webhook(n: int) -> dict[str, Any]:
    return {
        "hook": {"id": 1, "event": "contact.saved", "target": "http://bench/hook"},
        "data": {
            "id": n + 1, "first_name": f"Contacto {n}", "last_name": "García",
            "status": "cold-lead",
            "emails": [{"email": f"c{n}@example.es", "type": 4}], "phones": [], "addresses": [],
            "taxpayer_identification_number": f"{n:08d}Z", "tags": [], "custom_fields": [],
            "created": "2024-01-01T10:00:00.000000Z",
        },
    }  # fmt: skip


async def concurrently(count: int, workers: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run `one(0..count-1)` from `workers` tasks; returns the elapsed seconds."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await one(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started


async def raw_produce(bootstrap: str, topic: str, count: int, workers: int) -> float:
    payloads = [
        to_fact("contact", webhook(n)["data"]).model_dump_json().encode() for n in range(count)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")

        async def one(n: int) -> None:
            await producer.send_and_wait(topic, payloads[n], key=str(n).encode())

        return count / await concurrently(count, workers, one)
    finally:
        await producer.stop()


async def receiver_rate(url: str, count: int, workers: int) -> float:
    bodies = [json.dumps(webhook(n)).encode() for n in range(count)]
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(n: int) -> None:
            async with http.post(
                url, data=bodies[n], headers={"Content-Type": "application/json"}
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"receiver answered {r.status}: {await r.text()}")

        return count / await concurrently(count, workers, one)


async def save_to_fact(base: str, bootstrap: str, topic: str, saves: int) -> list[float]:
    """Seconds from each REST save to its fact being readable on `topic`."""
    # A short fetch wait, so the consumer's long poll does not add to the latency.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    waiting: dict[str, asyncio.Future[float]] = {}
    try:
        partitions = await partitions_of(bootstrap, topic)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)

        async def consume() -> None:
            async for message in consumer:
                future = waiting.get(json.loads(message.value)["payload"].get("title", ""))
                if future is not None and not future.done():
                    future.set_result(time.perf_counter())

        reader = asyncio.create_task(consume())
        latencies = []
        loop = asyncio.get_running_loop()
        # Unpaced: the figure is save -> fact, not the client's politeness towards Clientify.
        limiter = AdaptiveRateLimiter(initial_rate=1000, max_rate=1000, name="bench")
        async with ClientifyClient(base, KEY, limiter=limiter) as client:
            contact = await client.contacts.create({"first_name": "Latencia"})
            for n in range(saves):
                marker = f"save-{n}"
                waiting[marker] = loop.create_future()
                sent = time.perf_counter()
                await client.contacts.update(contact["id"], {"title": marker})
                latencies.append(await asyncio.wait_for(waiting[marker], 30) - sent)
        reader.cancel()
        return latencies
    finally:
        await consumer.stop()


def handling(receiver: WebhookReceiver) -> tuple[float, float]:
    """(seconds spent answering webhooks, webhooks answered) so far, from its histogram."""
    registry = receiver.metrics.registry
    total = registry.get_sample_value("clientify_webhook_seconds_sum") or 0.0
    count = registry.get_sample_value("clientify_webhook_seconds_count") or 0.0
    return total, count


async def bench(args: argparse.Namespace, bootstrap: str) -> Table:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    # The raw producer writes to a twin of the receiver's topic (same config, own prefix).
    for namespace in (prefix, f"{prefix}raw."):
        await ensure_topics(bootstrap, Topics(namespace).declared(args.partitions))
    topics = Topics(prefix)
    raw_topic = Topics(f"{prefix}raw.")[CLIENTIFY_CONTACT]
    raw = await raw_produce(bootstrap, raw_topic, args.requests, args.concurrency)
    config = ReceiverConfig(secret=SECRET, topics=topics)
    async with Publisher(bootstrap, client_id="bench-receiver") as publisher:
        receiver = WebhookReceiver(config, publisher)
        runner = aiohttp.web.AppRunner(receiver.app())
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        hook_url = f"http://{host}:{port}/hooks/{SECRET}"
        try:
            served = await receiver_rate(hook_url, args.requests, args.concurrency)
            sandbox = ClientifySandbox(SandboxOptions(api_key=KEY, webhook_targets=[hook_url]))
            sandbox_runner = aiohttp.web.AppRunner(sandbox.app())
            await sandbox_runner.setup()
            sandbox_site = aiohttp.web.TCPSite(sandbox_runner, "127.0.0.1", 0)
            await sandbox_site.start()
            s_host, s_port = sandbox_runner.addresses[0][:2]
            before = handling(receiver)
            try:
                latencies = await save_to_fact(
                    f"http://{s_host}:{s_port}/v1", bootstrap, topics[CLIENTIFY_CONTACT], args.saves
                )
                after = handling(receiver)
                in_receiver = (after[0] - before[0]) / max(1.0, after[1] - before[1])
            finally:
                await sandbox_runner.cleanup()
        finally:
            await runner.cleanup()
    quantiles = statistics.quantiles(latencies, n=100)
    table = Table(title=f"Clientify webhook receiver, {args.requests} requests, "
                  f"{args.concurrency} concurrent, acks=all")  # fmt: skip
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("raw aiokafka send_and_wait", f"{raw:,.0f} msg/s")
    table.add_row("receiver (HTTP -> validate -> fact -> ack)", f"{served:,.0f} req/s")
    table.add_row("receiver / raw produce", f"{served / raw:.0%}")
    table.add_row(
        f"save -> fact latency p50 ({args.saves} saves)", f"{quantiles[49] * 1000:.1f} ms"
    )
    table.add_row("save -> fact latency p99", f"{quantiles[98] * 1000:.1f} ms")
    table.add_row(
        "  of which in the receiver (mean, Kafka ack included)", f"{in_receiver * 1000:.1f} ms"
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    with throwaway_broker("bench-webhooks-") as bootstrap:
        console.print(asyncio.run(bench(args, bootstrap)))


if __name__ == "__main__":
    main()
