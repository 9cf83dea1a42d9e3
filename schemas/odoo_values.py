"""How Odoo writes values in the records facts carry (its read format, kept raw).

A many2one is read as `[id, display name]`, and as False when empty; every empty field
is False, text and relations included.
"""

from __future__ import annotations

from typing import Any


def many2one_id(value: Any) -> int | None:
    """The id of a many2one as read (`[id, name]`), None when empty."""
    if isinstance(value, list | tuple) and value and isinstance(value[0], int):
        return int(value[0])
    return None


def many2one_name(value: Any) -> Any:
    """The display name of a many2one as read (`[id, name]`); anything else as it is (a
    bare name, in facts older than the pair)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[1]
    return value
