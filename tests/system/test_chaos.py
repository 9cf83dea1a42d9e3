"""Faults while changes flow on both sides, small enough for CI; afterwards both sandboxes
hold exactly the expected records, none twice, and every dead letter has a reason.

- The chaos run: any service may be killed -9, the broker is restarted once, the
  sandboxes answer 5% 5xx and bursts of 429 (the long run is `python -m bench.chaos`,
  10,000 changes).
- Crash recovery: the worker and the writers are killed -9 at random points."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from tests.support.chaos import (
    EVERY_SERVICE,
    WRITERS_AND_WORKER,
    Changes,
    Chaos,
    broker_restart,
    run_chaos,
)
from tests.support.stack_fixtures import SyncStack

pytestmark = pytest.mark.broker
CHANGES = int(os.environ.get("CHAOS_CHANGES", "1000"))


async def test_chaos_loses_and_duplicates_nothing(tmp_path: Path, topic_prefix: str) -> None:
    # A broker of its own: this test restarts it.
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port_pair())
    await asyncio.to_thread(broker.up, on_progress=lambda _line: None)
    rng = random.Random(6)
    stack = SyncStack(broker.bootstrap, topic_prefix, tmp_path)
    chaos = Chaos(victims=EVERY_SERVICE, kill_every=(2.0, 4.0))

    try:
        report = await run_chaos(
            stack, Changes(CHANGES, rng), chaos, rng,
            broker_faults=broker_restart(broker), error_rate=0.05, bursts=True, within=300,
        )  # fmt: skip
    finally:
        stack.down()
        await asyncio.to_thread(broker.down)
    assert chaos.broker_restarts == 1 and chaos.kills >= 3
    assert report.faults_injected > 0 and report.throttled > 0


CRASH_CHANGES = int(os.environ.get("CRASH_CHANGES", "2000"))


async def test_kill_9_during_mixed_changes_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    chaos = Chaos(victims=WRITERS_AND_WORKER)
    try:
        report = await run_chaos(stack, Changes(CRASH_CHANGES, rng), chaos, rng, within=240)
    finally:
        stack.down()
    assert chaos.kills >= 2 and set(chaos.killed) & set(WRITERS_AND_WORKER)
    assert report.seconds_to_converge < 240
