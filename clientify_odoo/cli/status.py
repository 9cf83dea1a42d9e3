"""`clientify-odoo status`: is the sync healthy, does anything wait for a person, and if
so what to do (exit code for monitoring)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from clientify_odoo.cli.options import (
    Context,
    add_bootstrap_argument,
    add_partitions_argument,
    bootstrap_servers,
)
from clientify_odoo.cli.service import kafka_quiet
from clientify_odoo.services import SERVICE_BY_NAME, SERVICES
from clientify_odoo.status.health import (
    EXIT_NO_BROKER,
    EXIT_OK,
    EXIT_UNHEALTHY,
    EXIT_WAITING,
    StackStatus,
    service_urls,
    stack_status,
)
from clientify_odoo.status.kafka_state import PartitionLag

STYLE = {"ok": "green", "degraded": "yellow", "down": "red"}


def _service_override(text: str) -> tuple[str, str]:
    name, _, where = text.partition("=")
    if name not in SERVICE_BY_NAME:
        raise argparse.ArgumentTypeError(
            f"unknown service {name!r}; one of: {', '.join(SERVICE_BY_NAME)}"
        )
    port = where.rpartition(":")[2]
    if where != "off" and not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected {name}=PORT, {name}=HOST:PORT or {name}=off")
    return name, where


def _status(args: argparse.Namespace, context: Context) -> int:
    bootstrap = bootstrap_servers(args, context)
    urls = service_urls(args.host, dict(args.service))
    with kafka_quiet():
        status = asyncio.run(
            stack_status(
                bootstrap,
                context.settings.topic_prefix,
                urls,
                partitions=args.partitions,
                max_lag=args.max_lag,
            )
        )
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        context.console.print(render(status))
    return status.exit_code


def render(status: StackStatus) -> Group:
    """The report for people: verdict, services, lag, activity, then what to do."""
    code = status.exit_code
    verdict = {
        EXIT_OK: "[green]healthy[/green]",
        EXIT_WAITING: "[yellow]running, but records wait for a person[/yellow]",
        EXIT_NO_BROKER: "[red]Kafka unreachable[/red]",
    }.get(code, "[red]unhealthy[/red]")
    kafka = status.kafka
    topics = (
        "unknown"
        if not kafka.reachable
        else "all declared topics present"
        if not kafka.missing_topics
        else f"{len(kafka.missing_topics)} missing"
    )
    header = Text.from_markup(
        f"clientify-odoo: {verdict} (exit {code}) - Kafka at {status.bootstrap}: "
        f"{'reachable' if kafka.reachable else 'unreachable'}, {topics}"
    )
    parts: list[Any] = [header, _services(status)]
    if kafka.reachable:
        parts += [_lag(status), _activity(status)]
    if status.problems or status.waiting:
        lines = Text()
        for mark, style, found in (("✗", "red", status.problems), ("!", "yellow", status.waiting)):
            for problem in found:
                lines.append(f"{mark} ", style=style).append(problem.what + "\n")
                lines.append("  → " + problem.fix + "\n", style="dim")
        parts.append(lines)
    return Group(*parts)


def _ago(stamp: str | None) -> str:
    """An ISO time as people read a status: how long ago."""
    if not stamp:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def _services(status: StackStatus) -> Table:
    table = Table("service", "status", "/health at", "last progress", "last error / why")
    for state in status.services:
        health = state.health or {}
        error = health.get("last_error") or {}
        table.add_row(
            state.name,
            f"[{STYLE[state.status]}]{state.status}[/]",
            state.url.removeprefix("http://"),
            _ago(health.get("last_success")) if health else "-",
            state.reason or error.get("message") or "",
        )
    return table


def _lag(status: StackStatus) -> Table:
    table = Table(
        "consumer",
        "topic",
        "messages behind, per partition",
        "total",
        title="consumer lag (group ids in --json)",
        title_justify="left",
    )
    prefix = len(status.prefix)
    for group in status.kafka.groups:
        by_topic: dict[str, list[PartitionLag]] = {}
        for partition in group.partitions:
            by_topic.setdefault(partition.topic, []).append(partition)
        style = "red" if group.total > status.max_lag else ""
        for topic, partitions in by_topic.items():
            table.add_row(
                group.service,
                topic[prefix:],
                " ".join(f"{p.partition}:{p.lag}" for p in partitions),
                Text(str(sum(p.lag for p in partitions)), style=style),
            )
    return table


def _activity(status: StackStatus) -> Table:
    table = Table("activity", "value", "from")
    for label, seen in (
        ("last successful poll", status.last_poll),
        ("last webhook", status.last_webhook),
    ):
        table.add_row(label, _ago(seen.at), seen.source)
    for label, count in status.kafka.counts.items():
        table.add_row(label.replace("_", " "), str(count), "records on the topic")
    if status.kafka.counts:
        opened = len(status.kafka.open_dead_letters)
        table.add_row("open dead letters", str(opened), "not requeued yet (`dlq list --open`)")
    return table


def register(subparsers: Any) -> None:
    ports = "\n  ".join(f"{service.name:<17} {service.port}" for service in SERVICES)
    status = subparsers.add_parser(
        "status",
        help="is the sync healthy? Kafka, topics, lag, services, open dead letters "
        "(exit 0/1/2/3 for monitoring)",
        description=(
            "Check the whole sync at once: Kafka reachable, topics declared right, each\n"
            "consumer group's lag per partition, the last successful Odoo poll and the\n"
            "last webhook, the numbers of skips, conflicts and dead letters (and how many\n"
            "of those are still open: not requeued), and the /health of every service\n"
            "(down when it does not answer). Each problem comes with what to do.\n\n"
            "Exit code:\n"
            f"  {EXIT_OK}  healthy\n"
            f"  {EXIT_UNHEALTHY}  something unhealthy (a service down or degraded, a group\n"
            "     behind, topics missing or wrong)\n"
            f"  {EXIT_NO_BROKER}  Kafka unreachable\n"
            f"  {EXIT_WAITING}  running, but records wait for a person: dead letters are open\n"
            "     (`clientify-odoo dlq list --open`, fix the cause, `dlq requeue`)\n"
            "A problem outranks open dead letters (exit 1 then, and they are listed too).\n\n"
            "Services are looked for on --host at their default ports:\n"
            f"  {ports}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  clientify-odoo status                     everything on this machine\n"
            "  clientify-odoo status --json | jq .problems\n"
            "  clientify-odoo status --service reconciler=off --service worker=10.0.0.5:9404"
        ),
    )
    status.add_argument("--json", action="store_true", help="print JSON for other tools")
    status.add_argument(
        "--host",
        default="127.0.0.1",
        help="where the services run (default 127.0.0.1)",
    )
    status.add_argument(
        "--service",
        type=_service_override,
        action="append",
        default=[],
        metavar="NAME=PORT|HOST:PORT|off",
        help="where one service serves /health, or `off` when it is not deployed (repeatable)",
    )
    status.add_argument(
        "--max-lag",
        type=int,
        default=1000,
        help="messages a consumer group may be behind before it counts as unhealthy "
        "(default %(default)s)",
    )
    add_partitions_argument(status, "the keyed topics, as they must be")
    add_bootstrap_argument(status)
    status.set_defaults(handler=_status)
