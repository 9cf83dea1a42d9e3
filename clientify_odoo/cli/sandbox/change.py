"""`clientify-odoo sandbox change`: edit a record in a sandbox of the running stack, the
way a user would in Odoo or Clientify, to watch the change arrive on the other side.

It talks to the sandboxes over their real APIs with the clients the sync uses, with the
URLs and keys `up` wrote to its `stack.env`; it never reads the user's own settings, so
it cannot touch a real system by mistake.

Both APIs drop what they cannot take without a word (Clientify ignores a field it does
not know, Odoo a read-only one), so a name is checked before anything is written: one
the command cannot set is refused with the names it can. A Clientify contact's or
company's address is a list of addresses; its parts (`city=...`) edit the first one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.stack.plan import DEFAULT_STACK_DIR, STACK_ENV, read_env_file
from connectors.clientify import ClientifyClient
from connectors.clientify.errors import ClientifyError, ClientifyServerError
from connectors.clientify.sandbox import schema
from connectors.clientify.sandbox.fields import Text
from connectors.odoo.client import OdooClient, OdooConfig
from connectors.odoo.errors import OdooError

ODOO_MODELS = {"partner": ("res.partner", "ref"), "product": ("product.product", "default_code")}
ODOO_TEXT_TYPES = ("char", "text", "html", "selection", "date", "datetime")
# What the Clientify sandbox takes on write, per kind; contacts and companies also take
# the parts of their first address.
CLIENTIFY_FIELDS = {
    "contact": {**schema.CONTACT, **schema.ADDRESS_PARTS},
    "company": {**schema.COMPANY, **schema.ADDRESS_PARTS},
    "product": schema.PRODUCT,
}


def parse_changes(pairs: list[str]) -> dict[str, str]:
    """`field=value` pairs, the values as typed."""
    changes: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"{pair!r} is not field=value (e.g. city=Sevilla)", exit_code=2)
        changes[name] = text
    return changes


def typed(changes: dict[str, str], texts: Collection[str]) -> dict[str, Any]:
    """The values of the fields in `texts` as typed (a zip 41004 stays text); the
    others as JSON when they read as JSON (a number, a list, true)."""
    values: dict[str, Any] = {}
    for name, text in changes.items():
        try:
            values[name] = text if name in texts else json.loads(text)
        except ValueError:
            values[name] = text
    return values


def refuse_unknown(
    changes: dict[str, Any], known: list[str], what: str, read_only: frozenset[str] = frozenset()
) -> None:
    """Refuse every name in `changes` that is not in `known` (those in `read_only` are
    said to be), listing the names that are."""
    unknown = [name for name in changes if name not in known]
    if not unknown:
        return
    names = ", ".join(f"{name!r}{' (read-only)' if name in read_only else ''}" for name in unknown)
    raise CommandError(
        f"{what} takes no field {names}; the fields it takes: {', '.join(sorted(known))}",
        exit_code=2,
    )


async def change_odoo(env: dict[str, str], kind: str, key: str, changes: dict[str, str]) -> str:
    """Write `changes` to the Odoo record of business key `key`; says which, and what."""
    model, key_field = ODOO_MODELS[kind]
    config = OdooConfig(
        url=env["ODOO_URL"],
        db=env["ODOO_DB"],
        login=env["ODOO_USER"],
        api_key=SecretStr(env["ODOO_API_KEY"]),
    )
    try:
        async with OdooClient(config) as odoo:
            described = await odoo.fields(model)
            writable = [name for name, info in described.items() if not info.get("readonly")]
            refuse_unknown(changes, writable, f"an Odoo {kind} ({model})", frozenset(described))
            texts = [name for name in changes if described[name]["type"] in ODOO_TEXT_TYPES]
            ids = await odoo.search(model, [(key_field, "=", key)])
            if not ids:
                raise CommandError(f"no Odoo {kind} with {key_field} {key!r} in the sandbox")
            await odoo.write(model, ids[:1], typed(changes, texts))
    except OdooError as exc:
        raise _failed("Odoo", config.url, exc, down=exc.transient) from None
    return f"Odoo {model} {ids[0]} ({key_field} {key}): {changes}"


async def change_clientify(
    env: dict[str, str], kind: str, key: str, changes: dict[str, str]
) -> str:
    """Write `changes` to the Clientify record of business key `key`; says which, and
    what."""
    fields = CLIENTIFY_FIELDS[kind]
    refuse_unknown(changes, list(fields), f"a Clientify {kind}")
    if "addresses" in changes and set(changes) & set(schema.ADDRESS_PARTS):
        raise CommandError(
            "give the addresses whole (addresses=[...]) or parts of the first one "
            f"({', '.join(schema.ADDRESS_PARTS)}), not both",
            exit_code=2,
        )
    url = env["CLIENTIFY_URL"]
    try:
        async with ClientifyClient(url, env["CLIENTIFY_API_KEY"]) as clientify:
            if kind == "product":
                found = await clientify.find_products_by_sku(key)
                records = clientify.products
            else:
                records = clientify.contacts if kind == "contact" else clientify.companies
                found = await clientify.find_by_tax_id(records, key)
            if not found:
                raise CommandError(f"no Clientify {kind} with key {key!r} in the sandbox")
            record_id = min(int(record["id"]) for record in found)
            body = typed(changes, [name for name in changes if isinstance(fields[name], Text)])
            parts = {name: body.pop(name) for name in schema.ADDRESS_PARTS if name in body}
            if parts:
                # Only the whole record has its addresses (a list item has none).
                record = await records.get(record_id)
                body["addresses"] = first_address_edited(record.get("addresses") or [], parts)
            await records.update(record_id, body)
    except ClientifyError as exc:
        raise _failed("Clientify", url, exc, down=isinstance(exc, ClientifyServerError)) from None
    where = f"; {', '.join(parts)} in its first address" if parts else ""
    return f"Clientify {kind} {record_id} ({key}): {changes}{where}"


def first_address_edited(
    addresses: list[dict[str, Any]], parts: dict[str, Any]
) -> list[dict[str, Any]]:
    """`addresses` with `parts` written into the first one (a new one when there is
    none). Clientify replaces the whole list on PUT, so the others go along unchanged,
    without the ids it gave them."""
    kept = [{name: value for name, value in item.items() if name != "id"} for item in addresses]
    first = kept[0] if kept else {}
    return [{**first, **parts}, *kept[1:]]


def _failed(system: str, url: str, exc: Exception, *, down: bool) -> CommandError:
    then = (
        "is the stack running? `clientify-odoo up` starts it"
        if down
        else "nothing was changed: correct the value and run it again"
    )
    return CommandError(f"the {system} sandbox at {url}: {exc} ({then})")


def _change(args: argparse.Namespace, context: Context) -> int:
    env = read_env_file(args.stack_dir / STACK_ENV)
    needed = "ODOO_URL" if args.system == "odoo" else "CLIENTIFY_URL"
    if needed not in env:
        raise CommandError(
            f"no {args.system} sandbox known in {args.stack_dir / STACK_ENV}: start the "
            "stack with `clientify-odoo up` (on the sandboxes) first, or pass --stack-dir"
        )
    kinds = ODOO_MODELS if args.system == "odoo" else CLIENTIFY_FIELDS
    if args.kind not in kinds:
        raise CommandError(
            f"{args.system} records to change: {', '.join(kinds)} (not {args.kind})", exit_code=2
        )
    changes = parse_changes(args.changes)
    if args.system == "odoo":
        what = asyncio.run(change_odoo(env, args.kind, args.key, changes))
    else:
        what = asyncio.run(change_clientify(env, args.kind, args.key, changes))
    context.console.print(f"Changed {what}", highlight=False)
    return 0


def register(kinds: Any) -> None:
    """Add `change` under `clientify-odoo sandbox`."""
    parser = kinds.add_parser(
        "change",
        help="edit a record in a sandbox of the running stack (to watch it sync)",
        description=(
            "Edit one record in the Odoo or Clientify sandbox started by `clientify-odoo\n"
            "up`, as a user would in that system; the sync then carries the change to the\n"
            "other side (watch the flows in the live view). Records are found by their\n"
            "business key: an Odoo partner by its ref (tax id), a product by its internal\n"
            "reference, a Clientify contact or company by its tax id, a product by its SKU.\n\n"
            "Fields go by the system's own names: an Odoo field that can be written\n"
            "(street, city, zip, state_id, country_id...), or a field Clientify takes on\n"
            "write; a Clientify contact or company also takes the parts of its first\n"
            f"address ({', '.join(schema.ADDRESS_PARTS)}), one is made when it has none.\n"
            "A field the command cannot set is refused, with the list of those it can."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  clientify-odoo sandbox change odoo partner B12345678 city=Sevilla\n"
            "  clientify-odoo sandbox change odoo product SKU-0001 list_price=12.5\n"
            "  clientify-odoo sandbox change clientify contact 12345678Z first_name=Ana\n"
            "  clientify-odoo sandbox change clientify company B12345678 city=Valencia\n"
            "  clientify-odoo sandbox change clientify product SKU-0001 price=9.9\n"
            "a value goes as typed to a text field (zip=04001, postal_code=46001); to any\n"
            "other field, as JSON when it reads as JSON (numbers, lists), else as text"
        ),
    )
    parser.add_argument("system", choices=["odoo", "clientify"])
    parser.add_argument("kind", choices=sorted({*ODOO_MODELS, *CLIENTIFY_FIELDS}))
    parser.add_argument("key", help="business key of the record (ref, tax id, SKU)")
    parser.add_argument("changes", nargs="+", metavar="field=value")
    parser.add_argument(
        "--stack-dir",
        type=Path,
        default=DEFAULT_STACK_DIR,
        help="the stack directory of `up` (default: %(default)s)",
    )
    parser.set_defaults(handler=_change)
