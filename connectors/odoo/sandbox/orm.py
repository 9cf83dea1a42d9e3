"""A small ORM with Odoo's RPC-visible semantics: search, read, create, write, unlink.

Each RPC call gets an `Env` with the transaction time `now`: every row the call creates
or writes gets that one `write_date` (Odoo's `cr.now()`, odoo-api.md section 4). Models
subclass `Model`; methods marked `@api_model` or `@api_records` are callable over RPC,
everything else is internal (a `_name` is refused as private by the dispatcher).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from connectors.odoo.sandbox.domain import TRUE_LEAF, Getter, compile_domain, parse_order
from connectors.odoo.sandbox.errors import UserError, ValidationError, missing
from connectors.odoo.sandbox.fields import Field, convert_in, to_wire
from connectors.odoo.sandbox.profiles import Profile
from connectors.odoo.sandbox.store import Store

if TYPE_CHECKING:
    from connectors.odoo.sandbox.registry import Registry

Record = dict[str, Any]
Vals = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])


def api_model(method: F) -> F:
    """Callable over RPC without record ids (Odoo's `@api.model`)."""
    method._rpc = "model"  # type: ignore[attr-defined]
    return method


def api_records(method: F) -> F:
    """Callable over RPC on records: the ids come first."""
    method._rpc = "records"  # type: ignore[attr-defined]
    return method


def rpc_kind(method: Any) -> str | None:
    kind = getattr(method, "_rpc", None)
    return kind if isinstance(kind, str) else None


@dataclass
class Env:
    """One call's view of the database: who, when, and with which context."""

    registry: Registry
    store: Store
    profile: Profile
    uid: int
    now: datetime
    context: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Model:
        return self.registry.model(name)

    def children(self, model: str, inverse: str) -> dict[int, list[int]]:
        """parent id -> ids of `model` rows whose `inverse` points at it (one2many)."""
        return self.store.children(model, inverse)


def as_ids(ids: Any) -> list[int]:
    """Odoo accepts one id or a list of ids wherever records are expected."""
    if isinstance(ids, int) and not isinstance(ids, bool):
        return [ids]
    if isinstance(ids, list | tuple) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        return list(ids)
    raise TypeError(f"expected record ids (an int or a list of ints), got {ids!r}")


class Model:
    name: ClassVar[str]
    description: ClassVar[str]
    default_order: ClassVar[str] = "id"
    rec_name: ClassVar[str] = "name"

    def __init__(self, registry: Registry, fields: Iterable[Field]) -> None:
        self.registry = registry
        self.fields: dict[str, Field] = {}
        for declared in (
            Field("id", "integer", "ID", readonly=True),
            Field(
                "display_name", "char", "Display Name", store=False, searchable=True, readonly=True
            ),
            Field("create_date", "datetime", "Created on", readonly=True),
            Field("write_date", "datetime", "Last Updated on", readonly=True),
            Field("create_uid", "many2one", "Created by", relation="res.users", readonly=True),
            Field("write_uid", "many2one", "Last Updated by", relation="res.users", readonly=True),
            *fields,
        ):
            self.fields[declared.name] = declared

    # -- what subclasses refine

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        """This model's own fields in `profile` (the log fields are added for all)."""
        return []

    def order_for(self, env: Env) -> str:
        """The model's `_order`, used when a search gives none."""
        return self.default_order

    def defaults(self, env: Env) -> Vals:
        return {"active": True} if "active" in self.fields else {}

    def display_name(self, env: Env, row: Record) -> str:
        return str(self.value(env, row, self.rec_name) or "")

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        """Fill or check values before a create (`rid` None) or a write of `rid`."""
        return vals

    def after_write(self, env: Env, rid: int, vals: Vals, created: bool) -> None:
        """Keep stored derived values and related records up to date."""

    # -- values

    def value(self, env: Env, row: Record, name: str) -> Any:
        declared = self.fields[name]
        if declared.delegate is not None:
            parent = env[self.fields[declared.delegate].relation or ""]
            parent_row = env.store.get(parent.name, row[declared.delegate])
            return None if parent_row is None else parent.value(env, parent_row, name)
        if name == "display_name":
            return self.display_name(env, row)
        if declared.compute is not None:
            return declared.compute(env, row)
        if declared.type == "one2many":
            assert declared.relation is not None and declared.inverse is not None
            return list(env.children(declared.relation, declared.inverse).get(row["id"], []))
        return row.get(name, False if declared.type == "boolean" else None)

    def display(self, env: Env, model: str, rid: int) -> str | None:
        row = env.store.get(model, rid)
        return None if row is None else env[model].display_name(env, row)

    def wire(self, env: Env, row: Record, names: Iterable[str]) -> Record:
        result: Record = {"id": row["id"]}
        for name in names:
            result[name] = to_wire(
                self.fields[name],
                self.value(env, row, name),
                lambda model, rid: self.display(env, model, rid),
            )
        return result

    def field(self, name: str) -> Field:
        declared = self.fields.get(name)
        if declared is None:
            raise ValueError(self.registry.profile.invalid_field(name, self.name))
        return declared

    # -- searching

    def resolve(self, env: Env, path: str) -> tuple[Field, Getter]:
        head, _dot, rest = path.partition(".")
        declared = self.field(head)
        if not rest:
            if not declared.can_search:
                raise ValueError(f"Non-stored field {self.name}.{head} cannot be searched.")
            return declared, self._getter(env, head)
        if declared.type not in ("many2one", "one2many", "many2many"):
            raise ValueError(self.registry.profile.invalid_field(path, self.name))
        target = env[declared.relation or ""]
        leaf, inner = target.resolve(env, rest)
        own = self._getter(env, head)

        def follow(row: Record) -> list[Any]:
            found: list[Any] = []
            for rid in own(row):
                related = env.store.get(target.name, rid)
                if related is not None:
                    found.extend(inner(related))
            return found

        return leaf, follow

    def _getter(self, env: Env, name: str) -> Getter:
        declared = self.fields[name]
        multi = declared.type in ("one2many", "many2many")
        plain = declared.compute is None and declared.delegate is None and not declared.translate
        if plain and not multi and name != "display_name":
            # A stored column: read the row directly (searches scan every row).
            empty = False if declared.type == "boolean" else None
            return lambda row: [row.get(name, empty)]

        def get(row: Record) -> list[Any]:
            value = self.value(env, row, name)
            return list(value or []) if multi else [value]

        return get

    def _search_rows(
        self,
        env: Env,
        domain: Any,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[Record]:
        model = self

        class _Resolver:
            cuts_to_size = env.profile.domain_values_cut_to_size

            def resolve(self, path: str) -> tuple[Field, Getter]:
                return model.resolve(env, path)

            def display(self, relation: str, rid: int) -> str | None:
                return model.display(env, relation, rid)

        predicate = compile_domain(domain, _Resolver())
        if "active" in self.fields and env.context.get("active_test", True):
            mentions_active = any(
                isinstance(leaf, list | tuple) and len(leaf) == 3 and leaf[0] == "active"
                for leaf in domain or ()
            )
            if not mentions_active:
                inner = predicate
                predicate = lambda row: bool(row.get("active")) and inner(row)  # noqa: E731
        rows = [row for row in env.store.table(self.name).values() if predicate(row)]
        rows = self._sorted(env, rows, order or self.order_for(env))
        # Odoo applies a limit only when it is truthy: 0, None and False mean "all".
        end = offset + int(limit) if limit else None
        return rows[int(offset or 0) : end]

    def _sorted(self, env: Env, rows: list[Record], order: str) -> list[Record]:
        terms = parse_order(order)
        for name, _desc in terms:
            declared = self.field(name)
            if not declared.can_sort:
                raise ValueError(
                    f"Cannot convert {self.name}.{name} to SQL because it is not stored"
                )
        rows = sorted(rows, key=lambda row: row["id"])
        # Stable sorts from the last key to the first; empty values sort last when
        # ascending and first when descending, like PostgreSQL.
        for name, desc in reversed(terms):
            rows.sort(key=self._sort_by(env, name), reverse=desc)
        return rows

    def _sort_by(self, env: Env, name: str) -> Callable[[Record], tuple[bool, Any]]:
        return lambda row: _sort_key(self.value(env, row, name))

    # -- RPC methods

    @api_model
    def search(
        self,
        env: Env,
        domain: Any = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        return [row["id"] for row in self._search_rows(env, domain, offset, limit, order)]

    @api_model
    def search_count(self, env: Env, domain: Any = None, limit: int | None = None) -> int:
        return len(self._search_rows(env, domain, 0, limit))

    @api_model
    def name_search(
        self,
        env: Env,
        name: str = "",
        domain: Any = None,
        operator: str = "ilike",
        limit: int | None = 100,
    ) -> list[list[Any]]:
        """`[id, display name]` of the records whose display name matches `name`."""
        matching = ["&", ("display_name", operator, name), *(domain or [TRUE_LEAF])]
        rows = self._search_rows(env, matching, 0, limit)
        return [[row["id"], self.display_name(env, row)] for row in rows]

    @api_model
    def search_read(
        self,
        env: Env,
        domain: Any = None,
        fields: list[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[Record]:
        names = self._read_names(fields)
        rows = self._search_rows(env, domain, offset, limit, order)
        return [self.wire(env, row, names) for row in rows]

    @api_records
    def read(
        self, env: Env, ids: Any, fields: list[str] | None = None, load: str = "_classic_read"
    ) -> list[Record]:
        names = self._read_names(fields)
        table = env.store.table(self.name)
        # Missing ids are dropped silently (odoo-api.md section 9).
        return [self.wire(env, table[rid], names) for rid in as_ids(ids) if rid in table]

    def _read_names(self, fields: list[str] | None) -> list[str]:
        if not fields:
            return [name for name in self.fields if name != "id"]
        if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields):
            raise TypeError(f"fields must be a list of field names, got {fields!r}")
        for name in fields:
            self.field(name)
        return [name for name in dict.fromkeys(fields) if name != "id"]

    @api_model
    def create(self, env: Env, vals_list: Any) -> int | list[int]:
        if isinstance(vals_list, dict):
            return self.create_one(env, vals_list)
        if not isinstance(vals_list, list | tuple) or not all(
            isinstance(vals, dict) for vals in vals_list
        ):
            raise TypeError(f"create expects a dict or a list of dicts, got {vals_list!r}")
        return [self.create_one(env, vals) for vals in vals_list]

    @api_records
    def write(self, env: Env, ids: Any, vals: Vals) -> bool:
        record_ids = self._existing(env, ids)
        if not isinstance(vals, dict):
            raise TypeError(f"write expects a dict of values, got {vals!r}")
        for rid in record_ids:
            self.write_one(env, rid, vals)
        return True

    @api_records
    def unlink(self, env: Env, ids: Any) -> bool:
        for rid in self._existing(env, ids):
            self.unlink_one(env, rid)
        return True

    @api_model
    def fields_get(
        self, env: Env, allfields: list[str] | None = None, attributes: list[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for name, declared in self.fields.items():
            if allfields and name not in allfields:
                continue
            info = declared.in_env(env).describe()
            if attributes:
                info = {key: value for key, value in info.items() if key in attributes}
            result[name] = info
        return result

    def _existing(self, env: Env, ids: Any) -> list[int]:
        record_ids = as_ids(ids)
        table = env.store.table(self.name)
        absent = [rid for rid in record_ids if rid not in table]
        if absent:
            raise missing(self.name, absent, env.uid)
        return record_ids

    # -- the write path

    def create_one(self, env: Env, vals: Vals) -> int:
        vals = self.prepare(env, {**self.defaults(env), **vals}, None)
        own, delegated, nested = self._split(env, vals)
        for parent_field, parent_vals in delegated.items():
            parent = env[self.fields[parent_field].relation or ""]
            if own.get(parent_field):
                parent.write_one(env, own[parent_field], parent_vals)
            else:
                own[parent_field] = parent.create_one(env, parent_vals)
        missing_required = [
            name
            for name, declared in self.fields.items()
            if declared.required and declared.store and declared.delegate is None
            and own.get(name) in (None, "") and declared.type not in ("one2many", "many2many")
        ]  # fmt: skip
        if missing_required:
            raise ValidationError(self._required_message(missing_required[0]))
        own.update(create_date=env.now, write_date=env.now, create_uid=env.uid, write_uid=env.uid)
        rid = env.store.insert(self.name, own)
        for name, commands in nested.items():
            self.apply_x2many(env, rid, name, commands)
        self.after_write(env, rid, vals, created=True)
        return rid

    def write_one(self, env: Env, rid: int, vals: Vals) -> None:
        vals = self.prepare(env, vals, rid)
        own, delegated, nested = self._split(env, vals)
        row = env.store.get(self.name, rid)
        assert row is not None
        for parent_field, parent_vals in delegated.items():
            relation = self.fields[parent_field].relation or ""
            env[relation].write_one(env, row[parent_field], parent_vals)
        for name, value in own.items():
            if self.fields[name].required and value in (None, ""):
                raise ValidationError(self._required_message(name))
        own.update(write_date=env.now, write_uid=env.uid)
        env.store.update(self.name, rid, own)
        for name, commands in nested.items():
            self.apply_x2many(env, rid, name, commands)
        self.after_write(env, rid, vals, created=False)

    def unlink_one(self, env: Env, rid: int) -> None:
        for declared in self.fields.values():
            if declared.type == "one2many" and declared.relation and declared.inverse:
                for child in env.children(declared.relation, declared.inverse).get(rid, []):
                    env[declared.relation].unlink_one(env, child)
        env.store.delete(self.name, rid)

    def row(self, env: Env, rid: int) -> Record:
        """An existing row (callers checked the id)."""
        found = env.store.get(self.name, rid)
        assert found is not None, (self.name, rid)
        return found

    def touch(self, env: Env, rid: int) -> None:
        """Bump `write_date` as a write of a stored computed field would."""
        env.store.recompute(self.name, rid, {"write_date": env.now, "write_uid": env.uid})

    def _required_message(self, name: str) -> str:
        declared = self.fields[name]
        return (
            "The operation cannot be completed:\n"
            "- Create/update: a mandatory field is not set.\n"
            "- Delete: another model requires the record being deleted. "
            "If possible, archive it instead.\n\n"
            f"Model: {self.description} ({self.name})\n"
            f"Field: {declared.string} ({name})"
        )

    def _split(self, env: Env, vals: Vals) -> tuple[Vals, dict[str, Vals], dict[str, Any]]:
        """Values for this row, values for delegated parents, and x2many commands."""
        own: Vals = {}
        delegated: dict[str, Vals] = {}
        nested: dict[str, Any] = {}
        for name, value in vals.items():
            declared = self.field(name)
            if declared.delegate is not None:
                delegated.setdefault(declared.delegate, {})[name] = value
            elif declared.type in ("one2many", "many2many"):
                nested[name] = value
            elif declared.readonly or (declared.compute is not None and not declared.store):
                continue  # Odoo ignores values for readonly/computed fields
            else:
                own[name] = self._convert(env, declared, value)
        return own, delegated, nested

    def _convert(self, env: Env, declared: Field, value: Any) -> Any:
        converted = convert_in(self.name, declared.in_env(env), value)
        if declared.type == "many2one" and converted is not None:
            assert declared.relation is not None
            if env.store.get(declared.relation, converted) is None:
                raise ValidationError(
                    "The operation cannot be completed: another model requires the record "
                    f"being deleted, or {declared.relation}({converted},) does not exist."
                )
        return converted

    def apply_x2many(self, env: Env, rid: int, name: str, commands: Any) -> None:
        declared = self.fields[name]
        if not isinstance(commands, list | tuple):
            raise ValueError(f"Wrong value for {self.name}.{name}: {commands!r}")
        if declared.type == "many2many":
            self._apply_many2many(env, rid, declared, commands)
            return
        relation = env[declared.relation or ""]
        inverse = declared.inverse or ""
        for command in commands:
            code, target, vals = _command(self.name, name, command)
            current = env.children(relation.name, inverse).get(rid, [])
            if code == 0:
                relation.create_one(env, {**vals, inverse: rid})
            elif code == 1:
                relation.write_one(env, relation._existing(env, target)[0], vals)
            elif code in (2, 3):
                relation.unlink_one(env, relation._existing(env, target)[0])
            elif code == 4:
                relation.write_one(env, relation._existing(env, target)[0], {inverse: rid})
            elif code == 5:
                for child in list(current):
                    relation.unlink_one(env, child)
            elif code == 6:
                keep = set(as_ids(vals))
                for child in [c for c in current if c not in keep]:
                    relation.unlink_one(env, child)
                for child in keep - set(current):
                    relation.write_one(env, relation._existing(env, child)[0], {inverse: rid})

    def _apply_many2many(self, env: Env, rid: int, declared: Field, commands: Any) -> None:
        row = env.store.get(self.name, rid)
        assert row is not None
        ids: list[int] = list(row.get(declared.name) or [])
        if all(isinstance(c, int) and not isinstance(c, bool) for c in commands):
            ids = list(commands)  # a plain list of ids replaces the set
        else:
            for command in commands:
                code, target, vals = _command(self.name, declared.name, command)
                if code == 6:
                    ids = as_ids(vals)
                elif code == 5:
                    ids = []
                elif code == 4 and target not in ids:
                    ids.append(target)
                elif code in (2, 3) and target in ids:
                    ids.remove(target)
                elif code in (0, 1):
                    raise UserError(f"{self.name}.{declared.name}: use ids, not nested creates")
        for target in ids:
            if env.store.get(declared.relation or "", target) is None:
                raise ValidationError(f"{declared.relation}({target},) does not exist.")
        env.store.update(self.name, rid, {declared.name: ids})


def _command(model: str, name: str, command: Any) -> tuple[int, int, Any]:
    """One x2many command `[code, id, vals]` (shorter forms padded), checked."""
    if not isinstance(command, list | tuple) or not command or command[0] not in range(7):
        raise ValueError(f"Wrong value for {model}.{name}: invalid command {command!r}")
    code = int(command[0])
    target = command[1] if len(command) > 1 else 0
    vals = command[2] if len(command) > 2 else {}
    if code in (0, 1) and not isinstance(vals, dict):
        raise ValueError(f"Wrong value for {model}.{name}: {command!r} needs a dict of values")
    return code, int(target or 0), vals


def _sort_key(value: Any) -> tuple[bool, Any]:
    empty = value is None or value is False
    return (empty, "" if empty else value)
