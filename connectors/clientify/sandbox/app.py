"""The Clientify sandbox: an aiohttp app answering under `/v1/` like api.clientify.net.

Middlewares, outermost first, mirror where each behaviour lives in the real stack:
injected faults (the gateway), Django's HTML 404 and APPEND_SLASH redirect, DRF token
authentication (404 "Api key not provided." / 401 "Invalid token."), DRF throttling.
The handlers below only speak DRF: JSON bodies, field-map 400s, `{"detail": ...}`.
`/_admin/` (same key, never throttled or faulted) registers webhooks, turns knobs and
seeds data; it does not exist on the real API.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.clientify.sandbox import filters, render, throttle
from connectors.clientify.sandbox.fields import Invalid
from connectors.clientify.sandbox.pagination import InvalidPage, paginate
from connectors.clientify.sandbox.records import ORDERS, WRITABLE, Records
from connectors.clientify.sandbox.seed import seed
from connectors.clientify.sandbox.store import Doc, Store
from connectors.clientify.sandbox.webhooks import ENTITY_OF_KIND, EVENTS, WebhookSender
from connectors.faults import Faults, fault_middleware

ADMIN = "/_admin/"
SUB_LIST_PATH = (
    r"/v1/{kind:contacts|companies}/{id:\d+}/{sub:phones|emails|addresses|websites|tags}/"
)
DB_FILE = "clientify-sandbox.sqlite3"
NOT_FOUND_HTML = """<!doctype html>
<html lang="en">
<head><title>Not Found</title></head>
<body><h1>Not Found</h1><p>The requested resource was not found on this server.</p></body>
</html>
"""


@dataclass
class SandboxOptions:
    data_dir: Path | None = None
    api_key: str | None = None
    throttle_rps: float = 0.0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    fault_seed: int | None = None  # repeatable fault sequences (tests, benchmarks)
    webhooks: bool = True
    webhook_targets: Sequence[str] = ()
    seed: int = 0


class Knobs(BaseModel):
    """`PUT /_admin/knobs/`: change behaviour while the sandbox runs."""

    model_config = ConfigDict(extra="forbid")
    webhooks_enabled: bool | None = None
    throttle_rps: float | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)


class HookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str
    target: str = Field(pattern=r"^https?://")


class SeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, le=100_000)


def _json(data: Any, status: int = 200) -> web.Response:
    # DRF's JSONRenderer: compact, UTF-8 (UNICODE_JSON).
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json")


def _fail(status: int, body: Any, headers: dict[str, str] | None = None) -> web.HTTPException:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    cls = web.HTTPException
    error = cls(text=text, content_type="application/json", headers=headers)
    error.set_status(status)
    return error


def _only(request: web.Request, *methods: str) -> None:
    if request.method not in methods:
        raise _fail(
            405,
            {"detail": f'Method "{request.method}" not allowed.'},
            {"Allow": ", ".join(methods)},
        )


async def _body(request: web.Request) -> Any:
    """The request's JSON as DRF's JSONParser reads it (empty body = empty data)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    if request.content_type not in ("application/json", "application/octet-stream"):
        raise _fail(415, {"detail": f'Unsupported media type "{request.content_type}" in request.'})
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(400, {"detail": f"JSON parse error - {exc}"}) from None


def _validated(body: Any, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]) or "non_field_errors"
            errors.setdefault(name, []).append(error["msg"])
        raise _fail(400, errors) from None


def _base(request: web.Request) -> str:
    return str(request.url.origin())


class ClientifySandbox:
    def __init__(self, options: SandboxOptions | None = None) -> None:
        options = options or SandboxOptions()
        path = options.data_dir / DB_FILE if options.data_dir else None
        self.store = Store(path)
        # The key survives restarts so a client configured once keeps working.
        self.api_key = options.api_key or self.store.meta("api_key") or secrets.token_hex(20)
        self.store.set_meta("api_key", self.api_key)
        self.records = Records(self.store, self._changed)
        self.render = render.Renderer(self.store)
        self.webhooks = WebhookSender(self.store, enabled=options.webhooks)
        self.throttle = throttle.Throttle(options.throttle_rps)
        self.faults = Faults(
            latency_ms=options.latency_ms, error_rate=options.error_rate, seed=options.fault_seed
        )
        self.requests = 0
        # Per endpoint ("PUT /v1/contacts/{id}/"): which calls a sync spends its budget on.
        self.requests_by_endpoint: Counter[str] = Counter()
        for target in options.webhook_targets:
            self.webhooks.register_everywhere(target)
        if options.seed:
            seed(self.records, options.seed)

    def _changed(self, kind: str, action: str, doc: Doc) -> None:
        entity = ENTITY_OF_KIND.get(kind)
        if entity is not None:
            self.webhooks.fire(f"{entity}.{action}", self.render.webhook(kind, doc))

    # ------------------------------------------------------------ the app

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                cast(Middleware, fault_middleware(self.faults, self._fault_response, _is_admin)),
                _django_not_found,
                web.normalize_path_middleware(
                    append_slash=True, redirect_class=web.HTTPMovedPermanently
                ),
                self._authenticate,
                self._throttle,
            ]
        )
        add = app.router.add_route
        add("*", "/v1/settings/my-account/", self.my_account)
        add("*", "/v1/users/", self.users)
        add("*", "/v1/custom-fields/", self.custom_fields)
        add("*", r"/v1/{kind:contacts|companies|products}/", self.collection)
        add("*", r"/v1/{kind:contacts|companies|products}/{id:\d+}/", self.member)
        add("*", SUB_LIST_PATH, self.sub_list)
        add("*", "/v1/orders/", self.orders)
        add("*", r"/v1/orders/{id:\d+}/", self.order)
        add("*", "/_admin/hooks/", self.admin_hooks)
        add("*", r"/_admin/hooks/{id:\d+}/", self.admin_hook)
        add("*", "/_admin/knobs/", self.admin_knobs)
        add("*", "/_admin/seed/", self.admin_seed)
        add("*", "/_admin/stats/", self.admin_stats)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, _app: web.Application) -> None:
        await self.webhooks.close()
        self.store.close()

    @staticmethod
    def _fault_response(status: int) -> web.StreamResponse:
        return _json({"detail": "Service temporarily unavailable, try again later."}, status)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # unknown path: Django's 404 comes first
        words = request.headers.get("Authorization", "").split()
        if not words or words[0].lower() != "token":
            raise _fail(404, {"detail": "Api key not provided."})
        if len(words) != 2:
            raise _fail(401, {"detail": "Invalid token header. No credentials provided."})
        if not secrets.compare_digest(words[1].encode(), self.api_key.encode()):
            raise _fail(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
        return await handler(request)

    @web.middleware
    async def _throttle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_admin(request):
            return await handler(request)
        self.requests += 1
        route = request.match_info.route.resource
        path = route.canonical if route is not None else "(unknown path)"
        path = path.replace("{kind}", request.match_info.get("kind", "{kind}"))
        self.requests_by_endpoint[f"{request.method} {path}"] += 1
        wait = self.throttle.check(self.api_key)
        if wait is not None:
            raise _fail(
                429, {"detail": throttle.throttled_detail(wait)}, {"Retry-After": str(wait)}
            )
        return await handler(request)

    def _page(
        self,
        request: web.Request,
        items: list[Any],
        show: Callable[[Any], Any] = lambda item: item,
    ) -> web.Response:
        """One DRF page of `items`; only the page's items are rendered with `show`."""
        try:
            page, envelope = paginate(items, request.url)
        except InvalidPage:
            raise _fail(404, {"detail": "Invalid page."}) from None
        return _json({**envelope, "results": [show(item) for item in page]})

    def _filtered(self, request: web.Request, kind: str) -> list[Doc]:
        try:
            texts = partial(self.store.texts, kind, partial(filters.searched, kind))
            return filters.apply(kind, self.store.all(kind), request.query, texts)
        except Invalid as exc:
            raise _fail(400, exc.detail) from None

    # ------------------------------------------------------------ /v1/

    async def my_account(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        return _json({"count": 1, "next": None, "previous": None, "results": [render.ACCOUNT]})

    async def users(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        user = {"id": render.OWNER["owner_id"], "email": render.OWNER["owner"],
                "first_name": render.OWNER["owner_name"], "last_name": ""}  # fmt: skip
        return self._page(request, [user])

    async def custom_fields(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        object_type = request.query.get("object_type")
        docs = self.records.custom_fields(object_type if object_type in WRITABLE else None)
        return self._page(request, docs, lambda d: self.render.custom_field(d, _base(request)))

    async def collection(self, request: web.Request) -> web.Response:
        _only(request, "GET", "POST")
        kind = request.match_info["kind"]
        if request.method == "POST":
            body = await _body(request)
            try:
                doc = self.records.create(kind, body)
            except Invalid as exc:
                raise _fail(400, exc.detail) from None
            return _json(self.render.rest(kind, doc, _base(request)), 201)
        docs = self._filtered(request, kind)
        base = _base(request)
        return self._page(request, docs, lambda d: self.render.rest(kind, d, base, listed=True))

    def _existing(self, request: web.Request, kind: str) -> Doc:
        doc = self.store.get(kind, int(request.match_info["id"]))
        if doc is None:
            raise _fail(404, {"detail": "Not found."})
        return doc

    async def member(self, request: web.Request) -> web.StreamResponse:
        _only(request, "GET", "PUT", "PATCH", "DELETE")
        kind = request.match_info["kind"]
        doc = self._existing(request, kind)
        if request.method == "DELETE":
            self.records.delete(kind, doc["id"])
            return web.Response(status=204)
        if request.method in ("PUT", "PATCH"):
            body = await _body(request)
            try:
                doc = self.records.update(kind, doc["id"], body) or doc
            except Invalid as exc:
                raise _fail(400, exc.detail) from None
        return _json(self.render.rest(kind, doc, _base(request)))

    async def sub_list(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        doc = self._existing(request, request.match_info["kind"])
        sub = request.match_info["sub"]
        items = (
            [{"name": tag} for tag in doc.get("tags", ())] if sub == "tags" else doc.get(sub, [])
        )
        return self._page(request, list(items))

    async def orders(self, request: web.Request) -> web.Response:
        _only(request, "GET", "POST")
        if request.method == "POST":
            body = await _body(request)
            try:
                doc, created = self.records.upsert_order(body)
            except Invalid as exc:
                raise _fail(400, exc.detail) from None
            return _json(self.render.rest(ORDERS, doc, _base(request)), 201 if created else 200)
        base = _base(request)
        docs = self._filtered(request, ORDERS)
        return self._page(request, docs, lambda d: self.render.rest(ORDERS, d, base))

    async def order(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        return _json(self.render.rest(ORDERS, self._existing(request, ORDERS), _base(request)))

    # ------------------------------------------------------------ /_admin/

    async def admin_hooks(self, request: web.Request) -> web.Response:
        _only(request, "GET", "POST")
        if request.method == "GET":
            return _json(self.store.hooks())
        hook: HookIn = _validated(await _body(request), HookIn)
        if hook.event not in EVENTS:
            raise _fail(400, {"event": [f"must be one of {', '.join(EVENTS)}"]})
        return _json(self.store.add_hook(hook.event, hook.target), 201)

    async def admin_hook(self, request: web.Request) -> web.Response:
        _only(request, "DELETE")
        if not self.store.delete_hook(int(request.match_info["id"])):
            raise _fail(404, {"detail": "Not found."})
        return web.Response(status=204)

    async def admin_knobs(self, request: web.Request) -> web.Response:
        _only(request, "GET", "PUT")
        if request.method == "PUT":
            knobs: Knobs = _validated(await _body(request), Knobs)
            if knobs.webhooks_enabled is not None:
                self.webhooks.enabled = knobs.webhooks_enabled
            if knobs.throttle_rps is not None:
                self.throttle.rate = knobs.throttle_rps
            if knobs.latency_ms is not None:
                self.faults.latency_ms = knobs.latency_ms
            if knobs.error_rate is not None:
                self.faults.error_rate = knobs.error_rate
        return _json(
            {
                "webhooks_enabled": self.webhooks.enabled,
                "throttle_rps": self.throttle.rate,
                "latency_ms": self.faults.latency_ms,
                "error_rate": self.faults.error_rate,
            }
        )

    async def admin_seed(self, request: web.Request) -> web.Response:
        _only(request, "POST")
        wanted: SeedIn = _validated(await _body(request), SeedIn)
        return _json(seed(self.records, wanted.count), 201)

    async def admin_stats(self, request: web.Request) -> web.Response:
        _only(request, "GET")
        await self.webhooks.drain()
        return _json(
            {
                "requests": self.requests,
                "requests_by_endpoint": dict(self.requests_by_endpoint),
                "throttled": self.throttle.throttled,
                "faults_injected": self.faults.injected,
                "webhooks_sent": self.webhooks.stats.sent,
                "webhooks_failed": self.webhooks.stats.failed,
            }
        )


def _is_admin(request: web.Request) -> bool:
    return request.path.startswith(ADMIN)


@web.middleware
async def _django_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.match_info.http_exception is None:
            raise  # a handler's own (JSON) 404
        return web.Response(text=NOT_FOUND_HTML, status=404, content_type="text/html")
