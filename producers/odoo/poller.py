"""Poll Odoo for changed records and publish each new version as a fact.

Per stream (a model scanned by `write_date`) the poller drains pages with a keyset on
(second, id) as odoo-api.md section 4 prescribes: first the rest of the cursor's second
ordered by id, then the following seconds; a page whose last second may continue is
not trusted past that second. Each page's facts and the advanced cursor go to Kafka in
one transaction. A re-scan of the last `overlap` seconds catches rows committed late
with an older `write_date`; versions already published are skipped (and would carry
the same deterministic event id anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from connectors.odoo import OdooClient, OdooError
from producers.metrics import FACTS_PUBLISHED, HINTED_FACTS, POLLS
from producers.odoo.cursor import (
    EPOCH,
    READ_TIMEOUT,
    Cursor,
    cursor_key,
    load_cursors,
    parse_wire,
)
from producers.odoo.entities import STREAMS, Entity, Stream
from schemas import EnvelopeError, Fact, System, decode
from schemas.health import ServiceHealth, iso
from schemas.odoo_values import many2one_id
from schemas.topics import ODOO_CURSORS, Topics

log = logging.getLogger(__name__)

Record = dict[str, Any]
# Archived records are changes too (an archive is a write): never hide them.
ALL_RECORDS = {"active_test": False}
# Facts are stamped with the poller's clock, windows are in Odoo's: allow this much skew
# when reading back the facts of the re-scan window.
CLOCK_SKEW = 300.0


class PollerError(Exception):
    """The poller cannot go on safely; the text says why. Nothing was skipped."""


class Progress(Protocol):
    """Where a backfill reports how far it got (the CLI draws a bar with an ETA)."""

    def total(self, count: int) -> None: ...

    def advance(self, count: int) -> None: ...


@dataclass(frozen=True)
class PollerOptions:
    page_size: int = 200
    interval: float = 5.0
    # Twice Odoo's default limit_time_real (120 s): a transaction that started that long
    # ago can still commit rows with its old write_date (odoo-api.md section 4).
    overlap: float = 240.0
    seen_limit: int = 200_000
    # While Odoo pushes hints (they came within `pushes_recent` seconds), changes arrive
    # by them and the poll is only the safety net for lost ones: it runs this often.
    interval_with_pushes: float = 30.0
    pushes_recent: float = 600.0
    # A page's transaction not committed by then means Kafka is gone or stuck: stop
    # loudly rather than hang (the cursor moves only with a commit, so nothing is lost).
    publish_timeout: float = 120.0

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 5000:
            raise ValueError("page_size must be between 1 and 5000")
        if self.interval <= 0 or self.overlap < 0:
            raise ValueError("interval must be > 0 and overlap >= 0 seconds")


@dataclass
class PollReport:
    facts: Counter[str] = field(default_factory=Counter)
    scanned: int = 0
    seconds: float = 0.0

    @property
    def published(self) -> int:
        return sum(self.facts.values())


def transactional_id(topics: Topics, db: str) -> str:
    """The poller's transactional id: one per database, so a restarted poller fences its
    predecessor (and its open transaction is aborted at once)."""
    return topics.scoped(f"clientify-odoo.odoo-poller.{db}")


class OdooPoller:
    def __init__(
        self,
        client: OdooClient,
        publisher: Publisher,
        bootstrap: str,
        *,
        topics: Topics | None = None,
        options: PollerOptions | None = None,
        streams: Sequence[Stream] = STREAMS,
        health: ServiceHealth | None = None,
    ) -> None:
        self.client = client
        self.publisher = publisher
        self.bootstrap = bootstrap
        self.options = options or PollerOptions()
        self.streams = tuple(streams)
        self.health = health or ServiceHealth("odoo-poller")
        self.cursors: dict[str, Cursor] = {}
        self.topics = topics or Topics()
        self._seen: OrderedDict[tuple[str, int], str] = OrderedDict()
        # Per entity, the page being committed while the next one is read; entities are
        # polled side by side, their transactions one at a time (one producer).
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._publishing = asyncio.Lock()
        self.last_hint_at: float | None = None  # time.monotonic() of the latest hint read

    def _key(self, stream: Stream) -> str:
        return cursor_key(self.client.config.db, stream.model)

    # -- start-up

    async def start(self) -> None:
        """Fence any earlier incarnation, then read the committed cursors."""
        # An empty transaction makes the broker abort whatever a killed poller with the
        # same transactional id left open, so read_committed can reach the end.
        await self.publisher.publish_all([])
        stored = await load_cursors(self.bootstrap, self.topics[ODOO_CURSORS])
        fresh: list[Outgoing] = []
        for stream in self.streams:
            cursor = stored.get(self._key(stream))
            if cursor is None:
                cursor = await self._initial_cursor(stream)
                fresh.append(self._cursor_record(stream, cursor))
            self.cursors[stream.model] = cursor
        if fresh:
            await self.publisher.publish_all(fresh)
        await self._recall()
        log.info(
            "Odoo poller cursors: %s",
            ", ".join(f"{model} {c.wire}#{c.last_id}" for model, c in self.cursors.items()),
        )

    async def _recall(self) -> None:
        """Rebuild the versions already published in the re-scan window from the fact
        topics, so that a restarted poller does not publish them again."""
        if self.options.overlap <= 0:
            return
        margin = timedelta(seconds=self.options.overlap + CLOCK_SKEW)
        for entity in dict.fromkeys(stream.entity for stream in self.streams):
            oldest = min(self.cursors[s.model].second for s in self.streams if s.entity == entity)
            if oldest == EPOCH:
                continue  # nothing done yet: nothing to recall
            topic = self.topics[entity.topic]
            # Bounded twice: by time, and by what the seen cache could hold anyway (after
            # a crash mid-backfill everything was published after `oldest`).
            recent = await read_to_end(
                self.bootstrap, [topic], since=oldest - margin, newest=self.options.seen_limit,
                must_exist=True, give_up_after=READ_TIMEOUT,
            )  # fmt: skip
            for record in recent:
                try:
                    fact = decode(record.value)
                except EnvelopeError as exc:
                    log.debug("ignoring a message of %s that is not a fact: %s", topic, exc)
                    continue
                if isinstance(fact, Fact):
                    self._remember(fact)

    async def _initial_cursor(self, stream: Stream) -> Cursor:
        if not stream.indirect:
            return Cursor()  # a backfill from the beginning
        # The entity's own stream reads every record's current state, which includes all
        # earlier changes of this model: start after its latest change instead of
        # re-reading history (later commits into that second are the re-scan's job).
        latest = await self.client.search_read(
            stream.model, [], ["write_date"], order="write_date desc, id desc", limit=1,
            context=ALL_RECORDS,
        )  # fmt: skip
        if not latest:
            return Cursor()
        second = Cursor(parse_wire(latest[0]["write_date"]))
        top = await self.client.search(
            stream.model, [("write_date", ">=", second.wire)], order="id desc", limit=1,
            context=ALL_RECORDS,
        )  # fmt: skip
        return Cursor(second.second, top[0] if top else 0)

    # -- polling

    async def backfill(self, progress: Progress | None = None) -> PollReport:
        """Publish everything after the cursors (all of it on a first run), resumably."""
        if progress is not None:
            total = 0
            for stream in self.streams:
                total += await self.client.search_count(
                    stream.model, self.cursors[stream.model].after(), context=ALL_RECORDS
                )
            progress.total(total)
        return await self.poll_once(rescan=False, progress=progress)

    async def poll_once(
        self, *, rescan: bool = True, progress: Progress | None = None
    ) -> PollReport:
        report = PollReport()
        started = time.monotonic()

        async def poll(streams: list[Stream]) -> None:
            for stream in streams:
                cursor = await self._drain(stream, self.cursors[stream.model], report, progress)
                self.cursors[stream.model] = cursor
                if rescan and self.options.overlap > 0:
                    window = Cursor(cursor.second - timedelta(seconds=self.options.overlap))
                    await self._drain(stream, window, report, None, persist=False)

        # Entities side by side (Odoo answers a few calls at once), the streams of one
        # entity in turn, so one entity's versions are deduplicated in one place.
        groups: dict[str, list[Stream]] = {}
        for stream in self.streams:
            groups.setdefault(stream.entity.name, []).append(stream)
        outcomes = await asyncio.gather(
            *(poll(streams) for streams in groups.values()), return_exceptions=True
        )
        report.seconds = time.monotonic() - started
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # every entity got as far as it could; report the first error
        POLLS.labels("odoo", "ok").inc()
        self.health.succeeded(
            last_poll=iso(time.time()),
            cursors={model: f"{c.wire}#{c.last_id}" for model, c in self.cursors.items()},
        )
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stop` is set; outages are waited out."""
        while not stop.is_set():
            try:
                report = await self.poll_once()
                if report.published:
                    log.info("published %s", dict(report.facts))
            except (OdooError, KafkaError) as exc:
                POLLS.labels("odoo", "failed").inc()
                if isinstance(exc, OdooError) and not exc.transient:
                    raise  # a fault that will not go away by waiting: stop and say so
                self.health.failed(exc)
                log.warning("poll failed, retrying in %.0fs: %s", self.options.interval, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval())

    def interval(self) -> float:
        """Seconds to the next poll: longer while Odoo pushes its changes."""
        pushing = (
            self.last_hint_at is not None
            and time.monotonic() - self.last_hint_at < self.options.pushes_recent
        )
        if pushing:
            return max(self.options.interval, self.options.interval_with_pushes)
        return self.options.interval

    async def _drain(
        self,
        stream: Stream,
        cursor: Cursor,
        report: PollReport,
        progress: Progress | None,
        *,
        persist: bool = True,
    ) -> Cursor:
        try:
            cursor = await self._pages(stream, cursor, report, progress, persist)
        except BaseException:
            # Let the page already handed to Kafka finish (its transaction is whole);
            # the error that stopped the drain is the one to report.
            with contextlib.suppress(Exception):
                await self._settle(stream.entity)
            raise
        await self._settle(stream.entity)
        return cursor

    async def _pages(
        self,
        stream: Stream,
        cursor: Cursor,
        report: PollReport,
        progress: Progress | None,
        persist: bool,
    ) -> Cursor:
        size = self.options.page_size
        while True:
            # The rest of the cursor's second, by id: rows of one second are ordered by
            # their hidden microseconds, not by id, so only id order is a safe keyset.
            rows = await self._scan(stream, cursor.rest_of_second(), "id asc")
            if rows:
                cursor = Cursor(cursor.second, rows[-1]["id"])
                await self._emit(stream, rows, cursor if persist else None, report, progress)
                if len(rows) == size:
                    continue
            rows = await self._scan(stream, cursor.later(), "write_date asc, id asc")
            if not rows:
                return cursor
            last = rows[-1]["write_date"]
            if len(rows) < size:
                done = rows
                cursor = Cursor(
                    parse_wire(last), max(r["id"] for r in rows if r["write_date"] == last)
                )
            else:
                # The page may have cut the last second: finish it by id next round.
                done = [row for row in rows if row["write_date"] != last]
                cursor = Cursor(parse_wire(last))
            await self._emit(stream, done, cursor if persist else None, report, progress)
            if len(rows) < size:
                return cursor

    async def _scan(self, stream: Stream, domain: list[Any], order: str) -> list[Record]:
        fields = ["write_date", stream.link] if stream.link else list(stream.entity.fields)
        return await self.client.search_read(
            stream.model, domain, fields, order=order, limit=self.options.page_size,
            context=ALL_RECORDS,
        )  # fmt: skip

    async def _emit(
        self,
        stream: Stream,
        rows: list[Record],
        cursor: Cursor | None,
        report: PollReport,
        progress: Progress | None,
    ) -> None:
        """Read what the page's facts need from Odoo, then publish them in the
        background: the next page is read while Kafka commits this one. Transactions
        stay in order, one at a time."""
        entity = stream.entity
        observed = await self._observe(stream, rows)
        await self._settle(entity)  # the previous page is in Kafka: `_seen` is up to date
        facts = [fact for fact in observed if self._new(fact)]
        self._inflight[entity.name] = asyncio.create_task(
            self._publish(stream, len(rows), facts, cursor, report, progress)
        )

    async def _observe(self, stream: Stream, rows: list[Record]) -> list[Fact]:
        """The facts of a stream's rows: the records themselves, or for a stream that
        only points at them (a template's variants, an order's lines) the records read."""
        entity = stream.entity
        records = rows if not stream.indirect else await self._load(entity, _targets(stream, rows))
        if entity.lines is not None:
            await self._attach_lines(entity, records)
        parents = await self._parent_stamps(entity, records)
        return [observe(entity, record, parents.get(record["id"])) for record in records]

    async def read_hinted(self, hinted: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """Publish the current version of each hinted (model, id) read from committed
        state, without moving the cursors (the poll skips the versions published here).
        Returns the pairs that showed no new version: not committed yet, rolled back, or
        already published."""
        self.last_hint_at = time.monotonic()
        unchanged: set[tuple[str, int]] = set()
        for stream in self.streams:
            ids = sorted(rid for model, rid in hinted if model == stream.model)
            if not ids:
                continue
            rows = await self._scan(stream, [("id", "in", ids)], "id asc")
            # A version older than the cursor was read by a poll already, even when the
            # seen cache no longer holds it: the change hinted at is not committed yet.
            polled_until = self.cursors[stream.model].second
            # One read for the whole burst (a template's variants, lines, parents), then
            # each hinted row is answered by the records it stands for.
            facts = [
                fact for fact in await self._observe(stream, rows)
                if self._new(fact) and fact.occurred_at.replace(tzinfo=None) >= polled_until
            ]  # fmt: skip
            changed = {fact.source_id for fact in facts}
            for row in rows:
                records = _targets(stream, [row]) if stream.indirect else [row["id"]]
                if not changed.intersection(str(rid) for rid in records):
                    unchanged.add((stream.model, row["id"]))
            unchanged |= {(stream.model, rid) for rid in set(ids) - {row["id"] for row in rows}}
            facts = list({fact.event_id: fact for fact in facts}.values())
            if facts:
                await self._publish_facts(stream.entity, facts)
        return unchanged

    async def _publish_facts(self, entity: Entity, facts: list[Fact]) -> None:
        outgoing = [Outgoing(self.topics[entity.topic], fact.source_id, fact) for fact in facts]
        async with self._publishing, asyncio.timeout(self.options.publish_timeout):
            await self.publisher.publish_all(outgoing)
        for fact in facts:
            self._remember(fact)
        FACTS_PUBLISHED.labels("odoo", entity.name).inc(len(facts))
        HINTED_FACTS.labels(entity.name).inc(len(facts))

    async def _settle(self, entity: Entity) -> None:
        task = self._inflight.pop(entity.name, None)
        if task is not None:
            await task

    async def _publish(
        self,
        stream: Stream,
        scanned: int,
        facts: list[Fact],
        cursor: Cursor | None,
        report: PollReport,
        progress: Progress | None,
    ) -> None:
        topic = self.topics[stream.entity.topic]
        outgoing = [Outgoing(topic, fact.source_id, fact) for fact in facts]
        if cursor is not None and cursor != self.cursors.get(stream.model):
            outgoing.append(self._cursor_record(stream, cursor))
        if outgoing:
            try:
                async with self._publishing, asyncio.timeout(self.options.publish_timeout):
                    await self.publisher.publish_all(outgoing)
            except TimeoutError:
                raise PollerError(
                    f"Kafka did not commit a page of {stream.model} facts within "
                    f"{self.options.publish_timeout:.0f}s; the cursor was not moved"
                ) from None
        # Only what Kafka has accepted counts as seen and moves the cursor.
        if cursor is not None:
            self.cursors[stream.model] = cursor
        for fact in facts:
            self._remember(fact)
        if facts:
            report.facts[stream.entity.name] += len(facts)
            FACTS_PUBLISHED.labels("odoo", stream.entity.name).inc(len(facts))
        # A page in Kafka is progress: a long backfill is not a stuck poller.
        self.health.succeeded()
        report.scanned += scanned
        if progress is not None:
            progress.advance(scanned)

    def _cursor_record(self, stream: Stream, cursor: Cursor) -> Outgoing:
        return Outgoing(self.topics[ODOO_CURSORS], self._key(stream), cursor.encode(stream.model))

    async def _load(self, entity: Entity, ids: list[int]) -> list[Record]:
        records: list[Record] = []
        size = self.options.page_size
        for start in range(0, len(ids), size):
            records += await self.client.search_read(
                entity.model, [("id", "in", ids[start : start + size])], list(entity.fields),
                order="id asc", context=ALL_RECORDS,
            )  # fmt: skip
        return records

    async def _attach_lines(self, entity: Entity, records: list[Record]) -> None:
        lines = entity.lines
        assert lines is not None
        by_parent: dict[int, list[Record]] = {record["id"]: [] for record in records}
        parents = list(by_parent)
        size = self.options.page_size
        for start in range(0, len(parents), size):
            children = await self.client.search_read(
                lines.model, [(lines.link, "in", parents[start : start + size])],
                list(lines.fields), order="id asc", context=ALL_RECORDS,
            )  # fmt: skip
            for child in children:
                by_parent[many2one_id(child[lines.link]) or 0].append(child)
        for record in records:
            record[lines.payload_key] = by_parent[record["id"]]

    async def _parent_stamps(self, entity: Entity, records: list[Record]) -> dict[int, str]:
        """record id -> write_date of its parent (a variant's template), read whichever
        stream saw the record, so the fact's date does not depend on the stream."""
        parent = entity.parent
        if parent is None or not records:
            return {}
        links = {record["id"]: many2one_id(record.get(parent.link)) or 0 for record in records}
        rows = await self.client.search_read(
            parent.model, [("id", "in", sorted(set(links.values()) - {0}))], ["write_date"],
            context=ALL_RECORDS,
        )  # fmt: skip
        stamps = {row["id"]: row["write_date"] for row in rows if row.get("write_date")}
        return {rid: stamps[link] for rid, link in links.items() if link in stamps}

    def _new(self, fact: Fact) -> bool:
        return self._seen.get((fact.entity, int(fact.source_id))) != fact.event_id

    def _remember(self, fact: Fact) -> None:
        key = (fact.entity, int(fact.source_id))
        self._seen[key] = fact.event_id
        self._seen.move_to_end(key)
        while len(self._seen) > self.options.seen_limit:
            self._seen.popitem(last=False)


def _targets(stream: Stream, rows: list[Record]) -> list[int]:
    assert stream.link is not None
    ids: set[int] = set()
    for row in rows:
        value = row.get(stream.link)
        if isinstance(value, list) and value and not isinstance(value[-1], str):
            ids.update(int(i) for i in value)  # an x2many: a list of ids
        elif (target := many2one_id(value)) is not None:
            ids.add(target)
    return sorted(ids)


def observe(entity: Entity, record: Record, parent_stamp: str | None = None) -> Fact:
    """The fact for one record version. The version is the newest write_date of the
    record (and its lines) plus a hash of the whole payload, so a change that does not
    move write_date (a template price on 16) is still a new version, and re-reading an
    unchanged record gives the same event id. The fact is dated by the newest of those
    and its parent's write_date: when the template's price changed, not the variant."""
    lines = entity.lines
    stamps = [record.get("write_date")]
    if lines is not None:
        stamps += [line.get("write_date") for line in record.get(lines.payload_key, [])]
    own = max(stamp for stamp in stamps if isinstance(stamp, str))
    occurred = max(own, parent_stamp) if parent_stamp else own
    digest = hashlib.sha256(
        json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()[:20]
    key = record.get(entity.key_field)
    return Fact.observe(
        system=System.ODOO,
        entity=entity.name,
        source_id=record["id"],
        version=f"{own}|{digest}",
        payload=record,
        occurred_at=parse_wire(occurred),
        business_key=str(key) if key not in (None, False, "") else None,
    )
