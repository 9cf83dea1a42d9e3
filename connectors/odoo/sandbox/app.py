"""The sandbox's aiohttp application: Odoo's routes, fault injection and a small admin API.

Routes (odoo-api.md section 8): `/xmlrpc/2/{common,object,db}`, `/jsonrpc`, and on
profile 19 `/json/2/<model>/<method>` and `/web/version`. `/sandbox/faults` (bearer API
key) changes the latency and error knobs while it runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from connectors.faults import Faults, Handler, fault_middleware
from connectors.odoo.sandbox.database import Credentials, Database
from connectors.odoo.sandbox.profiles import Profile
from connectors.odoo.sandbox.protocols import (
    DATABASE,
    json2_handler,
    jsonrpc_handler,
    web_version,
    xmlrpc_handler,
)


@dataclass
class RequestStats:
    """What clients did, for tests and `/sandbox/info`: politeness is observable."""

    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    connections: set[tuple[str, int]] = field(default_factory=set)
    user_agents: set[str] = field(default_factory=set)
    paths: Counter[str] = field(default_factory=Counter)


FAULTS: web.AppKey[Faults] = web.AppKey("faults", Faults)
STATS: web.AppKey[RequestStats] = web.AppKey("stats", RequestStats)


def _counting(stats: RequestStats) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        stats.requests += 1
        stats.paths[request.path] += 1
        stats.user_agents.add(request.headers.get("User-Agent", ""))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            stats.connections.add((str(peer[0]), int(peer[1])))
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await handler(request)
        finally:
            stats.in_flight -= 1

    return middleware


ADMIN_PREFIX = "/sandbox/"
DB_FILE = "odoo.sqlite3"


def open_database(profile: Profile, credentials: Credentials, data_dir: Path | None) -> Database:
    """The database in `data_dir` (created on first use), or in memory without one."""
    if data_dir is None:
        return Database(profile, credentials, None)
    data_dir.mkdir(parents=True, exist_ok=True)
    return Database(profile, credentials, data_dir / DB_FILE)


def _unavailable(status: int) -> web.StreamResponse:
    # What a proxy in front of a busy or restarting Odoo sends: an HTML error page.
    return web.Response(
        status=status,
        text=f"<html><body><h1>{status} Service Unavailable</h1></body></html>",
        content_type="text/html",
    )


def create_app(database: Database, faults: Faults | None = None) -> web.Application:
    faults = faults or Faults()
    injector = fault_middleware(
        faults, _unavailable, lambda request: request.path.startswith(ADMIN_PREFIX)
    )
    # The middleware is a plain callable; aiohttp's Middleware protocol only differs
    # in naming its parameters.
    stats = RequestStats()
    app = web.Application(
        middlewares=[_counting(stats), cast(Middleware, injector)],
        client_max_size=64 * 1024**2,
    )
    app[STATS] = stats
    app[DATABASE] = database
    app[FAULTS] = faults
    warned: set[str] = set()
    for service in ("common", "object", "db"):
        app.router.add_post(f"/xmlrpc/2/{service}", xmlrpc_handler(database, service, warned))
    app.router.add_post("/jsonrpc", jsonrpc_handler(database, warned))
    if database.profile.has_json2:
        app.router.add_post("/json/2/{model}/{method}", json2_handler(database))
        app.router.add_get("/web/version", web_version)
    app.router.add_get(ADMIN_PREFIX + "info", _info)
    app.router.add_post(ADMIN_PREFIX + "faults", _set_faults)
    app.on_cleanup.append(_close)
    return app


async def _close(app: web.Application) -> None:
    await app[DATABASE].poster.close()
    app[DATABASE].close()


async def _info(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    return web.json_response(
        {
            "version": database.profile.server_version,
            "modules": sorted(database.profile.modules),
            "db": database.credentials.db,
            "login": database.credentials.login,
            "requests": request.app[STATS].requests,
            "records": {
                name: len(database.store.table(name))
                for name in ("res.partner", "product.product", "sale.order", "sale.order.line")
            },
        }
    )


async def _set_faults(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    if request.headers.get("Authorization", "") != f"bearer {database.credentials.api_key}":
        return web.json_response({"error": "send Authorization: bearer <api key>"}, status=401)
    body: Any = await request.json()
    faults = request.app[FAULTS]
    try:
        latency = float(body.get("latency_ms", faults.latency_ms))
        rate = float(body.get("error_rate", faults.error_rate))
        status = int(body.get("error_status", faults.error_status))
        collisions = int(body.get("serialization_failures", database.serialization_failures))
        delay = float(body.get("commit_delay_ms", database.commit_delay * 1000))
        drops = float(body.get("webhook_drop_rate", database.poster.drop_rate))
    except (TypeError, ValueError, AttributeError):
        return web.json_response({"error": "numbers expected"}, status=400)
    if (
        latency < 0 or not 0 <= rate <= 1 or not 500 <= status <= 599 or collisions < 0
        or delay < 0 or not 0 <= drops <= 1
    ):  # fmt: skip
        return web.json_response(
            {"error": "latency_ms >= 0, 0 <= error_rate <= 1, error_status 5xx, "
             "serialization_failures >= 0, commit_delay_ms >= 0, 0 <= webhook_drop_rate <= 1"},
            status=400,
        )  # fmt: skip
    faults.latency_ms, faults.error_rate, faults.error_status = latency, rate, status
    database.serialization_failures = collisions
    database.commit_delay, database.poster.drop_rate = delay / 1000, drops
    return web.json_response(
        {"latency_ms": latency, "error_rate": rate, "error_status": status,
         "serialization_failures": collisions, "commit_delay_ms": delay,
         "webhook_drop_rate": drops}
    )  # fmt: skip
