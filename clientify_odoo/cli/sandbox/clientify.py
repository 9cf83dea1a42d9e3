"""`clientify-odoo sandbox clientify`: a local Clientify REST API v1, with webhooks,
throttling and faults, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.cli.service import serve_until_stopped
from clientify_odoo.settings import SANDBOX_API_KEY, SANDBOX_WEBHOOK_TARGET
from connectors.clientify.sandbox.app import ClientifySandbox, SandboxOptions

DEFAULT_SANDBOX_PORT = 8070


def _sandbox(args: argparse.Namespace, context: Context) -> int:
    if not 0 <= args.error_rate <= 1:
        raise CommandError(f"--error-rate must be between 0 and 1, got {args.error_rate}")
    for flag, value in (
        ("--throttle", args.throttle),
        ("--latency-ms", args.latency_ms),
        ("--seed", args.seed),
    ):
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


def register(kinds: Any) -> None:
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
        "--data-dir",
        type=Path,
        default=Path(user_data_dir("clientify-odoo")) / "clientify",
        help="where the SQLite file lives (default: %(default)s)",
    )
    parser.add_argument(
        "--throttle",
        type=float,
        default=0.0,
        metavar="RPS",
        help="answer 429 above this many requests per second, as DRF does (0: off)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="top up to N demo companies, contacts and products (Spanish data)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"the key clients must send (default: ${SANDBOX_API_KEY}, which keeps it out of "
        "`ps`; else kept or generated)",
    )
    parser.add_argument(
        "--webhook-target",
        action="append",
        default=[],
        metavar="URL",
        help="POST every contact/company/product save and delete here (repeatable; "
        f"default: ${SANDBOX_WEBHOOK_TARGET}, for a URL holding a secret)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added per request")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests answered 503 (0..1)"
    )
    parser.add_argument("--no-webhooks", action="store_true", help="send no webhooks at all")
    parser.set_defaults(handler=_sandbox)
