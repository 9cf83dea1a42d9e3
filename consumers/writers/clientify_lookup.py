"""Finding Clientify records by link or business key, for the writer's targets.

Both the Clientify target and its order writer ask the same questions of Clientify:
is there a record with this key (the index answers without a request when it can),
which one, and what does the index hold for it (a company's name, a contact's url).
They share one `ClientifyLookup`, which holds the client, the mapping's mappers and
readers towards Clientify, and the index.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.clientify import ClientifyClient
from connectors.clientify.client import Records
from connectors.clientify.errors import ClientifyError, ClientifyNotFound
from consumers.writers.clientify_index import DEFAULT_REFRESH_EVERY, UNKNOWN, ClientifyIndex
from consumers.writers.plan import mappers_towards
from schemas import Command
from schemas.mapping import Direction, KeyNormalizer, MappingFile

log = logging.getLogger(__name__)
Record = dict[str, Any]
# What the index keeps of a record, per resource: what its dependents are written with.
# The index is kept per flow, as two flows on one resource may key it differently.
VALUE_FIELDS = {"companies": "name", "contacts": "url"}


class ClientifyLookup:
    def __init__(
        self,
        client: ClientifyClient,
        mapping: MappingFile,
        *,
        index_refresh: float | None = DEFAULT_REFRESH_EVERY,
    ) -> None:
        """`index_refresh`: how old the index of Clientify's keys may get (seconds)
        before a create trusts it; None: no index, every create looks its key up."""
        self.client = client
        self.mappers, self.readers = mappers_towards(mapping, Direction.ODOO_TO_CLIENTIFY)
        self.index: ClientifyIndex | None = None
        if index_refresh is not None:
            self.index = ClientifyIndex(index_refresh)
            for entity, mapper in self.mappers.items():
                resource = mapper.flow.clientify.resource
                self.index.add_flow(entity, getattr(client, resource), mapper.flow.key,
                                    VALUE_FIELDS.get(resource))  # fmt: skip

    def reassigned(self) -> None:
        if self.index is not None:
            self.index.reassigned()

    def records(self, entity: str) -> Records:
        resource = self.mappers[entity].flow.clientify.resource
        listing = getattr(self.client, resource)
        if not isinstance(listing, Records):
            raise ClientifyError(f"Clientify {resource} cannot be looked up by id")
        return listing

    async def absent(self, command: Command) -> bool:
        """Whether the command is a create that needs no lookup: no link, and the
        index says no record has its key."""
        if command.target_id is not None:
            return False
        return await self.held(command.entity, command.business_key) is None

    async def held(self, entity: str, key: str) -> str | None:
        """What the index holds for `entity`'s `key`: None when no record has it, else
        its value (a name, a url), `UNKNOWN` when only a lookup can tell (also with no
        index, or no such flow in the mapping)."""
        if self.index is None or entity not in self.mappers:
            return UNKNOWN
        return await self.index.value(entity, key)

    def hold(self, command: Command, record: Record | None = None) -> None:
        """Tell the index the command's record exists: before its create is sent (an
        ambiguous failure is then looked up on retry), and as written."""
        if self.index is not None:
            self.index.hold(command.entity, command.business_key, record)

    def forget_value(self, entity: str, key: str) -> None:
        if self.index is not None:
            self.index.forget_value(entity, key)

    async def find(self, entity: str, key: str, target_id: str | None) -> Record | None:
        """The full record with business key `key`, by link first, else by key."""
        records = self.records(entity)
        if target_id is not None:
            try:
                record = await records.get(target_id)
            except ClientifyNotFound:
                record = None
            if record is not None and self.key_of(entity, record) == key:
                return record
        flow = self.mappers[entity].flow
        if flow.key.normalize is KeyNormalizer.TAX_ID:
            found = await self.client.find_by_tax_id(records, key)
        elif flow.clientify.resource == "products":
            found = await self.client.find_products_by_sku(key)
        else:
            found = [
                r async for r in records.list({flow.key.clientify: key})
                if self.key_of(entity, r) == key
            ]  # fmt: skip
        if not found:
            return None
        if len(found) > 1:
            log.warning("%d Clientify %s share the key: the oldest is used", len(found), entity)
        oldest = min(found, key=lambda r: int(r["id"]))
        # List items lack some fields (a contact's addresses): read the whole record.
        return await records.get(oldest["id"])

    def key_of(self, entity: str, record: Record) -> str | None:
        return self.mappers[entity].clientify_key(record)
