"""Business keys, the only way records are linked: compared normalised, stored as typed.

`B-12.345.678`, ` b12345678 ` and `ESB12345678` are the same tax id; SKUs and order names
are codes where only surrounding whitespace is noise (case is significant).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any


class KeyNormalizer(StrEnum):
    """How a flow's business key is compared (the mapping file's `key.normalize`)."""

    TAX_ID = "tax_id"  # trim, uppercase, drop spaces, dots, dashes and Spain's VAT prefix
    EXACT = "exact"  # trim only (SKUs, order names)


_TAX_ID_NOISE = re.compile(r"[\s.\-]+")
# A Spanish NIF, NIE or CIF: nine characters, seven digits between a letter or digit at
# each end. None starts with two letters, so "ES" before one is always the VAT prefix
# (Odoo's Tax ID holds the VAT number: ESB12345678).
_SPANISH_TAX_ID = re.compile(r"[0-9A-Z][0-9]{7}[0-9A-Z]")


def normalise_tax_id(value: str | None) -> str:
    """`" es-b-12.345.678 "` -> `"B12345678"`: trim, uppercase, drop spaces, dots and
    dashes, and Spain's VAT prefix. Other countries' VAT numbers keep their prefix, so two
    countries' national numbers never meet as one key."""
    if value is None:
        return ""
    compact = _TAX_ID_NOISE.sub("", value).upper()
    if compact.startswith("ES") and _SPANISH_TAX_ID.fullmatch(compact[2:]):
        return compact[2:]
    return compact


def normalise_sku(value: str | None) -> str:
    return (value or "").strip()


def route_key(flow: str, key: str) -> str:
    """The key of everything about one record of a flow on the keyed topics (routed
    facts, commands, results): `flow:business key`, so it is handled in one partition."""
    return f"{flow}:{key}"


def normalise_key(value: Any, normalizer: KeyNormalizer) -> str | None:
    """The comparable form of a record's key, or None when it has no usable key (Odoo
    sends False for an empty field)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    normalised = (
        normalise_tax_id(text) if normalizer is KeyNormalizer.TAX_ID else normalise_sku(text)
    )
    return normalised or None
