"""/metrics and /health: the health rules, the server, and real service processes whose
figures match what they did on Kafka."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from clientify_odoo.cli import build_parser
from clientify_odoo.metrics_server import serve_metrics
from clientify_odoo.services import SERVICES, Service
from clientify_odoo.stack.broker import free_port_pair
from connectors.kafka.publisher import Publisher
from connectors.odoo.sandbox import seed
from processors.metrics import count_outcome
from schemas.health import ServiceHealth, partition_names
from schemas.topics import TopicSpec
from tests.support.clientify_fixtures import receiver_at, sandbox_at
from tests.support.commands import SMALL_ACME as ACME
from tests.support.commands import clientify_command as command
from tests.support.commands import outgoing
from tests.support.kafka import reading
from tests.support.metrics import get, sample
from tests.support.odoo_fixtures import API_KEY, DB, LOGIN, facts_on, running_sandbox
from tests.support.project import REPO, compose


async def health_of(origin: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{origin}/health") as response:
        return response.status, await response.json()


async def eventually(probe: Callable[[], Awaitable[bool]], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"never happened: {what}\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextmanager
def service(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `clientify-odoo` service process, stopped with SIGTERM (a clean exit expected)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "clientify_odoo", *argv],
        cwd=REPO, env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, tail(log)


# ------------------------------------------------------------------ the rules


def test_health_is_degraded_while_the_last_attempt_failed_or_nothing_moves() -> None:
    now = [1000.0]
    health = ServiceHealth("odoo-poller", stale_after=60, clock=lambda: now[0])
    assert health.verdict() == ("ok", None)  # starting: within its first minute
    now[0] += 61
    status, reason = health.verdict()
    assert status == "degraded" and reason and "since start-up" in reason
    health.succeeded(last_poll="then")
    assert health.verdict() == ("ok", None)
    health.failed(ConnectionError("Odoo answered 503 for https://user:pw@odoo.example"))
    status, reason = health.verdict()
    assert status == "degraded" and reason and "ConnectionError: Odoo answered 503" in reason
    now[0] += 1
    health.succeeded()  # the retry worked
    assert health.verdict() == ("ok", None)
    now[0] += 61
    status, reason = health.verdict()
    assert status == "degraded" and reason and "no progress for 61s" in reason
    snapshot = health.snapshot()
    assert snapshot["errors"] == 1 and snapshot["details"] == {"last_poll": "then"}
    assert isinstance(snapshot["last_error"], dict)
    assert "Odoo answered 503" in snapshot["last_error"]["message"]


def test_without_a_deadline_an_idle_service_stays_healthy() -> None:
    now = [0.0]
    health = ServiceHealth("webhook-receiver", clock=lambda: now[0])
    now[0] += 86_400  # a day without webhooks: Clientify may have nothing to say
    assert health.verdict() == ("ok", None)


def test_the_worker_counts_per_flow_and_target() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("clientify_odoo_worker_commands_total", flow="company", target="clientify")
    echoes = value("clientify_odoo_worker_echoes_total", flow="company")
    count_outcome("company", ["clientify", "clientify", "odoo"], echoes=2, conflicts=1,
                  stale=False)  # fmt: skip
    after = value("clientify_odoo_worker_commands_total", flow="company", target="clientify")
    assert after - before == 2
    assert value("clientify_odoo_worker_echoes_total", flow="company") - echoes == 2
    assert value("clientify_odoo_worker_conflicts_total", flow="company") >= 1
    assert partition_names([TopicPartition("b", 1), TopicPartition("a", 0)]) == ["a[0]", "b[1]"]


async def test_the_server_answers_metrics_and_health_and_port_0_turns_it_off() -> None:
    assert serve_metrics(ServiceHealth("odoo-writer"), "127.0.0.1", 0) is None
    health = ServiceHealth("odoo-writer")
    server = serve_metrics(health, "127.0.0.1", free_port_pair())
    assert server is not None
    with server:
        with pytest.raises(OSError):  # the port is taken: the service says so and stops
            serve_metrics(health, "127.0.0.1", server.port)
        status, text = await get(f"{server.url}/metrics")
        assert status == 200
        assert sample(text, "clientify_odoo_healthy", service="odoo-writer") == 1.0
        assert "# TYPE clientify_odoo_commands_applied_total counter" in text
        assert await health_of(server.url) == (200, health.snapshot())
        health.failed("Odoo is down")
        status, body = await health_of(server.url)
        assert status == 503 and body["status"] == "degraded" and "Odoo is down" in body["reason"]
        status, text = await get(f"{server.url}/metrics")
        assert sample(text, "clientify_odoo_healthy", service="odoo-writer") == 0.0
        assert (await get(f"{server.url}/other"))[0] == 404


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_compose_publishes_each_services_metrics_on_its_documented_port(service: Service) -> None:
    """So `clientify-odoo status` on the host finds every container's /health."""
    declared = compose()["services"][service.name]
    args = build_parser().parse_args(declared["command"])
    if service.name == "webhook-receiver":  # on its webhook port
        host, port = args.host, args.port
    else:
        host, port = args.metrics_host, args.metrics_port
    assert (host, port) == ("0.0.0.0", service.port)
    assert f"127.0.0.1:{port}:{port}" in declared["ports"]


# ------------------------------------------------------------------ real services


@pytest.mark.broker
async def test_a_writer_counts_commands_and_dead_letters_on_metrics(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    port, log = free_port_pair(), tmp_path / "writer.log"
    async with (
        sandbox_at() as (sandbox, url),
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, topic_prefix + "sync.results") as results,
    ):
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": topic_prefix,
               "CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": sandbox.api_key}  # fmt: skip
        argv = ["write", "clientify", "--partitions", "1", "--metrics-port", str(port)]
        with service(argv, env, log):
            origin = f"http://127.0.0.1:{port}"
            await publisher.publish_all(
                outgoing(
                    topic_prefix,
                    command("company", "B12345678", ACME),
                    command("company", "A11111111", {**ACME, "display_name": None}),  # a 400
                )
            )
            await results.until(2)

            async def looped() -> bool:  # the loop turn that handled them has ended
                return bool((await health_of(origin))[1]["last_success"])

            await eventually(looped, "a turn of the consume loop", log)
            _status, text = await get(f"{origin}/metrics")
            status, body = await health_of(origin)
    labels = {"target": "clientify", "entity": "company"}
    assert sample(text, "clientify_odoo_commands_applied_total", **labels, status="applied") == 1
    assert sample(text, "clientify_odoo_commands_applied_total", **labels, status="failed") == 1
    assert sample(text, "clientify_odoo_dead_letters_total", **labels) == 1
    assert sample(text, "clientify_odoo_healthy", service="clientify-writer") == 1
    assert sample(text, "clientify_client_throttled_total", client="clientify") == 0  # client's
    assert status == 200 and body["service"] == "clientify-writer" and body["last_success"]
    assert body["details"]["partitions"] == [f"{topic_prefix}sync.commands.clientify[0]"]


@pytest.mark.broker
async def test_the_poller_counts_what_it_published_and_says_when_it_last_polled(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    port, log = free_port_pair(), tmp_path / "poller.log"
    origin = f"http://127.0.0.1:{port}"
    async with running_sandbox(17) as sandbox:
        seed(sandbox.database, 6, 4, 3)
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": topic_prefix,
               "ODOO_URL": sandbox.url, "ODOO_DB": DB, "ODOO_USER": LOGIN,
               "ODOO_API_KEY": API_KEY}  # fmt: skip
        argv = ["poll", "odoo", "--interval", "0.5", "--metrics-port", str(port)]
        with service(argv, env, log):

            async def polled_twice() -> bool:
                try:
                    _status, text = await get(f"{origin}/metrics")
                except aiohttp.ClientError:
                    return False  # not listening yet
                return (sample(text, "clientify_odoo_polls_total", source="odoo", status="ok")
                        or 0) >= 2  # fmt: skip

            await eventually(polled_twice, "two polls done", log)
            _status, text = await get(f"{origin}/metrics")
            status, body = await health_of(origin)
    assert status == 200 and body["status"] == "ok" and body["details"]["last_poll"]
    assert set(body["details"]["cursors"]) == {"res.partner", "product.product",
                                              "product.template", "sale.order",
                                              "sale.order.line"}  # fmt: skip
    for entity in ("partner", "product", "sale_order"):
        on_kafka = await facts_on(kafka_bootstrap, f"{topic_prefix}odoo.{entity}")
        published = sample(text, "clientify_odoo_facts_published_total", system="odoo",
                           entity=entity)  # fmt: skip
        assert on_kafka and published == len(on_kafka), entity


@pytest.mark.broker
async def test_the_receiver_tells_its_last_webhook_and_exports_its_health(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with receiver_at(kafka_bootstrap, topic_prefix) as (_receiver, url):
        origin = url.split("/hooks/")[0]
        status, body = await health_of(origin)
        assert (
            status == 200 and body["kafka"] == "unknown" and "last_webhook" not in body["details"]
        )
        hook = {"hook": {"id": 1, "event": "product.saved", "target": url},
                "data": {"id": 7, "name": "Widget", "sku": "W1",
                         "created": "2024-01-01T00:00:00Z"}}  # fmt: skip
        async with aiohttp.ClientSession() as http, http.post(url, json=hook) as answer:
            assert answer.status == 200, await answer.text()
        status, body = await health_of(origin)
        _status, text = await get(f"{origin}/metrics")
    assert status == 200 and body["kafka"] == "ok" and body["details"]["last_webhook"]
    assert body["service"] == "webhook-receiver" and body["last_error"] is None
    assert sample(text, "clientify_webhooks_accepted_total", entity="product") == 1
    assert sample(text, "clientify_odoo_healthy", service="webhook-receiver") == 1
