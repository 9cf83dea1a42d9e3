"""The Clientify commands as a user runs them: real processes, real ports, real Kafka."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from clientify_odoo.cli import main
from clientify_odoo.stack.broker import free_port_pair
from connectors.clientify import ClientifyClient
from connectors.clientify.sandbox.app import SandboxOptions
from schemas.topics import CLIENTIFY_COMPANY, CLIENTIFY_CONTACT, CLIENTIFY_PRODUCT, Topics
from tests.support.clientify_fixtures import read_facts, sandbox_at

# The installed console script, next to this interpreter (as a user would run it).
COMMAND = [str(Path(sys.executable).parent / "clientify-odoo")]


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIENTIFY_", "WEBHOOK_"))}
    return {**env, "COLUMNS": "200", **values}


async def started(process: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    """Read the process's output until a line matches `pattern`."""
    assert process.stdout is not None
    seen = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        if not line:
            raise AssertionError("the command exited early:\n" + "".join(seen))
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
async def sandbox_process(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    process = await asyncio.create_subprocess_exec(
        *COMMAND, "sandbox", "clientify", "--port", "0", "--data-dir", str(tmp_path),
        "--seed", "3", "--webhook-target", "http://127.0.0.1:9/hook",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment(),
    )  # fmt: skip
    try:
        url = (await started(process, r"listening at (http://\S+/v1/)")).group(1)
        key = (await started(process, r"API key: (\S+)")).group(1)
        yield url, key
    finally:
        assert await stop(process) == 0


async def test_sandbox_command_serves_the_api_and_prints_its_key(
    sandbox_process: tuple[str, str],
) -> None:
    url, key = sandbox_process
    async with ClientifyClient(url, key) as client:
        assert (await client.check_key())["time_zone"] == "Europe/Madrid"
        assert len([c async for c in client.contacts.list()]) == 3
    admin = url.removesuffix("v1/") + "_admin/hooks/"
    async with (
        aiohttp.ClientSession() as http,
        http.get(admin, headers={"Authorization": f"Token {key}"}) as response,
    ):
        hooks = await response.json()
    assert len(hooks) == 6 and {h["target"] for h in hooks} == {"http://127.0.0.1:9/hook"}


def test_webhook_secret_is_made_once_shown_once_and_rotatable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("TOPIC_PREFIX=x.\n")
    assert main(["--env-file", str(env_file), "webhooks", "secret"]) == 0
    secret = env_file.read_text().split("WEBHOOK_SECRET=")[1].strip()
    assert len(secret) >= 32 and f"/hooks/{secret}" in capsys.readouterr().out
    assert "TOPIC_PREFIX=x." in env_file.read_text()
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert main(["--env-file", str(env_file), "webhooks", "secret"]) == 1
    output = capsys.readouterr()
    assert "already exists" in output.err and secret not in output.out + output.err
    assert main(["--env-file", str(env_file), "webhooks", "secret", "--rotate"]) == 0
    assert secret not in env_file.read_text()


@pytest.mark.broker
async def test_webhooks_serve_and_reconcile_commands(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # No `topics` fixture: the commands create the topics they need, as in production.
    names = Topics(topic_prefix)
    secret = "cli-secret-0123456789abcdef"
    env = environment(TOPIC_PREFIX=topic_prefix, WEBHOOK_SECRET=secret)
    receiver = await asyncio.create_subprocess_exec(
        *COMMAND, "webhooks", "serve", "--port", "0", "--bootstrap", kafka_bootstrap,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        origin = (await started(receiver, r"on (http://\S+?)/hooks/")).group(1)
        body = {"hook": {"id": 1, "event": "product.saved", "target": "t"},
                "data": {"id": 5, "name": "P", "sku": "FER-5"}}  # fmt: skip
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{origin}/hooks/{secret}", json=body) as response:
                assert response.status == 200
            async with http.post(f"{origin}/hooks/not-{secret}", json=body) as response:
                assert response.status == 404
    finally:
        assert await stop(receiver) == 0
    assert [
        f.business_key for f in await read_facts(kafka_bootstrap, names[CLIENTIFY_PRODUCT])
    ] == ["FER-5"]

    async with sandbox_at(SandboxOptions(api_key="cli-key-0123456", seed=2)) as (_sandbox, base):
        for key, expected in (("wrong-key-0123456", 1), ("cli-key-0123456", 0)):
            process = await asyncio.create_subprocess_exec(
                *COMMAND, "reconcile", "--once", "--bootstrap", kafka_bootstrap,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
                env={**env, "CLIENTIFY_URL": base, "CLIENTIFY_API_KEY": key},
            )  # fmt: skip
            output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
            assert process.returncode == expected, output
            assert key not in output
            if expected == 0:  # the full sync's progress bars, then the summary
                assert re.search(r"Clientify contacts .* 2/2", output), output
                assert "First pass done" in output
    assert "Clientify API key rejected" in output or expected == 0
    assert len(await read_facts(kafka_bootstrap, names[CLIENTIFY_CONTACT])) == 2
    assert len(await read_facts(kafka_bootstrap, names[CLIENTIFY_COMPANY])) == 2


def test_bad_settings_and_arguments_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    assert main(["webhooks", "serve"]) == 1
    assert "WEBHOOK_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("WEBHOOK_SECRET", "tiny/secret")
    assert main(["webhooks", "serve"]) == 1
    error = capsys.readouterr().err
    assert "at least 16 URL-safe characters" in error and "tiny/secret" not in error
    monkeypatch.setenv("WEBHOOK_SECRET", "long-enough-secret-0123456789")
    assert main(["webhooks", "serve", "--allow-ip", "10.0.0.0/8", "--allow-ip", "nope"]) == 1
    assert "not an IP address or network: 'nope'" in capsys.readouterr().err
    assert main(["sandbox", "clientify", "--throttle", "-1"]) == 1
    assert "--throttle must be 0 or more, got -1.0" in capsys.readouterr().err
    assert main(["sandbox", "clientify", "--error-rate", "1.5"]) == 1
    assert "--error-rate must be between 0 and 1" in capsys.readouterr().err
    assert main(["reconcile", "--interval", "0"]) == 1
    assert "--interval must be > 0" in capsys.readouterr().err
    monkeypatch.delenv("CLIENTIFY_API_KEY", raising=False)
    assert main(["reconcile", "--once"]) == 1
    assert "CLIENTIFY_API_KEY is not set" in capsys.readouterr().err


@pytest.mark.broker
async def test_periodic_reconcile_serves_the_client_metrics(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    async with sandbox_at(SandboxOptions(api_key="metrics-key-01234", seed=1)) as (_sb, base):
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "reconcile", "--interval", "60", "--bootstrap", kafka_bootstrap,
            "--metrics-port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
            env=environment(TOPIC_PREFIX=topic_prefix, CLIENTIFY_URL=base,
                            CLIENTIFY_API_KEY="metrics-key-01234"),
        )  # fmt: skip
        try:
            await started(process, r"Reconciling every 60s")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                metrics = await response.text()
        finally:
            assert await stop(process) == 0
    assert 'clientify_client_request_rate{client="clientify"}' in metrics
    assert 'clientify_client_throttled_total{client="clientify"} 0.0' in metrics
