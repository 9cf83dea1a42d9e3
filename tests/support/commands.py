"""Commands as the worker issues them, for tests that drive the writers directly."""

from __future__ import annotations

import itertools
from typing import Any

from connectors.kafka.publisher import Outgoing
from schemas import Command, System

_ids = itertools.count()
# A company's canonical fields that flow both ways.
COMPANY = {
    "name": "Acme Soluciones", "phone": "+34 911 111 111", "street": "Calle Mayor 1",
    "city": "Madrid", "zip": "28001", "country": "Spain",
}  # fmt: skip
# The same company as the worker sends it to Clientify.
ACME = {"display_name": "Acme Soluciones SL", **COMPANY, "state": "Madrid"}
SMALL_ACME = {"display_name": "Acme SL", "name": "Acme", "city": "Madrid", "country": "Spain"}


def command(target: System, entity: str, key: str, fields: dict[str, Any], **extra: Any) -> Command:
    return Command.for_fact(
        fact_id=f"test-fact-{next(_ids)}", target=target, entity=entity, business_key=key,
        fields=fields, **extra,
    )  # fmt: skip


def clientify_command(entity: str, key: str, fields: dict[str, Any], **extra: Any) -> Command:
    return command(System.CLIENTIFY, entity, key, fields, **extra)


def odoo_command(entity: str, key: str, fields: dict[str, Any], **extra: Any) -> Command:
    return command(System.ODOO, entity, key, fields, **extra)


def outgoing(prefix: str, *commands: Command) -> list[Outgoing]:
    """Clientify commands on their topic, keyed by route, as the worker sends them."""
    return [
        Outgoing(prefix + "sync.commands.clientify", f"{c.entity}:{c.business_key}", c)
        for c in commands
    ]
