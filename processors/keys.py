"""Business keys: the only way records are linked (never by guessing on names)."""

from __future__ import annotations

import re
from typing import Any

from schemas.mapping import KeyNormalizer

_TAX_ID_NOISE = re.compile(r"[\s.\-]+")


def normalize_key(value: Any, normalizer: KeyNormalizer) -> str | None:
    """The comparable form of a key, or None when the record has no usable key.

    `B-12.345.678` and ` b12345678 ` are the same tax id; the original text is stored
    unchanged in the records, only comparisons use this form.
    """
    if value is None or value is False or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if normalizer is KeyNormalizer.TAX_ID:
        text = _TAX_ID_NOISE.sub("", text).upper()
    return text or None
