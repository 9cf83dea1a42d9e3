"""Facts from Clientify records, whichever way they arrived (webhook or REST).

The event id must be the same for one version of a record whether a webhook or the
reconciliation poller saw it, so it cannot come from the delivery (webhooks carry no
`modified`). It comes from the content: a SHA-256 of the record projected onto the
fields both shapes carry, normalised where the shapes differ (REST: `url`, ids on
sub-items, the company as URL + `company_name`, account-zone timestamps, nulls; webhooks:
none of that, the company as a name, `""` for empty text).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.clientify.client import timestamp
from schemas import Fact, System
from schemas.keys import normalise_sku, normalise_tax_id
from schemas.topics import CLIENTIFY_COMPANY, CLIENTIFY_CONTACT, CLIENTIFY_PRODUCT

ENTITIES = ("contact", "company", "product")
SUB_ITEM_FIELDS = {
    "emails": ("type", "email"),
    "phones": ("type", "phone"),
    "addresses": ("type", "street", "city", "state", "country", "postal_code"),
    "websites": ("type", "website"),
}
COMMON_TEXT = ("taxpayer_identification_number", "description", "remarks")
# The fields that make a version; everything else is presentation.
VERSION_FIELDS: dict[str, tuple[str, ...]] = {
    "contact": (
        "first_name", "last_name", "status", "title", "company", "contact_type",
        "contact_source", "summary", *COMMON_TEXT, "emails", "phones", "addresses",
        "websites", "tags", "custom_fields",
    ),
    "company": (
        "name", "business_name", "company_sector", "number_of_employees", *COMMON_TEXT,
        "emails", "phones", "addresses", "websites", "tags", "custom_fields",
    ),
    "product": ("name", "sku", "price", "currency", "description", "tags", "custom_fields"),
}  # fmt: skip


# The source topic of each entity's facts.
SOURCE_OF = {
    "contact": CLIENTIFY_CONTACT,
    "company": CLIENTIFY_COMPANY,
    "product": CLIENTIFY_PRODUCT,
}


def canonical(entity: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as both shapes agree on it (see the module docstring)."""
    projected: dict[str, Any] = {}
    for name in VERSION_FIELDS[entity]:
        value = record.get(name)
        if name == "company":
            # REST: URL + company_name; webhook: the name itself.
            value = record.get("company_name") if "company_name" in record else value
        if name in SUB_ITEM_FIELDS:
            keep = SUB_ITEM_FIELDS[name]
            value = [
                {k: _text(item.get(k)) for k in keep}
                for item in value or ()
                if isinstance(item, dict)
            ]
        elif name == "custom_fields":
            value = [
                {"field": _text(item.get("field")), "value": _text(item.get("value"))}
                for item in value or ()
                if isinstance(item, dict)
            ]
        elif name == "tags":
            value = sorted(_text(tag) for tag in value or ())
        elif name == "price":
            value = _number(value)
        else:
            value = _text(value)
        projected[name] = value
    return projected


def version_of(entity: str, record: dict[str, Any]) -> str:
    text = json.dumps(canonical(entity, record), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def business_key(entity: str, record: dict[str, Any]) -> str | None:
    """Tax id (normalised) for contacts and companies, SKU for products; None if absent."""
    if entity == "product":
        key = normalise_sku(_text(record.get("sku")))
    else:
        key = normalise_tax_id(_text(record.get("taxpayer_identification_number")))
    return key or None


def to_fact(
    entity: str,
    record: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    observed_at: datetime | None = None,
) -> Fact:
    """One fact for this version of `record`, its raw shape kept as the payload.

    `occurred_at` is Clientify's `modified` when the record has one (REST); webhooks have
    none, so the receiving time stands in for it.
    """
    when = occurred_at or timestamp(record.get("modified")) or datetime.now(UTC)
    return Fact.observe(
        system=System.CLIENTIFY,
        entity=entity,
        source_id=int(record["id"]),
        version=version_of(entity, record),
        payload=record,
        occurred_at=when,
        business_key=business_key(entity, record),
        observed_at=observed_at,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> str:
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except InvalidOperation:
        return _text(value)
