"""The live view of `up` fits the terminal it is drawn on: one line per row, whatever
the errors say, and no more lines than the terminal has, however many services run."""

from __future__ import annotations

import time

import pytest

from clientify_odoo.stack.supervisor import ServiceState, ServiceStatus
from clientify_odoo.stack.view import StackView
from clientify_odoo.status.flow_counts import COLUMNS, FlowCounts
from tests.support.terminal import draw

# A crash loop's error: what happened, then why, with a path and a hint (thrice over).
LONG_ERROR = (
    "exited with code 2 after 1s; restarting in 4s: error: another process is writing "
    "/home/someone/.local/share/clientify-odoo/stack/reporting.sqlite3 (pid 4242): stop "
    "it, or give this reporter another --db [see `clientify-odoo reporter --help`] " * 3
)


def services(count: int) -> list[ServiceStatus]:
    now = time.monotonic()
    out = []
    for n in range(count):
        failing = n % 3 == 0
        out.append(
            ServiceStatus(
                f"service-{n:02d}",
                state=ServiceState.RESTARTING if failing else ServiceState.RUNNING,
                pid=None if failing else 40000 + n,
                started_at=now - 30,
                restarts=7 if failing else 0,
                last_error=LONG_ERROR if failing else None,
            )
        )
    return out


def flows() -> FlowCounts:
    counts = FlowCounts()
    for flow in ("company", "contact", "order", "product"):
        for n, column in enumerate(COLUMNS):
            counts.by_flow[flow][column] = 10**n
    return counts


@pytest.mark.parametrize(("width", "height", "count"), [(160, 50, 9), (160, 50, 60), (80, 24, 9)])
def test_the_view_fits_the_terminal_one_line_a_row(width: int, height: int, count: int) -> None:
    view = StackView("127.0.0.1:9092", {"worker": 12}, flows(), services(count), time.monotonic())
    lines = draw(view, width, height)
    assert len(lines) <= height, "\n".join(lines)
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    # Nothing is lost from sight: every flow, the lag, and each failing service's error,
    # cut on its one line, its start kept.
    text = "\n".join(lines)
    assert all(flow in text for flow in ("company", "contact", "order", "product"))
    assert lines[-1].startswith("consumer lag (messages behind): worker 12")
    errors = [line for line in lines if "exited with code 2" in line]
    assert errors and all(line.rstrip(" │").endswith("…") for line in errors)


def test_too_many_services_keep_the_failing_ones_and_count_the_others() -> None:
    view = StackView("127.0.0.1:9092", {}, flows(), services(60), time.monotonic())
    lines = draw(view, 160, 50)
    shown = [line for line in lines if "service-" in line]
    assert len(shown) < 60
    assert len([line for line in shown if "restarting" in line]) == 20  # every failing one
    [summary] = [line for line in lines if " more " in line]
    hidden = 60 - len(shown)
    assert f"… {hidden} more" in summary and f"{hidden} running" in summary


def test_piped_the_view_shows_every_service_still_one_line_each() -> None:
    view = StackView("127.0.0.1:9092", None, flows(), services(60), time.monotonic())
    lines = draw(view, 120, 25, terminal=False)
    assert len([line for line in lines if "service-" in line]) == 60
    assert max(len(line) for line in lines) <= 120
    assert lines[-1] == "consumer lag: unknown (broker unreachable)"
