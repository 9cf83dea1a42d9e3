"""Odoo search domains: prefix `&`, `|`, `!` over `(field, operator, value)` leaves.

`compile_domain` checks the whole domain first (unknown field, non-searchable field,
unknown operator, wrong arity each raise the ValueError Odoo raises, which the RPC
layer turns into Fault 1) and returns a predicate over internal rows. Semantics follow
Odoo's SQL: `= False` matches empty values, `!=` and the `not` operators include
empty values, comparisons never match empty values, x2many leaves match if any
element does, datetimes are compared with the stored microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from connectors.odoo.sandbox.fields import Field, parse_date, parse_datetime

Row = dict[str, Any]
Predicate = Callable[[Row], bool]
Getter = Callable[[Row], list[Any]]

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
WILDCARDS = ("like", "not like", "ilike", "not ilike")  # the value is wrapped in %...%
LIKES = (*WILDCARDS, "=like", "=ilike")
OPERATORS = frozenset({"=", "!=", "in", "not in", *COMPARISONS, *LIKES})
TRUE_LEAF = (1, "=", 1)
FALSE_LEAF = (0, "=", 1)


class Resolver(Protocol):
    """What a model offers the domain compiler."""

    # Whether a value is cut to its Char column's size before an exact comparison.
    cuts_to_size: bool

    def resolve(self, path: str) -> tuple[Field, Getter]:
        """The field at the end of `path` and a getter of the values it reaches;
        raises ValueError for an unknown or non-searchable field."""
        ...

    def display(self, model: str, rid: int) -> str | None: ...


def compile_domain(domain: Any, resolver: Resolver) -> Predicate:
    if domain is None or domain is False:
        return lambda _row: True
    if not isinstance(domain, list | tuple):
        raise ValueError(f"Invalid domain {domain!r}: expected a list")
    stack: list[Predicate] = []
    for token in reversed(domain):
        if token == "!":
            stack.append(_negate(_pop(stack, domain)))
        elif token in ("&", "|"):
            first, second = _pop(stack, domain), _pop(stack, domain)
            stack.append(_combine(token, first, second))
        else:
            stack.append(_leaf(token, resolver))
    # Terms left side by side are joined by an implicit `&`.
    predicates = list(reversed(stack))
    if len(predicates) == 1:
        return predicates[0]

    def every(row: Row) -> bool:
        # Plain loops, not all()/any() over generators: every search evaluates the
        # domain on every row of the table, and the generators cost a third of that.
        for predicate in predicates:  # noqa: SIM110
            if not predicate(row):
                return False
        return True

    return every


def _pop(stack: list[Predicate], domain: Any) -> Predicate:
    if not stack:
        raise ValueError(f"Domain {domain!r} is syntactically not correct")
    return stack.pop()


def _negate(inner: Predicate) -> Predicate:
    return lambda row: not inner(row)


def _combine(operator: str, first: Predicate, second: Predicate) -> Predicate:
    if operator == "&":
        return lambda row: first(row) and second(row)
    return lambda row: first(row) or second(row)


def _leaf(token: Any, resolver: Resolver) -> Predicate:
    if not isinstance(token, list | tuple) or len(token) != 3:
        raise ValueError(f"Invalid leaf {token!r}")
    path, operator, value = token
    if (path, operator, value) == TRUE_LEAF:
        return lambda _row: True
    if (path, operator, value) == FALSE_LEAF:
        return lambda _row: False
    if not isinstance(path, str) or not isinstance(operator, str):
        raise ValueError(f"Invalid leaf {token!r}")
    operator = operator.lower()
    if operator not in OPERATORS:
        raise ValueError(f"Invalid leaf {token!r}: unknown operator {operator!r}")
    field, getter = resolver.resolve(path)
    if field.type == "many2one" and _is_text(value):
        # A name instead of an id: Odoo name-searches the related model.
        assert field.relation is not None
        relation = field.relation
        getter = _names(getter, relation, resolver)
    else:
        cut = resolver.cuts_to_size and operator not in WILDCARDS
        value = _coerce(field, value, cut)
    test = _operator(operator, value)
    return lambda row: test(getter(row))


def _is_text(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _names(getter: Getter, relation: str, resolver: Resolver) -> Getter:
    return lambda row: [resolver.display(relation, rid) for rid in getter(row) if rid]


def _coerce(field: Field, value: Any, cut: bool) -> Any:
    if isinstance(value, list | tuple):
        return [_coerce(field, v, cut) for v in value]
    if isinstance(value, str) and field.type == "datetime":
        return parse_datetime(value)
    if isinstance(value, str) and field.type == "date":
        return parse_date(value)
    if cut and isinstance(value, str) and field.size is not None:
        # Up to 18 Odoo converts a value to the column first: a Char(size=2) compares
        # "Germany" as "Ge" (odoo-api.md section 9).
        return value[: field.size]
    return value


def _empty(value: Any) -> bool:
    return value is None or value is False or value == ""


def _equal(values: list[Any], target: Any) -> bool:
    if _empty(target):
        return all(_empty(v) for v in values)
    return any(_same(v, target) for v in values)


def _same(value: Any, target: Any) -> bool:
    # A date given for a datetime field compares with that day's midnight.
    if isinstance(value, datetime) and isinstance(target, date):
        target = target if isinstance(target, datetime) else datetime(*target.timetuple()[:3])
    return bool(value == target)


def _operator(operator: str, value: Any) -> Callable[[list[Any]], bool]:
    if operator == "=":
        return lambda values: _equal(values, value)
    if operator == "!=":
        return lambda values: not _equal(values, value)
    if operator in ("in", "not in"):
        found = _member(value if isinstance(value, list | tuple) else [value])
        return found if operator == "in" else (lambda values: not found(values))
    if operator in COMPARISONS:
        compare = COMPARISONS[operator]
        accepts = _same_kind(value)

        def ordered(values: list[Any]) -> bool:
            for v in values:  # noqa: SIM110 - see `every` above
                if accepts(v) and compare(v, value):
                    return True
            return False

        return ordered
    return _like(operator, value)


def _member(options: Sequence[Any]) -> Callable[[list[Any]], bool]:
    """`in`: a set lookup (pollers send hundreds of ids), `False` matching empty values."""
    wants_empty = any(_empty(option) for option in options)
    present = [option for option in options if not _empty(option)]
    try:
        lookup = frozenset(present)
    except TypeError:  # unhashable options: compare one by one
        return lambda values: any(_equal(values, option) for option in options)
    if any(isinstance(option, date) for option in present):
        return lambda values: any(_equal(values, option) for option in options)

    def found(values: list[Any]) -> bool:
        if wants_empty and all(_empty(v) for v in values):
            return True
        return any(v in lookup for v in values if not _empty(v))

    return found


def _same_kind(target: Any) -> Callable[[Any], bool]:
    """Comparisons never match empty values (SQL NULL) nor values of another type."""
    if isinstance(target, int | float) and not isinstance(target, bool):
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    kind = type(target)
    if kind is str:
        return lambda v: type(v) is str and v != ""
    return lambda v: type(v) is kind


def _like(operator: str, value: Any) -> Callable[[list[Any]], bool]:
    text = str(value)
    insensitive = "ilike" in operator
    pattern = _like_pattern(text) if operator.startswith("=") else f".*{re.escape(text)}.*"
    flags = (re.IGNORECASE | re.DOTALL) if insensitive else re.DOTALL
    regex = re.compile(pattern, flags)
    matches: Callable[[list[Any]], bool] = lambda values: any(  # noqa: E731
        isinstance(v, str) and regex.fullmatch(v) is not None for v in values
    )
    if operator.startswith("not"):
        return lambda values: not matches(values)
    return matches


def _like_pattern(text: str) -> str:
    """PostgreSQL's LIKE pattern as a regex: `%` any run, `_` one character, and a
    backslash takes the next character literally."""
    parts, chars = [], iter(text)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars, ch)))
        else:
            parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(parts)


def parse_order(order: str | None) -> list[tuple[str, bool]]:
    """`"write_date asc, id desc"` -> `[("write_date", False), ("id", True)]` (desc flag)."""
    terms: list[tuple[str, bool]] = []
    for part in (order or "").split(","):
        words = part.split()
        if not words:
            continue
        direction = words[1].lower() if len(words) > 1 else "asc"
        if len(words) > 3 or direction not in ("asc", "desc"):
            raise ValueError(f'Invalid "order" specified ({order!r})')
        terms.append((words[0], direction == "desc"))
    return terms
