"""The webhook receiver: Clientify's webhooks in as facts, Odoo's as hints, on Kafka.

Clientify's webhooks carry the record (`/hooks/<secret>`): each becomes a fact. Odoo's
automation rules (17+) only say which record changed (`/hooks/odoo/<odoo secret>`): each
becomes a hint for the poller, which reads the record itself (`producers.odoo.hints`).
Neither side signs anything or retries, so, for both:
- the URL path carries a secret (`/hooks/<secret>`), compared in constant time, and an
  optional IP allow-list comes first (behind a reverse proxy, X-Forwarded-For counts
  only when the peer is a trusted proxy); failures get 401 (IP) or 404 (secret, any
  other path) and are counted;
- a 2xx means "the fact is on Kafka with acks=all": the handler waits for the ack and
  answers 503 when Kafka cannot take it, so an accepted webhook is never lost;
- a bad body gets 400/413 saying what is wrong; logs carry ids and reasons, never the
  secret or the record's personal data.

Deletes (`*.deleted`) are logged, counted and answered 200 without a fact: the sync never
deletes (docs/mapping.md), and a fact would carry no sign that it is a delete.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connectors.kafka.publisher import Outgoing, Publisher
from producers.clientify.body import BadBody, parse
from producers.clientify.facts import SOURCE_OF, to_fact
from producers.odoo.hints import BadHint, hint_key, parse_hint
from schemas.health import ServiceHealth, exposition, health_answer, iso
from schemas.topics import ODOO_HINTS, Topics

log = logging.getLogger(__name__)
HOOK_IN_TEXT = re.compile(r"/hooks/[^\s\"?]+")


class HideHookSecrets(logging.Filter):
    """aiohttp's access log prints each request line, so the secret path segment too;
    this masks any `/hooks/<segment>` and the known secrets wherever they appear."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = HOOK_IN_TEXT.sub("/hooks/***", record.getMessage())
        for secret in self.secrets:
            text = text.replace(secret, "***")
        record.msg, record.args = text, None
        return True


def hide_in_access_log(secret: str) -> None:
    access = logging.getLogger("aiohttp.access")
    installed = [f for f in access.filters if isinstance(f, HideHookSecrets)]
    if installed:
        hider = installed[0]
    else:
        hider = HideHookSecrets()
        access.addFilter(hider)
    hider.secrets.add(secret)


HOOK_PATH = "/hooks/{secret}"
ODOO_HOOK_PATH = "/hooks/odoo/{secret}"
# Odoo gives up on a webhook after 1 s: answer well within it, or say 503.
ODOO_PUBLISH_TIMEOUT = 0.8
MIN_SECRET_CHARS = re.compile(r"[A-Za-z0-9_\-]+")
DEFAULT_MAX_BODY = 256 * 1024
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def new_secret() -> str:
    """A secret path segment for the webhook URL: 43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ReceiverConfig:
    secret: str
    topics: Topics
    allowed_networks: tuple[IpNetwork, ...] = ()  # empty: any address
    # Reverse proxies in front of the receiver: their X-Forwarded-For is believed.
    trusted_proxies: tuple[IpNetwork, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY
    publish_timeout: float = 10.0

    # The secret of Odoo's hook URL (`/hooks/odoo/<it>`); None: Odoo's hook is off.
    # Not WEBHOOK_SECRET: an Odoo administrator sees it in the automation rules.
    odoo_secret: str | None = None

    def __post_init__(self) -> None:
        named = (("WEBHOOK_SECRET", self.secret), ("ODOO_HOOK_SECRET", self.odoo_secret))
        for name, secret in named:
            # A short secret in a URL can be guessed; `webhooks secret` makes 43 characters.
            if secret is not None and (len(secret) < 16 or not MIN_SECRET_CHARS.fullmatch(secret)):
                raise ValueError(
                    f"{name} must be at least 16 URL-safe characters (letters, digits, "
                    "'-', '_'); run `clientify-odoo webhooks secret --rotate` for a new one"
                )
        if self.odoo_secret is not None and self.odoo_secret == self.secret:
            raise ValueError(
                "ODOO_HOOK_SECRET must differ from WEBHOOK_SECRET: Odoo's administrators "
                "can read it in the automation rules"
            )
        if self.max_body_bytes < 1024:
            raise ValueError(
                f"the body limit must be at least 1024 bytes, got {self.max_body_bytes}"
            )
        if self.publish_timeout <= 0:
            raise ValueError("the publish timeout must be positive")

    @staticmethod
    def networks(texts: Sequence[str]) -> tuple[IpNetwork, ...]:
        """`10.0.0.0/8`, `203.0.113.7`... ; raises ValueError naming the bad entry."""
        networks = []
        for text in texts:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or network: {text!r}") from None
        return tuple(networks)


@dataclass
class ReceiverMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.received = Counter(
            "clientify_webhooks_received", "Webhook requests received", registry=self.registry
        )
        self.accepted = Counter(
            "clientify_webhooks_accepted",
            "Webhooks stored on Kafka (acknowledged): Clientify's as facts, by entity, "
            "Odoo's as hints, by model",
            ["entity"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "clientify_webhooks_rejected",
            "Requests refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "clientify_webhooks_ignored",
            "Valid webhooks deliberately not turned into facts (deletes)",
            ["event"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "clientify_webhook_seconds",
            "Time from request to answer (Kafka ack included)",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class WebhookReceiver:
    def __init__(
        self,
        config: ReceiverConfig,
        publisher: Publisher,
        metrics: ReceiverMetrics | None = None,
        health: ServiceHealth | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.metrics = metrics or ReceiverMetrics()
        # Degraded while the latest publish failed (Kafka down): it answers 503 then.
        # An idle receiver is healthy: Clientify may simply have nothing to say.
        self.health = health or ServiceHealth("webhook-receiver")
        hide_in_access_log(config.secret)
        if config.odoo_secret is not None:
            hide_in_access_log(config.odoo_secret)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._observe])
        app.router.add_route("*", HOOK_PATH, self.hook)
        if self.config.odoo_secret is not None:
            app.router.add_route("*", ODOO_HOOK_PATH, self.odoo_hook)
        app.router.add_get("/health", self.health_check)
        app.router.add_get("/metrics", self.prometheus)
        return app

    def _reject(self, status: int, reason: str, message: str) -> web.Response:
        self.metrics.rejected.labels(reason).inc()
        return web.json_response({"error": message, "reason": reason}, status=status)

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/health", "/metrics"):
            return await handler(request)
        started = time.perf_counter()
        self.metrics.received.inc()
        try:
            if request.match_info.http_exception is not None:
                # Not the hook path: count it like a wrong secret, say nothing more.
                log.info("webhook request to an unknown path rejected")
                return self._reject(404, "unknown_path", "not found")
            return await handler(request)
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    async def hook(self, request: web.Request) -> web.Response:
        raw = await self._admit(request, self.config.secret)
        if isinstance(raw, web.Response):
            return raw
        try:
            body = parse(raw)
        except BadBody as exc:
            log.warning("webhook refused: %s", exc)
            return self._reject(400, "malformed", str(exc))
        if body.action == "deleted":
            log.info("%s for id %s ignored: the sync never deletes", body.hook.event, body.data.id)
            self.metrics.ignored.labels(body.hook.event).inc()
            return web.json_response({"status": "ignored", "reason": "deletes are not synced"})
        return await self._publish(body.entity, body.record())

    async def odoo_hook(self, request: web.Request) -> web.Response:
        assert self.config.odoo_secret is not None  # the route exists only with one
        raw = await self._admit(request, self.config.odoo_secret)
        if isinstance(raw, web.Response):
            return raw
        try:
            hint = parse_hint(raw, datetime.now(UTC))
        except BadHint as exc:
            log.warning("Odoo hint refused: %s", exc)
            return self._reject(400, "malformed", str(exc))
        outgoing = Outgoing(self.config.topics[ODOO_HINTS], hint_key(hint), hint)
        return await self._store(
            outgoing, f"hint for {hint_key(hint)}", ODOO_PUBLISH_TIMEOUT, hint.model,
            {"status": "accepted"},
        )  # fmt: skip

    async def _admit(self, request: web.Request, secret: str) -> bytes | web.Response:
        """The body of a request from an allowed address with the right secret, or the
        refusal to answer."""
        sender = self._sender(request)
        if self.config.allowed_networks and not self._in(sender, self.config.allowed_networks):
            log.warning("webhook from %s refused: not in the IP allow-list", sender)
            return self._reject(401, "ip_not_allowed", "this address may not send webhooks")
        if not hmac.compare_digest(request.match_info["secret"].encode(), secret.encode()):
            log.warning("webhook with a wrong secret in its URL refused (from %s)", request.remote)
            return self._reject(404, "bad_secret", "not found")
        if request.method != "POST":
            return self._reject(
                405, "method", f"webhooks are POSTed, not sent with {request.method}"
            )
        return await self._read(request)

    async def _read(self, request: web.Request) -> bytes | web.Response:
        limit = self.config.max_body_bytes
        too_big = (
            f"body is larger than the limit of {limit} bytes; Clientify records are far smaller"
        )
        if request.content_length is not None and request.content_length > limit:
            return self._reject(413, "too_large", too_big)
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                return self._reject(413, "too_large", too_big)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _publish(self, entity: str, record: dict[str, Any]) -> web.Response:
        fact = to_fact(entity, record, occurred_at=datetime.now(UTC))
        outgoing = Outgoing(self.config.topics[SOURCE_OF[entity]], fact.source_id, fact)
        return await self._store(
            outgoing, f"fact for {entity} {fact.source_id}", self.config.publish_timeout,
            entity, {"status": "accepted", "event_id": fact.event_id},
        )  # fmt: skip

    async def _store(
        self, outgoing: Outgoing, what: str, within: float, label: str, answer: dict[str, str]
    ) -> web.Response:
        """2xx once Kafka has acknowledged the message, 503 when it cannot take it."""
        try:
            await asyncio.wait_for(self.publisher.publish(outgoing), within)
        except (KafkaError, TimeoutError) as exc:
            self.health.failed(f"Kafka did not take a message: {type(exc).__name__}: {exc}")
            log.error("%s not stored, answering 503: %r", what, exc)
            response = self._reject(503, "kafka_unavailable", "cannot store the webhook now")
            response.headers["Retry-After"] = "5"
            return response
        self.health.succeeded(last_webhook=iso(time.time()))
        self.metrics.accepted.labels(label).inc()
        return web.json_response(answer)

    def _sender(self, request: web.Request) -> str:
        """The sending address: the peer, or, when the peer is a trusted proxy, the last
        X-Forwarded-For entry no trusted proxy added (earlier entries can be forged)."""
        address = request.remote or ""
        if not self._in(address, self.config.trusted_proxies):
            return address
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([hop for hop in hops if hop]):
            if not self._in(hop, self.config.trusted_proxies):
                return hop
        return address

    @staticmethod
    def _in(text: str, networks: tuple[IpNetwork, ...]) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in networks)

    async def health_check(self, _request: web.Request) -> web.Response:
        status, body = health_answer(self.health)
        if self.health.last_success is None and self.health.last_error is None:
            body["kafka"] = "unknown"  # nothing published yet
        else:
            body["kafka"] = "ok" if status == 200 else "unreachable"
        return web.json_response(body, status=status)

    async def prometheus(self, _request: web.Request) -> web.Response:
        response = web.Response(body=exposition(self.health, self.metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response
