"""`clientify-odoo status` as monitoring runs it, against the real broker: exit 0 with
the stack up and caught up, 1 when a service is down or a consumer group lags, 2 without
a broker; every problem says what to do; the JSON carries the same facts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clientify_odoo.services import SERVICES
from clientify_odoo.stack.broker import free_port_pair
from connectors.kafka.publisher import Outgoing, Publisher
from schemas import ConflictReport, Requeue, Skip
from schemas.topics import REQUEUES, Topics, TopicSpec
from tests.support.metrics import get, sample
from tests.support.stack_fixtures import (
    SyncStack,
    clientify_company,
    create_acme,
    eventually,
    topic_messages,
)

pytestmark = pytest.mark.broker
COMMAND = str(Path(sys.executable).parent / "clientify-odoo")


async def status(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        COMMAND, "status", *args, env={**env, "COLUMNS": "200"}, cwd="/tmp",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None and not err, err.decode()
    return process.returncode, out.decode()


async def status_json(*args: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    code, out = await status("--json", *args, env=env)
    report: dict[str, Any] = json.loads(out)
    assert report["exit_code"] == code
    return code, report


def nowhere() -> list[str]:
    """Every service looked for where nothing listens (not at the default ports, where
    another run's stack may be)."""
    return [f"--service={service.name}={free_port_pair()}" for service in SERVICES]


def environment(bootstrap: str, prefix: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix}


async def test_without_a_broker_it_exits_2_and_says_how_to_start_one() -> None:
    env = environment(f"127.0.0.1:{free_port_pair()}", "")  # nothing listens there
    code, report = await status_json(*nowhere(), env=env)
    assert code == 2 and report["broker"]["reachable"] is False
    assert "clientify-odoo kafka up" in report["problems"][0]["fix"]
    assert report["consumer_groups"] == [] and report["counts"] == {}
    assert {s["status"] for s in report["services"]} == {"down"}
    code, out = await status(*nowhere(), env=env)
    assert code == 2 and "Kafka unreachable" in out and "clientify-odoo kafka up" in out


async def test_with_nothing_running_every_service_is_down_with_what_to_do(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    env = environment(kafka_bootstrap, topic_prefix)
    code, report = await status_json("--partitions", "1", *nowhere(), env=env)
    assert code == 1 and report["broker"]["reachable"] is True
    assert report["topics"] == {"missing": [], "problems": []}
    assert [s["status"] for s in report["services"]] == ["down"] * len(SERVICES)
    fixes = " ".join(problem["fix"] for problem in report["problems"])
    for service in SERVICES:
        assert f"clientify-odoo {service.command}" in fixes
    groups = {group["service"]: group for group in report["consumer_groups"]}
    assert groups["worker"]["group"] == f"{topic_prefix}clientify-odoo-sync"
    # Six sources, routed, results and requeues: every topic the worker reads.
    assert len(groups["worker"]["partitions"]) == 9
    assert all(group["lag"] == 0 for group in groups.values())
    assert report["counts"] == {"skips": 0, "conflicts": 0, "dead_letters": 0}
    assert report["last_poll"]["at"] is None and report["last_webhook"]["at"] is None

    # The topics exist with 1 partition; a deployment declaring 3 is told how to fix it.
    code, report = await status_json(*nowhere(), env=env)
    assert code == 1 and any("--partitions 3" in p["fix"] for p in report["problems"])
    # A prefix whose topics were never created.
    code, out = await status(*nowhere(), env=environment(kafka_bootstrap, topic_prefix + "x."))
    assert code == 1 and "topics missing" in out and "clientify-odoo kafka topics" in out


async def test_a_requeue_the_worker_has_not_read_is_its_lag(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    """The worker reads `sync.requeues` too: a dead letter sent back while it is stopped
    is work waiting for it, and `status` counts it (its group and the services' once
    drifted apart, and this lag was never shown)."""
    env = environment(kafka_bootstrap, topic_prefix)
    requeue = Requeue(dead_letter_id="d1", command_id=None, at=datetime.now(UTC))
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish(Outgoing(Topics(topic_prefix)[REQUEUES], "company:B1", requeue))
    _code, report = await status_json("--partitions", "1", *nowhere(), env=env)
    [worker] = [group for group in report["consumer_groups"] if group["service"] == "worker"]
    assert worker["lag"] == 1
    [behind] = [p for p in worker["partitions"] if p["lag"]]
    assert behind["topic"] == Topics(topic_prefix)[REQUEUES]


async def status_until(
    code: int,
    args: list[str],
    stack: SyncStack,
    problems: Callable[[list[str]], bool] = lambda problems: True,
    within: float = 120,
) -> dict[str, Any]:
    """The first report with exit `code` whose problems (their `what`) pass `problems`."""
    deadline = time.monotonic() + within
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        got, report = await status_json(*args, env=stack.env)
        if got == code and problems([problem["what"] for problem in report["problems"]]):
            return report
        await asyncio.sleep(1)
    raise AssertionError(f"status never exited {code}: {report.get('problems')}\n{stack.logs()}")


async def test_status_follows_the_stack_up_down_and_behind(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    where = [f"--service={name}={port}" for name, port in stack.metrics_ports.items()]
    flags = [*where, "--service=reconciler=off"]  # the stack runs no reconciler
    strict = [*flags, "--max-lag", "0"]
    await stack.up()
    try:
        await create_acme(stack)
        await eventually(lambda: clientify_company(stack), stack, "company created")
        # Everything written, every echo dropped: all healthy, no group a message behind
        # (transaction markers on the poller's and writers' topics are not messages).
        report = await status_until(0, strict, stack)
        assert report["healthy"] and report["problems"] == []
        assert report["last_poll"]["source"] == "odoo-poller /health"
        assert report["last_poll"]["at"]
        # The sandbox's webhooks of the writer's own saves came in.
        assert report["last_webhook"]["source"] == "webhook-receiver /health"
        skips = await topic_messages(kafka_bootstrap, f"{topic_prefix}sync.skips")
        conflicts = await topic_messages(kafka_bootstrap, f"{topic_prefix}sync.conflicts")
        assert report["counts"] == {
            "skips": len([m for m in skips if isinstance(m, Skip)]),
            "conflicts": len([m for m in conflicts if isinstance(m, ConflictReport)]),
            "dead_letters": 0,
        }
        results = [
            p for g in report["consumer_groups"] for p in g["partitions"]
            if p["topic"] == f"{topic_prefix}sync.results" and p["end"]
        ]  # fmt: skip
        assert results and all(p["committed"] and p["lag"] == 0 for p in results)
        _status, metrics = await get(f"{stack.metrics_url('worker')}/metrics")
        commands = "clientify_odoo_worker_commands_total"
        assert sample(metrics, commands, flow="company", target="clientify") == 1
        assert (sample(metrics, "clientify_odoo_worker_echoes_total", flow="company") or 0) >= 1

        stack.stop("clientify-writer")
        code, report = await status_json(*strict, env=stack.env)
        assert code == 1
        [down] = [s for s in report["services"] if s["status"] != "ok"]
        assert down["name"] == "clientify-writer" and down["status"] == "down"
        [problem] = report["problems"]
        assert "clientify-writer does not answer" in problem["what"]
        assert "clientify-odoo write clientify" in problem["fix"]

        # An Odoo edit while the writer is away: its group falls behind.
        async with stack.odoo() as odoo:
            [partner] = await odoo.search("res.partner", [("ref", "=", "B-12.345.678")])
            await odoo.write("res.partner", [partner], {"phone": "+34 922 222 222"})
        writer_off = [*flags, "--service=clientify-writer=off"]
        # Once the worker has turned the fact into a command, only the writer lags.
        report = await status_until(
            1, [*writer_off, "--max-lag", "0"], stack,
            lambda problems: len(problems) == 1 and problems[0].startswith("clientify-writer"),
            within=60,
        )  # fmt: skip
        [problem] = report["problems"]
        assert problem["what"].startswith("clientify-writer is ") and "behind" in problem["what"]
        assert "clientify-odoo write clientify" in problem["fix"]
        code, out = await status(*writer_off, "--max-lag", "0", env=stack.env)
        assert code == 1 and "clientify-writer is" in out and "messages behind" in out
        # Within the allowed lag (default 1000) that is healthy.
        code, _out = await status(*writer_off, env=stack.env)
        assert code == 0
    finally:
        stack.down()
