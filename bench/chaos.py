"""The long chaos run: 10,000 mixed changes on both sides while a random service is
killed -9 every few seconds, the broker is restarted once, and the sandboxes answer 5%
5xx and bursts of 429; then both sandboxes must equal the state the changes imply.

Run from the repository root (it uses the test harness, tests/support/chaos.py):

    python -m bench.chaos --changes 10000
    python -m bench.chaos --changes 5000 --brokers 3 --copies 2

With `--brokers 3` Kafka is a three-node cluster and, instead of the clean restart, one
broker is killed -9 and started again, then the controller leader; `--copies 2` runs
two copies of every service, any of which may be the one killed.

CI runs the small version (tests/system/test_chaos.py, 1,000 changes). It starts its own
broker on free ports, shows the changes' progress, and prints a table of what happened;
it fails with the records that differ from the expected state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import tempfile
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from clientify_odoo.stack.broker import LocalCluster, free_port_pair
from tests.support.chaos import (
    Changes,
    Chaos,
    ChaosReport,
    broker_restart,
    cluster_kills,
    run_chaos,
)
from tests.support.stack_fixtures import SyncStack

PLAIN_PROGRESS_EVERY = 500  # changes between progress lines when the output is a file


async def chaos_run(args: argparse.Namespace, tmp: Path, progress: Progress) -> ChaosReport:
    cluster = LocalCluster(tmp / "kafka", brokers=args.brokers, port=free_port_pair(args.brokers))
    await asyncio.to_thread(cluster.up, on_progress=lambda _line: None)
    rng = random.Random(args.seed)
    stack = SyncStack(cluster.bootstrap, f"chaos{uuid.uuid4().hex[:6]}.", tmp, copies=args.copies)
    victims = tuple(copy for copies in stack.copies.values() for copy in copies)
    chaos = Chaos(victims=victims, kill_every=(args.kill_min, args.kill_max))
    faults = cluster_kills(cluster) if args.brokers >= 3 else broker_restart(cluster.nodes[0])

    changing = progress.add_task("changes made", total=args.changes)

    def made(n: int) -> None:
        progress.update(changing, completed=n)
        if not progress.console.is_terminal and n % PLAIN_PROGRESS_EVERY == 0:
            progress.console.print(f"{n:,} of {args.changes:,} changes made")  # a log file

    try:
        return await run_chaos(
            stack, Changes(args.changes, rng), chaos, rng, broker_faults=faults,
            error_rate=args.error_rate, bursts=True, within=args.within, on_change=made,
        )  # fmt: skip
    finally:
        stack.down()
        await asyncio.to_thread(cluster.down)


def show(report: ChaosReport, console: Console) -> None:
    table = Table(title="chaos run (2 cores)", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    chaos = report.chaos
    rows = [
        ("changes made (both sides)", f"{report.changes:,}"),
        ("time making them", f"{report.seconds_changing:.0f} s"),
        ("changes per second", f"{report.changes / report.seconds_changing:.1f}"),
        ("kill -9", ", ".join(f"{n} x{k}" for n, k in sorted(chaos.killed.items()))),
        ("services restarted (killed or crashed)", str(chaos.restarts)),
        ("broker restarts", str(chaos.broker_restarts)),
        ("brokers killed -9", ", ".join(chaos.brokers_killed) or "none"),
        ("Clientify 429 bursts / requests throttled", f"{chaos.bursts} / {report.throttled}"),
        ("Clientify 5xx injected", str(report.faults_injected)),
        ("dead letters (all explained, requeued)", str(len(report.dead_letters))),
        ("after the last change, converged in", f"{report.seconds_to_converge:.0f} s"),
        ("records lost / duplicated", "0 / 0"),
    ]
    for measure, value in rows:
        table.add_row(measure, value)
    console.print(table)
    for letter in report.dead_letters:
        console.print(f"  dead letter {letter.command.entity} {letter.command.business_key}: "
                      f"{letter.reason}", highlight=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--brokers", type=int, default=1, help="Kafka nodes (3: kill -9 brokers, not restart)"
    )
    parser.add_argument("--copies", type=int, default=1, help="copies of every service")
    parser.add_argument("--error-rate", type=float, default=0.05, help="share of 5xx (0.05)")
    parser.add_argument("--kill-min", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--kill-max", type=float, default=6.0)
    parser.add_argument(
        "--within", type=float, default=900.0, help="seconds allowed to converge at the end"
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR",
        help="run in DIR and leave it afterwards: the broker's data (start it again with "
        "`clientify-odoo kafka up --data-dir DIR/kafka`) and every service's log, to trace "
        "a run that ended short",
    )  # fmt: skip
    args = parser.parse_args()
    # The driver's own retries against the faults it injects are expected, not news.
    logging.getLogger("connectors").setLevel(logging.ERROR)
    console = Console()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        bar = stack.enter_context(
            Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=console)
        )
        report = asyncio.run(chaos_run(args, tmp, bar))
    show(report, console)
    if args.keep:
        console.print(f"kept in {args.keep}: the broker's data in kafka/, the logs beside it")


if __name__ == "__main__":
    main()
