"""`clientify-odoo webhooks serve|secret`: Clientify's webhooks in as facts, and Odoo's
as hints (when ODOO_HOOK_SECRET is set), on Kafka."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from clientify_odoo.cli.options import (
    CommandError,
    Context,
    add_bootstrap_argument,
    bootstrap_servers,
)
from clientify_odoo.cli.service import ensure_declared_topics, serve_until_stopped, service_health
from clientify_odoo.services import SERVICE_BY_NAME
from clientify_odoo.settings import write_env_file
from connectors.kafka.publisher import Publisher
from producers.receiver import (
    DEFAULT_MAX_BODY,
    ReceiverConfig,
    WebhookReceiver,
    new_secret,
)
from schemas.topics import Topics

DEFAULT_WEBHOOK_PORT = SERVICE_BY_NAME["webhook-receiver"].port  # /health and /metrics too


def _webhooks_serve(args: argparse.Namespace, context: Context) -> int:
    secret = context.settings.webhook_secret
    if secret is None:
        raise CommandError(
            "WEBHOOK_SECRET is not set. Run `clientify-odoo webhooks secret` once, then "
            "register the URL it prints in Clientify (settings -> webhooks)."
        )
    odoo_secret = context.settings.odoo_hook_secret
    try:
        config = ReceiverConfig(
            secret=secret.get_secret_value(),
            odoo_secret=odoo_secret.get_secret_value() if odoo_secret else None,
            topics=Topics(context.settings.topic_prefix),
            allowed_networks=ReceiverConfig.networks(args.allow_ip),
            trusted_proxies=ReceiverConfig.networks(args.trust_proxy),
            max_body_bytes=args.max_body_bytes,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    bootstrap = bootstrap_servers(args, context)

    async def serve() -> None:
        await ensure_declared_topics(bootstrap, Topics(context.settings.topic_prefix))
        async with Publisher(bootstrap, client_id="clientify-webhooks") as publisher:
            health = service_health("webhook-receiver")
            receiver = WebhookReceiver(config, publisher, health=health)

            def started(port: int) -> None:
                odoo = (
                    " and Odoo's on /hooks/odoo/<odoo secret>" if odoo_secret else
                    " (Odoo's hook is off: ODOO_HOOK_SECRET is not set)"
                )  # fmt: skip
                context.console.print(
                    f"Receiving Clientify webhooks on http://{args.host}:{port}/hooks/<secret>"
                    f"{odoo} (health: /health, metrics: /metrics); to Kafka at {bootstrap}",
                    highlight=False,
                )

            await serve_until_stopped(receiver.app(), args.host, args.port, started)

    asyncio.run(serve())
    return 0


def _env_file(args: argparse.Namespace) -> Path:
    return Path(args.env_file) if args.env_file else Path(".env")


def _webhooks_secret(args: argparse.Namespace, context: Context) -> int:
    if context.settings.webhook_secret is not None and not args.rotate:
        raise CommandError(
            "a webhook secret already exists (it was shown once, when it was made). "
            "Run with --rotate to replace it, then update the webhook URLs in Clientify."
        )
    secret = new_secret()
    path = _env_file(args)
    write_env_file(path, {"WEBHOOK_SECRET": secret})
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
        "--allow-ip",
        action="append",
        default=[],
        metavar="CIDR",
        help="accept webhooks only from these addresses/networks (repeatable; default: any)",
    )
    serve.add_argument(
        "--trust-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="reverse proxies whose X-Forwarded-For names the real sender (repeatable)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY,
        help="refuse larger bodies with 413 (default %(default)s)",
    )
    add_bootstrap_argument(serve)
    serve.set_defaults(handler=_webhooks_serve)
    secret = actions.add_parser(
        "secret", help="create the webhook URL secret (shown once) and save it in .env"
    )
    secret.add_argument("--rotate", action="store_true", help="replace an existing secret")
    secret.set_defaults(handler=_webhooks_secret)
