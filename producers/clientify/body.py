"""The webhook body Clientify (django-rest-hooks) posts, validated at the door.

Only the envelope and the record id are checked: `data` is kept exactly as sent, since a
fact carries the raw record. Nesting depth is bounded because a hostile body nested a
few thousand levels deep would otherwise exhaust the recursion of the JSON encoder.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

MAX_DEPTH = 32
Event = Literal[
    "contact.saved", "contact.deleted",
    "company.saved", "company.deleted",
    "product.saved", "product.deleted",
]  # fmt: skip


class BadBody(Exception):
    """Why a body was refused, in words safe to return and log (no values echoed)."""


class Hook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: StrictInt
    event: Event
    target: str


class Data(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: StrictInt = Field(gt=0)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hook: Hook
    data: Data

    @property
    def entity(self) -> str:
        return self.hook.event.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.hook.event.split(".", 1)[1]

    def record(self) -> dict[str, Any]:
        """`data` exactly as Clientify sent it."""
        return self.data.model_dump()


def _reject_constant(name: str) -> Any:
    raise BadBody(f"body is not valid JSON: {name} is not allowed")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise BadBody("body is not valid JSON: a number is too large for a float")
    return number


def _integer(text: str) -> int:
    # Python refuses to convert longer digit strings, with a ValueError json.loads lets
    # through: say so like any other bad number instead.
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        raise BadBody(f"body is not valid JSON: a number has more than {limit} digits")
    return int(text)


def _depth(value: Any, limit: int) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse(raw: bytes) -> WebhookBody:
    """The validated body, or `BadBody` saying what is wrong with it."""
    try:
        data = json.loads(
            raw, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_integer
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(f"body is not valid JSON: {_position(exc)}") from None
    except RecursionError:
        raise BadBody(f"body is nested more than {MAX_DEPTH} levels deep") from None
    if _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise BadBody(f"body is nested more than {MAX_DEPTH} levels deep")
    try:
        return WebhookBody.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise BadBody(f"body is not a Clientify webhook: {problems}") from None


def _position(exc: UnicodeDecodeError | json.JSONDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
