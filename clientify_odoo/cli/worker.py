"""`clientify-odoo worker`: the Faust processors (mapping, links, echoes, conflicts)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import faust

from clientify_odoo.cli.options import (
    Context,
    add_bootstrap_argument,
    add_mapping_argument,
    add_metrics_arguments,
    add_partitions_argument,
    add_worker_dir_argument,
    bootstrap_servers,
    load_mapping_for,
    mapping_path,
)
from clientify_odoo.cli.service import (
    ensure_declared_topics,
    metrics_served,
    no_kafka,
    service_health,
)
from connectors.kafka.admin import Replication
from processors.app import WorkerConfig, create_app
from processors.replay_tables import ensure_changelogs
from schemas.topics import Topics

FAUST_LOGGERS = ("faust", "mode", "aiokafka", "kafka")  # what --faust-log-level is for


async def _ensure_all_topics(bootstrap: str, prefix: str, partitions: int) -> Replication:
    """Every topic the worker reads and writes, its tables' changelogs included; returns
    the replication the cluster allows, for the topics Faust creates itself."""
    report = await ensure_declared_topics(bootstrap, Topics(prefix), partitions)
    try:
        await ensure_changelogs(bootstrap, prefix, partitions)
    except Exception as exc:  # noqa: BLE001 - any connection failure: say where and why
        raise no_kafka(bootstrap, exc) from None
    return report.replication


def _worker(args: argparse.Namespace, context: Context) -> int:
    path = mapping_path(args.mapping, context)
    mapping = load_mapping_for(args.mapping, context)
    bootstrap = bootstrap_servers(args, context)
    prefix = context.settings.topic_prefix
    replication = asyncio.run(_ensure_all_topics(bootstrap, prefix, args.partitions))
    # Faust beats every 10 s (the worker's timer); two minutes without one: stuck.
    health = service_health("worker", stale_after=120.0)
    config = WorkerConfig(
        bootstrap=bootstrap,
        prefix=prefix,
        datadir=args.data_dir,
        mapping=mapping,
        partitions=args.partitions,
        replication=replication.factor,
        suppress_echoes=not args.no_echo_suppression,
        health=health,
    )
    context.console.print(
        f"Sync worker on {bootstrap}, mapping {path}, state in {args.data_dir} (Ctrl-C stops)"
    )
    # Faust sets its level on the log handlers too: they pass info, and the level asked
    # for goes to Faust's own loggers, so the sync's lines (the counts every 30 s, each
    # skip and conflict) show at any Faust level.
    worker = faust.Worker(create_app(config), loglevel="info", quiet=True)
    for name in FAUST_LOGGERS:
        logging.getLogger(name).setLevel(args.faust_log_level.upper())
    # Faust's worker owns the event loop and handles SIGINT/SIGTERM: a clean stop
    # commits offsets and flushes the tables.
    with metrics_served(args, context, health):
        worker.execute_from_commandline()
    return 0


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run the processors: map facts, link records, drop echoes, emit commands",
        description=(
            "Run the Faust processors: read the facts of both systems, map them with the "
            "mapping file, key them by business key, drop the sync's own echoes, resolve "
            "conflicts (the later edit wins, the loser goes to sync.conflicts) and emit "
            "commands for the writers. Records without a business key go to sync.skips. "
            "State lives in RocksDB under --data-dir and in changelog topics, so a "
            "restarted or moved worker recovers it."
        ),
    )
    add_mapping_argument(worker)
    add_worker_dir_argument(worker, "local table state")
    add_partitions_argument(worker, "the keyed topics")
    worker.add_argument(
        "--faust-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="how much Faust itself logs (default warning)",
    )
    worker.add_argument(
        "--no-echo-suppression",
        action="store_true",
        help="diagnostic only: relay every changed field like a naive integration, to "
        "see the loop the suppression prevents; never in production",
    )
    add_bootstrap_argument(worker)
    add_metrics_arguments(worker, "worker")
    worker.set_defaults(handler=_worker)
