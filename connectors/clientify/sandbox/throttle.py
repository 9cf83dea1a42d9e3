"""DRF's `SimpleRateThrottle` with a requests-per-second rate, one history per API key.

DRF keeps the times of the requests it let through in the last window; when the window
is full it answers 429, computes the wait as the remaining window shared among the
requests still available, and rounds it up into `Retry-After` and the message.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._history: dict[str, deque[float]] = {}
        self.rate = rate
        self.throttled = 0

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, rate: float) -> None:
        """0 turns throttling off. Below 1/s the window grows: 0.5 means 1 per 2 s."""
        if rate < 0:
            raise ValueError("throttle rate must be >= 0")
        self._rate = rate
        self.num_requests = max(1, math.floor(rate)) if rate else 0
        self.duration = 1.0 if rate >= 1 else (1.0 / rate if rate else 1.0)

    def check(self, key: str) -> int | None:
        """None to let the request through (and record it), else seconds to wait."""
        if not self.num_requests:
            return None
        now = self._clock()
        history = self._history.setdefault(key, deque())
        while history and history[0] <= now - self.duration:
            history.popleft()
        if len(history) < self.num_requests:
            history.append(now)
            return None
        self.throttled += 1
        remaining = self.duration - (now - history[0])
        available = self.num_requests - len(history) + 1
        return math.ceil(remaining / available)


def throttled_detail(wait: int) -> str:
    unit = "second" if wait == 1 else "seconds"  # DRF's ngettext
    return f"Request was throttled. Expected available in {wait} {unit}."
