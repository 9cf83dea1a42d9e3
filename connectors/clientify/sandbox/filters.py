"""List filters as Clientify's django-filter set answers them.

Unknown parameters are ignored (the real API then returns the *unfiltered* list, which is
why clients must re-check results). A date filter with an unreadable value is a 400,
as django-filter does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connectors.clientify.sandbox.fields import Invalid
from connectors.clientify.sandbox.store import Doc
from connectors.clientify.sandbox.timefmt import parse_filter

DATE_FILTER = re.compile(r"^(created|modified)\[(gt|gte|lt|lte)\]$")
COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
# What `query=` searches, per resource (docs sections 3-5; NIF per FCRM).
QUERY_FIELDS = {
    "contacts": ("first_name", "last_name", "taxpayer_identification_number", "emails"),
    "companies": ("name", "business_name", "taxpayer_identification_number"),
    "products": ("name", "sku"),
}
# Exact-match filters each resource supports; anything else is silently ignored.
EXACT_FIELDS = {
    "contacts": ("contact_source", "contact_type"),
    "companies": ("taxpayer_identification_number",),
    "products": ("sku",),
    "orders": ("order_id", "ecommerce"),
}
SEPARATOR = "\x00"
ORDERING_FIELDS = ("id", "created", "modified", "name", "first_name", "last_name", "sku")


def apply(
    kind: str, docs: list[Doc], params: Mapping[str, str], texts: Callable[[], Mapping[int, str]]
) -> list[Doc]:
    """The docs matching every supported filter in `params`, in the requested order.
    `texts()` gives `searched(kind, doc)` by doc id, for every doc of `kind` (kept by
    the store: `query=` looks at every doc on every request)."""
    errors: dict[str, list[str]] = {}
    for name, value in params.items():
        date = DATE_FILTER.match(name)
        if date:
            moment = parse_filter(value)
            if moment is None:
                errors[name] = ["Enter a valid date/time."]
                continue
            compare, field = COMPARE[date.group(2)], date.group(1)
            docs = [d for d in docs if compare(datetime.fromisoformat(d[field]), moment)]
        elif name == "query" and kind in QUERY_FIELDS:
            needle = value.strip().casefold()
            if SEPARATOR in needle:
                docs = []  # found in no field, and across fields only by the separator
            else:
                searched_ = texts()
                docs = [d for d in docs if needle in searched_[d["id"]]]
        elif name == "email" and kind == "contacts":
            docs = [d for d in docs if _has_email(d, value)]
        elif name == "phone" and kind == "contacts":
            docs = [d for d in docs if _has_phone(d, value)]
        elif name in EXACT_FIELDS.get(kind, ()):
            docs = [d for d in docs if str(d.get(name) or "") == value]
        elif name.startswith("cf_") and kind in QUERY_FIELDS:
            docs = [d for d in docs if _has_custom_value(d, name[3:], value)]
    if errors:
        raise Invalid(errors)
    return _ordered(docs, params.get("ordering", ""))


def searched(kind: str, doc: Doc) -> str:
    """What `query=` looks in: the doc's `QUERY_FIELDS`, casefolded, joined by
    `SEPARATOR` (so a match within one field is a match in the whole)."""
    texts = []
    for field in QUERY_FIELDS.get(kind, ()):
        value: Any = doc.get(field)
        if field == "emails":
            value = " ".join(str(item["email"]) for item in value or ())
        texts.append(str(value or "").casefold())
    return SEPARATOR.join(texts)


def _has_email(doc: Doc, email: str) -> bool:
    wanted = email.strip().casefold()
    return any(str(item["email"]).casefold() == wanted for item in doc.get("emails", ()))


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _has_phone(doc: Doc, phone: str) -> bool:
    # Phones are stored as typed: "+34 600 000 000" must match "600000000".
    wanted = _digits(phone)
    return bool(wanted) and any(
        _digits(str(item["phone"])).endswith(wanted) for item in doc.get("phones", ())
    )


def _has_custom_value(doc: Doc, field: str, value: str) -> bool:
    return any(
        item["field"] == field and str(item.get("value")) == value
        for item in doc.get("custom_fields", ())
    )


def _ordered(docs: list[Doc], ordering: str) -> list[Doc]:
    for term in reversed([t.strip() for t in ordering.split(",") if t.strip()]):
        field = term.lstrip("-")
        if field in ORDERING_FIELDS:  # invalid fields are ignored, as DRF's OrderingFilter
            docs = sorted(docs, key=lambda d: _sort_key(d.get(field)), reverse=term[0] == "-")
    return docs


def _sort_key(value: Any) -> tuple[int, float, str]:
    # Ids sort as numbers (9 before 10); text and ISO timestamps as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value or ""))
