"""The three ways to reach Odoo, behind one interface: authenticate and call.

`XmlRpc` and `JsonRpc` speak `execute_kw` to the common/object services (Odoo 14+);
`Json2` speaks `/json/2/<model>/<method>` with a bearer key (19+). All of them raise
the typed errors of `connectors.odoo.errors`; HTTP-level trouble is `OdooUnavailable`.
"""

from __future__ import annotations

import itertools
import json
import xmlrpc.client
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from connectors.odoo.errors import (
    OdooConfigError,
    OdooError,
    OdooFault,
    OdooUnavailable,
    from_error_data,
    from_fault,
)


@dataclass(frozen=True)
class Call:
    """One model method call. `positional` names the params XML-RPC/JSON-RPC send as
    positional arguments (after the ids); JSON-2 sends everything by name."""

    model: str
    method: str
    ids: list[int] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    positional: tuple[str, ...] = ()

    def execute_kw_args(self) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = [] if self.ids is None else [self.ids]
        args += [self.params[name] for name in self.positional]
        kwargs = {k: v for k, v in self.params.items() if k not in self.positional}
        return args, kwargs


@dataclass(frozen=True)
class Endpoint:
    url: str  # base URL without a trailing slash
    db: str
    login: str
    api_key: str


class Http:
    """POSTs with status checks shared by every transport."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint) -> None:
        self.session = session
        self.endpoint = endpoint

    async def request(
        self, method: str, path: str, *, data: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        url = self.endpoint.url + path
        try:
            async with self.session.request(method, url, data=data, headers=headers) as reply:
                body = await reply.read()
                if reply.status == 429 or reply.status in (502, 503):
                    # Not processed: safe to repeat, even a create.
                    raise OdooUnavailable(
                        f"Odoo answered HTTP {reply.status} on {path}",
                        retry_after=_retry_after(reply.headers.get("Retry-After")),
                    )
                return reply.status, body, reply.headers.get("Content-Type", "")
        except aiohttp.ClientConnectorError as exc:
            raise OdooUnavailable(f"cannot connect to {self.endpoint.url}: {exc.os_error}") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise OdooUnavailable(
                f"Odoo dropped the connection during {path}: {exc}", ambiguous=True
            ) from exc
        except TimeoutError as exc:
            raise OdooUnavailable(f"Odoo did not answer {path} in time", ambiguous=True) from exc
        except aiohttp.ClientError as exc:
            raise OdooUnavailable(f"HTTP error on {path}: {exc}", ambiguous=True) from exc


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0


def _not_odoo(path: str, status: int) -> OdooError:
    if status >= 500:
        return OdooUnavailable(f"Odoo answered HTTP {status} on {path}", ambiguous=True)
    return OdooConfigError(
        f"the server does not answer like Odoo (HTTP {status} on {path}); check ODOO_URL"
    )


class Transport(ABC):
    name: str

    def __init__(self, http: Http) -> None:
        self.http = http
        self.uid: int | None = None

    @property
    def endpoint(self) -> Endpoint:
        return self.http.endpoint

    @abstractmethod
    async def version(self) -> Any:
        """The raw `common.version()` (or `/web/version`) answer."""

    @abstractmethod
    async def authenticate(self) -> int | bool:
        """The uid, or False when Odoo refuses the login and key."""

    @abstractmethod
    async def call(self, call: Call) -> Any: ...


class _ServiceTransport(Transport):
    """XML-RPC and JSON-RPC share the services; only the encoding differs."""

    @abstractmethod
    async def service(self, service: str, method: str, args: list[Any]) -> Any: ...

    async def version(self) -> Any:
        return await self.service("common", "version", [])

    async def authenticate(self) -> int | bool:
        e = self.endpoint
        uid = await self.service("common", "authenticate", [e.db, e.login, e.api_key, {}])
        if isinstance(uid, int) and not isinstance(uid, bool) and uid > 0:
            self.uid = uid
            return uid
        return False

    async def call(self, call: Call) -> Any:
        if self.uid is None:
            raise RuntimeError("authenticate first")
        e = self.endpoint
        args, kwargs = call.execute_kw_args()
        return await self.service(
            "object",
            "execute_kw",
            [e.db, self.uid, e.api_key, call.model, call.method, args, kwargs],
        )


class XmlRpc(_ServiceTransport):
    name = "xmlrpc"

    async def service(self, service: str, method: str, args: list[Any]) -> Any:
        path = f"/xmlrpc/2/{service}"
        body = xmlrpc.client.dumps(tuple(args), method, allow_none=False).encode()
        status, reply, _type = await self.http.request(
            "POST", path, data=body, headers={"Content-Type": "text/xml"}
        )
        if status != 200:
            raise _not_odoo(path, status)
        try:
            (result,), _method = xmlrpc.client.loads(reply, use_builtin_types=True)
        except xmlrpc.client.Fault as fault:
            raise from_fault(fault) from None
        except Exception as exc:  # expat and the unmarshaller raise their own types
            raise _not_odoo(path, status) from exc
        return result


class JsonRpc(_ServiceTransport):
    name = "jsonrpc"

    def __init__(self, http: Http) -> None:
        super().__init__(http)
        self._ids = itertools.count(1)

    async def service(self, service: str, method: str, args: list[Any]) -> Any:
        request = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(self._ids),
            "params": {"service": service, "method": method, "args": args},
        }
        status, reply, _type = await self.http.request(
            "POST", "/jsonrpc", data=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        if status != 200:
            raise _not_odoo("/jsonrpc", status)
        try:
            answer = json.loads(reply)
        except ValueError as exc:
            raise _not_odoo("/jsonrpc", status) from exc
        if "error" in answer:
            error = answer["error"] or {}
            # error.code is meaningless (200 or 0); data.name says what happened.
            raise from_error_data(error.get("data"), str(error.get("message")))
        return answer.get("result")


class Json2(Transport):
    """`POST /json/2/<model>/<method>` with named arguments (Odoo 19+)."""

    name = "json2"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"bearer {self.endpoint.api_key}",
            "Content-Type": "application/json",
            "X-Odoo-Database": self.endpoint.db,
        }

    async def version(self) -> Any:
        status, reply, _type = await self.http.request("GET", "/web/version", data=b"", headers={})
        try:
            answer = json.loads(reply) if status == 200 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _not_odoo("/web/version", status)
        return answer

    async def authenticate(self) -> int | bool:
        context = await self.call(Call("res.users", "context_get"))
        uid = context.get("uid") if isinstance(context, dict) else None
        if not isinstance(uid, int):
            raise OdooFault(f"res.users/context_get gave no uid: {context!r}")
        self.uid = uid
        return uid

    async def call(self, call: Call) -> Any:
        path = f"/json/2/{call.model}/{call.method}"
        body: dict[str, Any] = dict(call.params)
        if call.ids is not None:
            body["ids"] = call.ids
        status, reply, _type = await self.http.request(
            "POST", path, data=json.dumps(body).encode(), headers=self._headers()
        )
        if status == 404 and b"No database is selected" in reply:
            # Odoo's HTML page for a database it does not have (X-Odoo-Database).
            raise OdooFault(f"the database {self.http.endpoint.db!r} does not exist")
        try:
            answer = json.loads(reply) if reply else None
        except ValueError as exc:
            raise _not_odoo(path, status) from exc
        if status == 200:
            return answer
        if not isinstance(answer, dict) or "name" not in answer:
            raise _not_odoo(path, status)
        raise _json2_error(status, answer)


def _json2_error(status: int, answer: dict[str, Any]) -> OdooError:
    error = from_error_data(answer, f"HTTP {status}")
    if type(error) is OdooFault and status >= 500 and not error.name.startswith("builtins."):
        # A 5xx that is not a Python exception of the call: the server is in trouble.
        return OdooUnavailable(f"Odoo answered HTTP {status}: {error}", ambiguous=True)
    error.code = status
    return error


TRANSPORTS: dict[str, type[Transport]] = {t.name: t for t in (XmlRpc, JsonRpc, Json2)}
