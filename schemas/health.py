"""What a service says of itself: the contract of every service's `/health` and of the
health gauges on its `/metrics`.

`ServiceHealth` is the service's own verdict on itself: `ok` while its work succeeds,
`degraded` after a failure it is still retrying or when it stopped making progress.
`clientify-odoo status`, compose healthchecks and Kubernetes probes read it from
`/health` (200 when ok, 503 otherwise); the same facts are exported as gauges so that
Prometheus can alert on them without the JSON.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Verdict = Literal["ok", "degraded"]
JSON = str | int | float | bool | None | list[Any] | dict[str, Any]
# Longer error texts are cut: /health is read by people and probes, not a log.
MAX_ERROR_CHARS = 500


def _shown_as_is(text: str) -> str:
    return text


class Partition(Protocol):
    """An assigned partition, as aiokafka and Faust both describe it."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


def partition_names(partitions: Iterable[Partition]) -> list[str]:
    """A consumer's assignment as `/health` details show it: `topic[partition]`."""
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


class ServiceHealth:
    """A service's account of itself, updated by the service, read by `/health`.

    `succeeded()` marks progress (a poll done, a page committed, a consumer loop turned);
    `failed()` a failure the service survives and retries (its text passed through
    `redact`: the shell hides the process's secrets there). The service is `degraded`
    while its latest event is a failure, or when it made no progress for `stale_after`
    seconds (stuck: the HTTP server answers from its own thread, so a blocked event loop
    still shows). Read from the metrics server's thread, hence the lock.
    """

    def __init__(
        self,
        service: str,
        *,
        stale_after: float | None = None,
        clock: Callable[[], float] = time.time,
        redact: Callable[[str], str] = _shown_as_is,
    ) -> None:
        self.service = service
        self.stale_after = stale_after
        self._clock = clock
        self._redact = redact
        self._lock = threading.Lock()
        self.started_at = clock()
        self.last_success: float | None = None
        self.last_error: tuple[float, str] | None = None
        self.errors = 0
        self.details: dict[str, JSON] = {}

    def succeeded(self, **details: JSON) -> None:
        with self._lock:
            self.last_success = self._clock()
            self.details.update(details)

    def failed(self, error: str | BaseException) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        # Error texts can carry URLs with credentials: shown like the logs show them.
        text = self._redact(text)[:MAX_ERROR_CHARS]
        with self._lock:
            self.last_error = (self._clock(), text)
            self.errors += 1

    def verdict(self) -> tuple[Verdict, str | None]:
        """`ok`/`degraded`, and why when degraded."""
        with self._lock:
            now = self._clock()
            error, success = self.last_error, self.last_success
        if error is not None and (success is None or error[0] >= success):
            return "degraded", f"last attempt failed: {error[1]}"
        if self.stale_after is not None:
            since = success if success is not None else self.started_at
            if now - since > self.stale_after:
                what = "since start-up" if success is None else f"for {now - since:.0f}s"
                return "degraded", f"no progress {what} (expected within {self.stale_after:.0f}s)"
        return "ok", None

    def snapshot(self) -> dict[str, JSON]:
        """The JSON body of `/health`."""
        status, reason = self.verdict()
        with self._lock:
            error = self.last_error
            return {
                "service": self.service,
                "status": status,
                "reason": reason,
                "started_at": iso(self.started_at),
                "last_success": iso(self.last_success),
                "last_error": None if error is None else {"at": iso(error[0]), "message": error[1]},
                "errors": self.errors,
                "details": dict(self.details),
            }


class HealthCollector(Collector):
    """The health of one service as gauges, for alerting from Prometheus alone."""

    def __init__(self, health: ServiceHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        health, labels = self.health, [self.health.service]
        healthy = GaugeMetricFamily(
            "clientify_odoo_healthy", "1 while /health says ok, else 0", labels=["service"]
        )
        healthy.add_metric(labels, 1.0 if health.verdict()[0] == "ok" else 0.0)
        yield healthy
        success = GaugeMetricFamily(
            "clientify_odoo_last_success_timestamp_seconds",
            "When the service last made progress (a poll, a page, a consumer loop)",
            labels=["service"],
        )
        if health.last_success is not None:
            success.add_metric(labels, health.last_success)
        yield success
        error = GaugeMetricFamily(
            "clientify_odoo_last_error_timestamp_seconds",
            "When the service last failed and retried",
            labels=["service"],
        )
        if health.last_error is not None:
            error.add_metric(labels, health.last_error[0])
        yield error


def exposition(health: ServiceHealth, registry: CollectorRegistry) -> bytes:
    """The `/metrics` body: `registry` plus the service's health gauges. The health
    gauges get a registry of their own so several services (tests) can share a process."""
    own = CollectorRegistry(auto_describe=True)
    own.register(HealthCollector(health))
    return generate_latest(registry) + generate_latest(own)


def health_answer(health: ServiceHealth) -> tuple[int, dict[str, JSON]]:
    """HTTP status and body of `/health`: 200 when ok, 503 otherwise, so a plain HTTP
    check (load balancer, compose healthcheck) needs no JSON."""
    body = health.snapshot()
    return (200 if body["status"] == "ok" else 503), body
