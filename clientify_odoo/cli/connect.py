"""`clientify-odoo connect`: the connection card of the original integration, as a command.

Takes the settings from flags, the environment or .env, and asks for what is missing
when run in a terminal; checks them against the live systems (clientify_odoo.connect);
then, only once every check passed, makes the webhook secret and writes .env.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.markup import escape
from rich.prompt import Prompt

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.cli.webhooks import DEFAULT_WEBHOOK_PORT
from clientify_odoo.connect import (
    SETTING_HELP,
    ConnectFailed,
    Connection,
    ConnectionSettings,
    check,
    install_odoo_hooks,
    webhook_events,
    webhook_url,
)
from clientify_odoo.logs import secret_filter
from clientify_odoo.odoo_hooks import odoo_hook_url
from clientify_odoo.settings import write_env_file
from producers.receiver import new_secret
from schemas.mapping import DEFAULT_MAPPING, MappingError, load_mapping

DEFAULT_PUBLIC_URL = f"http://127.0.0.1:{DEFAULT_WEBHOOK_PORT}"


@dataclass(frozen=True)
class Asked:
    """A setting `connect` needs: its variable, its flag (secrets have none: a flag's
    value shows in the process list and the shell history) and its field in Settings."""

    env: str
    field: str
    flag: str | None = None

    @property
    def secret(self) -> bool:
        return self.flag is None


ASKED = (
    Asked("ODOO_URL", "odoo_url", "--odoo-url"),
    Asked("ODOO_DB", "odoo_db", "--odoo-db"),
    Asked("ODOO_USER", "odoo_user", "--odoo-user"),
    Asked("ODOO_API_KEY", "odoo_api_key"),
    Asked("CLIENTIFY_API_KEY", "clientify_api_key"),
)


def _known(asked: Asked, args: argparse.Namespace, context: Context) -> str | None:
    """The value from its flag, else from the environment or .env."""
    flagged = getattr(args, asked.field, None)
    if flagged:
        return str(flagged)
    value = getattr(context.settings, asked.field)
    if value is None:
        return None
    return value.get_secret_value() if asked.secret else str(value)


def _ask(asked: Asked, context: Context) -> str:
    context.console.print(f"[dim]{asked.env}: {SETTING_HELP[asked.env]}[/dim]", soft_wrap=True)
    while True:
        answer = Prompt.ask(asked.env, console=context.console, password=asked.secret).strip()
        if answer:
            return answer


def _missing_error(missing: list[Asked]) -> CommandError:
    def where(asked: Asked) -> str:
        if asked.secret:
            return "set it in the environment or .env"
        return f"give {asked.flag}, or set it in the environment or .env"

    lines = [f"  {a.env}: {where(a)}. Where to find it: {SETTING_HELP[a.env]}" for a in missing]
    return CommandError(
        "missing settings, and no terminal to ask for them:\n"
        + "\n".join(lines)
        + "\nOr run `clientify-odoo connect` in a terminal to be asked for them.",
        exit_code=2,
    )


def _settings(args: argparse.Namespace, context: Context) -> ConnectionSettings:
    values = {asked.field: _known(asked, args, context) for asked in ASKED}
    missing = [asked for asked in ASKED if not values[asked.field]]
    if missing and not sys.stdin.isatty():
        raise _missing_error(missing)
    for asked in missing:
        values[asked.field] = _ask(asked, context)
    values["clientify_url"] = args.clientify_url or str(context.settings.clientify_url)
    for asked in ASKED:
        if asked.secret:
            secret_filter().add(str(values[asked.field]))
    try:
        return ConnectionSettings.model_validate(values)
    except ValidationError as exc:
        # Name the variable, never echo the value (it may be a secret).
        problems = [
            f"{str(error['loc'][0]).upper()} {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
        raise CommandError("; ".join(problems), exit_code=2) from None


def public_url(text: str, name: str = "--public-url") -> str:
    """Where the systems reach the receiver, without a trailing slash."""
    if not text.startswith(("http://", "https://")):
        raise CommandError(f"{name} must start with http:// or https://, got {text!r}", exit_code=2)
    return text.rstrip("/")


def _webhook_secret(args: argparse.Namespace, context: Context) -> tuple[str, bool]:
    """The secret to use and whether it is new (a kept one keeps the URLs already
    registered in Clientify valid)."""
    existing = context.settings.webhook_secret
    if existing is not None and not args.rotate_webhook_secret:
        return existing.get_secret_value(), False
    secret = new_secret()
    secret_filter().add(secret)
    return secret, True


def _report(
    context: Context, settings: ConnectionSettings, found: Connection, hooks: dict[str, str]
) -> None:
    print_ = context.console.print
    # Values are escaped: a "[" in a login or name is text, not rich markup.
    print_(
        f"[green]ok[/green] Odoo {found.odoo_version} at {escape(settings.odoo_url)}: database "
        f"{escape(settings.odoo_db)}, user {escape(settings.odoo_user)} ({found.odoo_protocol})",
        highlight=False,
        soft_wrap=True,
    )
    created = ", ".join(found.created_fields) or "none needed, all there"
    print_(f"[green]ok[/green] Odoo custom fields created: {created}", highlight=False)
    account = found.clientify_account.get("company_name") or found.clientify_account.get("email")
    print_(
        f"[green]ok[/green] Clientify at {escape(settings.clientify_url)}: API key accepted"
        + (f" (account {escape(str(account))})" if account else ""),
        highlight=False,
        soft_wrap=True,
    )
    print_("\nRegister these webhooks in Clientify (Settings -> Webhooks), one per event:")
    for event, url in hooks.items():
        print_(f"  {event:<15} {url}", highlight=False, soft_wrap=True)


def _connect(args: argparse.Namespace, context: Context) -> int:
    base_url = public_url(args.public_url)
    settings = _settings(args, context)
    try:
        mapping = load_mapping(context.settings.mapping_file or DEFAULT_MAPPING)
    except MappingError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    if logging.getLogger().getEffectiveLevel() >= logging.INFO:
        # The report below says what the clients log at INFO: keep their warnings only.
        logging.getLogger("connectors").setLevel(logging.WARNING)
    with context.console.status("Checking Odoo and Clientify..."):
        try:
            found = asyncio.run(check(settings, mapping))
        except ConnectFailed as exc:
            raise CommandError(f"not connected, nothing saved:\n{exc}", exit_code=2) from None
    secret, new = _webhook_secret(args, context)
    # A kept secret was shown when it was made; it stays out of the output.
    shown = secret if new else "<WEBHOOK_SECRET>"
    hooks = {event: webhook_url(base_url, shown) for event in webhook_events()}
    path: Path = args.env_file or Path(".env")
    values = {**settings.env(), "WEBHOOK_SECRET": secret}
    kept = context.settings.odoo_hook_secret
    odoo_secret = kept.get_secret_value() if kept else new_secret()
    secret_filter().add(odoo_secret)
    with context.console.status("Installing Odoo's automation rules..."):
        pushed = asyncio.run(install_odoo_hooks(settings, odoo_hook_url(base_url, odoo_secret)))
    if isinstance(pushed, list):
        values["ODOO_HOOK_SECRET"] = odoo_secret
    write_env_file(path, values)
    _report(context, settings, found, hooks)
    if isinstance(pushed, list):
        context.console.print(
            f"[green]ok[/green] Odoo pushes its changes: {len(pushed)} automation rules post "
            f"to {escape(base_url)}/hooks/odoo/<ODOO_HOOK_SECRET> (`clientify-odoo "
            "odoo-hooks check` checks them)",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    else:
        context.console.print(f"[yellow]note[/yellow] {escape(pushed)}", highlight=False)
    context.console.print(
        (
            "The webhook secret is new: these URLs are shown only now.\n"
            if new
            else "The webhook secret is unchanged (WEBHOOK_SECRET in .env): URLs already "
            "registered stay valid; --rotate-webhook-secret makes a new one.\n"
        )
        + f"Settings saved in {path} (readable by you only): {', '.join(values)}.\n\n"
        "[bold green]Connected: the Odoo <-> Clientify integration is active.[/bold green] "
        "Start syncing with `clientify-odoo up`.",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "connect",
        help="connect Odoo and Clientify: check the settings, prepare Odoo, save .env",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Connect Odoo and Clientify, as the original integration's connection card.\n\n"
            "1. Takes the Odoo URL, database, user and API key and the Clientify API key\n"
            "   from the flags, the environment or .env, and asks for the missing ones\n"
            "   when run in a terminal (API keys are typed hidden, and have no flag).\n"
            "2. Checks each against the live systems; a wrong one is named, with where\n"
            "   to find the right value.\n"
            "3. Creates the custom field x_clientify_status in Odoo (an administrator's\n"
            "   API key is needed for that).\n"
            "4. Makes the webhook secret (kept when one exists) and prints the webhook\n"
            "   URL to register in Clientify for each event.\n"
            "5. Writes the settings to .env (or --env-file), readable by you only.\n"
            "Nothing is saved unless every check passed."
        ),
        epilog=(
            "where the values are:\n"
            + "\n".join(
                textwrap.fill(text, 88, initial_indent=f"  {name}: ", subsequent_indent="    ")
                for name, text in SETTING_HELP.items()
            )
            + "\n\nexample:\n  ODOO_API_KEY=... CLIENTIFY_API_KEY=... clientify-odoo connect \\\n"
            "      --odoo-url https://mycompany.odoo.com --odoo-db mycompany \\\n"
            "      --odoo-user admin@mycompany.com --public-url https://sync.mycompany.com"
        ),
    )
    parser.add_argument("--odoo-url", metavar="URL", help="Odoo address (ODOO_URL)")
    parser.add_argument("--odoo-db", metavar="NAME", help="Odoo database name (ODOO_DB)")
    parser.add_argument("--odoo-user", metavar="LOGIN", help="Odoo administrator login (ODOO_USER)")
    parser.add_argument(
        "--clientify-url",
        metavar="URL",
        help="Clientify API base URL, only for a sandbox (CLIENTIFY_URL; default: the real API)",
    )
    parser.add_argument(
        "--public-url",
        default=DEFAULT_PUBLIC_URL,
        metavar="URL",
        help="where Clientify reaches the webhook receiver (`webhooks serve`) from outside "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--rotate-webhook-secret",
        action="store_true",
        help="make a new webhook secret even if one exists (the old URLs stop working)",
    )
    parser.set_defaults(handler=_connect)
