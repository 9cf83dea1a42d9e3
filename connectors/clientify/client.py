"""Async client for Clientify's REST API v1 (https://api.clientify.net/v1/).

One `ClientifyClient` per API key; every request goes through its `AdaptiveRateLimiter`
so concurrent callers share one pace. Lists are async iterators over DRF pages
(`count/next/previous/results`, `page_size` up to 100). Records are returned as the
JSON dicts Clientify sent, because facts must carry the raw record.

Retries: GET/PUT/DELETE are retried on 5xx and lost connections with jittered backoff;
POST only when the request provably did not run (429, or the connection could not be
opened), because Clientify creates a second contact for a repeated POST.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError

from connectors.clientify.errors import (
    ClientifyAuthError,
    ClientifyError,
    ClientifyNotFound,
    ClientifyServerError,
    ClientifyThrottled,
    ClientifyValidationError,
)
from connectors.clientify.ratelimit import AdaptiveRateLimiter
from connectors.session import SessionClient
from schemas.keys import normalise_sku, normalise_tax_id

Record = dict[str, Any]
FilterValue = str | int | datetime
MAX_PAGE_SIZE = 100
NO_KEY_DETAIL = "Api key not provided."


class Page(BaseModel):
    """One DRF list page, validated so a changed API fails loudly here, not downstream."""

    count: int
    next: str | None
    previous: str | None
    results: list[Record]


def _query(filters: Mapping[str, FilterValue] | None) -> dict[str, str]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in (filters or {}).items()
    }


@dataclass(frozen=True)
class Listing:
    """A list endpoint (`GET /<path>`) with DRF pagination and filters."""

    client: ClientifyClient
    path: str

    async def page(
        self, filters: Mapping[str, FilterValue] | None = None, *, page_size: int = MAX_PAGE_SIZE
    ) -> Page:
        """The first page only (its `count` is the total), e.g. to size a progress bar."""
        params = {**_query(filters), "page_size": str(_checked_page_size(page_size))}
        return await self.client.get_page(self.path, params)

    async def list(
        self, filters: Mapping[str, FilterValue] | None = None, *, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[Record]:
        """Every record matching `filters`, page after page, following `next`."""
        page = await self.page(filters, page_size=page_size)
        while True:
            for record in page.results:
                yield record
            if page.next is None:
                return
            page = await self.client.get_page(page.next, None)


@dataclass(frozen=True)
class Creatable(Listing):
    async def create(self, body: Mapping[str, Any]) -> Record:
        return await self.client.request_record("POST", self.path, body=body)


@dataclass(frozen=True)
class Records(Creatable):
    """Contacts, companies, products: list, get, create, partial update (PUT), delete."""

    async def get(self, record_id: int | str) -> Record:
        return await self.client.request_record("GET", f"{self.path}{record_id}/")

    async def update(self, record_id: int | str, fields: Mapping[str, Any]) -> Record:
        """Clientify's PUT takes only the changed fields and leaves the others alone."""
        return await self.client.request_record("PUT", f"{self.path}{record_id}/", body=fields)

    async def delete(self, record_id: int | str) -> None:
        await self.client.request("DELETE", f"{self.path}{record_id}/")


def timestamp(value: Any) -> datetime | None:
    """A record's `created`/`modified` as a datetime, None when missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _checked_page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    return page_size


class ClientifyClient(SessionClient):
    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        limiter: AdaptiveRateLimiter | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_throttle_waits: int = 30,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key.strip():
            raise ClientifyAuthError("Clientify API key rejected: the key is empty")
        self._headers = {"Authorization": f"Token {key.strip()}", "Accept": "application/json"}
        self.limiter = limiter or AdaptiveRateLimiter()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_attempts = max_attempts
        self.max_throttle_waits = max_throttle_waits
        self.contacts = Records(self, "contacts/")
        self.companies = Records(self, "companies/")
        self.products = Records(self, "products/")
        self.orders = Creatable(self, "orders/")

    async def __aenter__(self) -> Self:
        return self

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    # ------------------------------------------------------------------ endpoints

    async def check_key(self) -> Record:
        """The account settings; raises `ClientifyAuthError` when the key is rejected."""
        page = await self.get_page("settings/my-account/", None)
        if not page.results:
            raise ClientifyError("Clientify returned no account for settings/my-account/")
        return page.results[0]

    async def custom_fields(self, object_type: str) -> list[Record]:
        """Custom field definitions of `contacts`, `companies`, `deals` or `products`."""
        listing = Listing(self, "custom-fields/")
        return [field async for field in listing.list({"object_type": object_type})]

    # ------------------------------------------------------------------ lookups by key

    async def find_by_tax_id(self, listing: Listing, tax_id: str) -> list[Record]:
        """Records of `listing` whose tax id equals `tax_id` once both are normalised.

        Clientify only matches tax ids through the free-text `query`, a substring match
        on the stored text, so `B-12.345.678` is not found by `B12345678`. Both given
        spellings are asked first; if neither matches, the last three digits (which
        survive the usual dot, dash and space groupings) are; every hit is re-checked.
        """
        wanted = normalise_tax_id(tax_id)
        if not wanted:
            raise ValueError("a tax id lookup needs a non-empty tax id")
        digits = "".join(ch for ch in wanted if ch.isdigit())
        attempts = [list(dict.fromkeys((tax_id.strip(), wanted)))]
        if len(digits) >= 3:
            attempts.append([digits[-3:]])
        found: dict[int, Record] = {}
        for texts in attempts:
            for text in texts:
                async for record in listing.list({"query": text}):
                    if normalise_tax_id(record.get("taxpayer_identification_number")) == wanted:
                        found[int(record["id"])] = record
            if found:
                break
        return list(found.values())

    async def find_products_by_sku(self, sku: str) -> list[Record]:
        wanted = normalise_sku(sku)
        if not wanted:
            raise ValueError("a product lookup needs a non-empty SKU")
        return [
            record
            async for record in self.products.list({"sku": wanted})
            if normalise_sku(record.get("sku")) == wanted
        ]

    async def find_contacts_by_email(self, email: str) -> list[Record]:
        wanted = email.strip().casefold()
        if not wanted:
            raise ValueError("a contact lookup needs a non-empty email")
        return [
            record
            async for record in self.contacts.list({"email": wanted})
            if any(
                str(item.get("email", "")).strip().casefold() == wanted
                for item in record.get("emails") or ()
            )
        ]

    # ------------------------------------------------------------------ transport

    async def get_page(self, path_or_url: str, params: Mapping[str, str] | None) -> Page:
        data = await self.request("GET", path_or_url, params=params)
        try:
            return Page.model_validate(data)
        except ValidationError as exc:
            raise ClientifyError(
                f"GET {self._describe(path_or_url)} did not return a DRF page: "
                + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from None

    async def request_record(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None
    ) -> Record:
        data = await self.request(method, path, body=body)
        if not isinstance(data, dict):
            raise ClientifyError(f"{method} {self._describe(path)} did not return an object")
        return data

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request with pacing and retries; returns the decoded JSON (or None)."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url.lstrip("/")
        what = f"{method} {self._describe(path_or_url)}"
        session = self._session_or_new()
        failures = 0
        throttled = 0
        while True:
            generation = await self.limiter.acquire()
            try:
                async with session.request(method, url, params=params, json=body) as response:
                    status = response.status
                    text = await response.text()
                    retry_after = _seconds(response.headers.get("Retry-After"))
                    content_type = response.content_type
            except (aiohttp.ClientError, TimeoutError) as exc:
                never_sent = isinstance(exc, aiohttp.ClientConnectorError)
                failures += 1
                if (method != "POST" or never_sent) and failures < self.max_attempts:
                    await asyncio.sleep(self.limiter.backoff(failures))
                    continue
                raise ClientifyServerError(
                    f"{what}: no answer from Clientify after {failures} attempt(s): "
                    f"{type(exc).__name__}"
                ) from None
            if status == 429:
                throttled += 1
                if throttled > self.max_throttle_waits:
                    raise ClientifyThrottled(
                        f"{what}: still throttled after {throttled - 1} waits",
                        retry_after=retry_after,
                    )
                await asyncio.sleep(self.limiter.on_throttled(retry_after, generation))
                continue
            if status >= 500:
                failures += 1
                if method != "POST" and failures < self.max_attempts:
                    await asyncio.sleep(self.limiter.backoff(failures))
                    continue
                raise ClientifyServerError(
                    f"{what}: Clientify answered {status} ({failures} attempt(s)): "
                    f"{_detail(text, content_type)}",
                    status=status,
                )
            self.limiter.on_success()
            return _result(what, status, text, content_type)

    def _describe(self, path_or_url: str) -> str:
        # The path only: queries may hold personal data (emails, tax ids).
        path = path_or_url.split("?", 1)[0]
        return path.removeprefix(self.base_url) if "://" in path else path.lstrip("/")


def _result(what: str, status: int, text: str, content_type: str) -> Any:
    if 200 <= status < 300:
        return json.loads(text) if text.strip() else None
    detail = _detail(text, content_type)
    if status == 401 or (status == 404 and detail == NO_KEY_DETAIL):
        raise ClientifyAuthError(
            f"Clientify API key rejected ({status} {detail}). Check CLIENTIFY_API_KEY: "
            "copy the key again from Clientify's settings.",
            status=status,
        )
    if status == 400:
        try:
            errors: Any = json.loads(text)
        except json.JSONDecodeError:
            errors = {"body": [text[:200]]}
        raise ClientifyValidationError(what, errors)
    if status == 404:
        if content_type != "application/json":
            raise ClientifyNotFound(
                f"{what}: Clientify has no such endpoint (HTML 404); check CLIENTIFY_URL",
                status=404,
            )
        raise ClientifyNotFound(f"{what}: {detail}", status=404)
    raise ClientifyError(f"{what}: Clientify answered {status}: {detail}", status=status)


def _detail(text: str, content_type: str) -> str:
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return text[:200]
        if isinstance(data, dict) and isinstance(data.get("detail"), str):
            return str(data["detail"])
        return text[:200]
    return text[:200] if content_type.startswith("text/plain") else f"({content_type} body)"


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
