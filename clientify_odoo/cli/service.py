"""What every long-running command does around its work, written once: its health and
metrics served, Ctrl-C and SIGTERM turned into a clean stop, the topics it needs made
sure of, and Kafka's own noise kept out of its one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.logs import secret_filter
from clientify_odoo.metrics_server import MetricsServer, serve_metrics
from connectors.kafka.admin import EnsureReport, TopicConfigError, ensure_topics, list_topics
from connectors.kafka.leadership import Leadership, leadership
from schemas.health import ServiceHealth
from schemas.topics import Topics


def service_health(service: str, stale_after: float | None = None) -> ServiceHealth:
    """What the service's `/health` says, its error texts redacted as the logs are."""
    return ServiceHealth(service, stale_after=stale_after, redact=secret_filter().redact)


@contextlib.contextmanager
def metrics_served(
    args: argparse.Namespace, context: Context, health: ServiceHealth
) -> Iterator[MetricsServer | None]:
    """Serve the service's metrics and health while the block runs (unless port 0)."""
    try:
        server = serve_metrics(health, args.metrics_host, args.metrics_port)
    except OSError as exc:
        raise CommandError(
            f"cannot serve metrics on {args.metrics_host}:{args.metrics_port} "
            f"({exc.strerror or exc}): is this service already running? Otherwise choose "
            "another --metrics-port (0 turns metrics off)",
            exit_code=2,
        ) from None
    if server is None:
        yield None
        return
    context.console.print(f"Metrics at {server.url}/metrics, health at {server.url}/health")
    with server:
        yield server


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, for the running loop's service to stop cleanly
    (commit what it did, close its clients) instead of dying mid-write."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    on_started: Callable[[int], Awaitable[None] | None] | None = None,
) -> None:
    """Serve `app` until Ctrl-C or SIGTERM; `on_started(port)` runs once it listens
    (port 0 picks a free one)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    bound = port
    if server is not None and server.sockets:  # type: ignore[attr-defined]
        bound = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    stop = stop_on_signals()
    try:
        if on_started is not None:
            result = on_started(bound)
            if result is not None:
                await result
        await stop.wait()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def kafka_quiet() -> Iterator[None]:
    """aiokafka logs each refused connection itself: while Kafka is only probed, the one
    line the command prints says it all."""
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        kafka_log.setLevel(level)


def no_kafka(bootstrap: str, exc: BaseException, exit_code: int = 1) -> CommandError:
    """The one-line error of a command that cannot reach Kafka, with what to do."""
    return CommandError(
        f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}). Start it with "
        "`clientify-odoo kafka up` or set KAFKA_BOOTSTRAP_SERVERS.",
        exit_code,
    )


async def require_topics(bootstrap: str, names: list[str]) -> None:
    """Refuse to start while topics a service writes are missing (it creates none: the
    topics' partitions are the business of the services that read them)."""
    try:
        with kafka_quiet():
            present = set(await list_topics(bootstrap))
    except Exception as exc:  # noqa: BLE001 - any connection failure: say where and why
        raise no_kafka(bootstrap, exc) from None
    missing = [name for name in names if name not in present]
    if missing:
        raise CommandError(
            f"Kafka topics missing: {', '.join(missing)}; create them with "
            "`clientify-odoo kafka topics`"
        )


async def ensure_declared_topics(
    bootstrap: str, topics: Topics, partitions: int | None = None, *, exit_code: int = 1
) -> EnsureReport:
    """Create the declared topics that are missing and check the others, as every
    service does at start-up; what is wrong becomes a one-line `CommandError`."""
    try:
        with kafka_quiet():
            return await ensure_topics(bootstrap, topics.declared(partitions))
    except TopicConfigError as exc:
        raise CommandError(str(exc), exit_code) from None
    except Exception as exc:  # noqa: BLE001 - any connection failure: say where and why
        raise no_kafka(bootstrap, exc, exit_code) from None


# Seconds a copy waits to hear whether it leads before it says it stands by.
ELECTION_WAIT = 5.0


async def lead_or_stand_by(
    bootstrap: str,
    election: str,
    topic: str,
    stop: asyncio.Event,
    work: Callable[[asyncio.Event], Awaitable[None]],
    *,
    context: Context,
    health: ServiceHealth,
    standby: str,
) -> None:
    """Run `work(done)` while this copy leads the `election` (a source that must not run
    twice at once), and stand by while another copy does, until `stop`. `done` is set
    on `stop`, or when the group hands the lead to another copy (this one missed its
    heartbeats): the work then returns, and this copy stands by again."""
    async with leadership(bootstrap, election, topic) as lead:
        while await _until_leading(lead, stop, context, health, standby):
            done = asyncio.Event()
            watch = asyncio.create_task(_set_on_either(done, stop, lead.lost))
            try:
                await work(done)
            finally:
                watch.cancel()
            if not lead.lost.is_set():
                return  # the work ended by itself (stopped, or a one-shot run)


async def _until_leading(
    lead: Leadership, stop: asyncio.Event, context: Context, health: ServiceHealth, standby: str
) -> bool:
    """Wait while another copy leads; False when stopped meanwhile."""
    said = False
    while not lead.leading and not stop.is_set():
        if lead.error is not None:
            raise lead.error
        if said:
            health.succeeded(role="standby")  # waiting is this copy's work: not stuck
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lead.gained.wait(), ELECTION_WAIT)
        if not lead.leading and not said:
            said = True
            context.console.print(f"Standing by: {standby} (Ctrl-C stops)")
    if lead.leading:
        health.succeeded(role="active")
    return not stop.is_set()


async def _set_on_either(target: asyncio.Event, *events: asyncio.Event) -> None:
    """Set `target` as soon as any of `events` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for wait in waits:
            wait.cancel()
