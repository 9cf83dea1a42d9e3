"""`clientify-odoo sandbox change`: edit a record in a sandbox of the running stack, the
way a user would in Odoo or Clientify, to watch the change arrive on the other side.

It talks to the sandboxes over their real APIs with the clients the sync uses, with the
URLs and keys `up` wrote to its `stack.env`; it never reads the user's own settings, so
it cannot touch a real system by mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.stack.plan import DEFAULT_STACK_DIR, STACK_ENV, read_env_file
from connectors.clientify import ClientifyClient
from connectors.odoo.client import OdooClient, OdooConfig

ODOO_MODELS = {"partner": ("res.partner", "ref"), "product": ("product.product", "default_code")}
CLIENTIFY_KINDS = ("contact", "company", "product")


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    """`field=value` pairs; a value that reads as JSON (a number, a list) is taken as such."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"{pair!r} is not field=value (e.g. city=Sevilla)")
        try:
            changes[name] = json.loads(text)
        except ValueError:
            changes[name] = text
    return changes


async def change_odoo(env: dict[str, str], kind: str, key: str, changes: dict[str, Any]) -> str:
    model, key_field = ODOO_MODELS[kind]
    config = OdooConfig(
        url=env["ODOO_URL"],
        db=env["ODOO_DB"],
        login=env["ODOO_USER"],
        api_key=SecretStr(env["ODOO_API_KEY"]),
    )
    async with OdooClient(config) as odoo:
        ids = await odoo.search(model, [(key_field, "=", key)])
        if not ids:
            raise CommandError(f"no Odoo {kind} with {key_field} {key!r} in the sandbox")
        await odoo.write(model, ids[:1], changes)
    return f"Odoo {model} {ids[0]} ({key_field} {key})"


async def change_clientify(
    env: dict[str, str], kind: str, key: str, changes: dict[str, Any]
) -> str:
    async with ClientifyClient(env["CLIENTIFY_URL"], env["CLIENTIFY_API_KEY"]) as clientify:
        if kind == "product":
            found = await clientify.find_products_by_sku(key)
            records = clientify.products
        else:
            records = clientify.contacts if kind == "contact" else clientify.companies
            found = await clientify.find_by_tax_id(records, key)
        if not found:
            raise CommandError(f"no Clientify {kind} with key {key!r} in the sandbox")
        record_id = min(int(record["id"]) for record in found)
        await records.update(record_id, changes)
    return f"Clientify {kind} {record_id} ({key})"


def _change(args: argparse.Namespace, context: Context) -> int:
    env = read_env_file(args.stack_dir / STACK_ENV)
    needed = "ODOO_URL" if args.system == "odoo" else "CLIENTIFY_URL"
    if needed not in env:
        raise CommandError(
            f"no {args.system} sandbox known in {args.stack_dir / STACK_ENV}: start the "
            "stack with `clientify-odoo up` (on the sandboxes) first, or pass --stack-dir"
        )
    if args.system == "odoo" and args.kind not in ODOO_MODELS:
        raise CommandError(f"Odoo records to change: {', '.join(ODOO_MODELS)} (not {args.kind})")
    changes = parse_changes(args.changes)
    if args.system == "odoo":
        what = asyncio.run(change_odoo(env, args.kind, args.key, changes))
    else:
        what = asyncio.run(change_clientify(env, args.kind, args.key, changes))
    context.console.print(f"Changed {what}: {changes}", highlight=False)
    return 0


def register(kinds: Any) -> None:
    """Add `change` under `clientify-odoo sandbox`."""
    parser = kinds.add_parser(
        "change",
        help="edit a record in a sandbox of the running stack (to watch it sync)",
        description=(
            "Edit one record in the Odoo or Clientify sandbox started by `clientify-odoo "
            "up`, as a user would in that system; the sync then carries the change to the "
            "other side (watch the flows in the live view). Records are found by their "
            "business key: an Odoo partner by its ref (tax id), a product by its internal "
            "reference, a Clientify contact or company by its tax id, a product by its SKU."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  clientify-odoo sandbox change odoo partner B12345678 city=Sevilla\n"
            "  clientify-odoo sandbox change odoo product SKU-0001 list_price=12.5\n"
            "  clientify-odoo sandbox change clientify contact 12345678Z first_name=Ana\n"
            "  clientify-odoo sandbox change clientify product SKU-0001 price=9.9\n"
            "values that read as JSON (numbers, lists) are sent as such, others as text"
        ),
    )
    parser.add_argument("system", choices=["odoo", "clientify"])
    parser.add_argument("kind", choices=sorted({*ODOO_MODELS, *CLIENTIFY_KINDS}))
    parser.add_argument("key", help="business key of the record (ref, tax id, SKU)")
    parser.add_argument("changes", nargs="+", metavar="field=value")
    parser.add_argument(
        "--stack-dir",
        type=Path,
        default=DEFAULT_STACK_DIR,
        help="the stack directory of `up` (default: %(default)s)",
    )
    parser.set_defaults(handler=_change)
