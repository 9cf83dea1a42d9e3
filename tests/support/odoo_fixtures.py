"""A real sandbox Odoo served over HTTP on 127.0.0.1 for the Odoo tests.

The server runs in the test's own event loop (aiohttp's TestServer binds a free port),
so tests talk to it through real sockets with the real client, and can also reach in
to turn its knobs (faults, clock) the way an operator would.
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from connectors.faults import Faults
from connectors.kafka.publisher import Publisher
from connectors.kafka.reader import read_to_end
from connectors.odoo import OdooClient, OdooConfig
from connectors.odoo.sandbox import Credentials, Database, Profile, create_app, open_database
from connectors.odoo.sandbox.app import STATS, RequestStats
from producers.odoo import transactional_id
from schemas import Fact, decode
from schemas.topics import Topics
from tests.support.real_odoo import REAL_VERSIONS, real_odoo

API_KEY = "0123456789abcdef0123456789abcdef01234567"
DB = "sandbox"
LOGIN = "admin"
ALL_MODULES = frozenset({"account", "sale_stock"})


@dataclass
class Sandbox:
    url: str
    database: Database
    faults: Faults
    stats: RequestStats
    session: aiohttp.ClientSession

    @property
    def version(self) -> int:
        return self.database.profile.version

    def config(self, **overrides: Any) -> OdooConfig:
        values: dict[str, Any] = {
            "url": self.url, "db": DB, "login": LOGIN, "api_key": SecretStr(API_KEY),
            "retries": 2, "backoff_base": 0.01, "backoff_max": 0.05,
        }  # fmt: skip
        values.update(overrides)
        return OdooConfig(**values)

    def client(self, **overrides: Any) -> OdooClient:
        return OdooClient(self.config(**overrides))

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (Odoo's write_date comes from it)."""
        self.database.clock_offset += timedelta(seconds=seconds)

    # -- raw wire access, to test the protocol itself

    async def xmlrpc(self, service: str, method: str, *args: Any) -> Any:
        body = xmlrpc.client.dumps(args, method, allow_none=False)
        async with self.session.post(f"{self.url}/xmlrpc/2/{service}", data=body) as reply:
            assert reply.status == 200, reply.status
            text = await reply.read()
        (result,), _ = xmlrpc.client.loads(text, use_builtin_types=True)
        return result

    async def execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.xmlrpc(
            "object", "execute_kw", DB, 2, API_KEY, model, method, list(args), kwargs
        )

    async def jsonrpc(self, service: str, method: str, *args: Any) -> dict[str, Any]:
        request = {
            "jsonrpc": "2.0", "method": "call", "id": 7,
            "params": {"service": service, "method": method, "args": list(args)},
        }  # fmt: skip
        async with self.session.post(f"{self.url}/jsonrpc", json=request) as reply:
            assert reply.status == 200
            answer: dict[str, Any] = await reply.json()
        return answer

    async def json2(
        self, model: str, method: str, key: str = API_KEY, **body: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"bearer {key}", "X-Odoo-Database": DB}
        async with self.session.post(
            f"{self.url}/json/2/{model}/{method}", json=body, headers=headers
        ) as reply:
            return reply.status, await reply.json()


@asynccontextmanager
async def running_sandbox(
    version: int,
    modules: frozenset[str] = ALL_MODULES,
    data_dir: Path | None = None,
    saas_minor: int = 0,
) -> AsyncIterator[Sandbox]:
    profile = Profile(version, modules, saas_minor)
    database = open_database(profile, Credentials(DB, LOGIN, API_KEY), data_dir)
    faults = Faults(seed=1)
    app = create_app(database, faults)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Sandbox(str(server.make_url("")).rstrip("/"), database, faults, app[STATS], session)
    finally:
        await session.close()
        await server.close()


async def facts_on(bootstrap: str, topic: str) -> list[Fact]:
    """Every committed fact on `topic` (aborted transactions excluded)."""
    facts = []
    for record in await read_to_end(bootstrap, [topic], must_exist=True):
        envelope = decode(record.value)
        assert isinstance(envelope, Fact)
        assert record.key.decode() == envelope.source_id  # keyed by the Odoo id
        facts.append(envelope)
    return facts


def transactional_publisher(bootstrap: str, prefix: str) -> Publisher:
    return Publisher(bootstrap, transactional_id=transactional_id(Topics(prefix), DB))


@dataclass
class OdooPeer:
    """An Odoo the tests talk to: a sandbox profile (with its knobs), or a real server."""

    name: str  # sandbox-17, real-17
    version: int
    url: str
    db: str
    login: str
    api_key: str
    sandbox: Sandbox | None = None

    @property
    def real(self) -> bool:
        return self.sandbox is None

    def config(self, **overrides: Any) -> OdooConfig:
        values: dict[str, Any] = {
            "url": self.url, "db": self.db, "login": self.login,
            "api_key": SecretStr(self.api_key), "retries": 2, "backoff_base": 0.01,
            "backoff_max": 0.05,
        }  # fmt: skip
        return OdooConfig(**(values | overrides))

    def client(self, **overrides: Any) -> OdooClient:
        return OdooClient(self.config(**overrides))

    async def next_second(self) -> None:
        """Let the next write land in a later second than the last (Odoo dates records
        by whole seconds): the sandbox's clock is moved, a real server is waited for."""
        if self.sandbox is not None:
            self.sandbox.advance(1)
        else:
            await asyncio.sleep(1.05)


def peers(sandboxes: tuple[int, ...]) -> list[str]:
    """The names of the peers a suite runs against: these sandbox profiles, and every
    real version."""
    return [f"sandbox-{v}" for v in sandboxes] + [f"real-{v}" for v in REAL_VERSIONS]


@asynccontextmanager
async def odoo_peer(name: str, modules: frozenset[str] = ALL_MODULES) -> AsyncIterator[OdooPeer]:
    """`modules`: of a sandbox (a real server has what its database has)."""
    kind, _, number = name.partition("-")
    version = int(number)
    if kind == "real":
        server = await asyncio.to_thread(real_odoo, version)
        yield OdooPeer(name, version, server.url, server.db, server.login, server.api_key)
        return
    async with running_sandbox(version, modules) as sandbox:
        yield OdooPeer(name, version, sandbox.url, DB, LOGIN, API_KEY, sandbox)


async def install_language(client: OdooClient, code: str) -> None:
    """Install a language as an administrator does (Settings -> Languages -> Add)."""
    [lang] = await client.search("res.lang", [("code", "=", code)], context={"active_test": False})
    wizard = await client.create("base.language.install", {"lang_ids": [[6, 0, [lang]]]})
    await client.call("base.language.install", "lang_install", [wizard])
