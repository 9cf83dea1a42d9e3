"""`clientify-odoo connect` as a user runs it (the installed command, in its own process)
against the Clientify sandbox and an Odoo (the sandbox, and real Odoo 16-19 for the happy
path and the wrong settings): the happy path prepares Odoo and saves .env; every wrong
setting is named with what to do, and nothing is saved."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from clientify_odoo.odoo_hooks import HOOK_RULES
from connectors.clientify.sandbox.app import ClientifySandbox
from connectors.odoo.automation import check_rules, remove_rules
from tests.support.clientify_fixtures import sandbox_at
from tests.support.odoo_fixtures import OdooPeer, odoo_peer, peers

COMMAND = str(Path(sys.executable).parent / "clientify-odoo")
EVENTS = ("contact.saved", "company.saved", "product.saved")
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def environment(**values: str) -> dict[str, str]:
    own = ("ODOO_", "CLIENTIFY_", "WEBHOOK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {**env, "COLUMNS": "250", **values}


async def run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


@asynccontextmanager
async def systems(
    odoo_name: str = "sandbox-17",
) -> AsyncIterator[tuple[OdooPeer, ClientifySandbox, str]]:
    async with odoo_peer(odoo_name) as odoo, sandbox_at() as (clientify, url):
        yield odoo, clientify, url


def good_settings(odoo: OdooPeer, clientify: ClientifySandbox, url: str) -> dict[str, str]:
    return {
        "ODOO_URL": odoo.url, "ODOO_DB": odoo.db, "ODOO_USER": odoo.login,
        "ODOO_API_KEY": odoo.api_key, "CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": clientify.api_key,
    }  # fmt: skip


@pytest.mark.parametrize("odoo_name", peers(sandboxes=(17,)))
async def test_connect_checks_both_systems_creates_the_field_and_saves_env(
    odoo_name: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092\nODOO_DB=old\n")
    env_file.chmod(0o644)
    async with systems(odoo_name) as (odoo, clientify, url):
        async with odoo.client() as client:
            # A real server's database may have it from an earlier run: then it is kept.
            missing = "x_clientify_status" not in await client.fields("res.partner")
        assert missing or odoo.real
        env = environment(ODOO_API_KEY=odoo.api_key, CLIENTIFY_API_KEY=clientify.api_key)
        args = (
            "--env-file", str(env_file), "connect", "--odoo-url", odoo.url, "--odoo-db", odoo.db,
            "--odoo-user", odoo.login, "--clientify-url", url,
            "--public-url", "https://sync.example.com/",
        )  # fmt: skip
        code, out, err = await run(*args, env=env, cwd=tmp_path)
        assert code == 0, err

        async with odoo.client() as client:
            assert "x_clientify_status" in await client.fields("res.partner")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        saved = read_env(env_file)
        secret = saved.pop("WEBHOOK_SECRET")
        # Odoo 17+ with the Automation Rules app pushes its changes (the real servers
        # have it); 16 and the sandbox are polled, and say so.
        pushes = odoo.real and odoo.version >= 17
        odoo_secret = saved.pop("ODOO_HOOK_SECRET", None)
        assert (odoo_secret is not None) == pushes, out
        if pushes:
            assert "Odoo pushes its changes: 3 automation rules post to" in out
            async with odoo.client() as client:
                assert await check_rules(client, f"/hooks/odoo/{odoo_secret}", HOOK_RULES) == []
        else:
            assert "the sync polls" in out, out
        assert saved == {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092",  # other lines are kept
            **good_settings(odoo, clientify, url),
        }
        assert len(secret) >= 43
        lines = out.splitlines()
        for event in EVENTS:
            assert f"  {event:<15} https://sync.example.com/hooks/{secret}" in lines, out
        if missing:
            assert "custom fields created: res.partner.x_clientify_status" in out
        assert "integration is active" in out and "Sandbox SL" in out
        for key in (odoo.api_key, clientify.api_key):
            assert key not in out + err

        # Again (e.g. after changing one setting): nothing to create, the secret is
        # kept so the URLs registered in Clientify stay valid, and it is not shown.
        code, out, err = await run(*args, env=env, cwd=tmp_path)
        assert code == 0, err
        assert read_env(env_file)["WEBHOOK_SECRET"] == secret
        assert secret not in out and "hooks/<WEBHOOK_SECRET>" in out
        assert "created: none needed" in out
        # (The rules post to sync.example.com: removed at the end, else they would post
        # every later test's writes to nowhere.)

        code, out, err = await run(*args, "--rotate-webhook-secret", env=env, cwd=tmp_path)
        rotated = read_env(env_file)["WEBHOOK_SECRET"]
        assert code == 0 and rotated != secret and f"/hooks/{rotated}" in out
        if pushes:  # the Odoo hook's secret is kept: the rules still post to us
            assert read_env(env_file)["ODOO_HOOK_SECRET"] == odoo_secret
            async with odoo.client() as client:
                await remove_rules(client)


async def test_the_global_options_may_follow_the_command(tmp_path: Path) -> None:
    """`connect --env-file F` reads its settings from F and saves there, not to ./.env;
    `--log-level` after it is in force too."""
    env_file = tmp_path / "sync.env"
    async with systems() as (odoo, clientify, url):
        settings = good_settings(odoo, clientify, url)
        env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
        args = ("connect", "--public-url", "https://sync.example.com/", "--env-file", str(env_file))
        code, _out, err = await run(*args, env=environment(), cwd=tmp_path)
        assert code == 0, err
        assert "connected to Odoo" not in err  # a DEBUG line of `connect`
        saved = read_env(env_file)
        assert {**saved, "WEBHOOK_SECRET": ""} == {**settings, "WEBHOOK_SECRET": ""}
        assert not (tmp_path / ".env").exists()

        code, _out, err = await run(*args, "--log-level", "DEBUG", env=environment(), cwd=tmp_path)
        assert code == 0 and "connected to Odoo 17.0" in err, err
        assert read_env(env_file)["WEBHOOK_SECRET"] == saved["WEBHOOK_SECRET"]


# 17: XML-RPC; 19: JSON-2, whose bearer key tells the user from the key.
@pytest.mark.parametrize("odoo_name", peers(sandboxes=(17, 19)))
async def test_every_wrong_setting_is_named_with_what_to_do_and_nothing_is_saved(
    odoo_name: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    async with systems(odoo_name) as (odoo, clientify, url):
        good = good_settings(odoo, clientify, url)
        not_odoo = url.removesuffix("/v1")  # a web server, but not Odoo
        cases: list[tuple[dict[str, str], tuple[str, ...], str]] = [
            ({"ODOO_URL": NOWHERE}, ("ODOO_URL",), "cannot reach Odoo"),
            ({"ODOO_URL": not_odoo}, ("ODOO_URL",), "does not answer like Odoo"),
            ({"ODOO_DB": "nope"}, ("ODOO_DB",), "Activate the developer mode"),
            ({"ODOO_USER": "bob"}, ("ODOO_USER",), "administrator"),
            ({"ODOO_API_KEY": "f" * 40}, ("ODOO_API_KEY",), "Account Security -> New API"),
            ({"CLIENTIFY_API_KEY": "e" * 40}, ("CLIENTIFY_API_KEY",), "Invalid token"),
            ({"CLIENTIFY_URL": f"{NOWHERE}/v1"}, ("CLIENTIFY_URL",), "no answer"),
            ({"CLIENTIFY_URL": f"{odoo.url}/v1"}, ("CLIENTIFY_URL",), "no such endpoint"),
            # Both systems wrong at once: one run names both.
            ({"ODOO_DB": "nope", "CLIENTIFY_API_KEY": "e" * 40},
             ("ODOO_DB", "CLIENTIFY_API_KEY"), "not connected"),
        ]  # fmt: skip
        for wrong, named, hint in cases:
            env = environment(**{**good, **wrong})
            code, out, err = await run(
                "--env-file", str(env_file), "connect", env=env, cwd=tmp_path
            )
            case = f"Odoo {odoo_name}, {wrong}: {err}"
            assert code == 2, case
            assert err.startswith("error: not connected, nothing saved:"), case
            assert hint in err, case
            steps = {line.split(":")[0].strip() for line in err.splitlines()[2:]}
            assert set(named) <= steps, case
            assert not env_file.exists(), case
            for key in (odoo.api_key, clientify.api_key, "f" * 40, "e" * 40):
                assert key not in out + err, case


async def test_missing_settings_without_a_terminal_list_the_flags_and_variables(
    tmp_path: Path,
) -> None:
    env = environment(ODOO_URL="http://odoo.example.com", CLIENTIFY_API_KEY="k" * 20)
    code, _out, err = await run("connect", "--odoo-user", "admin", env=env, cwd=tmp_path)
    assert code == 2 and "no terminal to ask" in err, err
    assert "ODOO_DB: give --odoo-db, or set it in the environment or .env" in err
    assert "ODOO_API_KEY: set it in the environment or .env" in err
    assert "ODOO_URL" not in err and "ODOO_USER" not in err and "CLIENTIFY_API_KEY" not in err
    code, _out, err = await run(
        "connect", "--odoo-url", "odoo.example.com", "--odoo-db", "x", "--odoo-user", "a",
        env=environment(ODOO_API_KEY="k" * 40, CLIENTIFY_API_KEY="k" * 20), cwd=tmp_path,
    )  # fmt: skip
    assert (code, err.strip()) == (2, "error: ODOO_URL must start with http:// or https://")
    assert not (tmp_path / ".env").exists()


def converse(argv: list[str], env: dict[str, str], cwd: Path, answers: list[str]) -> str:
    """Run `argv` on a pseudo-terminal, typing each answer after each prompt ends the
    output so far; return everything the terminal showed."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=cwd,
        start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    shown, pending, answered_at = b"", list(answers), -1
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.3)[0]:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the other side closed: the command ended
                    break
                shown += chunk
            elif pending and len(shown) > answered_at and shown.rstrip().endswith(b":"):
                # Quiet for a moment after new output ending in "NAME:": a prompt.
                os.write(main, pending.pop(0).encode() + b"\n")
                answered_at = len(shown)
        assert process.wait(timeout=30) == 0, shown.decode(errors="replace")
    finally:
        process.kill()
        os.close(main)
    return shown.decode(errors="replace")


async def test_in_a_terminal_missing_settings_are_asked_and_api_keys_typed_hidden(
    tmp_path: Path,
) -> None:
    async with systems() as (odoo, clientify, url):
        env = environment(TERM="dumb", NO_COLOR="1", CLIENTIFY_URL=url)
        answers = [odoo.url, odoo.db, odoo.login, odoo.api_key, clientify.api_key]
        argv = [COMMAND, "connect"]
        shown = await asyncio.to_thread(converse, argv, env, tmp_path, answers)
    assert "integration is active" in shown, shown
    for name in ("ODOO_URL", "ODOO_DB", "ODOO_USER", "ODOO_API_KEY", "CLIENTIFY_API_KEY"):
        assert f"{name}:" in shown
    assert odoo.url in shown  # plain answers are echoed as typed...
    assert odoo.api_key not in shown and clientify.api_key not in shown  # ...the keys are not
    saved = read_env(tmp_path / ".env")
    assert saved["ODOO_API_KEY"] == odoo.api_key and saved["CLIENTIFY_API_KEY"] == clientify.api_key


@pytest.mark.parametrize("public_url", ["sync.example.com", "ftp://sync.example.com"])
async def test_a_public_url_that_is_not_http_is_refused(public_url: str, tmp_path: Path) -> None:
    code, _out, err = await run(
        "connect", "--public-url", public_url, env=environment(), cwd=tmp_path
    )
    assert code == 2 and "--public-url must start with http:// or https://" in err
