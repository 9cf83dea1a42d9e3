"""Mixed changes on both sides while the worker and the writers are killed (-9) at random
points: afterwards both sandboxes hold exactly the expected records, none twice."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.chaos import WRITERS_AND_WORKER, Changes, Chaos, run_chaos
from tests.stack_fixtures import SyncStack

pytestmark = pytest.mark.broker
CHANGES = int(os.environ.get("CRASH_CHANGES", "2000"))


async def test_kill_9_during_mixed_changes_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    stack = SyncStack(kafka_bootstrap, topic_prefix, tmp_path)
    chaos = Chaos(victims=WRITERS_AND_WORKER)
    try:
        report = await run_chaos(stack, Changes(CHANGES, rng), chaos, rng, within=240)
    finally:
        stack.down()
    assert chaos.kills >= 2 and set(chaos.killed) & set(WRITERS_AND_WORKER)
    assert report.seconds_to_converge < 240
