"""The repository the tests run in, and its files as data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# Compose's variable forms: $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}.
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose(
    file: str = "docker-compose.yml", variables: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A compose file as `docker compose` reads it, without a Docker engine: its variables
    replaced from `variables` (by default only WEBHOOK_SECRET, which the file requires),
    so unset ones take their defaults."""
    given = {"WEBHOOK_SECRET": "a-webhook-secret"} if variables is None else variables

    def value(match: re.Match[str]) -> str:
        name, operator, word = match.groups()
        if name is None:
            return "$"
        found = given.get(name)
        if operator in (":-", ":?") and not found:
            found = None
        if found is not None:
            return found
        if operator and operator.endswith("?"):
            raise KeyError(f"{file}: {name} is required: {word}")
        return word if operator else ""

    loaded: dict[str, Any] = yaml.safe_load(_VARIABLE.sub(value, (REPO / file).read_text()))
    return loaded
