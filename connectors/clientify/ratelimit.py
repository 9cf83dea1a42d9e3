"""A request pacer that learns Clientify's limit instead of being told it.

Clientify documents no limit and sends no rate headers, so the pacer spaces requests
evenly at `rate` per second and adjusts it. Until the first 429 it doubles every second
(TCP's slow start: the first 80 s of a backfill went at a fraction of the pace when it
grew additively from 10/s). A 429 marks the rate it was sent at as a ceiling, halves
the pace and blocks every caller for `Retry-After`; successes then raise the pace
slowly back towards `headroom` x the lowest ceiling seen, so the steady state is just
below the observed limit rather than a saw-tooth of throttles. Ceilings are
forgotten after `ceiling_memory` seconds without a 429, so a raised limit is found again.

Requests go out at least 1/rate apart, also after a caller woke up late: a per-second
window (DRF's throttle) that sees two of them close together answers 429 to a pace that
is below its limit on average, and each such 429 lowers the ceiling. Spaced so,
a pace of 0.95 of the ceiling stays clear of the limit (bench/throttled.py).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

REQUEST_RATE = Gauge(
    "clientify_client_request_rate",
    "Requests per second the Clientify client currently allows itself",
    ["client"],
)
THROTTLES = Counter(
    "clientify_client_throttled_total", "429 answers the Clientify client received", ["client"]
)
RETRIES = Counter(
    "clientify_client_retries_total",
    "Requests the Clientify client sent again, by reason",
    ["client", "reason"],
)


class AdaptiveRateLimiter:
    def __init__(
        self,
        *,
        initial_rate: float = 10.0,
        min_rate: float = 0.5,
        max_rate: float = 50.0,
        headroom: float = 0.95,
        increase_per_second: float = 0.5,
        ceiling_memory: float = 300.0,
        name: str = "clientify",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_rate <= initial_rate <= max_rate:
            raise ValueError("rates must satisfy 0 < min_rate <= initial_rate <= max_rate")
        self.rate = initial_rate
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.headroom = headroom
        self.increase_per_second = increase_per_second
        self.ceiling_memory = ceiling_memory
        self.ceiling: float | None = None
        self.throttles = 0
        self.name = name
        self._clock = clock
        self._lock = asyncio.Lock()
        self._next_slot = 0.0
        self._blocked_until = 0.0
        self._last_throttle = 0.0
        self.generation = 0
        self._slow_start = True  # until the first 429
        self._random = random.Random()
        REQUEST_RATE.labels(name).set(self.rate)
        # Zero-valued series from the start, so dashboards see 0 rather than "no data".
        THROTTLES.labels(name)
        for reason in ("throttled", "server_error"):
            RETRIES.labels(name, reason)

    async def acquire(self) -> int:
        """Wait for this caller's slot (slots are 1/rate apart across all callers).

        A caller whose slot was booked before a 429 cut the pace books again, so it
        does not go out at the old pace. Returns the pace generation the request is
        sent under, to hand back to `on_throttled`.
        """
        while True:
            async with self._lock:
                now = self._clock()
                slot = max(now, self._next_slot, self._blocked_until)
                self._next_slot = slot + 1.0 / self.rate
                generation = self.generation
            if slot > now:
                await asyncio.sleep(slot - now)
            if generation == self.generation:
                # A caller woken late (a busy loop) must not bring the next one closer:
                # two requests less than 1/rate apart can fall in one window of a
                # per-second limit even when the average pace is below it.
                self._next_slot = max(self._next_slot, self._clock() + 1.0 / self.rate)
                return generation

    def on_success(self) -> None:
        if self.ceiling is not None and self._clock() - self._last_throttle > self.ceiling_memory:
            self.ceiling = None
        limit = self.max_rate if self.ceiling is None else self.ceiling * self.headroom
        if self._slow_start:  # doubling over the `rate` requests of a second
            step = self.rate * (2 ** (1.0 / self.rate) - 1)
        else:  # additive, spread over requests: about `increase_per_second` per second
            step = self.increase_per_second / self.rate
        self._set_rate(min(limit, self.rate + step))

    def on_throttled(self, retry_after: float | None, generation: int) -> float:
        """Record a 429 for a request sent under pace `generation`; returns how long
        callers are now held back.

        Requests already in flight when the pace was cut come back throttled too; they
        say nothing new about the limit, so only the first of them cuts the pace.
        """
        self.throttles += 1
        self._slow_start = False
        THROTTLES.labels(self.name).inc()
        now = self._clock()
        self._last_throttle = now
        if generation == self.generation:
            self.generation += 1
            self._next_slot = now
            self.ceiling = self.rate if self.ceiling is None else min(self.ceiling, self.rate)
            self._set_rate(self.rate * 0.5)
        wait = retry_after if retry_after is not None and retry_after >= 0 else 1.0 / self.rate
        self._blocked_until = max(self._blocked_until, now + wait)
        RETRIES.labels(self.name, "throttled").inc()
        return wait

    def backoff(self, attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
        """Full-jitter exponential backoff (AWS style) for the `attempt`-th retry of a 5xx,
        so many clients failing together do not come back together."""
        RETRIES.labels(self.name, "server_error").inc()
        return self._random.uniform(0, min(cap, base * 2**attempt))

    def _set_rate(self, rate: float) -> None:
        self.rate = max(self.min_rate, min(self.max_rate, rate))
        REQUEST_RATE.labels(self.name).set(self.rate)
