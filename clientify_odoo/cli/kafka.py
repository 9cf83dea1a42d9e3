"""`clientify-odoo kafka up|down|status|topics`: the local broker and the topic registry."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.table import Table

from clientify_odoo.cli.options import CommandError, Context
from clientify_odoo.cli.service import ensure_declared_topics
from clientify_odoo.stack.broker import (
    DEFAULT_KAFKA_VERSION,
    DEFAULT_PORT,
    BrokerError,
    KafkaJars,
    LocalCluster,
    default_cache_dir,
    default_data_dir,
)
from connectors.kafka.admin import list_topics, reachable, replication_of
from schemas.topics import Topics


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the local broker lives; shared by every command that may start it."""
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"client port on 127.0.0.1 (default {DEFAULT_PORT}; the controller uses port+1)",
    )
    parser.add_argument(
        "--brokers",
        type=int,
        default=None,
        metavar="N",
        help=(
            "run a cluster of N brokers (KRaft, each also a controller) on consecutive "
            "port pairs from --port: 3 gives every topic three copies and keeps writing "
            "with one broker down (default: the size the data dir was made with, else 1)"
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="broker data, config, pid and logs (default: %(default)s)",
    )
    parser.add_argument(
        "--kafka-version",
        default=DEFAULT_KAFKA_VERSION,
        help="Apache Kafka release to fetch from Maven Central (default %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where fetched jars are kept and reused (default: %(default)s)",
    )


def local_broker(args: argparse.Namespace) -> LocalCluster:
    try:
        return LocalCluster(
            data_dir=args.data_dir,
            brokers=args.brokers,
            port=args.port,
            jars=KafkaJars(version=args.kafka_version, cache_dir=args.cache_dir),
        )
    except BrokerError as exc:
        raise CommandError(str(exc)) from None


def start_broker(args: argparse.Namespace, context: Context) -> str:
    """Bootstrap servers to use: the configured cluster, else the local broker (started)."""
    external = context.settings.kafka_bootstrap_servers
    if external:
        context.console.print(f"Using the Kafka cluster at {external} (KAFKA_BOOTSTRAP_SERVERS)")
        if not reachable(external):
            raise CommandError(
                f"no Kafka broker answers at {external} (from KAFKA_BOOTSTRAP_SERVERS). "
                "Start that cluster, fix the address, or unset the variable to let "
                "clientify-odoo start a local broker."
            )
        return external
    broker = local_broker(args)
    was_running = broker.pid() is not None
    try:
        with context.console.status(
            f"Starting Kafka {broker.jars.version} (first run fetches ~45 MB of jars "
            "from Maven Central)..."
        ) as status:
            seconds = broker.up(on_progress=lambda line: status.update(f"Fetching {line}"))
    except BrokerError as exc:
        raise CommandError(str(exc)) from None
    what = f"Kafka {broker.jars.version}" + (f" ({broker.size} brokers)" if broker.size > 1 else "")
    if was_running and seconds == 0.0:
        context.console.print(f"{what} is already running at {broker.bootstrap}")
    else:
        context.console.print(
            f"[green]{what} is up[/green] at {broker.bootstrap} (ready in {seconds:.1f}s)"
        )
    context.console.print(broker.describe())
    return broker.bootstrap


def create_topics(bootstrap: str, context: Context) -> None:
    """Create every declared topic that is missing, check the others, and say so."""
    topics = Topics(context.settings.topic_prefix)
    report = asyncio.run(ensure_declared_topics(bootstrap, topics))
    cluster = f"{report.brokers} broker{'s' if report.brokers > 1 else ''}"
    if report.created:
        context.console.print(
            f"Created {len(report.created)} topics ({report.replication}, on {cluster}): "
            + ", ".join(report.created)
        )
    else:
        context.console.print(
            f"All {len(report.existing)} topics exist with the right config ({cluster})"
        )
    if report.under_replicated:
        context.console.print(
            f"[yellow]{len(report.under_replicated)} topics have fewer than "
            f"{report.replication.factor} replicas[/yellow], the most {cluster} allow: "
            f"{', '.join(report.under_replicated)}. They work, but losing a broker can stop "
            "them; add replicas with kafka-reassign-partitions.sh (see `kafka status`)."
        )


def _up(args: argparse.Namespace, context: Context) -> int:
    start_broker(args, context)
    return 0


def _down(args: argparse.Namespace, context: Context) -> int:
    if context.settings.kafka_bootstrap_servers:
        context.console.print(
            "KAFKA_BOOTSTRAP_SERVERS is set: that cluster is not managed here; nothing stopped."
        )
        return 0
    broker = local_broker(args)
    with context.console.status("Stopping Kafka (clean shutdown)..."):
        stopped = broker.down()
    context.console.print("Kafka stopped" if stopped else "Kafka was not running")
    return 0


def _status(args: argparse.Namespace, context: Context) -> int:
    external = context.settings.kafka_bootstrap_servers
    if external:
        up = reachable(external)
        context.console.print(f"Kafka at {external} (external): {_state(up)}")
        if up:
            _print_topics(context, external)
        return 0 if up else 1
    broker = local_broker(args)
    status = broker.status()
    pid = f" (pid {broker.pid()})" if broker.size == 1 and status.running else ""
    context.console.print(f"Kafka at {broker.bootstrap}: {_state(status.running > 0)}{pid}")
    context.console.print(broker.describe())
    if broker.size > 1:
        for node_id, node_pid in status.pids.items():
            state = f"running (pid {node_pid})" if node_pid else "[red]down[/red]"
            where = broker.node(node_id).bootstrap
            context.console.print(f"  broker {node_id} at {where}: {state}")
    if status.running:
        _print_topics(context, broker.bootstrap)
    return 0 if status.running else 1


def _state(running: bool) -> str:
    return "[green]running[/green]" if running else "[red]not running[/red]"


def _print_topics(context: Context, bootstrap: str) -> None:
    """The topics with their copies: the declared ones and any other but Kafka's own."""
    topics = sorted(asyncio.run(list_topics(bootstrap)))
    declared = {spec.name: spec for spec in Topics(context.settings.topic_prefix).declared()}
    shown = [name for name in topics if name in declared or not name.startswith("__")]
    copies = asyncio.run(replication_of(bootstrap, shown)) if shown else {}
    table = Table("topic", "declared as", "replicas", "min ISR", "purpose")
    for name in shown:
        factor, min_insync = copies.get(name, (0, ""))
        spec = declared.get(name)
        cleanup, purpose = (spec.cleanup.value, spec.purpose) if spec else ("-", "not declared")
        table.add_row(name, cleanup, str(factor), min_insync, purpose)
    context.console.print(table if table.row_count else "  no topics yet")
    missing = sorted(set(declared) - set(topics))
    if missing:
        context.console.print(
            f"  {len(missing)} declared topics not created yet (`clientify-odoo kafka topics`)"
        )


def _ensure(args: argparse.Namespace, context: Context) -> int:
    bootstrap = start_broker(args, context)
    create_topics(bootstrap, context)
    return 0


def register(subparsers: Any) -> None:
    kafka = subparsers.add_parser(
        "kafka",
        help="run the local Kafka broker (up, down, status) and create the topics",
        description=(
            "Run a real Apache Kafka broker (KRaft; one node, or a cluster with --brokers 3) "
            "on 127.0.0.1 without Docker. "
            "The first `up` fetches the broker jars from Maven Central with `mvn` and caches "
            "them; later runs start in a few seconds. Data survives down/up. With "
            "KAFKA_BOOTSTRAP_SERVERS set, that cluster is used and nothing is started."
        ),
    )
    actions = kafka.add_subparsers(dest="action", metavar="<action>", required=True)
    for name, handler, text in (
        ("up", _up, "start the broker (fetching its jars the first time) and wait until ready"),
        ("down", _down, "stop the broker cleanly; its data is kept"),
        ("status", _status, "say whether it runs and which topics exist (exit 1 if down)"),
        ("topics", _ensure, "create every declared topic that is missing; check the others"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        add_broker_arguments(action)
        action.set_defaults(handler=handler)
