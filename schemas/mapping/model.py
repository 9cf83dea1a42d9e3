"""The mapping file's own schema: what syncs, field by field, as data.

A user renames a field, adds one, switches a direction off or picks another transform
by editing the YAML file; `load_mapping` validates it and reports each problem with its
line number and the path of the offending key, e.g.
`mapping.yaml line 31, flows.company.fields[2].transform: Input should be 'text', ...`.
"""

from __future__ import annotations

import itertools
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.keys import KeyNormalizer

DEFAULT_MAPPING = Path(__file__).resolve().parent / "mapping.yaml"
# What the mapper can follow: names joined by dots, each indexed at most once.
CLIENTIFY_PATH = re.compile(r"[A-Za-z_]\w*(\[\d+\])?(\.[A-Za-z_]\w*(\[\d+\])?)*")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> tuple[str | int, ...]:
    """`addresses[0].city` -> ("addresses", 0, "city")."""
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(path))


class Direction(StrEnum):
    BOTH = "both"
    ODOO_TO_CLIENTIFY = "odoo_to_clientify"
    CLIENTIFY_TO_ODOO = "clientify_to_odoo"
    OFF = "off"

    def allows(self, other: Direction) -> bool:
        """Whether a field with this direction flows in `other` (a one-way direction)."""
        return self is Direction.BOTH or self is other


def _yaml_off(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as the boolean false: take it as the word meant.
    return Direction.OFF if value is False else value


DirectionSetting = Annotated[Direction, BeforeValidator(_yaml_off)]


class Transform(StrEnum):
    """How a value is read from each side into its canonical form, and written back."""

    TEXT = "text"  # Odoo False/"" and Clientify ""/null are all "no value"
    NUMBER = "number"  # prices and quantities, as floats rounded to the cents
    MANY2ONE = "many2one"  # Odoo [id, name] <-> the name; the Odoo writer resolves ids
    # A many2one to a country, compared as the country ("España" is "Spain" is "ES").
    COUNTRY = "country"
    STATE = "state"  # a many2one to res.country.state, whose name Odoo shows "Madrid (ES)"
    PHONE = "phone"  # Clientify typed phones list <-> one number of `phone_type`
    DATETIME = "datetime"  # Odoo naive UTC "YYYY-MM-DD HH:MM:SS" <-> ISO 8601
    CUSTOMER_STATUS = "customer_status"  # Odoo "is a current customer" -> `client`
    # Odoo's one name <-> Clientify's first and last name (`clientify_last_name`): the
    # canonical value is the whole name, so the two sides may split it differently.
    FULL_NAME = "full_name"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    name: str = Field(description="canonical name; deltas and conflicts are per name")
    odoo: str | None = Field(default=None, description="Odoo field")
    clientify: str | None = Field(
        default=None, description="Clientify path, e.g. `addresses[0].city`"
    )
    direction: DirectionSetting = Direction.BOTH
    transform: Transform = Transform.TEXT
    phone_type: int | None = Field(default=None, description="Clientify phone type (1 Main…)")
    clientify_fallback: str | None = Field(
        default=None, description="Clientify field read when the main one is empty"
    )
    clientify_last_name: str | None = Field(
        default=None, description="with transform full_name: the Clientify last name"
    )
    odoo_fallback: str | None = Field(
        default=None, description="Odoo field read when the main one is empty or absent"
    )
    persons_only: bool = Field(
        default=False,
        description="not mapped for company partners (another flow owns the field there)",
    )
    constant: str | None = Field(default=None, description="fixed value written to Clientify")

    @field_validator("clientify", "clientify_fallback", "clientify_last_name")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not CLIENTIFY_PATH.fullmatch(value):
            raise ValueError(
                "a Clientify path is field names joined by dots, each with an optional "
                "[index], e.g. `addresses[0].city`"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.transform is Transform.PHONE and self.phone_type is None:
            raise ValueError("transform `phone` needs `phone_type` (1 Main, 2 Mobile, 3 Work…)")
        full_name = self.transform is Transform.FULL_NAME
        if full_name != (self.clientify_last_name is not None and self.clientify is not None):
            raise ValueError(
                "transform `full_name` goes with `clientify` (the first name) and "
                "`clientify_last_name`, and `clientify_last_name` only with it"
            )
        if self.constant is None and self.odoo is None and self.clientify is None:
            raise ValueError("a field needs `odoo`, `clientify` or `constant`")
        if self.constant is not None and self.direction is not Direction.ODOO_TO_CLIENTIFY:
            raise ValueError("a `constant` can only flow odoo_to_clientify")
        return self


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class KeySpec(_Strict):
    # Tried in order: the first that holds a value is the record's key (people type a
    # tax id into Reference or into Tax ID). A record created in Odoo gets the first.
    odoo: Annotated[tuple[str, ...], BeforeValidator(_listed), Field(min_length=1)]
    clientify: str
    normalize: KeyNormalizer = KeyNormalizer.EXACT

    @property
    def odoo_fields(self) -> str:
        """`ref or vat`, for messages."""
        return " or ".join(self.odoo)


class OdooSide(_Strict):
    model: str
    where: dict[str, Any] = Field(
        default_factory=dict,
        description="field -> value (or list of accepted values) a record must have",
    )


class ClientifySide(_Strict):
    resource: Literal["contacts", "companies", "products", "orders"]


class LineMap(_Strict):
    """Order lines: each Odoo line becomes one item of the Clientify order."""

    odoo: str = "lines"
    clientify: str = "items"
    fields: list[FieldMap]


class Flow(_Strict):
    description: str = ""
    odoo: OdooSide
    clientify: ClientifySide
    key: KeySpec
    direction: DirectionSetting = Direction.BOTH
    fields: list[FieldMap]
    lines: LineMap | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Flow:
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"field names must be unique in a flow: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _clientify_paths_fit(self) -> Flow:
        # The fields written to Clientify build one payload, so no two may need different
        # things at one place (a text where the other needs a list or an object inside);
        # only `phone` fields share their path, the typed phones list.
        writes = [
            (f, parse_path(path))
            for f in self.fields
            if f.direction.allows(Direction.ODOO_TO_CLIENTIFY)
            for path in (f.clientify, f.clientify_last_name)
            if path is not None
        ]
        for (a, path_a), (b, path_b) in itertools.combinations(writes, 2):
            fork = next(
                (i for i, (x, y) in enumerate(zip(path_a, path_b, strict=False)) if x != y), None
            )
            if fork is None:
                fits = path_a == path_b and a.transform is b.transform is Transform.PHONE
            else:
                fits = type(path_a[fork]) is type(path_b[fork])
            if not fits:
                raise ValueError(
                    f"fields `{a.name}` and `{b.name}` cannot both be written to Clientify, "
                    f"at `{_joined(path_a)}` and `{_joined(path_b)}`: only `phone` fields "
                    "share a path"
                )
        return self

    def fields_towards(self, direction: Direction) -> list[FieldMap]:
        """The fields that flow in one direction, given the flow's own switch."""
        if not self.direction.allows(direction):
            return []
        return [f for f in self.fields if f.direction.allows(direction)]


class MappingFile(_Strict):
    version: Literal[1] = 1
    order_status: str = Field(
        default="confirmed", description="Clientify status given to firm orders"
    )
    flows: dict[Literal["company", "contact", "product", "order"], Flow]


def _joined(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


class MappingError(ValueError):
    """The mapping file is invalid; the message lists each problem with its line."""


def load_mapping(path: Path = DEFAULT_MAPPING) -> MappingFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MappingError(f"cannot read the mapping file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = raw.count(b"\n", 0, exc.start) + 1
        raise MappingError(f"{path.name} line {first_bad}: not UTF-8; save it as UTF-8") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML builds nested collections recursively
        raise MappingError(f"{path.name}: nested too deeply to be a mapping file") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}: expected a mapping with `flows:` at the top")
    try:
        return MappingFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = _dotted(error["loc"])
            line = _line_of(root, error["loc"])
            where = f"line {line}, " if line else ""
            problems.append(f"{path.name} {where}{location}: {error['msg']}")
        raise MappingError(
            "invalid mapping file:\n  " + "\n  ".join(problems) + "\nSee the default, "
            "schemas/mapping/mapping.yaml, for every option explained."
        ) from None


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest YAML node the error location reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
