"""The sandbox's write rules: what Clientify does when a record is created or changed.

Every change goes through here, so every save (API, admin, seed) is stamped, stored and
reported to `on_change`, which is how webhooks see API saves too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from connectors.clientify.sandbox import schema, timefmt
from connectors.clientify.sandbox.fields import Field, Invalid, validate
from connectors.clientify.sandbox.store import Doc, Store
from schemas.keys import normalise_tax_id

WRITABLE: dict[str, dict[str, Field]] = {
    "contacts": schema.CONTACT,
    "companies": schema.COMPANY,
    "products": schema.PRODUCT,
}
CUSTOM_FIELDS = "custom-fields"
ORDERS = "orders"
CONTACT_URL = re.compile(r"/v1/contacts/(\d+)/?$")

ChangeListener = Callable[[str, str, Doc], None]  # (kind, "saved" | "deleted", doc)


class Records:
    def __init__(
        self,
        store: Store,
        on_change: ChangeListener,
        clock: Callable[[], datetime] = timefmt.now,
    ) -> None:
        self.store = store
        self._on_change = on_change
        self._clock = clock
        self._announce = True

    @contextlib.contextmanager
    def unannounced(self) -> Iterator[None]:
        """Changes made inside are not reported (seeding is set-up, not a user's save)."""
        self._announce = False
        try:
            yield
        finally:
            self._announce = True

    # ------------------------------------------------------------ contacts etc.

    def create(self, kind: str, data: Any, *, channel: str = "integrations-api") -> Doc:
        """POST: always a new record (Clientify does not de-duplicate contacts)."""
        fields = validate(WRITABLE[kind], data, partial=False)
        stamp = timefmt.stored(self._clock())
        doc: Doc = {"id": self.store.next_id(kind), "created": stamp, "modified": stamp}
        if kind == "contacts":
            doc["channel"] = channel
            _fold_singular(fields)
        self._apply(kind, doc, fields)
        return self._save(kind, doc)

    def update(self, kind: str, record_id: int, data: Any) -> Doc | None:
        """PUT/PATCH: a partial update, only the given fields change."""
        doc = self.store.get(kind, record_id)
        if doc is None:
            return None
        fields = validate(WRITABLE[kind], data, partial=True)
        if kind == "contacts":
            _fold_singular(fields, existing=doc)
        doc = {**doc, "modified": timefmt.stored(self._clock())}
        self._apply(kind, doc, fields)
        return self._save(kind, doc)

    def delete(self, kind: str, record_id: int) -> Doc | None:
        doc = self.store.delete(kind, record_id)
        if doc is not None and self._announce:
            self._on_change(kind, "deleted", doc)
        return doc

    def _apply(self, kind: str, doc: Doc, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name in schema.SUB_LISTS:
                doc[name] = [{"id": self.store.next_id("subitem"), **item} for item in value]
            elif name == "company":
                doc["company_id"] = self._company_named(value)
            elif name == "custom_fields":
                self._define_custom_fields(kind, value)
                doc[name] = value
            else:
                doc[name] = value

    def _company_named(self, name: str | None) -> int | None:
        """Clientify links a contact to the company of that name, creating it if needed."""
        if not name or not name.strip():
            return None
        wanted = name.strip().casefold()
        for company in self.store.all("companies"):
            if str(company.get("name", "")).strip().casefold() == wanted:
                return int(company["id"])
        return int(self.create("companies", {"name": name.strip()})["id"])

    def _save(self, kind: str, doc: Doc) -> Doc:
        self.store.put(kind, doc)
        if self._announce:
            self._on_change(kind, "saved", doc)
        return doc

    # ------------------------------------------------------------ custom fields

    def _define_custom_fields(self, object_type: str, values: list[dict[str, Any]]) -> None:
        # Clientify needs fields defined in its UI first; the sandbox defines unknown
        # names on first use (as text fields) so demos need no set-up step.
        for value in values:
            self.define_custom_field(object_type, value["field"])

    def define_custom_field(self, object_type: str, name: str) -> Doc:
        for existing in self.custom_fields(object_type):
            if existing["name"] == name:
                return existing
        doc: Doc = {
            "id": self.store.next_id(CUSTOM_FIELDS),
            "object_type": object_type,
            "name": name,
            "field_type": 1,
            "dropdown_choices": [],
            "visible": True,
        }
        self.store.put(CUSTOM_FIELDS, doc)
        return doc

    def custom_fields(self, object_type: str | None) -> list[Doc]:
        return [
            doc
            for doc in self.store.all(CUSTOM_FIELDS)
            if object_type is None or doc["object_type"] == object_type
        ]

    # ------------------------------------------------------------ orders

    def upsert_order(self, data: Any) -> tuple[Doc, bool]:
        """POST /orders/: one order per (ecommerce, order_id); returns (order, created).

        Whether Clientify upserts or duplicates is unknown (docs section 6); the sandbox
        upserts, the safer reading for a sync that may send an order twice.
        """
        fields = validate(schema.ORDER, data, partial=False)
        fields["contact_id"] = self._order_contact(fields.pop("contact"))
        stamp = timefmt.stored(self._clock())
        for order in self.store.all(ORDERS):
            if (order["ecommerce"], order["order_id"]) == (fields["ecommerce"], fields["order_id"]):
                updated = {**order, **fields, "modified": stamp}
                self.store.put(ORDERS, updated)
                return updated, False
        doc = {"id": self.store.next_id(ORDERS), **fields, "created": stamp, "modified": stamp}
        self.store.put(ORDERS, doc)
        return doc, True

    def _order_contact(self, value: Any) -> int:
        if isinstance(value, str):
            match = CONTACT_URL.search(value)
            if match is None:
                raise Invalid({"contact": ["Invalid hyperlink - No URL match."]})
            if self.store.get("contacts", int(match.group(1))) is None:
                raise Invalid({"contact": ["Invalid hyperlink - Object does not exist."]})
            return int(match.group(1))
        if not isinstance(value, dict):
            raise Invalid({"contact": ["Expected a contact URL or the contact's fields."]})
        try:
            fields = validate(schema.ORDER_CONTACT, value, partial=False)
            existing = self._matching_contact(fields)
            if existing is not None:
                return existing
            return int(self.create("contacts", {k: v for k, v in fields.items() if v})["id"])
        except Invalid as exc:
            raise Invalid({"contact": exc.detail}) from None

    def _matching_contact(self, fields: dict[str, Any]) -> int | None:
        tax_id = normalise_tax_id(fields.get("taxpayer_identification_number"))
        email = (fields.get("email") or "").casefold()
        for contact in self.store.all("contacts"):
            if tax_id and normalise_tax_id(contact.get("taxpayer_identification_number")) == tax_id:
                return int(contact["id"])
            emails = {str(item["email"]).casefold() for item in contact.get("emails", ())}
            if email and email in emails:
                return int(contact["id"])
        return None


def _fold_singular(fields: dict[str, Any], existing: Doc | None = None) -> None:
    """A singular `email`/`phone` becomes `emails[{type 4}]`/`phones[{type 1}]`."""
    for single, plural, key, kind in (
        ("email", "emails", "email", schema.MAIN_EMAIL),
        ("phone", "phones", "phone", schema.MAIN_PHONE),
    ):
        value = fields.pop(single, None)
        if not value:
            continue
        items = fields.get(plural)
        if items is None:
            # Keep what the contact has (without ids: they are re-issued on save).
            items = [
                {k: v for k, v in item.items() if k != "id"}
                for item in (existing or {}).get(plural, ())
            ]
        fields[plural] = [{key: value, "type": kind}, *items]
