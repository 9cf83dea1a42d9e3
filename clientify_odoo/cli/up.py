"""`clientify-odoo up`: the whole product on this machine, supervised, with a live view.

The broker (unless KAFKA_BOOTSTRAP_SERVERS is set), the topics, the sandboxes (unless
real Odoo/Clientify settings are given) and every service as a child process; a crashed
service is restarted with backoff. Ctrl-C stops the services in order, then the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from rich.live import Live

from clientify_odoo.cli.kafka import (
    add_broker_arguments,
    create_topics,
    local_broker,
    start_broker,
)
from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.cli.service import stop_on_signals
from clientify_odoo.odoo_hooks import HOOK_RULES
from clientify_odoo.stack.plan import (
    DEFAULT_STACK_DIR,
    STACK_ENV,
    StackOptions,
    StackPlan,
    plan_stack,
)
from clientify_odoo.stack.supervisor import Supervisor
from clientify_odoo.stack.view import StackView
from clientify_odoo.status.flow_counts import FlowCounts, follow
from clientify_odoo.status.kafka_state import inspect_kafka
from connectors.odoo import OdooClient, OdooConfig
from connectors.odoo.automation import install_rules

SANDBOX_READY_WITHIN = 60.0


async def _wait_ready(url: str, name: str, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + SANDBOX_READY_WITHIN
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
                    if answer.status < 500:
                        return
            await asyncio.sleep(0.3)
    raise CommandError(
        f"the {name} did not answer at {url} within {SANDBOX_READY_WITHIN:.0f}s; its log "
        f"is {supervisor.log_path(name)} (is the port taken? see `up --help` for the "
        "port flags)"
    )


async def _run(plan: StackPlan, bootstrap: str, context: Context, args: argparse.Namespace) -> None:
    supervisor = Supervisor(plan.services, args.stack_dir / "logs", plan.env)
    stop = stop_on_signals()
    counts = FlowCounts()
    follower = asyncio.create_task(follow(bootstrap, context.settings.topic_prefix, counts, stop))
    try:
        with context.console.status("Starting the services..."):
            # The receiver first, so the Clientify sandbox's first webhooks land.
            for spec in plan.services:
                await supervisor.start(spec.name)
                if spec.name in plan.sandboxes:
                    await _wait_ready(plan.sandboxes[spec.name], spec.name, supervisor)
                if spec.name == "odoo-sandbox" and plan.odoo_hook_url is not None:
                    await _install_hooks(plan, context)
        context.console.print(
            f"[green]healthy[/green]: {len(plan.services)} services running; logs in "
            f"{supervisor.log_dir}\nThe report: clientify-odoo report --db {plan.report_db}",
            highlight=False,
        )
        _how_to_change(plan, args, context)
        await _watch(bootstrap, plan, supervisor, counts, context, args.refresh, stop)
    finally:
        with context.console.status("Stopping the services in order (producers first)..."):
            await supervisor.stop(plan.stop_order)
        stop.set()
        await follower
        context.console.print("All services stopped; nothing in flight is lost (it waits in Kafka)")


async def _install_hooks(plan: StackPlan, context: Context) -> None:
    """The Odoo sandbox's automation rules, posting to the receiver (replaced at every
    start: the receiver's port may have changed)."""
    config = OdooConfig(
        url=plan.env["ODOO_URL"], db=plan.env["ODOO_DB"], login=plan.env["ODOO_USER"],
        api_key=SecretStr(plan.env["ODOO_API_KEY"]),
    )  # fmt: skip
    assert plan.odoo_hook_url is not None
    async with OdooClient(config) as client:
        await install_rules(client, plan.odoo_hook_url, HOOK_RULES)


def _how_to_change(plan: StackPlan, args: argparse.Namespace, context: Context) -> None:
    if not plan.sandboxes:
        return
    context.console.print(
        "Make a change in a sandbox and watch it arrive on the other side, e.g.:\n"
        "  clientify-odoo sandbox change odoo partner <ref> city=Sevilla\n"
        "  clientify-odoo sandbox change clientify contact <tax id> first_name=Ana\n"
        f"(they read the sandbox keys from {args.stack_dir / STACK_ENV})",
        highlight=False,
    )


async def _watch(
    bootstrap: str,
    plan: StackPlan,
    supervisor: Supervisor,
    counts: FlowCounts,
    context: Context,
    interval: float,
    stop: asyncio.Event,
) -> None:
    """Refresh the view until Ctrl-C. On a terminal it redraws in place; piped (compose
    logs, CI) it prints it again every `interval` seconds only when something changed."""
    started = time.monotonic()
    live = Live(console=context.console, auto_refresh=False)
    if context.console.is_terminal:
        live.start()
    shown = ""
    try:
        while not stop.is_set():
            lag: dict[str, int] | None = None
            with contextlib.suppress(TimeoutError):  # shown as "unreachable" in the view
                kafka = await asyncio.wait_for(
                    inspect_kafka(bootstrap, context.settings.topic_prefix, None), 10
                )
                if kafka.reachable:
                    lag = {group.service: group.total for group in kafka.groups}
            statuses = list(supervisor.status.values())
            view = StackView(bootstrap, lag, counts, statuses, started)
            if context.console.is_terminal:
                live.update(view, refresh=True)
            else:
                figures = repr(
                    (
                        sorted(counts.by_flow.items()),
                        lag,
                        [(s.name, s.state, s.restarts, s.last_error) for s in statuses],
                    )
                )
                if figures != shown:
                    shown = figures
                    context.console.print(view)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        live.stop()


def _up(args: argparse.Namespace, context: Context) -> int:
    broker = local_broker(args)
    started_here = not context.settings.kafka_bootstrap_servers and broker.pid() is None
    bootstrap = start_broker(args, context)
    try:
        create_topics(bootstrap, context)
        options = StackOptions(
            data_dir=args.stack_dir,
            odoo_port=args.odoo_port,
            clientify_port=args.clientify_port,
            webhook_port=args.webhook_port,
            seed=args.seed,
            poll_interval=args.poll_interval,
            metrics=not args.no_metrics,
        )
        plan = plan_stack(context.settings, bootstrap, options)
        asyncio.run(_run(plan, bootstrap, context, args))
    finally:
        if started_here and not args.keep_broker:
            with context.console.status("Stopping Kafka (clean shutdown)..."):
                broker.down()
            context.console.print("Kafka stopped; its data is kept for the next run")
    return 0


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="start the whole stack on this machine and show a live view (Ctrl-C stops)",
        description=(
            "Run the whole sync on this machine: the local Kafka broker (unless "
            "KAFKA_BOOTSTRAP_SERVERS is set) and its topics, the Odoo and Clientify "
            "sandboxes (seeded with demo data; unless ODOO_URL or CLIENTIFY_API_KEY point "
            "at real systems, which are then synced instead), the Odoo poller, the webhook "
            "receiver, the reconciler, the Faust worker and both writers, each a "
            "supervised process restarted with backoff if it crashes. A live view shows "
            "per flow the facts in, commands out, writes done, echoes dropped, skips, "
            "conflicts and dead letters, the services and the consumer lag. Ctrl-C stops "
            "the services in order (producers first), then the broker; nothing is lost."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  clientify-odoo up                       sandboxes, seeded: watch records flow\n"
            "  clientify-odoo up --seed 0              empty sandboxes\n"
            "  ODOO_URL=... clientify-odoo up          the real Odoo, the Clientify sandbox\n"
            "  clientify-odoo up --keep-broker         leave Kafka running after Ctrl-C"
        ),
    )
    add_broker_arguments(up)
    up.add_argument(
        "--stack-dir",
        type=Path,
        default=DEFAULT_STACK_DIR,
        help="sandbox data, worker state, service logs and sandbox keys (default: %(default)s)",
    )
    up.add_argument(
        "--seed",
        type=int,
        default=10,
        help="demo records in each sandbox: N partners, products and orders in an empty "
        "Odoo, topped up to N companies, contacts and products in Clientify (default 10)",
    )
    up.add_argument("--odoo-port", type=int, default=8069, help="Odoo sandbox port (8069)")
    up.add_argument(
        "--clientify-port", type=int, default=8070, help="Clientify sandbox port (8070)"
    )
    up.add_argument("--webhook-port", type=int, default=8787, help="webhook receiver port (8787)")
    up.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help="seconds between Odoo polls (default 5)",
    )
    up.add_argument(
        "--no-metrics",
        action="store_true",
        help="serve no /metrics and /health (by default each service serves them on its "
        "port: see `status --help`); e.g. when another stack runs on this machine",
    )
    up.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between view updates (default 2)"
    )
    up.add_argument(
        "--keep-broker",
        action="store_true",
        help="leave the broker running after Ctrl-C (it is stopped by default)",
    )
    up.set_defaults(handler=_up)
