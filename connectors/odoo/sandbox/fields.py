"""Field declarations and Odoo's value conventions on the wire.

Inside the sandbox an empty value is `None`, many2one is an id, datetimes are naive UTC
`datetime`s with microseconds. On the wire (`to_wire`) empty is `False`, many2one is
`[id, display name]`, datetimes are `"YYYY-MM-DD HH:MM:SS"` (truncated to the second),
exactly what Odoo's marshaller sends (odoo-api.md 1.1 and section 9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from connectors.odoo.sandbox.orm import Env, Record

FieldType = Literal[
    "char", "text", "html", "integer", "float", "monetary", "boolean", "date", "datetime",
    "selection", "many2one", "one2many", "many2many",
]  # fmt: skip
WIRE_DATETIME = "%Y-%m-%d %H:%M:%S"

Compute = Callable[["Env", "Record"], Any]
Options = Callable[["Env"], tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    string: str
    relation: str | None = None
    inverse: str | None = None  # one2many: the many2one on the other side
    selection: tuple[tuple[str, str], ...] = ()
    required: bool = False
    readonly: bool = False
    store: bool = True
    searchable: bool | None = None  # defaults to `store`
    compute: Compute | None = None  # non-stored (or derived stored) value
    # A computed field with an inverse method: writable, the model's `prepare` turns
    # its value into the stored fields it is computed from.
    settable: bool = False
    delegate: str | None = None  # stored on the record this many2one points to
    translate: bool = False  # the value read depends on the context's lang
    size: int | None = None  # a Char column's length: values are cut to it
    # A selection whose options live in the database (res.partner.lang: the installed
    # languages), and whether a value outside them is refused.
    options: Options | None = None
    open_selection: bool = False

    @property
    def can_search(self) -> bool:
        return self.store if self.searchable is None else self.searchable

    @property
    def can_sort(self) -> bool:
        # A delegated field sorts through the join to the record that stores it.
        return self.store or self.delegate is not None

    def in_env(self, env: Env) -> Field:
        """The field as one call sees it: a database selection filled in."""
        return self if self.options is None else replace(self, selection=self.options(env))

    def describe(self) -> dict[str, Any]:
        """The `fields_get` description of this field."""
        info: dict[str, Any] = {
            "type": self.type,
            "string": self.string,
            "required": self.required,
            "readonly": self.readonly
            or (self.compute is not None and not self.store and not self.settable),
            "store": self.store,
            "searchable": self.can_search,
            "sortable": self.can_sort,
        }
        if self.relation:
            info["relation"] = self.relation
        if self.inverse:
            info["relation_field"] = self.inverse
        if self.type == "selection":
            info["selection"] = [list(pair) for pair in self.selection]
        return info


def parse_datetime(value: str) -> datetime:
    """What Odoo's `Datetime.to_datetime` accepts: a date, or a date and time, also ISO."""
    text = value.strip().removesuffix("Z").replace("T", " ")
    for fmt in (WIRE_DATETIME + ".%f", WIRE_DATETIME, "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"'{value}' is not a valid datetime (expected YYYY-MM-DD HH:MM:SS)")


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ValueError(f"'{value}' is not a valid date (expected YYYY-MM-DD)") from None


def convert_in(model: str, field: Field, value: Any) -> Any:
    """A wire value for a stored scalar or many2one field -> the internal value."""
    if value is False or value is None:
        return False if field.type == "boolean" else None
    kind = field.type
    if kind in ("char", "text", "html"):
        if not isinstance(value, str):
            raise ValueError(f"Wrong value for {model}.{field.name}: {value!r}")
        return value
    if kind == "selection":
        known = {key for key, _label in field.selection}
        if value not in known and not (field.open_selection and isinstance(value, str)):
            raise ValueError(f"Wrong value for {model}.{field.name}: {value!r}")
        return value
    if kind == "boolean":
        return bool(value)
    if kind == "integer":
        return _number(model, field, value, int)
    if kind in ("float", "monetary"):
        return _number(model, field, value, float)
    if kind == "datetime":
        return _temporal(model, field, value, parse_datetime)
    if kind == "date":
        return _temporal(model, field, value, parse_date)
    if kind == "many2one":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"Wrong value for {model}.{field.name}: {value!r} (expected an id)")
        return value
    raise ValueError(f"{model}.{field.name} ({kind}) cannot be set this way")


def _number(model: str, field: Field, value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Wrong value for {model}.{field.name}: {value!r}")
    return kind(value)


def _temporal(model: str, field: Field, value: Any, parse: Callable[[str], Any]) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"Wrong value for {model}.{field.name}: {value!r}")
    return parse(value)


def to_wire(field: Field, value: Any, display: Callable[[str, int], str | None]) -> Any:
    """An internal value -> what Odoo sends; `display(model, id)` names many2one targets."""
    kind = field.type
    if kind in ("one2many", "many2many"):
        return list(value or [])
    if kind == "boolean":
        return bool(value)
    if kind == "integer":
        return int(value or 0)
    if kind in ("float", "monetary"):
        return float(value or 0.0)
    if value is None:
        return False
    if kind == "datetime":
        return value.strftime(WIRE_DATETIME)
    if kind == "date":
        return value.isoformat()
    if kind == "many2one":
        assert field.relation is not None
        name = display(field.relation, value)
        return False if name is None else [value, name]
    return value
