"""Apply one flow of the mapping file: raw records <-> canonical fields <-> payloads.

Facts carry raw records; the processors turn them into canonical fields (one flat dict
per record, keyed by the mapping's field names), compare canonical dicts to find what
changed, and turn the changed fields into a payload for the other side. A field that a
record does not carry at all (Odoo 19 has no `mobile`; Clientify list items have no
addresses) is left out, never read as "empty", so it can't erase the other side's value.
"""

from __future__ import annotations

import itertools
from typing import Any

from schemas.keys import normalise_key
from schemas.mapping.model import Direction, FieldMap, Flow, Transform, parse_path
from schemas.mapping.transforms import (
    read_clientify,
    read_clientify_name,
    read_odoo,
    split_full_name,
    write_odoo,
)

Canonical = dict[str, Any]
Path = tuple[str | int, ...]

_MISSING = object()


def get_path(record: Any, path: Path) -> Any:
    """The value at `path`; `_MISSING` when the record lacks the field itself, None when
    a list on the way is empty (the record has the field, with no value)."""
    node = record
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list):
                return _MISSING
            if part >= len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
    return node


def set_path(target: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = target
    for part, following in itertools.pairwise(path):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(node) <= part:
                node.append({})
            node = node[part]
        else:
            node = node.setdefault(part, empty)
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        node[last] = value
    else:
        node[last] = value


class FlowMapper:
    def __init__(self, flow: Flow, order_status: str = "confirmed") -> None:
        self.flow = flow
        self.order_status = order_status
        self._to_clientify = flow.fields_towards(Direction.ODOO_TO_CLIENTIFY)
        self._to_odoo = flow.fields_towards(Direction.CLIENTIFY_TO_ODOO)

    # -- keys and selection

    def odoo_key(self, record: dict[str, Any]) -> str | None:
        """The first of the key's Odoo fields that holds a usable value, normalised."""
        for field in self.flow.key.odoo:
            key = normalise_key(record.get(field), self.flow.key.normalize)
            if key is not None:
                return key
        return None

    def clientify_key(self, record: dict[str, Any]) -> str | None:
        return normalise_key(record.get(self.flow.key.clientify), self.flow.key.normalize)

    def selects(self, record: dict[str, Any]) -> bool:
        """Whether an Odoo record belongs to this flow (`where` in the mapping)."""
        for field, wanted in self.flow.odoo.where.items():
            value = record.get(field)
            accepted = wanted if isinstance(wanted, list) else [wanted]
            if value not in accepted:
                return False
        return True

    # -- reading

    def from_odoo(self, record: dict[str, Any]) -> Canonical:
        """Canonical fields of an Odoo record that flow towards Clientify."""
        is_company = record.get("is_company") is True
        out: Canonical = {}
        for field in self._to_clientify:
            if field.odoo is None or (field.persons_only and is_company):
                continue
            value = self._odoo_value(field, record)
            if value is not _MISSING:
                out[field.name] = read_odoo(field, value)
        if self.flow.lines is not None:
            lines = record.get(self.flow.lines.odoo)
            if isinstance(lines, list):
                out[self.flow.lines.clientify] = [self._line(line) for line in lines]
        return out

    def _line(self, line: dict[str, Any]) -> Canonical:
        assert self.flow.lines is not None
        return {
            field.name: read_odoo(field, value)
            for field in self.flow.lines.fields
            if field.odoo is not None and (value := self._odoo_value(field, line)) is not _MISSING
        }

    @staticmethod
    def _odoo_value(field: FieldMap, record: dict[str, Any]) -> Any:
        assert field.odoo is not None
        value = record.get(field.odoo, _MISSING)
        empty = value is _MISSING or value is False or value in ("", None)
        if empty and field.odoo_fallback is not None and field.odoo_fallback in record:
            return record[field.odoo_fallback]
        return value

    def from_clientify(self, record: dict[str, Any], is_company: bool = False) -> Canonical:
        """Canonical fields of a Clientify record that flow towards Odoo.

        `is_company`: the linked Odoo partner is a company, so `persons_only` fields
        belong to the company flow and are left out here.
        """
        out: Canonical = {}
        for field in self._to_odoo:
            if field.clientify is None or (field.persons_only and is_company):
                continue
            value = get_path(record, parse_path(field.clientify))
            if field.clientify_last_name is not None:
                last = get_path(record, parse_path(field.clientify_last_name))
                if value is not _MISSING or last is not _MISSING:
                    out[field.name] = read_clientify_name(
                        None if value is _MISSING else value, None if last is _MISSING else last
                    )
                continue
            if value is _MISSING:
                continue
            canonical = read_clientify(field, value)
            if canonical is None and field.clientify_fallback is not None:
                fallback = get_path(record, parse_path(field.clientify_fallback))
                if fallback is not _MISSING:
                    canonical = read_clientify(field, fallback)
            out[field.name] = canonical
        return out

    # -- writing

    def to_clientify(
        self, fields: Canonical, *, create: bool = False, record: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Clientify payload for changed canonical `fields` (all of them on create);
        `record`: the Clientify record being updated (a name keeps its first name)."""
        payload: dict[str, Any] = {}
        for field in self._to_clientify:
            if field.constant is not None:
                if create and field.clientify is not None:
                    set_path(payload, parse_path(field.clientify), field.constant)
                continue
            if field.name not in fields or field.clientify is None:
                continue
            self._put_clientify(payload, field, fields[field.name], record or {})
        if self.flow.lines is not None and self.flow.lines.clientify in fields:
            payload[self.flow.lines.clientify] = [
                {
                    f.clientify: line[f.name]
                    for f in self.flow.lines.fields
                    if f.clientify is not None and f.name in line
                }
                for line in fields[self.flow.lines.clientify]
            ]
        if create and self.flow.clientify.resource == "orders":
            payload["status"] = self.order_status
        return payload

    @staticmethod
    def _put_clientify(
        payload: dict[str, Any], field: FieldMap, value: Any, record: dict[str, Any]
    ) -> None:
        assert field.clientify is not None
        if field.clientify_last_name is not None:
            first_path = parse_path(field.clientify)
            first_now = get_path(record, first_path)
            first, last = split_full_name(value, None if first_now is _MISSING else first_now)
            set_path(payload, first_path, first)
            set_path(payload, parse_path(field.clientify_last_name), last)
            return
        if field.transform is Transform.PHONE:
            # Main and mobile share one typed list: each field owns its own type's entry.
            phones: list[dict[str, Any]] = payload.setdefault(field.clientify, [])
            if value is not None:
                phones.append({"phone": value, "type": field.phone_type})
            return
        set_path(payload, parse_path(field.clientify), "" if value is None else value)

    def to_odoo(self, fields: Canonical) -> dict[str, Any]:
        """Odoo values for changed canonical `fields` (many2one values as names)."""
        return {
            field.odoo: write_odoo(field, fields[field.name])
            for field in self._to_odoo
            if field.odoo is not None and field.name in fields
        }

    def odoo_many2one_fields(self) -> list[str]:
        """Odoo fields the writer must resolve from a name to an id."""
        return [
            field.odoo
            for field in self._to_odoo
            if field.odoo is not None
            and field.transform in (Transform.MANY2ONE, Transform.COUNTRY, Transform.STATE)
        ]
