"""The long-running services: their names, the ports of their `/metrics` and `/health`,
and the sub-commands that start them.

Each service is its own process, so a service's `/metrics` shows exactly what that
process did: the counters its stage declares (`producers.metrics`, `processors.metrics`,
`consumers.metrics`) in prometheus-client's process-wide registry, plus the health
gauges (`schemas.health`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """A long-running service: its name (as in docker-compose.yml), the port of its
    /metrics and /health, and the sub-command that starts it."""

    name: str
    port: int
    command: str


# The documented ports (docs/operations.md, "Status, metrics and health"); `status`
# probes them.
SERVICES = (
    Service("odoo-poller", 9401, "poll odoo"),
    Service("webhook-receiver", 8787, "webhooks serve"),  # on its webhook port
    Service("reconciler", 9403, "reconcile"),
    Service("worker", 9404, "worker"),
    Service("clientify-writer", 9405, "write clientify"),
    Service("odoo-writer", 9406, "write odoo"),
)
SERVICE_BY_NAME = {service.name: service for service in SERVICES}
