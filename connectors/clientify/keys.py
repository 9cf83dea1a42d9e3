"""Business keys as the mapping defines them: compare normalised, store the original."""

from __future__ import annotations

import re

_TAX_ID_NOISE = re.compile(r"[\s.\-]+")


def normalise_tax_id(value: str | None) -> str:
    """`" b-12.345.678 "` -> `"B12345678"`: trim, uppercase, drop spaces, dots and dashes."""
    if value is None:
        return ""
    return _TAX_ID_NOISE.sub("", value).upper()


def normalise_sku(value: str | None) -> str:
    """SKUs are codes: only surrounding whitespace is noise, case is significant."""
    return (value or "").strip()
