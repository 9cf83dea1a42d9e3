"""The exceptions an Odoo server raises, with how each protocol reports them.

Each class carries its Python name on the server (JSON-RPC `data.name`, JSON-2 `name`),
its XML-RPC faultCode (odoo-api.md 1.1) and its JSON-2 HTTP status (1.3). Any other
Python exception raised by a model (ValueError, TypeError...) is "anything else":
faultCode 1 with a traceback, `builtins.<Type>` as its name, HTTP 500 on JSON-2.
"""

from __future__ import annotations

from typing import ClassVar


class OdooServerError(Exception):
    odoo_name: ClassVar[str] = "odoo.exceptions.UserError"
    fault_code: ClassVar[int] = 2
    http_status: ClassVar[int] = 422


class UserError(OdooServerError):
    pass


class ValidationError(UserError):
    odoo_name = "odoo.exceptions.ValidationError"


class MissingError(UserError):
    odoo_name = "odoo.exceptions.MissingError"
    http_status = 404


class AccessError(UserError):
    odoo_name = "odoo.exceptions.AccessError"
    fault_code = 4
    http_status = 403


class AccessDenied(OdooServerError):
    odoo_name = "odoo.exceptions.AccessDenied"
    fault_code = 3
    http_status = 401

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class SerializationFailure(OdooServerError):
    """What PostgreSQL raises when concurrent transactions collide; Odoo retries it a few
    times and then gives up with this (odoo-api.md section 6)."""

    odoo_name = "psycopg2.errors.SerializationFailure"
    fault_code = 1
    http_status = 409

    def __init__(self) -> None:
        super().__init__("could not serialize access due to concurrent update")


class DatabaseNotFound(OdooServerError):
    """What psycopg2 raises when the requested database does not exist."""

    odoo_name = "psycopg2.OperationalError"
    fault_code = 1
    http_status = 404

    def __init__(self, db: str) -> None:
        super().__init__(
            'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
            f'FATAL:  database "{db}" does not exist'
        )


def missing(model: str, ids: list[int], uid: int) -> MissingError:
    listed = ",".join(str(i) for i in ids) + ("," if len(ids) == 1 else "")
    return MissingError(
        f"Record does not exist or has been deleted.\n(Record: {model}({listed}), User: {uid})"
    )


def error_name(exc: BaseException) -> str:
    if isinstance(exc, OdooServerError):
        return exc.odoo_name
    # The sandbox's own refinements (e.g. BadArguments) travel as their builtin base.
    builtin = next(cls for cls in type(exc).__mro__ if cls.__module__ == "builtins")
    return f"builtins.{builtin.__name__}"


def fault_code(exc: BaseException) -> int:
    return exc.fault_code if isinstance(exc, OdooServerError) else 1


def message(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def traceback_text(exc: BaseException) -> str:
    """A fault 1 text: Odoo sends the whole server traceback, the exception last."""
    return (
        "Traceback (most recent call last):\n"
        '  File "/odoo/odoo/service/model.py", line 133, in retrying\n'
        "    result = func()\n"
        f"{error_name(exc).removeprefix('builtins.')}: {message(exc)}\n"
    )
