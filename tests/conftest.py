"""Shared fixtures: one real Kafka broker for the whole run, started by the suite itself.

With KAFKA_BOOTSTRAP_SERVERS set the suite uses that cluster; otherwise it starts the
project's own local broker (the same code as `clientify-odoo kafka up`) on free ports
with a throw-away data dir, and stops it at the end. There is no skip: without a
broker the tests fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from connectors.kafka.admin import ensure_topics
from schemas.topics import Topics, TopicSpec

# Two cores shared with a broker and servers: judge properties, not generation speed.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = LocalBroker(data_dir=tmp_path_factory.mktemp("kafka"), port=free_port_pair())
    broker.up(on_progress=lambda _line: None)
    try:
        yield broker.bootstrap
    finally:
        broker.down()


@pytest.fixture
def topic_prefix() -> str:
    """A namespace of topics for one test, so tests never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topics(kafka_bootstrap: str, topic_prefix: str) -> tuple[TopicSpec, ...]:
    """Every declared topic, created under this test's prefix."""
    specs = Topics(topic_prefix).declared(1)
    asyncio.run(ensure_topics(kafka_bootstrap, specs))
    return specs


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    return tmp_path


# Fails any test (or the run) whose output or logs show a configured secret.
pytest_plugins = ("tests.support.secret_scan",)


FAILURE_LINES = 8  # of each failed test's message, repeated at the very end of the run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The start of each failure's message once more, last: a failure's own report ends
    in pages of service logs, and a CI page that shows only the end of the output
    then shows no reason at all."""
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    if not failed:
        return
    terminalreporter.section("why each test failed (the start of its message)")
    for report in failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        terminalreporter.write_line(f"{report.nodeid} ({report.when}):")
        for line in message.splitlines()[:FAILURE_LINES]:
            terminalreporter.write_line(f"    {line[:240]}")
