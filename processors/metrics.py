"""What the worker counts, in prometheus-client's process-wide registry."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

WORKER_FACTS = Counter(
    "clientify_odoo_worker_facts", "Facts routed to a flow (the processors' input)", ["flow"]
)
WORKER_COMMANDS = Counter(
    "clientify_odoo_worker_commands", "Commands emitted, per flow and target", ["flow", "target"]
)
WORKER_ECHOES = Counter(
    "clientify_odoo_worker_echoes", "Facts dropped as the sync's own writes coming back", ["flow"]
)
WORKER_SKIPS = Counter(
    "clientify_odoo_worker_skips",
    "Facts not synced (no business key, unreadable...); flow is empty when unknown",
    ["flow"],
)
WORKER_CONFLICTS = Counter(
    "clientify_odoo_worker_conflicts", "Same field changed on both sides", ["flow"]
)
WORKER_STALE = Counter(
    "clientify_odoo_worker_stale", "Facts older than what the processors already hold", ["flow"]
)


def count_outcome(
    flow: str, targets: Iterable[str], *, echoes: int, conflicts: int, stale: bool
) -> None:
    """Count what one decision of the processors on `flow` led to (`targets`: the
    target system of each command emitted)."""
    for target in targets:
        WORKER_COMMANDS.labels(flow, target).inc()
    WORKER_ECHOES.labels(flow).inc(echoes)
    WORKER_CONFLICTS.labels(flow).inc(conflicts)
    WORKER_STALE.labels(flow).inc(int(stale))
