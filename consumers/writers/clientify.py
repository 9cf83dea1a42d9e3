"""The Clientify writer: commands for companies, contacts and products (orders: below).

Per command: find the record by its linked id or by business key (the client's lookups
re-check the key exactly), read it, compare canonically (`plan`), then create it with
every field, or PUT only the fields to write. Clientify replaces a sub-list (`phones`,
`addresses`) as a whole on PUT, so the written entries are merged into the record's
existing ones: a new mobile keeps the main phone, a new city keeps the street.

A record the writer's index (`ClientifyIndex`) says is not in Clientify is created
without that lookup; the index also gives a company's name and a contact's url.

A company partner's contact is linked to its Clientify company (`company` = the
company's name on write, as Clientify links by name) and, having no name of its own in
the mapping, takes the company's: it waits for that company when it is not there yet.
While it waits, a retry asks only whether the company is there now (one or two
requests) instead of looking the contact up again too. A person's contact (it has a
name of its own) is linked to no company (docs/mapping.md §2), so its create asks
nothing about companies.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.clientify import ClientifyClient
from connectors.clientify.errors import (
    ClientifyAuthError,
    ClientifyError,
    ClientifyNotFound,
    ClientifyServerError,
    ClientifyThrottled,
)
from consumers.base.tracked import NotReady
from consumers.writers.clientify_index import DEFAULT_REFRESH_EVERY, ClientifyIndex
from consumers.writers.clientify_lookup import ClientifyLookup
from consumers.writers.clientify_orders import OrderWriter
from consumers.writers.plan import Plan, check_fields, plan
from schemas import Command, Result, System
from schemas.mapping import MappingFile, Transform
from schemas.mapping.mapper import Canonical, FlowMapper

log = logging.getLogger(__name__)
Record = dict[str, Any]
CLIENT_STATUS = "client"
AWAITING_KEPT = 10_000  # commands remembered as waiting for their company
COMPANY = "company"  # the flow a company partner's contact is linked to


class ClientifyTarget:
    system = System.CLIENTIFY

    def __init__(
        self,
        client: ClientifyClient,
        mapping: MappingFile,
        *,
        index_refresh: float | None = DEFAULT_REFRESH_EVERY,
    ) -> None:
        """`index_refresh`: see `ClientifyLookup`."""
        self.lookup = ClientifyLookup(client, mapping, index_refresh=index_refresh)
        self.orders = OrderWriter(self.lookup)
        # Command id -> the tax id of the company it waits for (see the module doc).
        self._awaiting_company: dict[str, str] = {}

    async def setup(self) -> list[str]:
        await self.lookup.client.check_key()
        return []

    def transient(self, exc: Exception) -> bool:
        return isinstance(exc, ClientifyServerError | ClientifyThrottled)

    def fatal(self, exc: Exception) -> bool:
        return isinstance(exc, ClientifyAuthError)

    def reassigned(self) -> None:
        self.lookup.reassigned()

    @property
    def index(self) -> ClientifyIndex | None:
        return self.lookup.index

    async def apply(self, command: Command) -> Result:
        mapper = self.lookup.mappers.get(command.entity)
        if mapper is None:
            raise ClientifyError(f"no flow {command.entity!r} in the mapping")
        check_fields(command, mapper)
        if mapper.flow.clientify.resource == "orders":
            return await self.orders.apply(command)
        awaited = self._awaiting_company.get(command.command_id)
        company = None if awaited is None else await self._company_named(command, awaited)
        self._awaiting_company.pop(command.command_id, None)
        record = None
        if not await self.lookup.absent(command):
            record = await self.lookup.find(command.entity, command.business_key, command.target_id)
        if record is None:
            return await self._create(command, company)
        plan_ = plan(command, self.current(command.entity, record))
        self._unrepresentable(command.entity, plan_)
        if plan_.write:
            payload = self._update_payload(command.entity, plan_.write, record)
            updated = await self.lookup.records(command.entity).update(record["id"], payload)
            self.lookup.hold(command, updated)
        return plan_.result(command, str(record["id"]))

    # -- reading

    async def read(self, entity: str, target_id: str) -> Canonical | None:
        try:
            record = await self.lookup.records(entity).get(target_id)
        except ClientifyNotFound:
            return None
        return self.current(entity, record)

    def current(self, entity: str, record: Record) -> Canonical:
        current = self.lookup.readers[entity].from_clientify(record)
        for field in self.lookup.readers[entity].flow.fields:
            if field.transform is Transform.CUSTOMER_STATUS and field.name in current:
                # Only `client` says "a current customer"; the lead stages mean "not yet".
                current[field.name] = (
                    CLIENT_STATUS if current[field.name] == CLIENT_STATUS else None
                )
        return current

    def _unrepresentable(self, entity: str, plan_: Plan) -> None:
        """Clientify has no status for "no longer a customer": the lead stage is left to
        the user, so that write is skipped with what Clientify holds."""
        for field in self.lookup.mappers[entity].flow.fields:
            customer = field.transform is Transform.CUSTOMER_STATUS
            if customer and field.name in plan_.write and plan_.write[field.name] is None:
                del plan_.write[field.name]
                plan_.skipped[field.name] = None
                plan_.found[field.name] = CLIENT_STATUS

    # -- writing

    async def _create(self, command: Command, company: str | None = None) -> Result:
        """Create the record; `company`: the name of the company a contact waited for,
        just looked up."""
        mapper = self.lookup.mappers[command.entity]
        fields = {
            name: value
            for name, value in command.fields.items()
            if not (value is None and _is_customer_status(mapper, name))
        }
        payload = mapper.to_clientify(fields, create=True)
        payload[mapper.flow.key.clientify] = command.business_key
        if mapper.flow.clientify.resource == "contacts":
            await self._link_company(command, payload, company)
        self.lookup.hold(command)
        created = await self.lookup.records(command.entity).create(payload)
        self.lookup.hold(command, created)
        log.info("created Clientify %s %s (id %s)", command.entity, command.business_key,
                 created.get("id"))  # fmt: skip
        return plan(command, None).result(command, str(created["id"]))

    async def _link_company(
        self, command: Command, payload: dict[str, Any], company: str | None
    ) -> None:
        if payload.get("first_name"):
            return  # a person's contact: no company of its own
        if company is None:
            company = await self._company_named(command, command.business_key)
        payload["company"] = payload["first_name"] = company

    async def _company_named(self, command: Command, key: str) -> str:
        """The name of the Clientify company with tax id `key`; `NotReady` while there is
        none, remembering that `command` waits for it."""
        held = await self.lookup.held(COMPANY, key)
        if held:
            return held  # its name as of the index's last listing
        client = self.lookup.client
        companies = [] if held is None else await client.find_by_tax_id(client.companies, key)
        if not companies:
            if len(self._awaiting_company) >= AWAITING_KEPT:  # dead-lettered ones linger
                del self._awaiting_company[next(iter(self._awaiting_company))]
            self._awaiting_company[command.command_id] = key
            raise NotReady(f"the Clientify company {key} (this contact's name)")
        return str(min(companies, key=lambda r: int(r["id"]))["name"])

    def _update_payload(self, entity: str, written: Canonical, record: Record) -> dict[str, Any]:
        """The PUT body: written fields, with sub-lists merged into the record's own."""
        mapper = self.lookup.mappers[entity]
        payload = mapper.to_clientify(written, record=record)
        # Each phone field owns the entries of its type, also when it is cleared (None
        # adds no entry, yet the old one must go).
        owned: dict[str, set[int | None]] = {}
        for field in mapper.flow.fields:
            if field.transform is Transform.PHONE and field.clientify and field.name in written:
                owned.setdefault(field.clientify, set()).add(field.phone_type)
        for name, value in payload.items():
            if not isinstance(value, list):
                continue
            existing = [
                {k: v for k, v in item.items() if k != "id"}
                for item in record.get(name) or []
                if isinstance(item, dict)
            ]
            if name in owned:
                kept = [item for item in existing if item.get("type") not in owned[name]]
                payload[name] = kept + value
            else:
                merged = existing + value[len(existing) :]
                for index, item in enumerate(value[: len(existing)]):
                    merged[index] = {**existing[index], **item}
                payload[name] = merged
        return payload


def _is_customer_status(mapper: FlowMapper, name: str) -> bool:
    return any(
        f.name == name and f.transform is Transform.CUSTOMER_STATUS for f in mapper.flow.fields
    )
