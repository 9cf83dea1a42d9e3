"""The automation rules the product installs in Odoo (17+) so that Odoo posts a hint to
the receiver whenever a record the sync reads is created or changed."""

from __future__ import annotations

from connectors.odoo.automation import HookRule
from producers.odoo.entities import PARTNER, PRODUCT, SALE_ORDER

ODOO_HOOK_PATH = "/hooks/odoo/"

HOOK_RULES: tuple[HookRule, ...] = (
    HookRule(PARTNER.model, PARTNER.fields),
    # A template edit (its name, its price) recomputes the variants' stored write_date,
    # which fires a rule watching it: one rule covers both (checked on 17, 18 and 19).
    HookRule(PRODUCT.model, PRODUCT.fields),
    HookRule(SALE_ORDER.model, SALE_ORDER.fields, "[('state', '=', 'sale')]"),
)


def odoo_hook_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}{ODOO_HOOK_PATH}{secret}"
