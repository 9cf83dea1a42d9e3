"""`clientify-odoo write clientify|odoo` as a user runs them: subprocesses, real sockets,
real Kafka. Start-up problems are one line naming what to fix; the Odoo writer creates
its custom field and applies a command end to end."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from connectors.kafka.publisher import Outgoing, Publisher
from schemas import Command, Result, ResultStatus, System
from schemas.topics import TopicSpec
from tests.support.clientify_fixtures import sandbox_at
from tests.support.kafka import reading
from tests.support.odoo_fixtures import API_KEY, DB, LOGIN, running_sandbox

pytestmark = pytest.mark.broker
COMMAND = str(Path(sys.executable).parent / "clientify-odoo")


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd="/tmp",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_a_rejected_key_or_a_missing_setting_is_one_line(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    base = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": topic_prefix, "COLUMNS": "250"}  # fmt: skip
    base = {k: v for k, v in base.items() if not k.startswith(("ODOO_", "CLIENTIFY_"))}
    async with sandbox_at() as (_sandbox, url):
        wrong = {**base, "CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": "f" * 40}
        code, err = await run(
            "write", "clientify", "--partitions", "1", "--metrics-port", "0", env=wrong
        )
        assert code == 2 and err.count("\n") == 1 and "CLIENTIFY_API_KEY" in err, err
        assert "f" * 40 not in err
    code, err = await run("write", "clientify", env=base)
    assert (code, err.strip()) == (2, "error: CLIENTIFY_API_KEY is not set (environment or .env)")
    code, err = await run("write", "odoo", env=base)
    assert code == 2 and err.count("\n") == 1 and "ODOO_URL" in err, err
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens there
    unreachable = {
        "CLIENTIFY_URL": ({"CLIENTIFY_URL": f"{nowhere}/v1", "CLIENTIFY_API_KEY": "k"},
                          "clientify"),
        "ODOO_URL": ({"ODOO_URL": nowhere, "ODOO_DB": DB, "ODOO_USER": LOGIN,
                      "ODOO_API_KEY": API_KEY}, "odoo"),
    }  # fmt: skip
    no_kafka = {**base, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "CLIENTIFY_API_KEY": "k"}
    unreachable["KAFKA_BOOTSTRAP_SERVERS"] = (no_kafka, "clientify")
    for setting, (settings, system) in unreachable.items():
        code, err = await run(
            "write", system, "--partitions", "1", "--metrics-port", "0", env={**base, **settings}
        )
        assert code == 2 and err.count("\n") == 1 and setting in err, err


async def test_odoo_writer_creates_its_field_and_applies_a_command(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with (
        running_sandbox(19) as sandbox,
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, topic_prefix + "sync.results") as results,
    ):
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
               "TOPIC_PREFIX": topic_prefix, "ODOO_URL": sandbox.url, "ODOO_DB": DB,
               "ODOO_USER": LOGIN, "ODOO_API_KEY": API_KEY}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            COMMAND, "write", "odoo", "--partitions", "1", "--metrics-port", "0", env=env,
            cwd="/tmp",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            command = Command.for_fact(
                fact_id="cli-fact", target=System.ODOO, entity="contact",
                business_key="12345678Z",
                fields={"name": "Ana", "clientify_status": "hot-lead", "mobile": "600"},
            )  # fmt: skip
            await publisher.publish(
                Outgoing(topic_prefix + "sync.commands.odoo", "contact:12345678Z", command)
            )
            [result] = await results.until(1)
            assert isinstance(result, Result) and result.status is ResultStatus.APPLIED
            assert result.written == {"name": "Ana", "clientify_status": "hot-lead"}
            assert result.skipped == {"mobile": "600"}  # Odoo 19 has no mobile
            row = sandbox.database.store.get("res.partner", int(result.target_id or 0))
            assert row is not None and row["x_clientify_status"] == "hot-lead"
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output.decode()
        assert "Created Odoo custom field(s): res.partner.x_clientify_status" in output.decode()
