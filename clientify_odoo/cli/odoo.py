"""Odoo-side commands: `sandbox odoo` (a local Odoo) and `poll odoo` (the change poller)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from platformdirs import user_data_dir
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from clientify_odoo.cli.common import CommandError, Context
from clientify_odoo.cli.kafka import add_broker_arguments, start_broker
from clientify_odoo.cli.metrics_options import (
    add_metrics_arguments,
    metrics_served,
    service_health,
)
from clientify_odoo.cli.serve import serve_until_stopped
from clientify_odoo.settings import SANDBOX_API_KEY, odoo_config
from connectors.faults import Faults
from connectors.kafka.admin import list_topics
from connectors.kafka.publisher import Publisher
from connectors.kafka.reader import ReadError
from connectors.odoo import OdooClient, OdooConfig, OdooConfigError, OdooError
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
from producers.odoo import (
    OdooPoller,
    PollerError,
    PollerOptions,
    PollReport,
    transactional_id,
)
from producers.odoo.cursor import CursorError
from schemas.health import ServiceHealth
from schemas.topics import ODOO_CURSORS, ODOO_PARTNER, ODOO_PRODUCT, ODOO_SALE_ORDER, Topics

DEFAULT_SANDBOX_PORT = 8069  # Odoo's own
DEFAULT_PROFILE = 17
# A poller quiet for this long (and at least 4 intervals) is reported stuck on /health;
# every page read counts as progress, so only a hung request or loop gets there.
STALE_AFTER = 120.0

# ------------------------------------------------------------------ sandbox odoo


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


def register_sandbox(kinds: Any) -> None:
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
        "--port", type=int, default=DEFAULT_SANDBOX_PORT,
        help=f"port (default {DEFAULT_SANDBOX_PORT}; 0 picks a free one)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, choices=SUPPORTED_VERSIONS, default=DEFAULT_PROFILE,
        help=f"Odoo version to behave as (default {DEFAULT_PROFILE})",
    )  # fmt: skip
    parser.add_argument(
        "--saas", type=int, default=0, metavar="MINOR",
        help="report the Odoo Online version saas~<profile>.MINOR instead of <profile>.0",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="where the SQLite database lives (default: a per-profile user data dir)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N",
        help="create N partners, N products and N orders in an empty database",
    )  # fmt: skip
    parser.add_argument("--db", default="odoo", help="database name (default odoo)")
    parser.add_argument("--login", default="admin", help="the API user's login (default admin)")
    parser.add_argument(
        "--api-key", default=None,
        help=f"API key to accept (default: ${SANDBOX_API_KEY}, which keeps it out of `ps`; "
        "else a random 40-hex key, kept in the data dir)",
    )  # fmt: skip
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503 (0..1)"
    )
    parser.add_argument(
        "--modules", default="account",
        help="optional modules installed, comma-separated: account, sale_stock "
        "(default: account)",
    )  # fmt: skip
    parser.set_defaults(handler=_sandbox)


# ------------------------------------------------------------------ poll odoo


class _Bar:
    """The backfill's progress on a rich bar with rate and ETA."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("Backfill from Odoo", total=None)

    def total(self, count: int) -> None:
        self._progress.update(self._task, total=count)

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s", style="progress.data.speed")


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _summary(report: PollReport) -> str:
    facts = ", ".join(f"{count} {entity}" for entity, count in sorted(report.facts.items()))
    rate = report.scanned / report.seconds if report.seconds else 0.0
    return (
        f"{report.published} facts published ({facts or 'no changes'}); "
        f"{report.scanned} rows scanned in {report.seconds:.1f}s ({rate:.0f} rows/s)"
    )


async def _check_topics(bootstrap: str, topics: Topics) -> None:
    wanted = topics.names((ODOO_PARTNER, ODOO_PRODUCT, ODOO_SALE_ORDER, ODOO_CURSORS))
    present = set(await list_topics(bootstrap))
    missing = [name for name in wanted if name not in present]
    if missing:
        raise CommandError(
            f"Kafka topics missing: {', '.join(missing)}; create them with "
            "`clientify-odoo kafka topics`"
        )


async def _poll_odoo(
    args: argparse.Namespace,
    context: Context,
    config: OdooConfig,
    bootstrap: str,
    health: ServiceHealth,
) -> None:
    topics = Topics(context.settings.topic_prefix)
    options = PollerOptions(page_size=args.page_size, interval=args.interval, overlap=args.overlap)
    await _check_topics(bootstrap, topics)
    async with OdooClient(config) as client:
        context.console.print(
            f"Connected to Odoo {client.version} at {config.url} (db {config.db}, "
            f"{client.protocol})",
            highlight=False,
        )
        publisher = Publisher(
            bootstrap,
            client_id="clientify-odoo-poller",
            transactional_id=transactional_id(topics, config.db),
        )
        async with publisher:
            poller = OdooPoller(
                client, publisher, bootstrap, topics=topics, options=options, health=health
            )
            await poller.start()
            if args.once:
                context.console.print(_summary(await poller.poll_once()))
                return
            with _progress_bar(context.console) as bar:
                report = await poller.backfill(_Bar(bar))
            context.console.print(_summary(report))
            if args.backfill:
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            context.console.print(
                f"Polling every {args.interval:g}s (overlap {args.overlap:g}s); Ctrl-C stops"
            )
            await poller.run(stop)


def _poll(args: argparse.Namespace, context: Context) -> int:
    try:
        config = odoo_config(context.settings, protocol=args.protocol)
    except (OdooConfigError, ValueError) as exc:
        raise CommandError(str(exc).splitlines()[0], exit_code=2) from None
    health = service_health("odoo-poller", stale_after=max(STALE_AFTER, 4 * args.interval))
    # One-shot runs serve nothing: they end before a scrape, and would take the port
    # of the poller service running beside them.
    one_shot = args.once or args.backfill
    with contextlib.nullcontext() if one_shot else metrics_served(args, context, health):
        bootstrap = start_broker(args, context)
        try:
            asyncio.run(_poll_odoo(args, context, config, bootstrap, health))
        except OdooConfigError as exc:
            raise CommandError(str(exc), exit_code=2) from None
        except OdooError as exc:
            raise CommandError(f"Odoo: {exc}") from None
        except (KafkaError, ReadError, CursorError, PollerError) as exc:
            raise CommandError(f"Kafka at {bootstrap}: {exc}") from None
    return 0


def register(subparsers: Any) -> None:
    """Add the Odoo-side top-level commands."""
    poll = subparsers.add_parser(
        "poll",
        help="poll a source system for changes and publish them as facts",
        description="Poll a source system for changes and publish them as facts on Kafka.",
    )
    systems = poll.add_subparsers(dest="system", metavar="<system>", required=True)
    odoo = systems.add_parser(
        "odoo",
        help="publish Odoo partner, product and order changes (backfill first)",
        description=(
            "Read changed partners, products and sale orders from Odoo (ODOO_URL, ODOO_USER, "
            "ODOO_API_KEY, ODOO_DB) by write_date and publish each new version as a fact "
            "on odoo.partner, odoo.product and odoo.sale_order. The cursor is stored in "
            "odoo.cursors in the same Kafka transaction as the facts, so a crash or kill "
            "resumes where it stopped. The first run backfills everything, with a progress "
            "bar; then it polls every --interval seconds."
        ),
    )
    mode = odoo.add_mutually_exclusive_group()
    mode.add_argument(
        "--backfill", action="store_true", help="catch up to now (with progress), then exit"
    )
    mode.add_argument("--once", action="store_true", help="one poll cycle, then exit")
    odoo.add_argument(
        "--interval", type=float, default=5.0, help="seconds between polls (default 5)"
    )
    odoo.add_argument(
        "--page-size", type=int, default=200, help="records per request (default 200)"
    )
    odoo.add_argument(
        "--overlap", type=float, default=240.0,
        help="seconds re-scanned behind the cursor for late commits (default 240)",
    )  # fmt: skip
    odoo.add_argument(
        "--protocol", choices=["auto", "xmlrpc", "jsonrpc", "json2"], default="auto",
        help="wire protocol (default auto: JSON-2 on Odoo 19+, XML-RPC below)",
    )  # fmt: skip
    add_broker_arguments(odoo)
    add_metrics_arguments(odoo, "odoo-poller")
    odoo.set_defaults(handler=_poll)
