"""Typed errors of the Clientify client; messages name the request, never the API key."""

from __future__ import annotations

from typing import Any


class ClientifyError(Exception):
    """Any failed Clientify request: `status` is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ClientifyAuthError(ClientifyError):
    """The key was rejected (401 "Invalid token.", or 404 "Api key not provided.")."""


class ClientifyNotFound(ClientifyError):
    """404 {"detail": "Not found."}: no record with that id."""


class ClientifyThrottled(ClientifyError):
    """429 that outlasted the client's patience; `retry_after` is Clientify's last hint."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ClientifyServerError(ClientifyError):
    """5xx, or no answer at all, after the retries the request was allowed."""


class ClientifyValidationError(ClientifyError):
    """400 with DRF's field map; `problems` lists it flattened, one "field: message" each."""

    def __init__(self, request: str, errors: Any) -> None:
        self.errors = errors
        self.problems = flatten_field_errors(errors)
        super().__init__(
            f"Clientify rejected {request}:\n  " + "\n  ".join(self.problems), status=400
        )


def flatten_field_errors(errors: Any, prefix: str = "") -> list[str]:
    """DRF nests errors like the data: `{"emails": [{}, {"email": ["Enter a valid..."]}]}`
    becomes `emails[1].email: Enter a valid...`, so each problem names its exact field."""
    if isinstance(errors, dict):
        lines: list[str] = []
        for field, value in errors.items():
            name = f"{prefix}.{field}" if prefix else str(field)
            lines.extend(flatten_field_errors(value, name))
        return lines
    if isinstance(errors, list):
        if all(isinstance(item, str) for item in errors):
            return [f"{prefix or 'body'}: {item}" for item in errors]
        lines = []
        for index, item in enumerate(errors):
            lines.extend(flatten_field_errors(item, f"{prefix}[{index}]"))
        return lines
    return [f"{prefix or 'body'}: {errors}"]
