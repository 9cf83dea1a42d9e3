"""Fault injection shared by both sandboxes: added latency and random server errors.

Each sandbox decides what an injected error looks like on its wire (an Odoo 5xx page,
a Clientify `{"detail": ...}`); this module only decides *when*. Knobs can be changed
while the server runs (tests and the chaos driver flip them), so they are plain
attributes read per request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Current knobs: `latency_ms` added to every request, `error_rate` in [0, 1]."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    seed: int | None = None
    injected: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def should_fail(self) -> bool:
        return self.error_rate > 0 and self._random.random() < self.error_rate


def fault_middleware(
    faults: Faults,
    error_response: Callable[[int], web.StreamResponse],
    exempt: Callable[[web.Request], bool] = lambda _request: False,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware applying `faults`; `exempt` requests (admin) pass untouched."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if exempt(request):
            return await handler(request)
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.should_fail():
            faults.injected += 1
            return error_response(faults.error_status)
        return await handler(request)

    return middleware
