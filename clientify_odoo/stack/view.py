"""The live view of `clientify-odoo up`: flows, services, broker, in one rich renderable."""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from clientify_odoo.stack.supervisor import ServiceState, ServiceStatus
from clientify_odoo.status.flow_counts import COLUMNS, FlowCounts

STATE_STYLE = {
    ServiceState.STARTING: "yellow",
    ServiceState.RUNNING: "green",
    ServiceState.RESTARTING: "red",
    ServiceState.STOPPING: "yellow",
    ServiceState.STOPPED: "dim",
}


def render(
    bootstrap: str,
    reachable: bool,
    lag: dict[str, int] | None,
    counts: FlowCounts,
    services: list[ServiceStatus],
    started: float,
) -> Group:
    now = time.monotonic()
    broker = "[green]reachable[/green]" if reachable else "[red]unreachable[/red]"
    header = Text.from_markup(
        f"clientify-odoo - Kafka at {bootstrap}: {broker} - up {now - started:.0f}s - "
        "Ctrl-C stops everything cleanly"
    )
    return Group(header, _flows(counts), _services(services, now), _lag(lag))


def _flows(counts: FlowCounts) -> Table:
    table = Table(title="flows (since start)", title_justify="left")
    table.add_column("flow")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    if not counts.by_flow:
        table.add_row("(nothing yet)", *("0" for _ in COLUMNS))
    for flow in sorted(counts.by_flow):
        row = counts.by_flow[flow]
        table.add_row(flow, *(str(row[column]) for column in COLUMNS))
    return table


def _services(services: list[ServiceStatus], now: float) -> Table:
    table = Table(title="services", title_justify="left")
    for column in ("service", "state", "pid", "up", "restarts", "last error"):
        table.add_column(column, overflow="fold" if column == "last error" else "ellipsis")
    for status in services:
        style = STATE_STYLE[status.state]
        running = status.state is ServiceState.RUNNING and status.started_at is not None
        uptime = f"{now - status.started_at:.0f}s" if running and status.started_at else "-"
        table.add_row(
            status.name,
            f"[{style}]{status.state.value}[/{style}]",
            str(status.pid or "-"),
            uptime,
            str(status.restarts),
            status.last_error or "",
        )
    return table


def _lag(lag: dict[str, int] | None) -> Text:
    if lag is None:
        return Text("consumer lag: unknown (broker unreachable)", style="red")
    parts = ", ".join(f"{group} {behind}" for group, behind in sorted(lag.items()))
    return Text(f"consumer lag (messages behind): {parts or 'no consumer groups yet'}")
