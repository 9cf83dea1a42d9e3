"""Odoo automation rules (`base.automation`, Odoo 17+) that post a webhook when a record
is created or edited: installed, checked and removed over the API.

Facts from the real Odoo 17, 18 and 19 (docs/odoo-api.md, "Automation rules"):
- One `create` of the rule with its "Send Webhook Notification" action inline
  (`action_server_ids: [(0, 0, {...})]`); every rule field is given explicitly, as the
  form's onchanges that fill them do not run over the API, and a rule is changed by
  removing and creating it again (a write of `trigger` alone resets its fields on 18).
- Without `trigger_field_ids` a rule also fires on every recompute of a stored field: one
  partner create posted 13-14 times. With the fields the sync reads, it posts once per
  create or change of one of them, and never for an unchanged value.
- Removing a rule removes its actions; rules are found by their name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.odoo.client import OdooClient
from connectors.odoo.errors import OdooError

RULE_PREFIX = "clientify-odoo: "
FIRST_VERSION = 17  # the "Send Webhook Notification" action came with Odoo 17
TRIGGER = "on_create_or_write"
ALL_RECORDS = {"active_test": False}


@dataclass(frozen=True)
class HookRule:
    """One rule: post when a record of `model` is created or one of `watched` changes
    (the fields a model lacks are left out), for the records matching `domain`."""

    model: str
    watched: tuple[str, ...]
    domain: str | None = None  # an Odoo domain as text, e.g. "[('state', '=', 'sale')]"

    @property
    def name(self) -> str:
        return f"{RULE_PREFIX}{self.model}"


class AutomationUnavailable(Exception):
    """The server cannot post webhooks; the text says why and what to do."""


async def require_automation(client: OdooClient) -> None:
    """Raise `AutomationUnavailable` unless this Odoo can post webhooks."""
    version = client.version
    if version is None or version.major < FIRST_VERSION:
        raise AutomationUnavailable(
            f"Odoo {version} has no webhook action (it came with Odoo 17): the sync polls it"
        )
    try:
        installed = await client.search_count(
            "ir.module.module", [("name", "=", "base_automation"), ("state", "=", "installed")]
        )
    except OdooError as exc:
        raise AutomationUnavailable(
            f"cannot tell whether the Automation Rules app is installed ({exc}): the sync "
            "polls Odoo"
        ) from None
    if not installed:
        raise AutomationUnavailable(
            "the Automation Rules app (base_automation) is not installed in this database: "
            "in Odoo, Apps -> search 'Automation Rules' -> Activate (or Settings -> "
            "Technical), then run `clientify-odoo odoo hooks install`; until then the "
            "sync polls Odoo"
        )


async def installed_rules(client: OdooClient) -> list[dict[str, Any]]:
    """The rules this product made, archived ones too."""
    return await client.search_read(
        "base.automation", [("name", "=like", f"{RULE_PREFIX}%")],
        ["name", "active", "trigger", "trigger_field_ids", "filter_domain", "action_server_ids"],
        context=ALL_RECORDS,
    )  # fmt: skip


async def remove_rules(client: OdooClient) -> list[str]:
    """Remove the product's rules (their actions go with them); returns their names."""
    rules = await installed_rules(client)
    if rules:
        await client.unlink("base.automation", [rule["id"] for rule in rules])
    return [str(rule["name"]) for rule in rules]


async def install_rules(client: OdooClient, url: str, rules: tuple[HookRule, ...]) -> list[str]:
    """Replace the product's rules with `rules` posting to `url`; returns their names."""
    await require_automation(client)
    await remove_rules(client)
    for rule in rules:
        model_id = await _model_id(client, rule.model)
        await client.create(
            "base.automation",
            {
                "name": rule.name,
                "model_id": model_id,
                "trigger": TRIGGER,
                "trigger_field_ids": [(6, 0, await _field_ids(client, rule))],
                "filter_domain": rule.domain or False,
                "filter_pre_domain": False,
                "action_server_ids": [
                    (0, 0, {
                        "name": rule.name, "model_id": model_id, "state": "webhook",
                        "webhook_url": url, "webhook_field_ids": [(6, 0, [])],
                    })
                ],
            },
        )  # fmt: skip
    return [rule.name for rule in rules]


async def check_rules(
    client: OdooClient, url_ending: str, rules: tuple[HookRule, ...]
) -> list[str]:
    """What is wrong with the installed rules (nothing: an empty list); each must post to
    a URL ending in `url_ending` (the secret path: the host is the user's business)."""
    await require_automation(client)
    found = {str(rule["name"]): rule for rule in await installed_rules(client)}
    problems: list[str] = []
    for rule in rules:
        row = found.pop(rule.name, None)
        if row is None:
            problems.append(f"{rule.model}: no rule")
            continue
        if not row["active"]:
            problems.append(f"{rule.model}: the rule is archived")
        if row["trigger"] != TRIGGER or (row["filter_domain"] or None) != rule.domain:
            problems.append(f"{rule.model}: the rule's trigger or filter was changed")
        if sorted(row["trigger_field_ids"]) != sorted(await _field_ids(client, rule)):
            problems.append(f"{rule.model}: the rule watches other fields")
        actions = await client.read(
            "ir.actions.server", row["action_server_ids"], ["state", "webhook_url"]
        )
        posts = [(a["state"], str(a["webhook_url"] or "").endswith(url_ending)) for a in actions]
        if posts != [("webhook", True)]:
            problems.append(f"{rule.model}: the rule does not post to the receiver's URL")
    problems += [f"{name}: a rule the sync no longer uses" for name in found]
    return problems


async def _model_id(client: OdooClient, model: str) -> int:
    ids = await client.search("ir.model", [("model", "=", model)], limit=1)
    if not ids:
        raise AutomationUnavailable(f"this Odoo has no model {model}")
    return int(ids[0])


async def _field_ids(client: OdooClient, rule: HookRule) -> list[int]:
    rows = await client.search_read(
        "ir.model.fields",
        [("model", "=", rule.model), ("name", "in", list(rule.watched)), ("store", "=", True)],
        ["id"], order="id",
    )  # fmt: skip
    return [int(row["id"]) for row in rows]
