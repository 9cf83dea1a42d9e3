"""The base for store-backed consumers (consumers/base/sink.py) on the real broker: the
extending guide's example consumer as printed, exactly-once effects across a failure in the
middle of a batch, rejects, and the store's own checks."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from connectors.kafka.admin import ensure_topics
from connectors.kafka.publisher import Outgoing, Publisher
from consumers.base.sink import Message, SinkConfig, SinkConsumer, SinkError, Store
from schemas import ConflictReport, Skip, System
from schemas.topics import SKIPS, Topics, TopicSpec
from tests.contracts.sink import SinkContract, SinkHarness
from tests.support.project import REPO

pytestmark = pytest.mark.broker
AT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def readme_consumer(tmp: Path) -> Path:
    """The example of docs/extending.md, "Writing your own consumer", as a file."""
    readme = (REPO / "docs" / "extending.md").read_text()
    section = readme.split("## Writing your own consumer", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    path = tmp / "conflict_audit.py"
    path.write_text(code)
    return path


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestReadmeConsumer(SinkContract):
    """The guide's example is held to what every sink promises."""

    @pytest.fixture
    def harness(self, tmp_path: Path) -> SinkHarness:
        module = load(readme_consumer(tmp_path))
        reports = [("sync.conflicts", conflict(field)) for field in ("phone", "city")]
        return SinkHarness(module.ConflictAudit(), reports)


def run_script(tmp: Path, bootstrap: str, prefix: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix}
    return subprocess.Popen(
        [sys.executable, "conflict_audit.py"], cwd=tmp, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def conflict(field: str, caused_by: str = "fact-1") -> ConflictReport:
    return ConflictReport(
        flow="company", business_key="B12345678", field=field, winner=System.ODOO,
        winning_value="new", losing_value="old", winner_time="t2", loser_time="t1",
        caused_by=caused_by, at=AT,
    )  # fmt: skip


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(sql).fetchall()


def conflicts_in(db: Path) -> int:
    try:
        return len(rows(db, "SELECT * FROM conflicts"))
    except sqlite3.OperationalError:  # the consumer has not created its tables yet
        return 0


async def conflicts_reach(db: Path, count: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while conflicts_in(db) != count:
        assert time.monotonic() < deadline, f"{conflicts_in(db)} conflicts, not {count}"
        await asyncio.sleep(0.2)


async def test_the_readme_consumer_keeps_each_conflict_once(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    audit = load(readme_consumer(tmp_path))
    db = tmp_path / "conflicts.sqlite3"
    config = SinkConfig(kafka_bootstrap, topic_prefix=topic_prefix)
    topic = topic_prefix + "sync.conflicts"
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all([
            Outgoing(topic, "a", conflict("phone")), Outgoing(topic, "a", conflict("city")),
            Outgoing(topic, "a", conflict("phone")),  # the same report again
            Outgoing(topic, "a", b"{broken"),
        ])  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(audit.run(config, db, stop))
        try:
            await conflicts_reach(db, 2)
            await publisher.publish(Outgoing(topic, "a", conflict("phone", caused_by="fact-2")))
            await conflicts_reach(db, 3)
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    kept = rows(db, "SELECT field, caused_by, winner, losing_value FROM conflicts ORDER BY 1, 2")
    assert kept == [
        ("city", "fact-1", "odoo", '"old"'), ("phone", "fact-1", "odoo", '"old"'),
        ("phone", "fact-2", "odoo", '"old"'),
    ]  # fmt: skip
    ((offset, error),) = rows(db, "SELECT at_offset, error FROM sink_rejects")
    assert offset == 3 and "not JSON" in error

    # Run as the guide says, as a script: nothing new to read, Ctrl-C stops it cleanly.
    script = run_script(tmp_path, kafka_bootstrap, topic_prefix)
    await asyncio.sleep(5)
    script.send_signal(signal.SIGINT)
    output, _ = script.communicate(timeout=60)
    assert script.returncode == 0, output
    assert conflicts_in(db) == 3


class CountingSink:
    """Counts deliveries per skip (not idempotent on purpose: it shows exactly-once of
    the base itself) and fails once at `fail_at`, in the middle of a batch."""

    name = "counting"
    topics = ("sync.skips",)
    schema_version = 1
    schema = "CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, n INTEGER NOT NULL);"

    def __init__(self, fail_at: str | None = None) -> None:
        self.fail_at = fail_at

    def apply(self, db: sqlite3.Connection, message: Message) -> None:
        assert isinstance(message.envelope, Skip)
        event_id = message.envelope.event_id
        db.execute(
            "INSERT INTO seen VALUES (?, 1) ON CONFLICT (event_id) DO UPDATE SET n = n + 1",
            (event_id,),
        )
        if event_id == self.fail_at:
            raise RuntimeError("the disk is full")


async def test_a_failure_in_a_batch_applies_none_of_it_and_a_restart_applies_it_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, Topics(topic_prefix).declared(3, (SKIPS,)))
    skips = [
        Skip(event_id=f"f{i}", system=System.ODOO, entity="partner", source_id=str(i),
             reason="no ref", at=AT)
        for i in range(300)
    ]  # fmt: skip
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all(
            [Outgoing(topic_prefix + "sync.skips", s.source_id, s) for s in skips]
        )
    db = tmp_path / "counts.sqlite3"
    config = SinkConfig(kafka_bootstrap, topic_prefix=topic_prefix, max_records=17)
    progress: list[tuple[int, int]] = []
    with Store(db, CountingSink(fail_at="f150"), topic_prefix) as store:
        async with SinkConsumer(store, config) as consumer:
            with pytest.raises(RuntimeError, match="disk is full"):
                await consumer.catch_up(asyncio.Event(), lambda *p: progress.append(p))
    counted = rows(db, "SELECT count(*), sum(n) FROM seen")[0]
    assert 0 < counted[0] < 300 and counted[0] == counted[1]
    assert rows(db, "SELECT n FROM seen WHERE event_id = 'f150'") == []
    assert progress[0] == (0, 300)

    with Store(db, CountingSink(), topic_prefix) as store:
        async with SinkConsumer(store, config) as consumer:
            assert await consumer.catch_up(asyncio.Event())
            assert consumer.applied == 300 - counted[0]
    assert rows(db, "SELECT count(*), min(n), max(n) FROM seen") == [(300, 1, 1)]
    positions = rows(db, "SELECT sum(next_offset) FROM sink_positions")
    assert positions == [(300,)]


def test_the_store_refuses_what_it_cannot_use_and_says_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite3"
    with Store(db, CountingSink(), "a."), pytest.raises(SinkError, match="another process"):
        Store(db, CountingSink(), "a.")
    with pytest.raises(SinkError, match=r"TOPIC_PREFIX='a\.', not 'b\.'") as wrong_prefix:
        Store(db, CountingSink(), "b.")
    assert wrong_prefix.value.needs_rebuild

    class Newer(CountingSink):
        schema_version = 2

    with pytest.raises(SinkError, match="version 1 of counting, this release needs version 2"):
        Store(db, Newer(), "a.")

    class Other(CountingSink):
        name = "other"

    with pytest.raises(SinkError, match="store of 'counting', not 'other'"):
        Store(db, Other(), "a.")
    with Store(db, Newer(), "b.", fresh=True) as store:  # a rebuild starts from nothing
        assert store.positions() == {}
    precious = tmp_path / "precious.sqlite3"
    with contextlib.closing(sqlite3.connect(precious)) as other, other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(SinkError, match="not a store of counting: not deleting it"):
        Store(precious, CountingSink(), fresh=True)
    with pytest.raises(SinkError, match="the database of something else"):
        Store(precious, CountingSink())
    assert rows(precious, "SELECT name FROM sqlite_master") == [("invoices",)]
    (tmp_path / "garbage").write_text("no database")
    with pytest.raises(SinkError, match="cannot be used as a store"):
        Store(tmp_path / "garbage", CountingSink())
