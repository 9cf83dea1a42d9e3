"""`clientify-odoo odoo-hooks install|check|remove`: the automation rules that make Odoo
(17+) post a hint to the receiver when a record changes, so a change syncs in about a
second instead of at the next poll."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from clientify_odoo.cli.connect import public_url
from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.logs import secret_filter
from clientify_odoo.odoo_hooks import HOOK_RULES, ODOO_HOOK_PATH, odoo_hook_url
from clientify_odoo.settings import odoo_config, write_env_file
from connectors.odoo import OdooClient, OdooConfigError, OdooError
from connectors.odoo.automation import (
    AutomationUnavailable,
    check_rules,
    install_rules,
    remove_rules,
)
from producers.receiver import new_secret


def hook_secret(context: Context, env_file: Path) -> str:
    """ODOO_HOOK_SECRET, made and saved in `env_file` the first time."""
    existing = context.settings.odoo_hook_secret
    if existing is not None:
        return existing.get_secret_value()
    secret = new_secret()
    secret_filter().add(secret)
    write_env_file(env_file, {"ODOO_HOOK_SECRET": secret})
    return secret


def _run(args: argparse.Namespace, context: Context) -> int:
    try:
        config = odoo_config(context.settings)
    except OdooConfigError as exc:
        raise CommandError(f"{exc}; run `clientify-odoo connect` first") from None
    env_file = Path(args.env_file) if args.env_file else Path(".env")
    say = context.console.print

    async def act() -> int:
        async with OdooClient(config) as client:
            if args.action == "install":
                secret = hook_secret(context, env_file)
                base_url = public_url(args.public_url, "PUBLIC_URL")
                names = await install_rules(client, odoo_hook_url(base_url, secret), HOOK_RULES)
                say(
                    f"Installed {len(names)} automation rules in Odoo {client.version}: "
                    f"{', '.join(names)}; they post to {base_url}"
                    f"{ODOO_HOOK_PATH}<ODOO_HOOK_SECRET> (saved in {env_file}). Restart the "
                    "webhook receiver if it runs, so it serves that path.",
                    highlight=False,
                )
                return 0
            if args.action == "check":
                kept = context.settings.odoo_hook_secret
                if kept is None:
                    raise CommandError(
                        "ODOO_HOOK_SECRET is not set: the rules were never installed from "
                        "here; run `clientify-odoo odoo-hooks install PUBLIC_URL`"
                    )
                ending = f"{ODOO_HOOK_PATH}{kept.get_secret_value()}"
                problems = await check_rules(client, ending, HOOK_RULES)
                if problems:
                    say("Odoo's automation rules need fixing (`odoo-hooks install` does):")
                    for problem in problems:
                        say(f"  {problem}", highlight=False)
                    return 1
                say(f"ok: {len(HOOK_RULES)} automation rules post to the receiver")
                return 0
            names = await remove_rules(client)
            say(f"Removed {len(names)} automation rules: {', '.join(names) or 'there were none'}")
            return 0

    try:
        return asyncio.run(act())
    except AutomationUnavailable as exc:
        raise CommandError(str(exc)) from None
    except OdooError as exc:
        raise CommandError(f"Odoo refused: {exc}") from None


def register(subparsers: Any) -> None:
    hooks = subparsers.add_parser(
        "odoo-hooks",
        help="make Odoo (17+) post its changes at once: install, check or remove the rules",
        description=(
            "Odoo 17 and later can post a webhook from an automation rule. `install` adds "
            "one rule per model the sync reads (partners, products and their templates, "
            "confirmed orders) posting to the receiver's /hooks/odoo/<ODOO_HOOK_SECRET>, "
            "made and saved in .env the first time; the poller then reads a changed "
            "record within about a second, and keeps polling for whatever a lost post "
            "missed. Needs the Automation Rules app (base_automation) in Odoo; Odoo 16 "
            "has no such rules and is polled only."
        ),
    )
    actions = hooks.add_subparsers(dest="action", metavar="<action>", required=True)
    install_parser = actions.add_parser("install", help="install (or replace) the rules")
    install_parser.add_argument(
        "public_url", metavar="PUBLIC_URL",
        help="where Odoo reaches the webhook receiver, e.g. https://sync.example.com",
    )  # fmt: skip
    actions.add_parser("check", help="are the rules there, unchanged, posting to us?")
    actions.add_parser("remove", help="remove the rules (Odoo is then polled only)")
    for action in actions.choices.values():
        action.set_defaults(handler=_run)
