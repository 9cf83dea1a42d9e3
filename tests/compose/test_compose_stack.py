"""The compose stack as a user runs it: `docker compose up --build --wait` on this
machine's Docker engine (the image built once), changes made through each sandbox's API
reach the other side, and `docker compose restart worker` in the middle of them loses
and duplicates nothing. Without Docker this fails: CI starts an engine (`.ci/run`)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from tests.support.chaos import Changes, apply_changes
from tests.support.compose_stack import ComposeStack, converge, no_dead_letters, running

# About 50 changes in Clientify and 100 in Odoo (companies and products); numbered past
# the sandboxes' 20 seeded records, which sync meanwhile.
CHANGES = int(os.environ.get("COMPOSE_CHANGES", "150"))
FIRST_CHANGE = 1000
CONVERGE_WITHIN = 240.0
# A pause after each change, so the flow outlasts the worker's restart (a few seconds):
# about 15 s for 150 changes.
PACE = 0.1


async def test_compose_stack_syncs_both_ways_and_a_worker_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    stack = ComposeStack(tmp_path)
    changes = Changes(CHANGES, random.Random(17), first=FIRST_CHANGE)
    with running(stack):
        worker_started = stack.started_at("worker")
        restarts: list[asyncio.Task[None]] = []

        def paced(n: int) -> None:
            # Half way, while the changes go on: compose stops the worker (SIGTERM) and
            # starts it again on the same volume.
            if n == len(changes.steps) // 2:
                restarts.append(asyncio.create_task(asyncio.to_thread(restart_worker, stack)))
            # Blocks this test's loop, which only runs the driver; the restart has a
            # thread of its own.
            time.sleep(PACE)

        started = time.monotonic()
        await apply_changes(stack, changes, paced)
        stack.seconds["changes"] = round(time.monotonic() - started, 1)
        await asyncio.gather(*restarts)
        assert restarts and stack.started_at("worker") != worker_started

        stack.seconds["converge"] = round(await converge(stack, changes, CONVERGE_WITHIN), 1)
        await no_dead_letters(stack.bootstrap)
        # The secret is in the sandbox's webhook URL and the receiver's settings: never
        # in what the services log.
        assert stack.webhook_secret not in stack.logs(), "WEBHOOK_SECRET in the compose logs"


def restart_worker(stack: ComposeStack) -> None:
    stack.timed("restart worker", "restart", "worker")
