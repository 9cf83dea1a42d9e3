"""The health of the whole sync, as `clientify-odoo status` reports it.

Two sources, each asked for what it knows best: Kafka (`kafka_state`: broker, topics,
lag, counts, open dead letters) and the services' own `/health` (see `schemas.health`:
up or not, their last successful poll or webhook, their last error). Both end in a
`StackStatus` that knows its problems and what waits for a person (open dead letters),
each with what to do, and its exit code, and renders itself as JSON; the CLI only draws
it.

A sync whose parts all run can still leave records behind: a command a writer could not
apply waits on `sync.dead_letters` until someone fixes the cause and requeues it. That
is neither healthy (monitoring must tell) nor a broken part (restarting fixes nothing),
so it has an exit code of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from clientify_odoo.services import SERVICE_BY_NAME, SERVICES
from clientify_odoo.status.kafka_state import KafkaState, inspect_kafka
from schemas.health import iso

Status = Literal["ok", "degraded", "down"]
HTTP_TIMEOUT = 3.0
EXIT_OK, EXIT_UNHEALTHY, EXIT_NO_BROKER, EXIT_WAITING = 0, 1, 2, 3
# The state each exit code stands for, as `--json` names it.
STATES = {
    EXIT_OK: "healthy",
    EXIT_UNHEALTHY: "unhealthy",
    EXIT_NO_BROKER: "no_broker",
    EXIT_WAITING: "waiting_for_a_person",
}
REASON_SHOWN = 160  # characters of the newest dead letter's reason in the summary


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str


@dataclass(frozen=True)
class ServiceState:
    name: str
    url: str
    status: Status
    reason: str | None = None
    health: dict[str, Any] | None = None  # the service's own /health answer

    def detail(self, key: str) -> Any:
        details = (self.health or {}).get("details")
        return details.get(key) if isinstance(details, dict) else None


@dataclass(frozen=True)
class Seen:
    """When something last happened, and who says so."""

    at: str | None
    source: str


@dataclass(frozen=True)
class StackStatus:
    bootstrap: str
    prefix: str
    kafka: KafkaState
    services: tuple[ServiceState, ...]
    max_lag: int

    def service(self, name: str) -> ServiceState | None:
        return next((state for state in self.services if state.name == name), None)

    @property
    def last_poll(self) -> Seen:
        """The poller's own word when it answers, else the last move of its cursor
        (which moves only when something changed in Odoo)."""
        poller = self.service("odoo-poller")
        if poller is not None and poller.detail("last_poll"):
            return Seen(poller.detail("last_poll"), "odoo-poller /health")
        return Seen(iso(self.kafka.last_cursor_move), "last cursor move on odoo.cursors")

    @property
    def last_webhook(self) -> Seen:
        """The receiver's word (since it started), else the newest Clientify fact
        (from a webhook or the reconciler)."""
        receiver = self.service("webhook-receiver")
        if receiver is not None and receiver.detail("last_webhook"):
            return Seen(receiver.detail("last_webhook"), "webhook-receiver /health")
        return Seen(iso(self.kafka.last_clientify_fact), "newest fact on clientify.*")

    @property
    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        kafka = self.kafka
        if not kafka.reachable:
            found.append(
                Problem(
                    f"Kafka does not answer at {self.bootstrap} ({kafka.error})",
                    "start it with `clientify-odoo kafka up` (or `up`), or point "
                    "KAFKA_BOOTSTRAP_SERVERS / --bootstrap at the running cluster",
                )
            )
        elif kafka.error:
            found.append(
                Problem(
                    f"Kafka at {self.bootstrap} answers, but not every question ({kafka.error})",
                    "try again in a moment; if it lasts, read the broker's log",
                )
            )
        if kafka.missing_topics:
            found.append(
                Problem(
                    f"topics missing: {', '.join(kafka.missing_topics)}",
                    "create them with `clientify-odoo kafka topics`",
                )
            )
        for text in kafka.topic_problems:
            what, _, fix = text.partition(" Fix: ")
            found.append(Problem(what, fix or "see `clientify-odoo kafka topics`"))
        for state in self.services:
            found += _service_problems(state)
        for group in kafka.groups:
            if group.total > self.max_lag:
                command = SERVICE_BY_NAME[group.service].command
                found.append(
                    Problem(
                        f"{group.service} is {group.total} messages behind (group "
                        f"{group.group}; allowed: {self.max_lag})",
                        f"check that `clientify-odoo {command}` runs and keeps up (its log "
                        "says why not); more copies in the same group share the partitions",
                    )
                )
        return found

    @property
    def waiting(self) -> list[Problem]:
        """What runs fine yet waits for a person: the open dead letters."""
        letters = self.kafka.open_dead_letters
        if not letters:
            return []
        kinds = Counter(f"{d.command.target.value} {d.command.entity}" for d in letters)
        newest = letters[-1].command
        reason = " ".join(letters[-1].reason.split())
        if len(reason) > REASON_SHOWN:
            reason = reason[: REASON_SHOWN - 1] + "…"
        count = f"{len(letters)} dead letter{'' if len(letters) == 1 else 's'} open"
        return [
            Problem(
                f"{count}: records a writer could not apply, waiting for a person "
                f"({', '.join(f'{n} {kind}' for kind, n in kinds.most_common())}); the "
                f"newest, {newest.target.value} {newest.entity} {newest.business_key}: "
                f"{reason}",
                "list them with `clientify-odoo dlq list --open` (`dlq show ID` shows one "
                "whole), fix the cause, then send them back with `clientify-odoo dlq "
                "requeue --id ID` (or `--all`)",
            )
        ]

    @property
    def exit_code(self) -> int:
        if not self.kafka.reachable:
            return EXIT_NO_BROKER
        if self.problems:
            return EXIT_UNHEALTHY
        return EXIT_WAITING if self.waiting else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        kafka = self.kafka
        return {
            "healthy": self.exit_code == EXIT_OK,
            "state": STATES[self.exit_code],
            "exit_code": self.exit_code,
            "topic_prefix": self.prefix,
            "broker": {
                "bootstrap": self.bootstrap,
                "reachable": kafka.reachable,
                "error": kafka.error,
            },
            "topics": {
                "missing": list(kafka.missing_topics),
                "problems": list(kafka.topic_problems),
            },
            "services": [
                {
                    "name": s.name,
                    "url": s.url,
                    "status": s.status,
                    "reason": s.reason,
                    "health": s.health,
                }
                for s in self.services
            ],
            "consumer_groups": [
                {
                    "service": group.service,
                    "group": group.group,
                    "lag": group.total,
                    "partitions": [vars(partition) for partition in group.partitions],
                }
                for group in kafka.groups
            ],
            "max_lag": self.max_lag,
            "last_poll": vars(self.last_poll),
            "last_webhook": vars(self.last_webhook),
            "counts": kafka.counts,
            "open_dead_letters": len(kafka.open_dead_letters),
            "problems": [vars(problem) for problem in self.problems],
            "waiting": [vars(problem) for problem in self.waiting],
        }


def _service_problems(state: ServiceState) -> list[Problem]:
    command = SERVICE_BY_NAME[state.name].command
    if state.status == "down":
        return [
            Problem(
                f"{state.name} does not answer at {state.url}/health ({state.reason})",
                f"start it: `clientify-odoo {command}` (or everything: `clientify-odoo up`); "
                f"running elsewhere or not deployed: `--service {state.name}=HOST:PORT|off`",
            )
        ]
    if state.status == "degraded":
        return [
            Problem(
                f"{state.name} is degraded: {state.reason}",
                f"read its log (`clientify-odoo {command}`); it retries by itself once the "
                "cause (a system or Kafka unreachable, a stuck request) is gone",
            )
        ]
    return []


# ------------------------------------------------------------------ services


def service_urls(host: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """URL of every service expected to run: the documented ports on `host`, with
    `overrides` (name -> "PORT", "HOST:PORT" or "off") applied."""
    urls: dict[str, str] = {}
    for service in SERVICES:
        where = overrides.get(service.name, str(service.port))
        if where == "off":
            continue
        address = where if ":" in where else f"{host}:{where}"
        urls[service.name] = f"http://{address}"
    return urls


async def probe_services(urls: Mapping[str, str]) -> tuple[ServiceState, ...]:
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        states = await asyncio.gather(*(_probe(session, name, url) for name, url in urls.items()))
    return tuple(states)


async def _probe(session: aiohttp.ClientSession, name: str, url: str) -> ServiceState:
    try:
        async with session.get(f"{url}/health") as response:
            text = await response.text()
    except aiohttp.ClientConnectorError:
        return ServiceState(name, url, "down", "nothing listens there")
    except TimeoutError:
        return ServiceState(name, url, "down", f"no answer within {HTTP_TIMEOUT:.0f}s")
    except aiohttp.ClientError as exc:
        return ServiceState(name, url, "down", f"{type(exc).__name__}: {exc}")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") not in ("ok", "degraded"):
        return ServiceState(
            name, url, "down", f"HTTP {response.status}, not a clientify-odoo /health answer"
        )
    status: Status = "ok" if body["status"] == "ok" else "degraded"
    return ServiceState(name, url, status, body.get("reason"), body)


async def stack_status(
    bootstrap: str,
    prefix: str,
    urls: Mapping[str, str],
    *,
    partitions: int | None = None,
    max_lag: int = 1000,
) -> StackStatus:
    """Kafka and every service in `urls`, asked side by side."""
    kafka, services = await asyncio.gather(
        inspect_kafka(bootstrap, prefix, partitions), probe_services(urls)
    )
    return StackStatus(bootstrap, prefix, kafka, services, max_lag)
