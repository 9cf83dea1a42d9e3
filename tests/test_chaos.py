"""The chaos run, small enough for CI: changes on both sides while any service may be
killed -9, the broker is restarted once, the sandboxes answer 5% 5xx and bursts of 429;
afterwards both sandboxes equal the expected state, and every dead letter has a reason.
The long run is `python -m bench.chaos` (10,000 changes)."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from tests.chaos import EVERY_SERVICE, Changes, Chaos, run_chaos
from tests.stack_fixtures import SyncStack

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
            broker=broker, error_rate=0.05, bursts=True, within=300,
        )  # fmt: skip
    finally:
        stack.down()
        await asyncio.to_thread(broker.down)
    assert chaos.broker_restarts == 1 and chaos.kills >= 3
    assert report.faults_injected > 0 and report.throttled > 0
