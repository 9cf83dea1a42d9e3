"""`--metrics-port` and `--metrics-host`, shared by every long-running service."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from clientify_odoo.cli.common import CommandError, Context
from clientify_odoo.logs import secret_filter
from clientify_odoo.metrics_server import MetricsServer, serve_metrics
from clientify_odoo.services import SERVICE_BY_NAME
from schemas.health import ServiceHealth


def add_metrics_arguments(parser: argparse.ArgumentParser, service: str) -> None:
    port = SERVICE_BY_NAME[service].port
    parser.add_argument(
        "--metrics-port", type=int, default=port,
        help=f"serve Prometheus /metrics and JSON /health on this port (default {port}, "
        "the port `clientify-odoo status` checks; 0 turns them off)",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-host", default="127.0.0.1",
        help="address for --metrics-port (default 127.0.0.1: this machine only; "
        "0.0.0.0 in a container)",
    )  # fmt: skip


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
