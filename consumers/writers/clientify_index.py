"""What the Clientify writer knows is in Clientify, so that a create can skip its lookup.

Without it every create first asks Clientify whether the key exists: two requests for a
tax id (the exact text, then its last digits), one for a SKU or an order id. In a
backfill nearly every answer is "no", and those requests were half of all sent.

The index lists each resource once, then before each use brings itself up to date with
the records modified since its last listing began, at most every `refresh_every`
seconds. So a key it does not hold did not exist in Clientify as of a listing at most
that old, and the writer creates without asking. A key it holds is looked up as before.

Listings page by id, so a record modified meanwhile keeps its place. "Since its last
listing began" is reckoned on Clientify's clock: the newest `modified` the listing saw,
less how long the listing took and `OVERLAP` (for stamps that commit out of order). A
delete while paging shifts the later records one place back, so one could be skipped:
a count that drops between pages makes the listing count for nothing (a first listing
is made again; until one holds still, every create is looked up).

It errs only towards "may exist", where the cost is a lookup: a key is added *before*
its create is sent, so a create that failed ambiguously is looked up when retried;
deleted records are never taken out. What it cannot see is a record that someone else
creates with the same key within the last `refresh_every` seconds; that race exists
without the index too (between a lookup and its create), only shorter. Another copy of
the writer may have owned a partition until just now: `reassigned` forces a refresh.

Keys are held as 64-bit hashes (a collision only costs a lookup) with their record's id,
and with what the writer needs of a record: a company's name (a company partner's
contact is linked by it) and a contact's url (an order hangs off it, made of its id). A
value is as fresh as the last refresh, like the key.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connectors.clientify.client import Listing, Page, timestamp
from connectors.clientify.client import Record as ClientifyRecord
from schemas.keys import normalise_key
from schemas.mapping import KeyNormalizer, KeySpec

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=2)
DEFAULT_REFRESH_EVERY = 2.0
SCAN_ATTEMPTS = 3
# A value telling nothing but "present": the writer looks the record up for more.
UNKNOWN = ""
NO_ID = 0  # held before its create was answered, or its value found wrong
SEVERAL = -1  # records sharing the key: the lookup picks among them, as without the index


@dataclass
class ResourceIndex:
    """One flow's keys in its resource, hashed, each with its record's id (what its url is made
    of), and how fresh they are. Names are kept only where wanted (`value_field`), as
    they cost far more memory than the rest (~0.1 KiB per key without them)."""

    listing: Listing
    key_field: str
    normalizer: KeyNormalizer
    value_field: str | None
    ids: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    complete: bool = False  # a first listing held still: keys not held are absent
    since: datetime | None = None  # what the next refresh lists from (Clientify's clock)
    listed_at: float | None = None  # monotonic start of the last listing, None: never

    def hold(self, record: ClientifyRecord) -> None:
        key = normalise_key(record.get(self.key_field), self.normalizer)
        if key is not None:
            self.put(key_hash(key), record)

    def hashed(self, key: str) -> int:
        """A business key as held: normalised as the lookups compare it, hashed."""
        return key_hash(normalise_key(key, self.normalizer) or key)

    def put(self, hashed: int, record: ClientifyRecord) -> None:
        record_id = int(record["id"])
        held = self.ids.get(hashed)
        if held is not None and held not in (NO_ID, record_id):
            self.ids[hashed] = SEVERAL
            self.names.pop(hashed, None)
            return
        self.ids[hashed] = record_id
        value = record.get(self.value_field) if self.value_field == "name" else None
        if isinstance(value, str):
            self.names[hashed] = value

    def value(self, hashed: int) -> str | None:
        record_id = self.ids.get(hashed)
        if record_id is None:
            return None if self.complete else UNKNOWN
        if record_id in (NO_ID, SEVERAL):
            return UNKNOWN
        if self.value_field == "url":
            # As Clientify spells it; a wrong one is refused and then looked up instead.
            return f"{self.listing.client.base_url}{self.listing.path}{record_id}/"
        return self.names.get(hashed, UNKNOWN)

    def forget(self, hashed: int) -> None:
        if hashed in self.ids:
            self.ids[hashed] = NO_ID
            self.names.pop(hashed, None)


class ClientifyIndex:
    def __init__(self, refresh_every: float = DEFAULT_REFRESH_EVERY) -> None:
        self.refresh_every = refresh_every
        self.flows: dict[str, ResourceIndex] = {}

    def add_flow(
        self, flow: str, listing: Listing, key: KeySpec, value_field: str | None = None
    ) -> None:
        self.flows[flow] = ResourceIndex(listing, key.clientify, key.normalize, value_field)

    async def value(self, flow: str, key: str) -> str | None:
        """The value held for `key`: None when no record had it at a listing at most
        `refresh_every` seconds old, `UNKNOWN` when only a lookup can tell."""
        index = self.flows[flow]
        hashed = index.hashed(key)
        if index.complete and hashed in index.ids and not index.value(hashed):
            # Held, and only a lookup can tell more: no listing changes that answer
            # (keys are never taken out), so none is made for it.
            return UNKNOWN
        await self._fresh(flow)
        return index.value(hashed)

    def hold(self, flow: str, key: str, record: ClientifyRecord | None = None) -> None:
        """Hold `key` as present: before its create is sent (`record` None) and with
        what the create or an update returned."""
        index = self.flows[flow]
        if record is None:
            index.ids.setdefault(index.hashed(key), NO_ID)
        else:
            index.forget(index.hashed(key))  # the create's own answer replaces it
            index.put(index.hashed(key), record)

    def forget_value(self, flow: str, key: str) -> None:
        """The value held for `key` turned out wrong (e.g. the contact was deleted):
        keep the key as present, so it is looked up."""
        index = self.flows[flow]
        index.forget(index.hashed(key))

    def reassigned(self) -> None:
        """Another writer may have created records until now: refresh before next use."""
        for index in self.flows.values():
            if index.listed_at is not None:
                index.listed_at = float("-inf")

    async def _fresh(self, flow: str) -> ResourceIndex:
        index = self.flows[flow]
        started = time.monotonic()
        if not index.complete:
            for _ in range(SCAN_ATTEMPTS):
                if await self._list(index, {}):
                    index.complete = True
                    break
                log.info("Clientify %s changed while listed: listing again", index.listing.path)
            log.info(
                "index of Clientify %s: %d keys, listed in %.1fs%s", index.listing.path,
                len(index.ids),
                time.monotonic() - started,
                "" if index.complete else " (still changing: creates look their key up)",
            )  # fmt: skip
            index.listed_at = started
        elif index.listed_at is None or started - index.listed_at >= self.refresh_every:
            since = {} if index.since is None else {"modified[gte]": index.since.isoformat()}
            await self._list(index, since)
            index.listed_at = started
        return index

    async def _list(self, index: ResourceIndex, filters: dict[str, str]) -> bool:
        """Hold every record listed; whether the listing held still (no count dropped
        between its pages), and only then move `since` on."""
        started = time.monotonic()
        counts: list[int] = []
        newest: datetime | None = None
        async for page in self._pages(index.listing, {**filters, "ordering": "id"}):
            counts.append(page.count)
            for record in page.results:
                index.hold(record)
                modified = timestamp(record.get("modified"))
                if modified is not None and (newest is None or modified > newest):
                    newest = modified
        if any(later < earlier for earlier, later in itertools.pairwise(counts)):
            return False
        if newest is not None:
            took = timedelta(seconds=time.monotonic() - started)
            began = newest - took - OVERLAP  # at or before the listing began, on its clock
            index.since = began if index.since is None else max(index.since, began)
        return True

    async def _pages(self, listing: Listing, filters: dict[str, str]) -> AsyncIterator[Page]:
        page = await listing.page(filters)
        yield page
        while page.next is not None:
            page = await listing.client.get_page(page.next, None)
            yield page


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
