"""Orders to Clientify: created once per `order_id`, never updated.

Clientify's `/orders/` has GET and POST only. The writer looks the order up first
(unless the writer's index says no order has its id): if it exists (written before, or
by a run that crashed before its Result), a command's values are compared and reported
(`unchanged`, or `skipped` with what Clientify holds and a note that the API cannot
update an order), never posted again. A new order hangs off
its customer's contact, found by the business key in its `contact` field: when that
contact is not in Clientify yet the command waits (`NotReady`) for it. The index gives
that contact's url without a lookup; if Clientify says the contact is gone, the command
waits and looks it up instead.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.clientify.errors import ClientifyValidationError
from consumers.base.tracked import NotReady
from consumers.writers.clientify_lookup import ClientifyLookup
from consumers.writers.plan import plan
from schemas import Command, Result
from schemas.keys import normalise_sku
from schemas.mapping.mapper import Canonical
from schemas.mapping.transforms import read_clientify

CONTACT_FIELD = "contact"
NO_UPDATE = "Clientify's API has no order update: the order exists, changes are not written"


class OrderWriter:
    def __init__(self, lookup: ClientifyLookup) -> None:
        self.lookup = lookup

    async def apply(self, command: Command) -> Result:
        existing = None if await self.lookup.absent(command) else await self._find(command)
        if existing is not None:
            current = await self._current(command.entity, existing)
            plan_ = plan(command, current)
            # Nothing can be written: what differs is reported as skipped, with its value.
            for name, value in plan_.write.items():
                plan_.skipped[name] = value
                plan_.found[name] = current.get(name)
            note = NO_UPDATE if plan_.skipped else None
            plan_.write = {}
            return plan_.result(command, str(existing["id"]), note=note)
        mapper = self.lookup.mappers[command.entity]
        payload = mapper.to_clientify(command.fields, create=True)
        payload[mapper.flow.key.clientify] = command.business_key
        customer = command.fields.get(CONTACT_FIELD)
        indexed = False
        if customer is not None:
            payload[CONTACT_FIELD], indexed = await self._contact_url(str(customer))
        self.lookup.hold(command)
        try:
            created = await self.lookup.client.orders.create(payload)
        except ClientifyValidationError as exc:
            if not (indexed and isinstance(exc.errors, dict) and CONTACT_FIELD in exc.errors):
                raise
            # The contact the index knew was deleted since: look it up when retried.
            self.lookup.forget_value(CONTACT_FIELD, str(customer))
            raise NotReady(f"the Clientify contact {customer} (this order's customer: "
                           f"{'; '.join(exc.problems)})") from exc  # fmt: skip
        self.lookup.hold(command, created)
        return plan(command, None).result(command, str(created["id"]))

    async def _find(self, command: Command) -> dict[str, Any] | None:
        key_field = self.lookup.mappers[command.entity].flow.key.clientify
        async for order in self.lookup.client.orders.list({key_field: command.business_key}):
            if normalise_sku(str(order.get(key_field) or "")) == command.business_key:
                return order
        return None

    async def _contact_url(self, key: str) -> tuple[str, bool]:
        """The url of the contact with business key `key`, and whether it came from the
        index (as of its last listing) rather than a lookup."""
        held = await self.lookup.held(CONTACT_FIELD, key)
        if held:
            return held, True
        contact = None if held is None else await self.lookup.find(CONTACT_FIELD, key, None)
        if contact is None:
            raise NotReady(f"the Clientify contact {key} (this order's customer)")
        return str(contact["url"]), False

    async def _current(self, entity: str, order: dict[str, Any]) -> Canonical:
        """The order's canonical values: its contact as a business key, items as lines."""
        reader = self.lookup.readers[entity]
        current = reader.from_clientify(order)
        url = order.get(CONTACT_FIELD)
        if isinstance(url, str) and CONTACT_FIELD in current:
            contact_id = resource_id(url)
            contact = (
                await self.lookup.records(CONTACT_FIELD).get(contact_id) if contact_id else None
            )
            current[CONTACT_FIELD] = (
                None if contact is None else self.lookup.key_of(CONTACT_FIELD, contact)
            )
        lines = reader.flow.lines
        if lines is not None and isinstance(order.get(lines.clientify), list):
            current[lines.clientify] = [
                {
                    f.name: read_clientify(f, item.get(f.clientify))
                    for f in lines.fields
                    if f.clientify is not None and f.clientify in item
                }
                for item in order[lines.clientify]
            ]
        return current


def resource_id(url: str) -> str | None:
    """`https://api.clientify.net/v1/contacts/42/` -> "42"."""
    match = re.search(r"/(\d+)/?$", url)
    return match.group(1) if match else None
