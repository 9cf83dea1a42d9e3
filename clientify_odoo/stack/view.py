"""The live view of `clientify-odoo up`: flows, services, broker, in one rich renderable.

It fits the terminal it is drawn on, so the view redraws in place instead of scrolling:
every row is one line (a long last error is cut with an ellipsis, keeping its start:
what happened, then why), and when the terminal is too short for every service, those
that need attention are kept and the others counted in one row. Printed to a pipe
(compose logs, CI) it has no height to fit, and shows every row.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
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
# Lines besides the rows: the header, each table's title, top, header, rule and bottom,
# and the lag.
FIXED_LINES = 1 + 5 + 5 + 1
# A service, or the row that stands for those left out: (label, their states).
ServiceRow = ServiceStatus | tuple[str, str]


@dataclass(frozen=True)
class StackView:
    bootstrap: str
    lag: dict[str, int] | None  # consumer group -> messages behind; None: broker unreachable
    counts: FlowCounts
    services: Sequence[ServiceStatus]
    started: float  # time.monotonic() when `up` started

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = (options.height or options.max_height) if console.is_terminal else None
        flows = _flows(self.counts)
        services: Sequence[ServiceRow] = self.services
        if height is not None:
            # Every flow (there are a handful), and the services in the lines left.
            services = _fit(self.services, max(1, height - FIXED_LINES - flows.row_count))
        now = time.monotonic()
        view = Group(self._header(now), flows, _services(services, now), _lag(self.lag))
        lines = console.render_lines(view, options, pad=False)
        # A terminal too short even for the flows: cut at its bottom, never scrolled.
        for line in lines[:height]:
            yield from line
            yield Segment.line()

    def _header(self, now: float) -> Text:
        reachable = self.lag is not None
        header = _line(f"clientify-odoo - Kafka at {self.bootstrap}: ")
        header.append("reachable" if reachable else "unreachable", "green" if reachable else "red")
        header.append(f" - up {now - self.started:.0f}s - Ctrl-C stops everything cleanly")
        return header


def _fit(services: Sequence[ServiceStatus], room: int) -> list[ServiceRow]:
    """At most `room` rows: the services that need attention first (in their order), then
    one row counting the others by state."""
    if len(services) <= room:
        return list(services)
    by_need = sorted(services, key=lambda s: s.state is ServiceState.RUNNING and not s.last_error)
    kept = {id(status) for status in by_need[: room - 1]}
    others = Counter(status.state.value for status in services if id(status) not in kept)
    states = ", ".join(f"{number} {state}" for state, number in sorted(others.items()))
    left_out = (f"… {sum(others.values())} more", states)
    return [*(status for status in services if id(status) in kept), left_out]


def _line(text: str, style: str = "") -> Text:
    """A cell, header or line that never wraps: cut with an ellipsis where it must."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _flows(counts: FlowCounts) -> Table:
    # Every column may narrow, the widest first: the long labels are cut before a count.
    table = Table(title="flows (since start)", title_justify="left")
    table.add_column(_line("flow"))
    for column in COLUMNS:
        table.add_column(_line(column), justify="right")
    if not counts.by_flow:
        table.add_row(_line("(nothing yet)"), *(_line("0") for _ in COLUMNS))
    for flow in sorted(counts.by_flow):
        row = counts.by_flow[flow]
        table.add_row(_line(flow), *(_line(str(row[column])) for column in COLUMNS))
    return table


def _services(rows: Sequence[ServiceRow], now: float) -> Table:
    table = Table(title="services", title_justify="left")
    for column in ("service", "state", "pid", "up", "restarts"):
        table.add_column(_line(column), no_wrap=True)
    table.add_column(_line("last error"))  # the one that narrows to fit
    for status in rows:
        if isinstance(status, tuple):
            label, states = status
            table.add_row(_line(label, "dim"), "", "", "", "", _line(states, "dim"))
            continue
        style = STATE_STYLE[status.state]
        running = status.state is ServiceState.RUNNING and status.started_at is not None
        uptime = f"{now - status.started_at:.0f}s" if running and status.started_at else "-"
        table.add_row(
            _line(status.name),
            _line(status.state.value, style),
            _line(str(status.pid or "-")),
            _line(uptime),
            _line(str(status.restarts)),
            _line(status.last_error or ""),
        )
    return table


def _lag(lag: dict[str, int] | None) -> Text:
    if lag is None:
        return _line("consumer lag: unknown (broker unreachable)", "red")
    parts = ", ".join(f"{group} {behind}" for group, behind in sorted(lag.items()))
    return _line(f"consumer lag (messages behind): {parts or 'no consumer groups yet'}")
