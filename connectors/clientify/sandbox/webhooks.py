"""Webhook delivery as django-rest-hooks does it: one POST per matching hook, unsigned,
fire-and-forget, never retried (docs section 8). A failed delivery is only counted."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from connectors.clientify.sandbox.store import Store

log = logging.getLogger(__name__)

ENTITY_OF_KIND = {"contacts": "contact", "companies": "company", "products": "product"}
EVENTS = tuple(
    f"{entity}.{action}" for entity in ENTITY_OF_KIND.values() for action in ("saved", "deleted")
)
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0


@dataclass
class WebhookSender:
    store: Store
    enabled: bool = True
    stats: DeliveryStats = field(default_factory=DeliveryStats)
    _session: aiohttp.ClientSession | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def register_everywhere(self, target: str) -> list[dict[str, Any]]:
        """One hook per event for `target` (what `--webhook-target` does)."""
        return [self.store.add_hook(event, target) for event in EVENTS]

    def fire(self, event: str, data: dict[str, Any]) -> int:
        """Start one delivery per hook of `event`; returns how many were started."""
        if not self.enabled:
            return 0
        hooks = [hook for hook in self.store.hooks() if hook["event"] == event]
        for hook in hooks:
            task = asyncio.create_task(self._deliver({"hook": hook, "data": data}))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return len(hooks)

    async def _deliver(self, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=DELIVERY_TIMEOUT)
        target = body["hook"]["target"]
        try:
            async with self._session.post(target, json=body) as response:
                await response.read()
                ok = response.status < 400
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook %s to %s failed: %s", body["hook"]["event"], target, exc)
            ok = False
        if ok:
            self.stats.sent += 1
        else:
            self.stats.failed += 1

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, and a clean stop)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
