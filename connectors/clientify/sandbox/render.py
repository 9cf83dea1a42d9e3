"""How stored records look on the wire: REST (detail and list item) and webhook `data`.

REST: `url` fields, references as URLs, timestamps in the account's zone, sub-items with
ids, custom fields with their `field_detail`. Webhooks (docs section 8): no `url`, no
`modified`, sub-items without ids, the company as a name, timestamps in UTC `Z`.
"""

from __future__ import annotations

from typing import Any

from connectors.clientify.sandbox import timefmt
from connectors.clientify.sandbox.records import CUSTOM_FIELDS
from connectors.clientify.sandbox.schema import SUB_LISTS
from connectors.clientify.sandbox.store import Doc, Store

OWNER = {"owner": "sandbox@clientify.local", "owner_id": 1, "owner_name": "Sandbox Owner"}
CONTENT_TYPES = {
    "contacts": "contacts | contact",
    "companies": "companies | company",
    "deals": "deals | deal",
    "products": "products | product",
}
FIELD_TYPE_DISPLAY = {1: "Text", 2: "Number", 3: "Dropdown", 4: "Date"}
ACCOUNT = {
    "language": "es",
    "country": "ES",
    "time_zone": timefmt.ACCOUNT_TIME_ZONE,
    "currency": "EUR",
    "date_format": "%d/%m/%Y",
    "company_name": "Sandbox SL",
    "email": OWNER["owner"],
}
# List items are a subset of the detail (docs section 3, WPF dump).
CONTACT_DETAIL_ONLY = ("addresses", "websites", "deals")


class Renderer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def url(self, base: str, kind: str, record_id: int) -> str:
        return f"{base}/v1/{kind}/{record_id}/"

    # -------------------------------------------------------------- REST

    def rest(self, kind: str, doc: Doc, base: str, *, listed: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"url": self.url(base, kind, doc["id"]), "id": doc["id"]}
        if kind == "contacts":
            body |= self._contact(doc, base)
            if listed:
                for name in CONTACT_DETAIL_ONLY:
                    body.pop(name, None)
        elif kind == "companies":
            body |= {**OWNER, **_fields(doc, exclude=("id", "created", "modified"))}
        elif kind == "products":
            body |= {"owner": OWNER["owner"], **_fields(doc, exclude=("id", "created", "modified"))}
        elif kind == "orders":
            body |= self._order(doc, base)
        if kind in ("contacts", "companies", "products"):
            body["custom_fields"] = self._custom_field_values(kind, doc)
        body["created"] = timefmt.rest(doc["created"])
        body["modified"] = timefmt.rest(doc["modified"])
        return body

    def _contact(self, doc: Doc, base: str) -> dict[str, Any]:
        company = self.store.get("companies", doc.get("company_id") or 0)
        return {
            **OWNER,
            **_fields(doc, exclude=("id", "created", "modified", "company_id", "channel")),
            "company": None if company is None else self.url(base, "companies", company["id"]),
            "company_name": None if company is None else company["name"],
            "company_details": None
            if company is None
            else {"id": company["id"], "name": company["name"]},
            "picture_url": None,
            "last_contact": None,
            "channel": doc.get("channel"),
            "deals": [],
            "integrations": [],
        }

    def _order(self, doc: Doc, base: str) -> dict[str, Any]:
        total = sum(float(item["price"]) * float(item["quantity"]) for item in doc["items"])
        return {
            **_fields(doc, exclude=("id", "created", "modified", "contact_id")),
            "contact": self.url(base, "contacts", doc["contact_id"]),
            "amount": f"{total:.2f}",
        }

    def _custom_field_values(self, kind: str, doc: Doc) -> list[dict[str, Any]]:
        definitions = {
            d["name"]: d for d in self.store.all(CUSTOM_FIELDS) if d["object_type"] == kind
        }
        values = []
        for value in doc.get("custom_fields", ()):
            definition = definitions.get(value["field"])
            detail = None
            if definition is not None:
                detail = {
                    "id": definition["id"],
                    "field_type": definition["field_type"],
                    "dropdown_choices": definition["dropdown_choices"],
                }
            values.append({**value, "field_detail": detail})
        return values

    def custom_field(self, doc: Doc, base: str) -> dict[str, Any]:
        return {
            "url": self.url(base, CUSTOM_FIELDS, doc["id"]),
            "id": doc["id"],
            "content_type": CONTENT_TYPES[doc["object_type"]],
            "name": doc["name"],
            "field_type": doc["field_type"],
            "field_type_display": FIELD_TYPE_DISPLAY.get(doc["field_type"], "Text"),
            "dropdown_choices": doc["dropdown_choices"],
            "visible": doc["visible"],
        }

    # -------------------------------------------------------------- webhooks

    def webhook(self, kind: str, doc: Doc) -> dict[str, Any]:
        """The `data` of a `<entity>.saved|deleted` hook, shaped like SRM's captures."""
        data: dict[str, Any] = {"id": doc["id"]}
        for name, value in doc.items():
            if name in ("id", "modified", "company_id", "channel"):
                continue
            if name in SUB_LISTS:
                data[name] = [{k: v for k, v in item.items() if k != "id"} for item in value]
            elif name == "created":
                data[name] = timefmt.webhook(value)
            else:
                data[name] = "" if value is None else value
        data["owner"] = OWNER["owner"]
        if kind == "contacts":
            company = self.store.get("companies", doc.get("company_id") or 0)
            data["company"] = "" if company is None else company["name"]
            data["deals"] = []
            data["related_tasks"] = []
        return data


def _fields(doc: Doc, exclude: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in doc.items() if name not in exclude}
