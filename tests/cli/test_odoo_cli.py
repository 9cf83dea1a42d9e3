"""The Odoo commands as a user runs them: real subprocesses, real sockets, real Kafka."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.odoo import OdooClient, OdooConfig, OdooVersion
from connectors.odoo.sandbox import seed
from schemas import Fact
from schemas.topics import TopicSpec
from tests.support.odoo_fixtures import API_KEY, DB, LOGIN, facts_on, running_sandbox

COMMAND = str(Path(sys.executable).parent / "clientify-odoo")


def environment(url: str, bootstrap: str, prefix: str, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ODOO_URL": url, "ODOO_DB": DB, "ODOO_USER": LOGIN, "ODOO_API_KEY": API_KEY,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix,
        "COLUMNS": "250",  # a wide console, so an error line is not wrapped
    }  # fmt: skip
    env.update(overrides)
    return env


async def run(
    *args: str, env: dict[str, str], seconds: float = 60, cwd: Path = Path("/tmp")
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), seconds)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def running(
    *args: str, env: dict[str, str], ready: str, stop: signal.Signals
) -> AsyncIterator[str]:
    """Run a long-lived command; yield its output up to the `ready` line; then send
    `stop` and expect a clean exit."""
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd="/tmp",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    printed = ""
    try:
        while ready not in printed:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, f"the command exited early: {printed}"
            printed += line.decode()
        yield printed
    finally:
        process.send_signal(stop)
        assert await asyncio.wait_for(process.wait(), 15) == 0


async def test_sandbox_command_prints_its_credentials_and_serves(tmp_path: Path) -> None:
    args = (
        "sandbox", "odoo", "--port", "0", "--profile", "19", "--data-dir", str(tmp_path),
        "--seed", "12", "--db", "demo", "--login", "ana", "--api-key", "k" * 40, "--saas", "1",
    )  # fmt: skip
    env = {**os.environ, "COLUMNS": "250"}
    async with running(*args, env=env, ready="Ctrl-C stops", stop=signal.SIGINT) as printed:
        assert "Odoo saas~19.1+e sandbox" in printed
        assert "database: demo" in printed and "login:    ana" in printed
        assert "API key:  as given with --api-key" in printed and "k" * 40 not in printed
        assert "Seeded 12 partners" in printed
        match = re.search(r"listening at (http://127\.0\.0\.1:\d+)", printed)
        assert match, printed
        key = SecretStr("k" * 40)
        config = OdooConfig(url=match.group(1), db="demo", login="ana", api_key=key)
        async with OdooClient(config) as client:
            assert client.protocol == "json2"
            assert client.version == OdooVersion(19, 1, saas=True)
            assert await client.search_count("res.partner", []) == 12
    assert (tmp_path / "odoo.sqlite3").exists()


@pytest.mark.broker
async def test_start_up_errors_are_one_line_naming_the_setting(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with running_sandbox(17) as sandbox:
        base = environment(sandbox.url, kafka_bootstrap, topic_prefix)
        cases = {
            "ODOO_API_KEY": {"ODOO_API_KEY": "0" * 40},
            "ODOO_DB": {"ODOO_DB": "nodb"},
        }
        for setting, override in cases.items():
            code, _out, err = await run("poll", "odoo", "--once", env={**base, **override})
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1, err
            assert lines[0].startswith("error: ") and setting in lines[0]
            assert "0" * 40 not in err  # the rejected key is never printed
        url = sandbox.url
    code, _out, err = await run("poll", "odoo", "--once", env={**base, "ODOO_URL": url})
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "ODOO_URL" in lines[0], err


@pytest.mark.broker
async def test_backfill_survives_kill_9_at_random_points(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    partner_topic = next(spec.name for spec in topics if spec.name.endswith(".odoo.partner"))
    async with running_sandbox(16) as sandbox:
        seed(sandbox.database, partners=5000, products=0, orders=0)
        sandbox.faults.latency_ms = 10  # a real Odoo is slower than the sandbox
        env = environment(sandbox.url, kafka_bootstrap, topic_prefix)
        args = ("poll", "odoo", "--backfill", "--page-size", "100")
        rng = random.Random()
        progress: list[int] = []
        for _kill in range(4):
            process = await asyncio.create_subprocess_exec(
                COMMAND, *args, env=env, cwd="/tmp",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            # Kill after a random number of requests past its first committed page,
            # somewhere among the backfill's 50 pages, whatever the machine load (a
            # loaded broker can leave the first commit behind a dozen requests).
            before = len(await facts_on(kafka_bootstrap, partner_topic))
            for _tick in range(600):  # at most a minute
                committed = len(await facts_on(kafka_bootstrap, partner_topic))
                if committed > before or process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            target = sandbox.stats.requests + rng.randint(0, 20)
            for _tick in range(6000):
                if sandbox.stats.requests >= target or process.returncode is not None:
                    break
                await asyncio.sleep(0.01)
            if process.returncode is None:
                process.kill()  # SIGKILL: no cleanup, a transaction may be left open
            await process.wait()
            progress.append(
                len({f.source_id for f in await facts_on(kafka_bootstrap, partner_topic)})
            )
        code, out, err = await run(*args, env=env, seconds=120)
        assert code == 0, err
        facts = await facts_on(kafka_bootstrap, partner_topic)
        expected = {str(i) for i in sandbox.database.store.table("res.partner")}
    assert any(0 < seen < 5000 for seen in progress), progress  # killed mid-backfill
    assert {f.source_id for f in facts} == expected  # nothing missing
    versions: defaultdict[str, set[str]] = defaultdict(set)
    for fact in facts:
        versions[fact.source_id].add(fact.event_id)
    assert all(len(ids) == 1 for ids in versions.values())  # duplicates share an event id
    assert "facts published" in out


@pytest.mark.broker
async def test_poll_runs_until_terminated(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    partner_topic = next(spec.name for spec in topics if spec.name.endswith(".odoo.partner"))
    async with running_sandbox(19) as sandbox, sandbox.client() as client:
        env = environment(sandbox.url, kafka_bootstrap, topic_prefix)
        async with running(
            "poll", "odoo", "--interval", "0.3", "--metrics-port", "0", env=env,
            ready="Polling every",
            stop=signal.SIGTERM,
        ) as printed:  # fmt: skip
            assert "Connected to Odoo 19.0" in printed and "json2" in printed
            await client.create("res.partner", {"name": "Nueva", "ref": "12345678Z"})
            for _ in range(100):
                facts = await facts_on(kafka_bootstrap, partner_topic)
                if facts:
                    break
                await asyncio.sleep(0.1)
            assert [f.business_key for f in facts] == ["12345678Z"]


async def test_missing_odoo_settings_are_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOO_")}
    code, _out, err = await run(
        "poll", "odoo", "--once", env={**env, "COLUMNS": "250"}, cwd=tmp_path
    )
    assert code == 2
    assert err.strip() == (
        "error: Odoo is not configured: set ODOO_URL, ODOO_USER, ODOO_API_KEY, ODOO_DB "
        "(environment or .env)"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--profile", "15"), "invalid choice: 15"),
        (("--modules", "stock,crm"), "unknown Odoo module(s) crm, stock"),
        (("--error-rate", "2"), "--error-rate must be between 0 and 1"),
    ],
)
async def test_sandbox_command_rejects_bad_options(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    env = {**os.environ, "COLUMNS": "250"}
    code, _out, err = await run(
        "sandbox", "odoo", "--data-dir", str(tmp_path), "--port", "0", *args, env=env
    )
    assert code == 2 and expected in err, err


async def test_sandbox_command_on_a_taken_port(tmp_path: Path) -> None:
    async with running_sandbox(17) as sandbox:
        port = sandbox.url.rsplit(":", 1)[1]
        code, _out, err = await run(
            "sandbox", "odoo", "--port", port, "--data-dir", str(tmp_path),
            env={**os.environ, "COLUMNS": "250"},
        )  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "choose another --port" in lines[0], err


async def start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd="/tmp", stdout=asyncio.subprocess.PIPE, stderr=sys.stderr
    )


async def printed_until(process: asyncio.subprocess.Process, text: str, within: float) -> str:
    assert process.stdout is not None
    printed = ""
    async with asyncio.timeout(within):
        while text not in printed:
            line = await process.stdout.readline()
            assert line, f"the command exited early: {printed}"
            printed += line.decode()
    return printed


@pytest.mark.broker
async def test_of_two_poller_copies_one_polls_and_the_other_takes_over_when_it_dies(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    partner_topic = next(spec.name for spec in topics if spec.name.endswith(".odoo.partner"))
    async with running_sandbox(17) as sandbox, sandbox.client() as client:
        env = environment(sandbox.url, kafka_bootstrap, topic_prefix)
        argv = ("poll", "odoo", "--interval", "0.3", "--metrics-port", "0")
        copies = [await start(*argv, env=env) for _ in range(2)]
        try:
            # Either may win the election; the other stands by.
            said = [printed_until(copy, "Ctrl-C stops", within=60) for copy in copies]
            outputs = await asyncio.gather(*said)
            active = 0 if "Polling every" in outputs[0] else 1
            standby = 1 - active
            assert "Polling every" not in outputs[standby]
            assert "Standing by: another copy polls this Odoo database" in outputs[standby]
            await client.create("res.partner", {"name": "Una", "ref": "12345678Z"})
            await eventually_published(kafka_bootstrap, partner_topic, "12345678Z")
            copies[active].kill()  # kill -9: no goodbye to the group; its session runs out
            await copies[active].wait()
            await printed_until(copies[standby], "Polling every", within=60)
            await client.create("res.partner", {"name": "Otra", "ref": "87654321X"})
            facts = await eventually_published(kafka_bootstrap, partner_topic, "87654321X")
            copies[standby].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(copies[standby].wait(), 30) == 0
        finally:
            for copy in copies:
                if copy.returncode is None:
                    copy.kill()
                    await copy.wait()
    versions: defaultdict[str, set[str]] = defaultdict(set)
    for fact in facts:
        versions[fact.business_key or ""].add(fact.event_id)
    # Each change published by one copy only (a re-scan repeats a fact's event id).
    assert versions["12345678Z"] and len(versions["12345678Z"]) == 1
    assert len(versions["87654321X"]) == 1


async def eventually_published(bootstrap: str, topic: str, key: str) -> list[Fact]:
    for _ in range(300):
        facts = await facts_on(bootstrap, topic)
        if any(fact.business_key == key for fact in facts):
            return facts
        await asyncio.sleep(0.1)
    raise AssertionError(f"no fact for {key} on {topic}")
