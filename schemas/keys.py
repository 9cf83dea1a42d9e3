"""Business keys, the only way records are linked: compared normalised, stored as typed.

`B-12.345.678` and ` b12345678 ` are the same tax id; SKUs and order names are codes
where only surrounding whitespace is noise (case is significant).
"""

from __future__ import annotations

import re
from typing import Any

from schemas.mapping import KeyNormalizer

_TAX_ID_NOISE = re.compile(r"[\s.\-]+")


def normalise_tax_id(value: str | None) -> str:
    """`" b-12.345.678 "` -> `"B12345678"`: trim, uppercase, drop spaces, dots and dashes."""
    if value is None:
        return ""
    return _TAX_ID_NOISE.sub("", value).upper()


def normalise_sku(value: str | None) -> str:
    return (value or "").strip()


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
