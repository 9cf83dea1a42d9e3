"""`clientify-odoo sandbox odoo|clientify|change`: local stand-ins for the two real systems."""

from __future__ import annotations

from typing import Any

from clientify_odoo.cli.sandbox import change, clientify, odoo


def register(subparsers: Any) -> None:
    sandbox = subparsers.add_parser(
        "sandbox",
        help="run a local Odoo or Clientify that behaves like the real API",
        description=(
            "Run a faithful local server of Odoo's external API or Clientify's REST API, "
            "persisted on disk, with knobs to inject latency and errors. The demo, the "
            "tests and the benchmarks use them; point the clients at a real system by "
            "setting ODOO_* or CLIENTIFY_* instead."
        ),
    )
    kinds = sandbox.add_subparsers(dest="kind", metavar="<system>", required=True)
    for command in (odoo, clientify, change):
        command.register(kinds)
