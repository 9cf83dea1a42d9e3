"""The promises every sink keeps (a consumer that applies envelopes to its own SQLite
store on `consumers.base.sink`), whatever it keeps there.

One suite, run against each sink: a test module subclasses `SinkContract` and gives it
a `harness` fixture with the sink and envelopes it is made for. The runtime applies a
batch and its position in one transaction, so a message is applied once; but the same
envelope can be on a topic twice (a re-poll, a writer republishing a stored Result), so
the sink's own effect must be idempotent on content.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from consumers.base.sink import Message, Sink, Store
from schemas import AnyEnvelope, Skip, System
from schemas.envelope import utc_now
from schemas.topics import ALL_TOPICS

BOOKKEEPING = ("sink_meta", "sink_positions", "sink_rejects")


@dataclass
class SinkHarness:
    sink: Sink
    # Envelopes the sink is made for, each with the declared topic it comes from.
    samples: list[tuple[str, AnyEnvelope]]


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the sink's own tables and views, in a stable order."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        names = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
            )
            if name not in BOOKKEEPING
        ]
        return {name: sorted(db.execute(f'SELECT * FROM "{name}"').fetchall()) for name in names}


def deliver(store: Store, samples: list[tuple[str, AnyEnvelope]], first: int) -> int:
    """Write the samples as one batch per topic, at offsets from `first`; the rejects."""
    refused = 0
    for topic in dict.fromkeys(topic for topic, _ in samples):
        batch = [
            Message(topic, 0, first + n, b"key", envelope)
            for n, (name, envelope) in enumerate(samples)
            if name == topic
        ]
        refused += store.write(TopicPartition(topic, 0), first + len(samples), batch)
    return refused


class SinkContract:
    def test_it_reads_declared_topics_only(self, harness: SinkHarness) -> None:
        declared = {spec.name for spec in ALL_TOPICS}
        assert harness.sink.topics and set(harness.sink.topics) <= declared
        assert {topic for topic, _ in harness.samples} <= set(harness.sink.topics)

    def test_its_store_opens_fresh_and_again(self, harness: SinkHarness, tmp_path: Path) -> None:
        path = tmp_path / "store.sqlite3"
        with Store(path, harness.sink):
            pass
        with Store(path, harness.sink):  # its schema runs at every open
            pass
        assert snapshot(path)  # it made tables of its own

    def test_what_it_is_made_for_applies_and_twice_changes_nothing(
        self, harness: SinkHarness, tmp_path: Path
    ) -> None:
        path = tmp_path / "store.sqlite3"
        with Store(path, harness.sink) as store:
            assert deliver(store, harness.samples, 0) == 0
            once = snapshot(path)
            assert any(once.values())  # it kept something
            assert deliver(store, harness.samples, 1000) == 0  # the same, on again
        assert snapshot(path) == once

    def test_an_envelope_it_does_not_expect_is_ignored_or_refused(
        self, harness: SinkHarness, tmp_path: Path
    ) -> None:
        """Never an exception that would stop the consumer: at worst a reject."""
        stray = Skip(event_id="stray", system=System.ODOO, entity="partner", source_id="1",
                     flow=None, reason="a test", at=utc_now())  # fmt: skip
        with Store(tmp_path / "store.sqlite3", harness.sink) as store:
            deliver(store, [(topic, stray) for topic in harness.sink.topics], 0)
