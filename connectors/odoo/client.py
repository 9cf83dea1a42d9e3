"""The async Odoo client: one API for Odoo 14 to 19 over XML-RPC, JSON-RPC or JSON-2.

`connect()` detects the version, picks the protocol (JSON-2 on 19+ unless told
otherwise), authenticates and turns every start-up failure into an `OdooConfigError`
whose one line names the setting to check. Calls then go through a small semaphore
(a few in flight, as Odoo's workers expect), reuse one connection pool, and are retried
with jittered exponential backoff only when the failure is transient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Self

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.odoo.errors import (
    OdooAccessDenied,
    OdooConfigError,
    OdooError,
    OdooFault,
    OdooUnavailable,
)
from connectors.odoo.transport import TRANSPORTS, Call, Endpoint, Http, Transport
from connectors.odoo.version import OdooVersion
from connectors.session import SessionClient

log = logging.getLogger(__name__)

Protocol = Literal["auto", "xmlrpc", "jsonrpc", "json2"]
USER_AGENT = "clientify-odoo/0.1 (+https://github.com/clientify-odoo)"
KEY_HELP = "Preferences -> Account Security -> New API Key"
FIELD_ATTRIBUTES = ["type", "string", "relation", "store", "required", "readonly", "selection"]


class OdooConfig(BaseModel):
    """How to reach one Odoo database (the shell builds it from the four settings)."""

    model_config = ConfigDict(frozen=True)

    url: str
    db: str
    login: str
    api_key: SecretStr
    protocol: Protocol = "auto"
    timeout: float = Field(
        default=120.0, gt=0, description="seconds per call (Odoo's limit_time_real)"
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    max_in_flight: int = Field(default=4, ge=1, le=32)
    retries: int = Field(default=4, ge=0, le=20)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=20.0, ge=0)
    user_agent: str = USER_AGENT

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("ODOO_URL must start with http:// or https://")
        return value


class OdooClient(SessionClient):
    def __init__(self, config: OdooConfig) -> None:
        self.config = config
        self.version: OdooVersion | None = None
        self.uid: int | None = None
        self._transport: Transport | None = None
        self._semaphore = asyncio.Semaphore(config.max_in_flight)
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self._available: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        self._random = random.Random()

    @property
    def protocol(self) -> str:
        return self._require().name

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    # -- start-up

    async def connect(self) -> None:
        """Detect the version, choose the protocol and authenticate, or raise a one-line
        `OdooConfigError` naming the setting to check."""
        config = self.config
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.timeout, connect=config.connect_timeout),
            connector=aiohttp.TCPConnector(limit=config.max_in_flight, keepalive_timeout=60),
            headers={"User-Agent": config.user_agent},
        )
        http = Http(
            self._session,
            Endpoint(config.url, config.db, config.login, config.api_key.get_secret_value()),
        )
        try:
            self.version = OdooVersion.parse(await self._startup(lambda: self._probe_version(http)))
            name = self._choose_protocol(self.version)
            transport = self._transport = TRANSPORTS[name](http)
            uid = await self._startup(transport.authenticate)
            if uid is False:
                raise OdooConfigError(
                    f"Odoo at {config.url} refused login {config.login!r} on database "
                    f"{config.db!r}: check ODOO_USER and ODOO_API_KEY ({KEY_HELP})"
                )
            assert isinstance(uid, int)
            self.uid = uid
            if name == "json2":
                await self._check_login()
        except BaseException:
            await self.close()
            raise
        log.info(
            "connected to Odoo %s at %s (db %s, uid %s, %s)",
            self.version, config.url, config.db, uid, name,
        )  # fmt: skip

    async def _probe_version(self, http: Http) -> Any:
        # /web/version answers on 19+ (and tells JSON-2 is there); older servers only
        # have common.version.
        if self.config.protocol in ("auto", "json2"):
            with contextlib.suppress(OdooConfigError):
                return await TRANSPORTS["json2"](http).version()
        fallback = "jsonrpc" if self.config.protocol == "jsonrpc" else "xmlrpc"
        return await TRANSPORTS[fallback](http).version()

    def _choose_protocol(self, version: OdooVersion) -> str:
        chosen = self.config.protocol
        if chosen == "auto":
            return "json2" if version.has_json2 else "xmlrpc"
        if chosen == "json2" and not version.has_json2:
            raise OdooConfigError(
                f"Odoo {version} has no JSON-2 API (19+ only): use protocol xmlrpc or jsonrpc"
            )
        return chosen

    async def _startup(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run a start-up step, translating failures into what the user must fix."""
        config = self.config
        try:
            return await self._with_retries(step, idempotent=True, attempts=1, quiet=True)
        except OdooUnavailable as exc:
            raise OdooConfigError(
                f"cannot reach Odoo: {exc}; check ODOO_URL and that the server is running"
            ) from None
        except OdooAccessDenied:
            raise OdooConfigError(
                f"Odoo at {config.url} refused the API key: check ODOO_API_KEY ({KEY_HELP})"
            ) from None
        except OdooFault as exc:
            text = str(exc)
            if "does not exist" in text and "database" in text.lower():
                raise OdooConfigError(
                    f"Odoo at {config.url} has no database {config.db!r}: check ODOO_DB "
                    "(shown beside the user name with ?debug=1)"
                ) from None
            raise OdooConfigError(f"Odoo at {config.url} failed at start-up: {text}") from None

    async def _check_login(self) -> None:
        # A bearer key identifies its user; make sure it is the configured one.
        users = await self.read("res.users", [self.uid or 0], ["login"])
        login = users[0].get("login") if users else None
        if login != self.config.login:
            raise OdooConfigError(
                f"the API key belongs to login {login!r}, not {self.config.login!r}: "
                "check ODOO_USER and ODOO_API_KEY"
            )

    # -- field discovery

    async def fields(self, model: str) -> dict[str, dict[str, Any]]:
        """`fields_get` of `model`, cached for the client's life."""
        if model not in self._fields:
            described = await self._call(
                Call(model, "fields_get", params={"attributes": FIELD_ATTRIBUTES}),
                idempotent=True,
            )
            if not isinstance(described, dict):
                raise OdooFault(f"{model}.fields_get returned {type(described).__name__}")
            self._fields[model] = described
        return self._fields[model]

    async def available(self, model: str, wanted: Sequence[str]) -> list[str]:
        """The fields of `wanted` this server has, in order (e.g. no `mobile` on 19).

        Never empty for a non-empty wish: `fields=[]` would make Odoo send every field.
        """
        key = (model, tuple(wanted))
        if key not in self._available:
            known = await self.fields(model)
            present = [name for name in dict.fromkeys(wanted) if name in known]
            absent = sorted(set(wanted) - set(present))
            if absent:
                log.info("%s on Odoo %s has no %s: not read", model, self.version, absent)
            self._available[key] = present or (["id"] if wanted else [])
        return self._available[key]

    # -- the calls

    async def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: Sequence[str],
        *,
        order: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        params = _given(
            domain=domain, fields=await self.available(model, fields), order=order,
            limit=limit, offset=offset, context=context,
        )  # fmt: skip
        # The domain travels positionally: its keyword name changed in saas-15.3.
        result = await self._call(
            Call(model, "search_read", params=params, positional=("domain",)), idempotent=True
        )
        return list(result)

    async def search(
        self,
        model: str,
        domain: list[Any],
        *,
        order: str | None = None,
        limit: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[int]:
        params = _given(domain=domain, order=order, limit=limit, context=context)
        call = Call(model, "search", params=params, positional=("domain",))
        return list(await self._call(call, idempotent=True))

    async def search_count(
        self, model: str, domain: list[Any], *, context: dict[str, Any] | None = None
    ) -> int:
        params = _given(domain=domain, context=context)
        call = Call(model, "search_count", params=params, positional=("domain",))
        return int(await self._call(call, idempotent=True))

    async def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        params = _given(fields=await self.available(model, fields), context=context)
        return list(await self._call(Call(model, "read", list(ids), params), idempotent=True))

    async def create(
        self, model: str, vals: dict[str, Any], *, context: dict[str, Any] | None = None
    ) -> int:
        (created,) = await self.create_many(model, [vals], context=context)
        return created

    async def create_many(
        self,
        model: str,
        vals_list: Sequence[dict[str, Any]],
        *,
        context: dict[str, Any] | None = None,
    ) -> list[int]:
        """One call, one transaction (so one `write_date`) for all the records."""
        params = _given(vals_list=list(vals_list), context=context)
        # Positional: `create(vals_list=...)` as a keyword breaks Odoo <= 16.
        call = Call(model, "create", params=params, positional=("vals_list",))
        result = await self._call(call, idempotent=False)
        return [int(i) for i in (result if isinstance(result, list) else [result])]

    async def write(
        self,
        model: str,
        ids: Sequence[int],
        vals: dict[str, Any],
        *,
        context: dict[str, Any] | None = None,
    ) -> bool:
        params = _given(vals=vals, context=context)
        call = Call(model, "write", list(ids), params, positional=("vals",))
        return bool(await self._call(call, idempotent=True))

    async def unlink(self, model: str, ids: Sequence[int]) -> bool:
        return bool(await self._call(Call(model, "unlink", list(ids)), idempotent=True))

    async def call(
        self,
        model: str,
        method: str,
        ids: Sequence[int] | None = None,
        *,
        idempotent: bool = False,
        **params: Any,
    ) -> Any:
        """Any other public method by keyword (e.g. `sale.order` `action_confirm`)."""
        record_ids = None if ids is None else list(ids)
        return await self._call(Call(model, method, record_ids, params), idempotent=idempotent)

    # -- retries

    def _require(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("OdooClient.connect() first")
        return self._transport

    async def _call(self, call: Call, *, idempotent: bool) -> Any:
        transport = self._require()
        result = await self._with_retries(lambda: transport.call(call), idempotent=idempotent)
        if call.model == "ir.model.fields" and call.method in ("create", "write", "unlink"):
            # A custom field was added or changed: what fields_get said is stale.
            self._fields.clear()
            self._available.clear()
        return result

    async def _with_retries(
        self,
        make: Callable[[], Awaitable[Any]],
        *,
        idempotent: bool,
        attempts: int | None = None,
        quiet: bool = False,
    ) -> Any:
        retries = self.config.retries if attempts is None else attempts
        for attempt in range(retries + 1):
            try:
                async with self._semaphore:
                    return await make()
            except OdooError as exc:
                if attempt == retries or not _retryable(exc, idempotent):
                    raise
                delay = self._backoff(attempt, exc)
                # At start-up the final error says it all; later, retries are worth seeing.
                log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "Odoo call failed (%s); retry %d/%d in %.2fs", exc, attempt + 1, retries, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, exc: OdooError) -> float:
        # "Full jitter": spread clients that failed together over the whole window.
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
        floor = exc.retry_after if isinstance(exc, OdooUnavailable) else 0.0
        return max(floor, self._random.uniform(0, ceiling))


def _given(**params: Any) -> dict[str, Any]:
    """The parameters to send: options left at their defaults stay off the wire, while a
    domain or a field list is always sent, even empty."""
    always = ("domain", "fields", "vals", "vals_list")
    return {k: v for k, v in params.items() if k in always or v not in (None, 0, {}, "")}


def _retryable(exc: OdooError, idempotent: bool) -> bool:
    if not exc.transient:
        return False
    # A create that may have been applied must not be sent again.
    return idempotent or not (isinstance(exc, OdooUnavailable) and exc.ambiguous)
