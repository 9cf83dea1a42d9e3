"""`clientify-odoo sandbox odoo`: a local Odoo 14-19 external API, for the demo, the
tests and the benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.cli.service import serve_until_stopped
from clientify_odoo.settings import SANDBOX_API_KEY
from connectors.faults import Faults
from connectors.odoo.sandbox import (
    SUPPORTED_VERSIONS,
    Credentials,
    DataDirError,
    Profile,
    ProfileError,
    create_app,
    open_database,
    parse_modules,
    seed,
)

DEFAULT_SANDBOX_PORT = 8069  # Odoo's own
DEFAULT_PROFILE = 17


def _default_sandbox_dir(profile: int) -> Path:
    return Path(user_data_dir("clientify-odoo")) / f"odoo-sandbox-{profile}"


def _sandbox(args: argparse.Namespace, context: Context) -> int:
    if not 0 <= args.error_rate <= 1:
        raise CommandError(
            f"--error-rate must be between 0 and 1, got {args.error_rate}", exit_code=2
        )
    if args.latency_ms < 0 or args.seed < 0:
        raise CommandError("--latency-ms and --seed must not be negative", exit_code=2)
    api_key = args.api_key or os.environ.get(SANDBOX_API_KEY, "")
    try:
        profile = Profile(args.profile, parse_modules(args.modules), args.saas)
        data_dir = args.data_dir or _default_sandbox_dir(args.profile)
        database = open_database(profile, Credentials(args.db, args.login, api_key), data_dir)
    except (ProfileError, DataDirError) as exc:
        raise CommandError(str(exc), exit_code=2) from None
    if args.seed and not database.store.table("res.partner"):
        with context.console.status(f"Seeding {args.seed} partners, products and orders..."):
            report = seed(database, args.seed, args.seed, args.seed)
        context.console.print(
            f"Seeded {report.partners} partners, {report.products} products, {report.orders} orders"
        )
    elif args.seed:
        context.console.print("The database already has partners: not seeding again")
    faults = Faults(latency_ms=args.latency_ms, error_rate=args.error_rate)
    credentials = database.credentials

    # A key given with --api-key is known to whoever gave it; printed, it would end in
    # the service's log (`up` keeps one per service). Only a key made here is shown.
    key = f"as given with --api-key or {SANDBOX_API_KEY}" if api_key else credentials.api_key

    def started(port: int) -> None:
        url = f"http://{args.host}:{port}"
        modules = ", ".join(sorted(profile.modules)) or "none"
        context.console.print(
            f"Odoo {profile.server_version} sandbox (modules: {modules}) listening at {url}\n"
            f"  database: {credentials.db}\n  login:    {credentials.login}\n"
            f"  API key:  {key}\n  data:     {data_dir}\n"
            f"  use it with: ODOO_URL={url} ODOO_DB={credentials.db} "
            f"ODOO_USER={credentials.login} ODOO_API_KEY=<the key above>\n"
            f"  faults: {args.latency_ms:g} ms latency, {args.error_rate:g} error rate; "
            "Ctrl-C stops",
            highlight=False,
            soft_wrap=True,
        )

    try:
        asyncio.run(
            serve_until_stopped(create_app(database, faults), args.host, args.port, started)
        )
    except OSError as exc:
        database.close()
        raise CommandError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): "
            "choose another --port (0 picks a free one)",
            exit_code=2,
        ) from None
    return 0


def register(kinds: Any) -> None:
    """Add `odoo` under `clientify-odoo sandbox`."""
    parser = kinds.add_parser(
        "odoo",
        help="a local Odoo 14-19 external API (XML-RPC, JSON-RPC, JSON-2 on 19)",
        description=(
            "Serve Odoo's external API as a real server of the chosen version does, quirks "
            "included (fault codes, many2one pairs, False for empty, second-truncated "
            "write_date, per-version fields and states), for res.partner, products, sale "
            "orders, countries, currencies and custom x_ fields, persisted in SQLite. "
            "POST /sandbox/faults (bearer API key) changes the fault knobs while it runs."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_SANDBOX_PORT,
        help=f"port (default {DEFAULT_SANDBOX_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        choices=SUPPORTED_VERSIONS,
        default=DEFAULT_PROFILE,
        help=f"Odoo version to behave as (default {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--saas",
        type=int,
        default=0,
        metavar="MINOR",
        help="report the Odoo Online version saas~<profile>.MINOR instead of <profile>.0",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the SQLite database lives (default: a per-profile user data dir)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="create N partners, N products and N orders in an empty database",
    )
    parser.add_argument("--db", default="odoo", help="database name (default odoo)")
    parser.add_argument("--login", default="admin", help="the API user's login (default admin)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"API key to accept (default: ${SANDBOX_API_KEY}, which keeps it out of `ps`; "
        "else a random 40-hex key, kept in the data dir)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503 (0..1)"
    )
    parser.add_argument(
        "--modules",
        default="account",
        help="optional modules installed, comma-separated: account, sale_stock, "
        "base_automation (automation rules that post webhooks, 17+) (default: account)",
    )
    parser.set_defaults(handler=_sandbox)
