"""`clientify-odoo status` as monitoring runs it, against the real broker: exit 0 with
the stack up and caught up, 1 when a service is down or a consumer group lags, 2 without
a broker, 3 while dead letters wait for a person; every problem says what to do; the
JSON carries the same facts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clientify_odoo.services import SERVICES
from clientify_odoo.stack.broker import free_port_pair
from connectors.kafka.publisher import Outgoing, Publisher
from schemas import Command, ConflictReport, DeadLetter, Requeue, Skip, System
from schemas.keys import route_key
from schemas.topics import DEAD_LETTERS, REQUEUES, Topics, TopicSpec
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


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `clientify-odoo ARGS` as a user would; its exit code and output (it must
    write nothing to stderr)."""
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env={**env, "COLUMNS": "250"}, cwd="/tmp",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None and not err, err.decode()
    return process.returncode, out.decode()


async def status(*args: str, env: dict[str, str]) -> tuple[int, str]:
    return await cli("status", *args, env=env)


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


async def test_the_env_file_may_follow_the_command(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    """`status --env-file F`: the broker and the topic prefix come from F."""
    env_file = tmp_path / "sync.env"
    env_file.write_text(f"KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}\nTOPIC_PREFIX={topic_prefix}\n")
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX")
    }
    off = [f"--service={service.name}=off" for service in SERVICES]
    code, report = await status_json(
        "--partitions", "1", *off, "--env-file", str(env_file), "--log-level", "ERROR", env=env
    )
    assert code == 0 and report["state"] == "healthy"
    assert report["broker"]["bootstrap"] == kafka_bootstrap
    assert report["topic_prefix"] == topic_prefix and report["topics"]["missing"] == []


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


def dead_letter(entity: str, key: str, reason: str, minutes: int) -> DeadLetter:
    command = Command.for_fact(
        fact_id=f"status-{entity}-{key}", target=System.CLIENTIFY, entity=entity,
        business_key=key, fields={"name": key},
    )  # fmt: skip
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    return DeadLetter(command=command, reason=reason, attempts=1, at=at)


async def test_open_dead_letters_are_a_state_of_their_own_until_requeued(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    """Everything runs, yet records wait: not healthy (monitoring must see it), not
    unhealthy (restarting fixes nothing): exit 3, with how many and what to do."""
    env = environment(kafka_bootstrap, topic_prefix)
    nothing_deployed = ["--partitions", "1", *(f"--service={s.name}=off" for s in SERVICES)]
    code, report = await status_json(*nothing_deployed, env=env)
    assert code == 0 and report["state"] == "healthy" and report["open_dead_letters"] == 0
    assert report["waiting"] == []

    letters = [
        dead_letter("company", "B1", "Clientify rejected the company: name: too long", 0),
        dead_letter("company", "B2", "Clientify rejected the company: name: too long", 1),
        dead_letter("product", "W-1", "Clientify rejected the product:\n price: not a number", 2),
    ]
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all(
            Outgoing(Topics(topic_prefix)[DEAD_LETTERS],
                     route_key(letter.command.entity, letter.command.business_key), letter)
            for letter in letters
        )  # fmt: skip
    code, report = await status_json(*nothing_deployed, env=env)
    assert code == 3 and report["state"] == "waiting_for_a_person" and not report["healthy"]
    assert report["problems"] == [] and report["open_dead_letters"] == 3
    [waiting] = report["waiting"]
    assert waiting["what"].startswith("3 dead letters open: records a writer could not apply")
    assert "(2 clientify company, 1 clientify product)" in waiting["what"]
    # The newest one's reason, on one line.
    assert waiting["what"].endswith(
        "the newest, clientify product W-1: Clientify rejected the product: price: not a number"
    )
    assert "clientify-odoo dlq list --open" in waiting["fix"]
    assert "clientify-odoo dlq requeue --id ID" in waiting["fix"]
    code, out = await status(*nothing_deployed, env=env)
    assert code == 3 and "running, but records wait for a person (exit 3)" in out
    assert "3 dead letters open" in out and "dlq list --open" in out
    assert "open dead letters" in out  # the activity table's row
    # The command it names lists exactly these.
    code, out = await cli("dlq", "list", "--open", env=env)
    assert code == 0 and all(letter.command.command_id[:8] in out for letter in letters)

    # A problem outranks them (exit 1), and they are still told.
    somewhere_else = f"--service=worker={free_port_pair()}"
    code, report = await status_json(*nothing_deployed, somewhere_else, env=env)
    assert code == 1 and report["state"] == "unhealthy" and report["open_dead_letters"] == 3
    assert len(report["problems"]) == 1 and len(report["waiting"]) == 1
    code, out = await status(*nothing_deployed, somewhere_else, env=env)
    assert code == 1 and "worker does not answer" in out and "3 dead letters open" in out

    # Requeued, a dead letter is no longer open.
    first = letters[0].command.command_id[:8]
    code, out = await cli("dlq", "requeue", "--id", first, env=env)
    assert code == 0 and "Sent 1 command(s)" in out
    code, report = await status_json(*nothing_deployed, env=env)
    assert code == 3 and report["waiting"][0]["what"].startswith("2 dead letters open")
    assert "(1 clientify company, 1 clientify product)" in report["waiting"][0]["what"]
    code, out = await cli("dlq", "requeue", "--all", env=env)
    assert code == 0 and "Sent 2 command(s)" in out
    code, report = await status_json(*nothing_deployed, env=env)
    assert code == 0 and report["state"] == "healthy" and report["open_dead_letters"] == 0
    assert report["counts"]["dead_letters"] == 3  # still on the topic, none open


async def test_a_command_clientify_rejects_leaves_the_running_stack_waiting_for_a_person(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The case monitoring missed: every service up and caught up, a record that cannot
    be written waiting on the dead letters, and `status` said healthy."""
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    where = [f"--service={name}={port}" for name, port in stack.metrics_ports.items()]
    flags = [*where, "--service=reconciler=off"]  # the stack runs no reconciler
    await stack.up()
    try:
        async with stack.odoo() as odoo:
            # Clientify takes product names of up to 200 characters (a 400 otherwise).
            product = await odoo.create(
                "product.product",
                {"name": "Tornillo " * 30, "default_code": "TOR-1", "list_price": 2.0},
            )
        report = await status_until(3, flags, stack)
        assert report["problems"] == [] and report["open_dead_letters"] == 1
        [waiting] = report["waiting"]
        assert waiting["what"].startswith("1 dead letter open")
        assert "(1 clientify product)" in waiting["what"]
        assert "the newest, clientify product TOR-1: " in waiting["what"]
        assert "200 characters" in waiting["what"]  # Clientify's own words
        code, out = await status(*flags, env=stack.env)
        assert code == 3 and "1 dead letter open" in out and "dlq list --open" in out

        # The fix, in Odoo: the product lands; the dead letter is still open until a
        # person says it is dealt with (a requeue, which sends nothing newer edits took).
        async with stack.odoo() as odoo:
            await odoo.write("product.product", [product], {"name": "Tornillo"})

        async def landed() -> list[dict[str, Any]] | None:
            async with stack.clientify() as clientify:
                return await clientify.find_products_by_sku("TOR-1") or None

        await eventually(landed, stack, "the fixed product in Clientify")
        code, report = await status_json(*flags, env=stack.env)
        assert code == 3 and report["open_dead_letters"] == 1
        code, out = await cli("dlq", "requeue", "--all", env=stack.env)
        assert code == 0, out
        report = await status_until(0, flags, stack)
        assert report["open_dead_letters"] == 0 and report["counts"]["dead_letters"] == 1
    finally:
        stack.down()
