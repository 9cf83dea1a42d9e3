"""Just enough of Django REST Framework's serializer fields to answer like Clientify.

Each field turns request JSON into a stored value or raises `Invalid` with DRF's exact
message, so a 400 from the sandbox reads like one from Clientify:
`{"emails": [{"email": ["Enter a valid email address."]}]}`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

REQUIRED = "This field is required."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Invalid(Exception):
    """`detail` is a list of messages, or a nested map/list for nested data."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class Field:
    required: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass
class Raw(Field):
    """Any JSON value; the view interprets it (e.g. an order's contact: URL or object)."""

    required: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        return value


@dataclass
class Text(Field):
    max_length: int = 255
    required: bool = False
    default: Any = ""

    def parse(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool | dict | list):
            raise Invalid(["Not a valid string."])
        text = str(value)
        if len(text) > self.max_length:
            raise Invalid([f"Ensure this field has no more than {self.max_length} characters."])
        return text


@dataclass
class Email(Text):
    def parse(self, value: Any) -> Any:
        text = super().parse(value)
        if text is not None and not _EMAIL.match(text.strip()):
            raise Invalid(["Enter a valid email address."])
        return None if text is None else text.strip()


@dataclass
class Choice(Field):
    choices: tuple[Any, ...] = ()
    required: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        for choice in self.choices:
            # DRF compares the string forms, so "2" is accepted where 2 is a choice.
            if str(choice) == str(value) and not isinstance(value, bool | dict | list):
                return choice
        raise Invalid([f'"{value}" is not a valid choice.'])


@dataclass
class Integer(Field):
    required: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError):
            raise Invalid(["A valid integer is required."]) from None


@dataclass
class Money(Field):
    """DRF DecimalField(decimal_places=2): written as a string, e.g. "12.50"."""

    required: bool = False
    default: Any = "0.00"

    def parse(self, value: Any) -> Any:
        try:
            if isinstance(value, bool | dict | list) or value is None:
                raise InvalidOperation
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise Invalid(["A valid number is required."]) from None
        return str(number.quantize(Decimal("0.01")))


@dataclass
class Boolean(Field):
    required: bool = False
    default: Any = False
    _TRUE = ("true", "1", "yes", "on")
    _FALSE = ("false", "0", "no", "off")

    def parse(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in self._TRUE:
            return True
        if text in self._FALSE:
            return False
        raise Invalid(["Must be a valid boolean."])


@dataclass
class ListOf(Field):
    item: Field = field(default_factory=Text)
    required: bool = False
    allow_empty: bool = True
    default: Any = field(default_factory=list)

    def parse(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise Invalid([f'Expected a list of items but got type "{type(value).__name__}".'])
        if not value and not self.allow_empty:
            raise Invalid(["This list may not be empty."])
        parsed: list[Any] = []
        errors: list[Any] = []
        for item in value:
            try:
                parsed.append(self.item.parse(item))
                errors.append({})
            except Invalid as exc:
                errors.append(exc.detail)
        if any(errors):
            raise Invalid(errors)
        return parsed


@dataclass
class Nested(Field):
    fields: Mapping[str, Field] = field(default_factory=dict)
    required: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        return validate(self.fields, value, partial=False)


def validate(fields: Mapping[str, Field], data: Any, *, partial: bool) -> dict[str, Any]:
    """The known fields of `data`, parsed; unknown keys are ignored as DRF does.

    `partial` (PUT/PATCH) skips `required` and leaves absent fields absent.
    """
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else type(data).__name__
        raise Invalid(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    parsed: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in data:
            if spec.required and not partial:
                errors[name] = [REQUIRED]
            elif not partial:
                parsed[name] = copy.deepcopy(spec.default)
            continue
        value = data[name]
        if spec.required and (value is None or value == ""):
            errors[name] = [
                "This field may not be blank." if value == "" else "This field may not be null."
            ]
            continue
        try:
            parsed[name] = spec.parse(value)
        except Invalid as exc:
            errors[name] = exc.detail
    if errors:
        raise Invalid(errors)
    return parsed
