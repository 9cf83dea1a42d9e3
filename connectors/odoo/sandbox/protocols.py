"""Odoo's three wire protocols over one `Database`: XML-RPC, JSON-RPC and JSON-2.

Each adapter turns a request into `Database` calls and an exception into what that
protocol sends (odoo-api.md 1.1-1.3): XML-RPC faults with integer codes on /xmlrpc/2,
JSON-RPC `error` objects keyed by `data.name`, JSON-2 HTTP statuses with a JSON body.
"""

from __future__ import annotations

import json
import logging
import xmlrpc.client
from typing import Any

from aiohttp import web

from connectors.odoo.sandbox.database import BadArguments, Database, UnknownMethod
from connectors.odoo.sandbox.errors import (
    AccessDenied,
    AccessError,
    OdooServerError,
    error_name,
    fault_code,
    message,
    traceback_text,
)

log = logging.getLogger(__name__)


def version_info(database: Database) -> dict[str, Any]:
    profile = database.profile
    return {
        "server_version": profile.server_version,
        "server_version_info": profile.version_info,
        "server_serie": profile.server_version.removesuffix("+e"),
        "protocol_version": 1,
    }


def _arguments(args: list[Any], count: int, signature: str) -> list[Any]:
    if len(args) < count:
        raise TypeError(f"{signature} takes {count} arguments ({len(args)} given)")
    return args


async def call_service(database: Database, service: str, method: str, args: list[Any]) -> Any:
    """The `common`, `object` and `db` services, as `/xmlrpc/2/<service>` and `/jsonrpc`."""
    if service == "common":
        if method == "version":
            return version_info(database)
        if method in ("login", "authenticate"):
            db, login, key = _arguments(args, 3, f"{method}(db, login, password)")[:3]
            return database.authenticate(db, login, key)
    elif service == "object":
        if method == "execute_kw":
            db, uid, key, model, name, *rest = _arguments(
                args, 5, "execute_kw(db, uid, password, model, method, args, kw)"
            )
            positional = rest[0] if rest else []
            keywords = rest[1] if len(rest) > 1 else {}
            if not isinstance(positional, list) or not isinstance(keywords, dict | None):
                raise TypeError("execute_kw: args must be a list and kw a dict")
            database.check_db(db)
            database.check_key(key, uid)
            return await database.call(uid, model, name, positional, keywords or {})
        if method == "execute":
            db, uid, key, model, name, *positional = _arguments(
                args, 5, "execute(db, uid, password, model, method, *args)"
            )
            database.check_db(db)
            database.check_key(key, uid)
            return await database.call(uid, model, name, positional, {})
    elif service == "db":
        if method == "list":
            return [database.credentials.db]
        if method == "server_version":
            return database.profile.server_version
    raise NameError(f"Method not available {method}")


# What a model raises on bad input: answers to the client, not sandbox bugs.
EXPECTED_ERRORS = (OdooServerError, ValueError, TypeError, LookupError, NameError, AttributeError)


def warn_deprecated(database: Database, endpoint: str, warned: set[str]) -> None:
    """19 logs that /xmlrpc and /jsonrpc are deprecated (odoo-api.md 1.4). Odoo does it
    on every request; the sandbox says it once per endpoint so its console stays usable."""
    if database.profile.version >= 19 and endpoint not in warned:
        warned.add(endpoint)
        log.warning(
            "%s is deprecated since Odoo 19 and will be removed in Odoo 22; "
            "use the JSON-2 API (/json/2/<model>/<method>)",
            endpoint,
        )


def _log_failure(exc: BaseException) -> None:
    if not isinstance(exc, EXPECTED_ERRORS):
        log.exception("unexpected error in the Odoo sandbox", exc_info=exc)


# ---------------------------------------------------------------- XML-RPC


def xmlrpc_handler(database: Database, service: str, warned: set[str]) -> Any:
    async def handle(request: web.Request) -> web.Response:
        warn_deprecated(database, request.path, warned)
        body = await request.read()
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
            result = await call_service(database, service, str(method), list(params))
            # allow_none=False, as Odoo's marshaller: a None result becomes Fault 1.
            payload = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
        except Exception as exc:  # noqa: BLE001 - every error becomes a fault, as in Odoo
            _log_failure(exc)
            payload = xmlrpc.client.dumps(xmlrpc_fault(exc), methodresponse=True)
        return web.Response(body=payload.encode(), content_type="text/xml", charset="utf-8")

    return handle


def xmlrpc_fault(exc: BaseException) -> xmlrpc.client.Fault:
    code = fault_code(exc)
    if code == 3:
        return xmlrpc.client.Fault(3, "Access Denied")
    if code == 1:
        return xmlrpc.client.Fault(1, traceback_text(exc))
    return xmlrpc.client.Fault(code, message(exc))


# ---------------------------------------------------------------- JSON-RPC


def error_data(exc: BaseException) -> dict[str, Any]:
    text = message(exc)
    return {
        "name": error_name(exc),
        "message": text,
        "arguments": [text],
        "context": {},
        "debug": traceback_text(exc),
    }


def jsonrpc_handler(database: Database, warned: set[str]) -> Any:
    async def handle(request: web.Request) -> web.Response:
        warn_deprecated(database, request.path, warned)
        request_id: Any = None
        try:
            body = await request.json(loads=json.loads)
            if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
                raise BadArguments("a JSON-RPC request needs an object with `params`")
            request_id = body.get("id")
            # The top-level "method" is ignored; params say what to call (section 9).
            params = body["params"]
            args = params.get("args") or []
            if not isinstance(args, list):
                raise BadArguments("params.args must be a list")
            result = await call_service(
                database, str(params.get("service")), str(params.get("method")), args
            )
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except Exception as exc:  # noqa: BLE001 - reported in the JSON-RPC error object
            _log_failure(exc)
            reply = {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {
                    "code": database.profile.jsonrpc_error_code,
                    "message": "Odoo Server Error",
                    "data": error_data(exc),
                },
            }
        return web.json_response(reply)

    return handle


# ---------------------------------------------------------------- JSON-2 (19+)


def _json2_error(status: int, exc: BaseException, name: str | None = None) -> web.Response:
    body = error_data(exc)
    if name is not None:
        body["name"] = name
    return web.json_response(body, status=status)


# What Odoo 19 answers for a database it does not have, before any route or key is
# looked at: its HTML 404 page.
NO_DATABASE_PAGE = """<!DOCTYPE html>
<title>404 Not Found</title>
<h1>Not Found</h1>
<p>No database is selected and the requested URL was not found in the server-wide \
controllers.</p>
<p>Please verify the hostname, <a href=/web/login>login</a> and try again.</p>

<!-- Alternatively, use the X-Odoo-Database header. -->
"""


def json2_handler(database: Database) -> Any:
    async def handle(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        method = request.match_info["method"]
        db = request.headers.get("X-Odoo-Database")
        if db is not None and db != database.credentials.db:
            return web.Response(status=404, text=NO_DATABASE_PAGE, content_type="text/html")
        authorization = request.headers.get("Authorization", "")
        scheme, _space, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return _json2_error(
                401, AccessDenied("Missing or malformed Authorization: bearer <apikey>"),
                "werkzeug.exceptions.Unauthorized",
            )  # fmt: skip
        try:
            database.check_key(key.strip())
        except AccessDenied:
            return _json2_error(
                401, AccessDenied("Invalid apikey"), "werkzeug.exceptions.Unauthorized"
            )
        if method.startswith("_"):
            refusal = database.profile.private_method_refusal(model, method)
            return _json2_error(403, AccessError(refusal))
        if not database.registry.has(model):
            return _json2_error(
                404,
                LookupError(f"the model '{model}' does not exist"),
                "werkzeug.exceptions.NotFound",
            )
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError as exc:
            return _json2_error(400, exc, "werkzeug.exceptions.BadRequest")
        if not isinstance(body, dict):
            return _json2_error(
                422, BadArguments("the body must be a JSON object of named arguments"),
                "werkzeug.exceptions.UnprocessableEntity",
            )  # fmt: skip
        ids = body.pop("ids", None)
        try:
            result = await database.call(
                2, model, method, [] if ids is None else [ids], body, ids_given=ids is not None
            )
        except UnknownMethod as exc:
            return _json2_error(404, exc, "werkzeug.exceptions.NotFound")
        except BadArguments as exc:
            return _json2_error(422, exc, "werkzeug.exceptions.UnprocessableEntity")
        except OdooServerError as exc:
            return _json2_error(exc.http_status, exc)
        except Exception as exc:  # noqa: BLE001 - "anything else" is a 500 with its name
            _log_failure(exc)
            return _json2_error(500, exc)
        if method == "create" and isinstance(result, int):
            result = [result]  # create returns a recordset, serialised as ids
        return web.json_response(result)

    return handle


async def web_version(request: web.Request) -> web.Response:
    database: Database = request.app[DATABASE]
    profile = database.profile
    return web.json_response(
        {"version_info": profile.version_info, "version": profile.server_version}
    )


DATABASE: web.AppKey[Database] = web.AppKey("database", Database)
