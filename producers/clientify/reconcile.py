"""The reconciliation poller: what webhooks missed, found by listing Clientify.

Clientify never retries a webhook, so each pass lists the records with
`modified[gt]=<cursor - overlap>` and emits a fact for every version not emitted before.
The event ids are the same as the webhook receiver's (content-derived, see `facts`), so
a version both paths saw is one fact downstream. Without a cursor the pass is the
initial full sync. Contacts are fetched one by one because list items lack their
addresses and websites (docs section 3); companies and products come whole in lists.

Facts are published (acks=all) before the cursor that covers them, so a crash between
the two repeats work, never skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connectors.clientify import ClientifyClient, ClientifyNotFound, Record
from connectors.clientify.client import Records
from connectors.kafka.publisher import Outgoing, Publisher
from producers.clientify.cursors import Cursor, load_cursors
from producers.clientify.facts import ENTITIES, SOURCE_OF, to_fact, version_of
from producers.metrics import FACTS_PUBLISHED, POLLS
from schemas.health import ServiceHealth, iso
from schemas.topics import CLIENTIFY_CURSORS, Topics

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=2)
PUBLISH_BATCH = 200
DETAIL_CONCURRENCY = 10
# (entity, records done, total or None) after each page, for progress bars.
Progress = Callable[[str, int, int | None], None]


@dataclass
class PassReport:
    listed: dict[str, int] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)


class Reconciler:
    def __init__(
        self,
        client: ClientifyClient,
        publisher: Publisher,
        topics: Topics,
        bootstrap: str,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        progress: Progress | None = None,
        health: ServiceHealth | None = None,
    ) -> None:
        self.client = client
        self.publisher = publisher
        self.topics = topics
        self.bootstrap = bootstrap
        self.overlap = overlap
        self.progress = progress
        self.health = health or ServiceHealth("reconciler")
        self.cursors: dict[str, Cursor] | None = None

    def _listing(self, entity: str) -> Records:
        return {
            "contact": self.client.contacts,
            "company": self.client.companies,
            "product": self.client.products,
        }[entity]

    async def run_once(self) -> PassReport:
        if self.cursors is None:
            self.cursors = await load_cursors(self.bootstrap, self.topics[CLIENTIFY_CURSORS])
        report = PassReport()
        for entity in ENTITIES:
            listed, emitted, cursor = await self._pass(entity, self.cursors.get(entity))
            if cursor is not None:
                self.cursors[entity] = cursor
            report.listed[entity] = listed
            report.emitted[entity] = emitted
        POLLS.labels("clientify", "ok").inc()
        self.health.succeeded(last_pass=iso(time.time()), emitted=report.emitted)
        return report

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            try:
                report = await self.run_once()
                log.info("reconciliation pass: emitted %s", report.emitted)
            except Exception as exc:
                POLLS.labels("clientify", "failed").inc()
                self.health.failed(exc)
                log.exception("reconciliation pass failed; retrying in %.0fs", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _records(
        self, entity: str, listing: Records, filters: dict[str, str | int | datetime]
    ) -> AsyncIterator[Record]:
        """The listed records, contacts completed by their detail (fetched concurrently,
        so the client's pace, not the round trip, bounds the pass)."""
        chunk: list[Record] = []
        async for item in listing.list(filters):
            chunk.append(item)
            if len(chunk) == DETAIL_CONCURRENCY:
                for record in await self._complete(entity, listing, chunk):
                    yield record
                chunk = []
        for record in await self._complete(entity, listing, chunk):
            yield record

    async def _complete(self, entity: str, listing: Records, items: list[Record]) -> list[Record]:
        if entity != "contact":
            return items
        details = await asyncio.gather(*(_detail(listing, item["id"]) for item in items))
        return [detail for detail in details if detail is not None]

    async def _pass(self, entity: str, cursor: Cursor | None) -> tuple[int, int, Cursor | None]:
        listing = self._listing(entity)
        filters: dict[str, str | int | datetime] = {"ordering": "modified"}
        if cursor is not None:
            filters["modified[gt]"] = cursor.modified_upto - self.overlap
        total = None
        if self.progress is not None:
            total = (await listing.page(filters, page_size=1)).count
            self.progress(entity, 0, total)
        seen = dict(cursor.seen) if cursor else {}
        upto = cursor.modified_upto if cursor else None
        pending: list[Outgoing] = []
        versions: dict[str, tuple[str, datetime]] = {}
        listed = emitted = 0
        async for record in self._records(entity, listing, filters):
            listed += 1
            fact = to_fact(entity, record)
            version = version_of(entity, record)
            versions[fact.source_id] = (version, fact.occurred_at)
            upto = fact.occurred_at if upto is None else max(upto, fact.occurred_at)
            if seen.get(fact.source_id) != version:
                pending.append(Outgoing(self.topics[SOURCE_OF[entity]], fact.source_id, fact))
                emitted += 1
            if len(pending) >= PUBLISH_BATCH:
                await self._publish(entity, pending)
                pending = []
            if self.progress is not None:
                self.progress(entity, listed, total)
        if pending:
            await self._publish(entity, pending)
        if upto is None:
            return listed, emitted, None  # nothing in Clientify yet: no cursor to move
        # Records not listed now are older than the old window, so older than the new one.
        window_start = upto - self.overlap
        kept = {
            source_id: version for source_id, (version, at) in versions.items() if at > window_start
        }
        new_cursor = Cursor(entity=entity, modified_upto=upto, seen=kept)
        stored = Outgoing(self.topics[CLIENTIFY_CURSORS], entity, new_cursor.encode())
        await self.publisher.publish(stored)
        return listed, emitted, new_cursor

    async def _publish(self, entity: str, facts: list[Outgoing]) -> None:
        await self.publisher.publish_all(facts)
        FACTS_PUBLISHED.labels("clientify", entity).inc(len(facts))
        # A batch in Kafka is progress: a long first pass is not a stuck reconciler.
        self.health.succeeded()


async def _detail(listing: Records, record_id: int) -> Record | None:
    try:
        return await listing.get(record_id)
    except ClientifyNotFound:
        return None  # deleted since it was listed; deletes are not synced
