"""Clientify-side commands: `sandbox clientify`, `webhooks serve|secret`, `reconcile`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clientify_odoo.cli.common import (
    CommandError,
    Context,
    add_bootstrap_argument,
    bootstrap_servers,
)
from clientify_odoo.cli.kafka import ensure_registry
from clientify_odoo.cli.metrics_options import (
    add_metrics_arguments,
    metrics_served,
    service_health,
)
from clientify_odoo.cli.serve import serve_until_stopped
from clientify_odoo.services import SERVICE_BY_NAME
from clientify_odoo.settings import (
    SANDBOX_API_KEY,
    SANDBOX_WEBHOOK_TARGET,
    SettingsError,
    clientify_client,
)
from connectors.clientify import ClientifyError
from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions
from connectors.kafka.publisher import Publisher
from producers.clientify.receiver import DEFAULT_MAX_BODY, ReceiverConfig, WebhookReceiver
from producers.clientify.reconcile import DEFAULT_OVERLAP, Reconciler
from schemas.topics import Topics

DEFAULT_SANDBOX_PORT = 8070
DEFAULT_WEBHOOK_PORT = SERVICE_BY_NAME["webhook-receiver"].port  # /health and /metrics too
# A reconciler quiet for this long (and at least 3 intervals) is reported stuck; each
# batch of facts published counts as progress, so a long first pass is not.
RECONCILE_STALE_AFTER = 900.0


# ------------------------------------------------------------------ sandbox clientify


def _sandbox(args: argparse.Namespace, context: Context) -> int:
    if not 0 <= args.error_rate <= 1:
        raise CommandError(f"--error-rate must be between 0 and 1, got {args.error_rate}")
    for flag, value in (("--throttle", args.throttle), ("--latency-ms", args.latency_ms),
                        ("--seed", args.seed)):  # fmt: skip
        if value < 0:
            raise CommandError(f"{flag} must be 0 or more, got {value}")
    api_key = args.api_key or os.environ.get(SANDBOX_API_KEY)
    hook = os.environ.get(SANDBOX_WEBHOOK_TARGET)
    sandbox = ClientifySandbox(
        SandboxOptions(
            data_dir=args.data_dir,
            api_key=api_key,
            throttle_rps=args.throttle,
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            webhooks=not args.no_webhooks,
            webhook_targets=args.webhook_target or ([hook] if hook else []),
            seed=args.seed,
        )
    )

    # Only a key made here is shown: a given one would end in the service's log.
    key = f"as given with --api-key or {SANDBOX_API_KEY}" if api_key else sandbox.api_key

    def started(port: int) -> None:
        url = f"http://{args.host}:{port}/v1/"
        context.console.print(f"Clientify sandbox listening at {url}", highlight=False)
        context.console.print(f"API key: {key}", highlight=False)
        context.console.print(
            f"  use it with: CLIENTIFY_URL={url} CLIENTIFY_API_KEY=<the key above>\n"
            f"  data: {args.data_dir}; throttle: "
            + (f"{args.throttle}/s" if args.throttle else "off")
            + f"; webhooks: {'off' if args.no_webhooks else 'on'}"
            + f" ({len(sandbox.store.hooks())} registered); Ctrl-C stops",
            highlight=False,
        )

    asyncio.run(serve_until_stopped(sandbox.app(), args.host, args.port, started))
    return 0


def register_sandbox(kinds: Any) -> None:
    """Add `clientify` under `clientify-odoo sandbox`."""
    parser = kinds.add_parser(
        "clientify",
        help="a local Clientify REST API v1 (with webhooks, throttling and faults)",
        description=(
            "Serve Clientify's REST API v1 under /v1/ as api.clientify.net does, quirks "
            "included (404 for a missing key, HTML 404 for unknown paths, DRF pages and "
            "field errors, orders without update), persisted in SQLite. Saves POST "
            "webhooks to the registered targets; /_admin/ changes knobs while it runs."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT, help="0 picks one")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(user_data_dir("clientify-odoo")) / "clientify",
        help="where the SQLite file lives (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--throttle", type=float, default=0.0, metavar="RPS",
        help="answer 429 above this many requests per second, as DRF does (0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N",
        help="top up to N demo companies, contacts and products (Spanish data)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key", default=None,
        help=f"the key clients must send (default: ${SANDBOX_API_KEY}, which keeps it out of "
        "`ps`; else kept or generated)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-target", action="append", default=[], metavar="URL",
        help="POST every contact/company/product save and delete here (repeatable; "
        f"default: ${SANDBOX_WEBHOOK_TARGET}, for a URL holding a secret)",
    )  # fmt: skip
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added per request")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503 (0..1)"
    )
    parser.add_argument("--no-webhooks", action="store_true", help="send no webhooks at all")
    parser.set_defaults(handler=_sandbox)


# ------------------------------------------------------------------ webhooks


def _webhooks_serve(args: argparse.Namespace, context: Context) -> int:
    secret = context.settings.webhook_secret
    if secret is None:
        raise CommandError(
            "WEBHOOK_SECRET is not set. Run `clientify-odoo webhooks secret` once, then "
            "register the URL it prints in Clientify (settings -> webhooks)."
        )
    try:
        config = ReceiverConfig(
            secret=secret.get_secret_value(),
            topics=Topics(context.settings.topic_prefix),
            allowed_networks=ReceiverConfig.networks(args.allow_ip),
            trusted_proxies=ReceiverConfig.networks(args.trust_proxy),
            max_body_bytes=args.max_body_bytes,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    bootstrap = bootstrap_servers(args, context)
    ensure_registry(bootstrap, context)

    async def serve() -> None:
        async with Publisher(bootstrap, client_id="clientify-webhooks") as publisher:
            health = service_health("webhook-receiver")
            receiver = WebhookReceiver(config, publisher, health=health)

            def started(port: int) -> None:
                context.console.print(
                    f"Receiving Clientify webhooks on http://{args.host}:{port}/hooks/<secret> "
                    f"(health: /health, metrics: /metrics); facts go to {bootstrap}",
                    highlight=False,
                )

            await serve_until_stopped(receiver.app(), args.host, args.port, started)

    asyncio.run(serve())
    return 0


def _env_file(args: argparse.Namespace) -> Path:
    return Path(args.env_file) if args.env_file else Path(".env")


def write_setting(path: Path, name: str, value: str) -> None:
    """Set `name=value` in an env file, keeping every other line; the file is 0600, and
    made so before the value is written (a secret is never readable by others)."""
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    lines = path.read_text().splitlines()
    kept = [line for line in lines if not line.strip().startswith(f"{name}=")]
    path.write_text("\n".join([*kept, f"{name}={value}"]) + "\n")


def new_webhook_secret() -> str:
    """The secret path segment of the webhook URL: 43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


def _webhooks_secret(args: argparse.Namespace, context: Context) -> int:
    if context.settings.webhook_secret is not None and not args.rotate:
        raise CommandError(
            "a webhook secret already exists (it was shown once, when it was made). "
            "Run with --rotate to replace it, then update the webhook URLs in Clientify."
        )
    secret = new_webhook_secret()
    path = _env_file(args)
    write_setting(path, "WEBHOOK_SECRET", secret)
    context.console.print(
        f"{'New' if args.rotate else 'Webhook'} secret saved as WEBHOOK_SECRET in {path}.\n"
        "Register this URL in Clientify (settings -> webhooks) for contact.saved, "
        "company.saved and product.saved; it is shown only now:\n\n"
        f"  https://<your receiver host>/hooks/{secret}\n",
        highlight=False,
    )
    if args.rotate:
        context.console.print("The old URL stops working when the receiver restarts.")
    return 0


# ------------------------------------------------------------------ reconcile


def _reconcile(args: argparse.Namespace, context: Context) -> int:
    if args.interval <= 0 or args.overlap < 0:
        raise CommandError(
            f"--interval must be > 0 and --overlap >= 0 (got {args.interval} and {args.overlap})"
        )
    settings = context.settings
    try:
        client = clientify_client(settings)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    bootstrap = bootstrap_servers(args, context)
    health = service_health("reconciler", stale_after=max(RECONCILE_STALE_AFTER, 3 * args.interval))

    async def run() -> None:
        async with client, Publisher(bootstrap, client_id="clientify-reconcile") as publisher:
            await client.check_key()
            reconciler = Reconciler(
                client,
                publisher,
                Topics(settings.topic_prefix),
                bootstrap,
                overlap=timedelta(seconds=args.overlap),
                health=health,
            )
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=context.console,
            ) as progress:  # fmt: skip
                tasks: dict[str, Any] = {}

                def advance(entity: str, done: int, total: int | None) -> None:
                    if entity not in tasks:
                        tasks[entity] = progress.add_task(f"Clientify {entity}s", total=total)
                    progress.update(tasks[entity], completed=done)

                reconciler.progress = advance
                report = await reconciler.run_once()
            context.console.print(f"First pass done; new facts: {report.emitted}")
            if args.once:
                return
            reconciler.progress = None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            context.console.print(f"Reconciling every {args.interval:.0f}s; Ctrl-C stops")
            await reconciler.run(args.interval, stop)

    # A single pass (--once) serves nothing: it would take the running service's port.
    with contextlib.nullcontext() if args.once else metrics_served(args, context, health):
        ensure_registry(bootstrap, context)
        try:
            asyncio.run(run())
        except ClientifyError as exc:
            raise CommandError(str(exc)) from None
    return 0


def register(subparsers: Any) -> None:
    """Add the Clientify-side top-level commands."""
    webhooks = subparsers.add_parser(
        "webhooks",
        help="receive Clientify webhooks as facts on Kafka (serve), or make their secret",
        description=(
            "Clientify does not sign webhooks, so the receiver's URL carries a secret. "
            "`secret` makes one (shown once; --rotate replaces it); `serve` answers "
            "2xx only once the fact is acknowledged by Kafka, 503 while Kafka is down."
        ),
    )
    actions = webhooks.add_subparsers(dest="action", metavar="<action>", required=True)
    serve = actions.add_parser("serve", help="run the webhook receiver")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_WEBHOOK_PORT, help="port (0: any)")
    serve.add_argument(
        "--allow-ip", action="append", default=[], metavar="CIDR",
        help="accept webhooks only from these addresses/networks (repeatable; default: any)",
    )  # fmt: skip
    serve.add_argument(
        "--trust-proxy", action="append", default=[], metavar="CIDR",
        help="reverse proxies whose X-Forwarded-For names the real sender (repeatable)",
    )  # fmt: skip
    serve.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY,
        help="refuse larger bodies with 413 (default %(default)s)",
    )  # fmt: skip
    add_bootstrap_argument(serve)
    serve.set_defaults(handler=_webhooks_serve)
    secret = actions.add_parser(
        "secret", help="create the webhook URL secret (shown once) and save it in .env"
    )
    secret.add_argument("--rotate", action="store_true", help="replace an existing secret")
    secret.set_defaults(handler=_webhooks_secret)

    reconcile = subparsers.add_parser(
        "reconcile",
        help="catch Clientify changes webhooks missed (first run: full sync with progress)",
        description=(
            "List Clientify records modified since the last pass (with an overlap) and "
            "publish a fact for every version not published before. Without a cursor "
            "in clientify.cursors the first pass reads everything (initial full sync)."
        ),
    )
    reconcile.add_argument("--once", action="store_true", help="one pass, then exit")
    add_metrics_arguments(reconcile, "reconciler")
    reconcile.add_argument(
        "--interval", type=float, default=300.0, help="seconds between passes (default 300)"
    )
    reconcile.add_argument(
        "--overlap", type=float, default=DEFAULT_OVERLAP.total_seconds(),
        help="seconds re-read before the cursor (default %(default)s)",
    )  # fmt: skip
    add_bootstrap_argument(reconcile)
    reconcile.set_defaults(handler=_reconcile)
