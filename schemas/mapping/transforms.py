"""Named transforms: how one value is read into its canonical form on each side, and
written back. The mapping file picks them by name; each is a pair of small functions.

Canonical values are plain JSON: str, float, or None for "no value" (Odoo's False and
"", Clientify's null and "" all mean the same thing).
"""

from __future__ import annotations

import math
import re
import reprlib
from datetime import UTC, datetime
from typing import Any

from schemas.countries import country_name
from schemas.mapping.model import FieldMap, Transform
from schemas.odoo_values import many2one_name

ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"
# res.country.state's display name carries its country's code: "Madrid (ES)".
_STATE_COUNTRY_SUFFIX = re.compile(r"\s\([A-Z]{2}\)$")


class TransformError(ValueError):
    """A value cannot be read with the transform the mapping asks for."""


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == []


def _text(value: Any) -> str | None:
    return None if _empty(value) else str(value)


def _name(*parts: Any) -> str | None:
    """A whole name: its parts joined, runs of spaces made one ("Ana  " + "Ruiz")."""
    words = [word for part in parts if not _empty(part) for word in str(part).split()]
    return " ".join(words) or None


def split_full_name(name: str | None, first_now: Any = None) -> tuple[str, str]:
    """A whole name as Clientify's first and last name. The record's first name is kept
    while the name still starts with it ("María José" stays whole); otherwise the first
    word is the first name and the rest the last name."""
    if name is None:
        return "", ""
    kept = _name(first_now)
    if kept is not None and (name == kept or name.startswith(kept + " ")):
        return kept, name[len(kept) :].strip()
    first, _space, rest = name.partition(" ")
    return first, rest


def _number(value: Any, name: str) -> float | None:
    if _empty(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    # NaN and infinity are no prices: a NaN never equals itself, so it would be an edit
    # on every fact, and JSON cannot carry either.
    if not math.isfinite(number):
        raise TransformError(f"{name}: expected a number, got {reprlib.repr(value)}")
    return round(number, 2)


def _iso_datetime(value: Any, naive_format: str | None, name: str) -> str | None:
    if _empty(value):
        return None
    text = str(value)
    try:
        parsed = (
            datetime.strptime(text, naive_format)
            if naive_format and "T" not in text
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    except ValueError:
        raise TransformError(
            f"{name}: expected a date and time, got {reprlib.repr(value)}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Odoo datetimes are naive UTC
    return parsed.astimezone(UTC).isoformat()


def read_odoo(field: FieldMap, value: Any) -> Any:
    """Canonical value of an Odoo field value."""
    match field.transform:
        case Transform.NUMBER:
            return _number(value, field.name)
        case Transform.MANY2ONE:
            return _text(many2one_name(value))
        case Transform.COUNTRY:
            name = _text(many2one_name(value))
            return None if name is None else country_name(name)
        case Transform.STATE:
            name = _text(many2one_name(value))
            return None if name is None else _STATE_COUNTRY_SUFFIX.sub("", name)
        case Transform.DATETIME:
            return _iso_datetime(value, ODOO_DATETIME, field.name)
        case Transform.CUSTOMER_STATUS:
            # A current customer ("tipo de cliente") becomes Clientify's `client`.
            return "client" if value is True else None
        case Transform.FULL_NAME:
            return _name(value)
        case _:
            return _text(value)


def read_clientify_name(first: Any, last: Any) -> str | None:
    """The whole name of a Clientify first and last name (transform full_name)."""
    return _name(first, last)


def read_clientify(field: FieldMap, value: Any) -> Any:
    """Canonical value of a Clientify value (already taken from the field's path)."""
    match field.transform:
        case Transform.NUMBER:
            return _number(value, field.name)
        case Transform.PHONE:
            if not isinstance(value, list):
                return None
            for entry in value:
                if isinstance(entry, dict) and entry.get("type") == field.phone_type:
                    return _text(entry.get("phone"))
            return None
        case Transform.DATETIME:
            return _iso_datetime(value, None, field.name)
        case Transform.COUNTRY:
            text = _text(value)
            return None if text is None else country_name(text)
        case _:
            return _text(value)


def write_odoo(field: FieldMap, value: Any) -> Any:
    """The value to send to Odoo. Many2one values stay names: the Odoo writer resolves
    them to ids (countries and states by code or name) because that needs lookups."""
    if value is None:
        return False
    if field.transform is Transform.DATETIME:
        return datetime.fromisoformat(value).astimezone(UTC).strftime(ODOO_DATETIME)
    return value
