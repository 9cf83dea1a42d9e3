"""Typed errors of the Odoo client, and how each protocol's failures map to them.

Only `transient` errors are retried: the server or the network could not answer
(`OdooUnavailable`) or the database asked for a retry (`OdooConcurrencyError`).
Access, validation and missing-record faults are final (odoo-api.md section 6).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, ClassVar

# Server-side names of the errors PostgreSQL raises when a transaction lost a race.
CONCURRENCY_NAMES = frozenset(
    {
        "psycopg2.errors.SerializationFailure",
        "psycopg2.errors.DeadlockDetected",
        "psycopg2.errors.LockNotAvailable",
        "psycopg2.extensions.TransactionRollbackError",
        "odoo.exceptions.ConcurrencyError",
        "odoo.exceptions.LockError",
    }
)
CONCURRENCY_TEXTS = ("could not serialize access", "deadlock detected", "could not obtain lock")
MISSING_TEXT = "does not exist or has been deleted"


class OdooError(Exception):
    """Anything that went wrong talking to Odoo; `str()` is one readable line."""

    transient: ClassVar[bool] = False


class OdooConfigError(OdooError):
    """A connection setting is wrong; the message names the setting to check."""


class OdooUnavailable(OdooError):
    """No usable answer (connection refused or reset, timeout, 5xx page).

    `ambiguous` is True when the request may have been applied anyway (timeout, 504),
    so a non-idempotent call (create) must not be repeated blindly.
    """

    transient = True

    def __init__(self, message: str, *, ambiguous: bool = False, retry_after: float = 0.0):
        super().__init__(message)
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class OdooFault(OdooError):
    """An error the server reported (XML-RPC fault, JSON-RPC error, JSON-2 4xx/5xx)."""

    def __init__(self, message: str, *, code: int | None = None, name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class OdooAccessDenied(OdooFault):
    """Wrong credentials (fault 3, HTTP 401)."""


class OdooAccessError(OdooFault):
    """The user may not do this (fault 4, HTTP 403)."""


class OdooValidationError(OdooFault):
    """A UserError or ValidationError: the request itself is wrong (fault 2, HTTP 422)."""


class OdooMissingRecord(OdooFault):
    """A record in the call was deleted (MissingError: fault 2, HTTP 404)."""


class OdooConcurrencyError(OdooFault):
    """The server gave up on a serialization failure or lock; retrying is right."""

    transient = True


_BY_NAME: dict[str, type[OdooFault]] = {
    "odoo.exceptions.AccessDenied": OdooAccessDenied,
    "werkzeug.exceptions.Unauthorized": OdooAccessDenied,
    "odoo.exceptions.AccessError": OdooAccessError,
    "werkzeug.exceptions.Forbidden": OdooAccessError,
    "odoo.exceptions.MissingError": OdooMissingRecord,
    "odoo.exceptions.UserError": OdooValidationError,
    "odoo.exceptions.ValidationError": OdooValidationError,
    "odoo.exceptions.RedirectWarning": OdooValidationError,
    "odoo.exceptions.except_orm": OdooValidationError,
    "werkzeug.exceptions.UnprocessableEntity": OdooValidationError,
    **dict.fromkeys(CONCURRENCY_NAMES, OdooConcurrencyError),
}


def last_line(text: str) -> str:
    """Fault 1 texts are whole tracebacks; the exception is on the last line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def from_fault(fault: xmlrpc.client.Fault) -> OdooFault:
    """An XML-RPC fault on /xmlrpc/2 (integer codes, odoo-api.md 1.1)."""
    code = fault.faultCode
    text = str(fault.faultString)
    if code == 3:
        return OdooAccessDenied(text, code=code)
    if code == 4:
        return OdooAccessError(text, code=code)
    if code == 2:
        kind = OdooMissingRecord if MISSING_TEXT in text else OdooValidationError
        return kind(text.split("\n(Record:")[0], code=code)
    if any(marker in text for marker in CONCURRENCY_TEXTS):
        return OdooConcurrencyError(last_line(text), code=code)
    return OdooFault(last_line(text), code=code if isinstance(code, int) else None)


def from_error_data(data: Any, fallback: str) -> OdooFault:
    """A JSON-RPC `error.data` or a JSON-2 error body: keyed on `name` (pitfall 12)."""
    if not isinstance(data, dict):
        return OdooFault(fallback)
    name = str(data.get("name") or "")
    message = str(data.get("message") or fallback)
    kind = _BY_NAME.get(name)
    if kind is None and any(marker in message for marker in CONCURRENCY_TEXTS):
        kind = OdooConcurrencyError
    return (kind or OdooFault)(last_line(message) if kind is None else message, name=name)
