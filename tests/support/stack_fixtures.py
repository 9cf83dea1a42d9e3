"""The whole product as in production, for end-to-end tests: both sandboxes (or a real
Odoo in place of the Odoo one), the webhook receiver, the Odoo poller, the Faust worker
and both writers, each one a real `clientify-odoo` process talking HTTP and Kafka on
127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from clientify_odoo.stack.broker import free_port_pair
from connectors.clientify import ClientifyClient
from connectors.odoo.client import OdooClient, OdooConfig
from connectors.odoo.errors import OdooConfigError
from schemas import AnyEnvelope, decode
from tests.support.project import REPO
from tests.support.real_odoo import REAL_VERSIONS, RealOdoo, real_odoo

ODOO_KEY = secrets.token_hex(20)
# The services a scaled-out deployment runs several copies of.
COPIED = (
    "webhook-receiver", "worker", "clientify-writer", "odoo-writer", "odoo-poller", "reconciler"
)  # fmt: skip


class SyncStack:
    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        tmp: Path,
        *,
        worker_flags: tuple[str, ...] = (),
        odoo_profile: int = 17,
        odoo_modules: str = "account,sale_stock",
        real_odoo: RealOdoo | None = None,
        copies: int = 1,
    ) -> None:
        """`real_odoo`: sync with that server instead of starting an Odoo sandbox.
        `copies`: run that many copies of every service (as a scaled-out deployment
        does), the webhook receivers behind a balancer on the webhook port."""
        self.bootstrap, self.prefix, self.tmp = bootstrap, prefix, tmp
        self.odoo_port, self.clientify_port, self.hook_port = (
            free_port_pair(), free_port_pair(), free_port_pair(),
        )  # fmt: skip
        self.clientify_key = secrets.token_hex(16)
        self.webhook_secret = secrets.token_urlsafe(24)
        self.real_odoo = real_odoo
        odoo_env = {
            "ODOO_URL": f"http://127.0.0.1:{self.odoo_port}",
            "ODOO_USER": "admin",
            "ODOO_API_KEY": ODOO_KEY,
            "ODOO_DB": "odoo",
        }
        if real_odoo is not None:
            odoo_env = {
                "ODOO_URL": real_odoo.url, "ODOO_USER": real_odoo.login,
                "ODOO_API_KEY": real_odoo.api_key, "ODOO_DB": real_odoo.db,
            }  # fmt: skip
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOPIC_PREFIX": prefix,
            **odoo_env,
            "CLIENTIFY_URL": self.clientify_url,
            "CLIENTIFY_API_KEY": self.clientify_key,
            "WEBHOOK_SECRET": self.webhook_secret,
        }
        hook = f"http://127.0.0.1:{self.hook_port}/hooks/{self.webhook_secret}"
        self.commands: dict[str, list[str]] = {
            "odoo-sandbox": [
                "sandbox", "odoo", "--port", str(self.odoo_port),
                "--profile", str(odoo_profile), "--modules", odoo_modules,
                "--data-dir", str(tmp / "odoo"), "--db", "odoo", "--login", "admin",
                "--api-key", ODOO_KEY,
            ],
            "clientify-sandbox": [
                "sandbox", "clientify", "--port", str(self.clientify_port),
                "--data-dir", str(tmp / "clientify"), "--api-key", self.clientify_key,
                "--webhook-target", hook,
            ],
            "webhook-receiver": ["webhooks", "serve", "--port", str(self.hook_port)],
            "worker": ["worker", "--data-dir", str(tmp / "worker"), *worker_flags],
            "clientify-writer": ["write", "clientify"],
            "odoo-writer": ["write", "odoo"],
            "odoo-poller": ["poll", "odoo", "--interval", "1"],
            # Not started by `up()`: webhooks carry Clientify's changes in most tests.
            "reconciler": ["reconcile", "--interval", "5"],
        }  # fmt: skip
        # /metrics and /health of each service on a port of its own (the receiver's is
        # its webhook port), so parallel runs never meet on the default ports.
        self.metrics_ports = {"webhook-receiver": self.hook_port}
        for name in ("odoo-poller", "reconciler", "worker", "clientify-writer", "odoo-writer"):
            self.metrics_ports[name] = free_port_pair()
            self.commands[name] += ["--metrics-port", str(self.metrics_ports[name])]
        self.copies: dict[str, list[str]] = {name: [name] for name in COPIED}
        if copies > 1:
            self._add_copies(copies, tmp, worker_flags)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _add_copies(self, copies: int, tmp: Path, worker_flags: tuple[str, ...]) -> None:
        """Copies 2.. of every service, each with its own ports, state dir and (for the
        writers) instance name, which is their transactional id."""
        for n in range(2, copies + 1):
            port = free_port_pair()
            commands = {
                "webhook-receiver": ["webhooks", "serve", "--port", str(port)],
                "worker": ["worker", "--data-dir", str(tmp / f"worker-{n}"), *worker_flags],
                "clientify-writer": ["write", "clientify", "--instance", f"copy-{n}"],
                "odoo-writer": ["write", "odoo", "--instance", f"copy-{n}"],
                "odoo-poller": ["poll", "odoo", "--interval", "1"],
                "reconciler": ["reconcile", "--interval", "5"],
            }
            for name, command in commands.items():
                copy = f"{name}-{n}"
                self.metrics_ports[copy] = port if name == "webhook-receiver" else free_port_pair()
                if name != "webhook-receiver":
                    command += ["--metrics-port", str(self.metrics_ports[copy])]
                self.commands[copy] = command
                self.copies[name].append(copy)
        # The webhook port is the balancer's; the first receiver moves to a port of its own.
        first = free_port_pair()
        self.commands["webhook-receiver"] = ["webhooks", "serve", "--port", str(first)]
        self.metrics_ports["webhook-receiver"] = first
        receivers = [self.metrics_ports[name] for name in self.copies["webhook-receiver"]]
        self.commands["balancer"] = [
            "--port", str(self.hook_port), *(f"--upstream={port}" for port in receivers),
        ]  # fmt: skip

    def metrics_url(self, name: str) -> str:
        """Where service `name` serves /metrics and /health."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}"

    @property
    def clientify_url(self) -> str:
        return f"http://127.0.0.1:{self.clientify_port}/v1"

    @property
    def clientify_admin_url(self) -> str:
        """The sandbox's own knobs and counters (not part of Clientify's API)."""
        return f"http://127.0.0.1:{self.clientify_port}/_admin"

    def start(self, name: str) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        module = "tests.support.balancer" if name == "balancer" else "clientify_odoo"
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module, *self.commands[name]],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last `lines` lines service `name` wrote."""
        text = (self.tmp / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.stem}\n{path.read_text(errors='replace')[-2500:]}"
            for path in sorted(self.tmp.glob("*.log"))
        )

    async def up(self) -> None:
        if self.real_odoo is None:
            self.start("odoo-sandbox")
        self.start("clientify-sandbox")
        if self.real_odoo is None:
            await wait_http(f"{self.env['ODOO_URL']}/web/version", self, "odoo-sandbox")
        await wait_http(
            f"{self.clientify_admin_url}/stats/", self, "clientify-sandbox", self.clientify_key
        )
        if "balancer" in self.commands:
            self.start("balancer")
        for name in ("webhook-receiver", "worker", "clientify-writer", "odoo-writer"):
            for copy in self.copies[name]:
                self.start(copy)
        for receiver in self.copies["webhook-receiver"]:
            await wait_http(f"{self.metrics_url(receiver)}/health", self, receiver)
        await wait_http(f"http://127.0.0.1:{self.hook_port}/health", self, "webhook-receiver")
        for copy in self.copies["odoo-poller"]:
            self.start(copy)

    def down(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    @asynccontextmanager
    async def odoo(self) -> AsyncIterator[OdooClient]:
        config = OdooConfig(
            url=self.env["ODOO_URL"], db=self.env["ODOO_DB"], login=self.env["ODOO_USER"],
            api_key=self.env["ODOO_API_KEY"],  # type: ignore[arg-type]
        )  # fmt: skip
        # A client's start-up check tries once, so that a wrong URL fails fast; the
        # chaos runs inject 5xx, which a user would simply try again.
        for attempt in range(5):
            client = OdooClient(config)
            try:
                await client.connect()
                break
            except OdooConfigError:
                await client.close()
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
        try:
            yield client
        finally:
            await client.close()

    @asynccontextmanager
    async def clientify(self) -> AsyncIterator[ClientifyClient]:
        async with ClientifyClient(self.clientify_url, self.clientify_key) as client:
            yield client

    async def clientify_stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            response = await session.get(
                f"{self.clientify_admin_url}/stats/",
                headers={"Authorization": f"Token {self.clientify_key}"},
            )
            stats: dict[str, Any] = await response.json()
            return stats


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    stack: SyncStack | None,
    what: str,
    within: float = 90,
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` (and the stack's
    logs, when there is one) after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.5)
    logs = f"\n{stack.logs()}" if stack is not None else ""
    raise AssertionError(f"never happened within {within:.0f}s: {what}{logs}")


async def wait_http(url: str, stack: SyncStack, name: str, token: str | None = None) -> None:
    headers = {"Authorization": f"Token {token}"} if token else {}
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if stack.processes[name].poll() is not None:
                raise AssertionError(f"{name} exited during start-up:\n{stack.logs()}")
            try:
                async with session.get(url, headers=headers) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{name} did not answer at {url}:\n{stack.logs()}")


async def topic_messages(bootstrap: str, topic: str, settle: float = 1.0) -> list[AnyEnvelope]:
    """Everything on `topic` now (reads until nothing new comes for `settle` seconds)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    out: list[AnyEnvelope] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(settle * 1000))
            if not batch:
                return out
            for records in batch.values():
                out += [decode(record.value) for record in records]
    finally:
        await consumer.stop()


# The Odoos a whole stack runs against: (sandbox or real, version, sandbox modules).
OdooTarget = tuple[str, int, str]
ODOO_TARGETS = [
    pytest.param(("sandbox", 17, "account,sale_stock"), id="sandbox-17"),
    pytest.param(("sandbox", 19, "account"), id="sandbox-19"),
    *(pytest.param(("real", v, ""), id=f"real-{v}") for v in REAL_VERSIONS),
]


def stack_for(target: OdooTarget, bootstrap: str, prefix: str, tmp: Path) -> SyncStack:
    """A stack on that Odoo (a real one is started if it is not running: call it in a
    thread)."""
    kind, version, modules = target
    if kind == "real":
        return SyncStack(bootstrap, prefix, tmp, real_odoo=real_odoo(version))
    return SyncStack(bootstrap, prefix, tmp, odoo_profile=version, odoo_modules=modules)


ACME_KEY = "B12345678"  # the tax id of the company `create_acme` makes by default


async def create_acme(stack: SyncStack, key: str = "B-12.345.678") -> int:
    async with stack.odoo() as odoo:
        [spain] = await odoo.search("res.country", [("code", "=", "ES")])
        partner_id: int = await odoo.create(
            "res.partner",
            {
                "name": "Acme Soluciones", "ref": key, "is_company": True,
                "phone": "+34 911 111 111", "street": "Calle Mayor 1", "city": "Madrid",
                "zip": "28001", "country_id": spain,
            },
        )  # fmt: skip
        return partner_id


async def clientify_company(stack: SyncStack, key: str = ACME_KEY) -> dict[str, Any] | None:
    async with stack.clientify() as clientify:
        found = await clientify.find_by_tax_id(clientify.companies, key)
        return found[0] if len(found) == 1 else None
