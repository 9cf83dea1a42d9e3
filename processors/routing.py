"""The route step: which records a fact is about (flows, business keys), and the
lookups orders need.

A fact is one raw record; it may feed several flows (a company partner is a Clientify
company *and* a contact) or none (a draft order). Each (flow, business key) pair is a
*route*: everything about one route is processed in order in one partition, so the
processors re-key facts by it. A record that belongs to a flow but has no usable key
becomes a `Skip` with its reason.

Orders need two things their fact does not carry: the tax id of the customer's
commercial entity (the Clientify contact the order hangs off) and each line product's
barcode and internal reference (the Clientify item SKU). Both come from lookups kept
from partner and product facts; an order waits until its customer and products are known.
Partners get `is_customer`: a current customer has `customer_rank > 0` (only with the
Invoicing app) or at least one confirmed order (from the `customers` lookup).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from schemas.envelope import Fact, Routed, System
from schemas.keys import route_key
from schemas.mapping import Direction, MappingFile
from schemas.mapping.mapper import FlowMapper
from schemas.mapping.transforms import TransformError
from schemas.odoo_values import many2one_id

Table = MutableMapping[str, Any]
# The route step's tables, by name (Faust's table names, so also their changelogs'). The
# lookups are global: any worker may route an order.
LOOKUP_TABLES = ("odoo_partners", "odoo_products", "waiting_orders", "odoo_customers")
FACT = "fact"  # in a partner's lookup entry: its last fact

# Source entity -> the flows it may feed, per system.
FLOWS_OF = {
    (System.ODOO, "partner"): ("company", "contact"),
    (System.ODOO, "product"): ("product",),
    (System.ODOO, "sale_order"): ("order",),
    (System.CLIENTIFY, "company"): ("company",),
    (System.CLIENTIFY, "contact"): ("contact",),
    (System.CLIENTIFY, "product"): ("product",),
}
TOWARDS = {System.ODOO: Direction.ODOO_TO_CLIENTIFY, System.CLIENTIFY: Direction.CLIENTIFY_TO_ODOO}


@dataclass(frozen=True)
class Route:
    flow: str
    key: str
    fact: Fact
    payload: dict[str, Any]  # the raw record, plus what the lookups added

    @property
    def route_key(self) -> str:
        return route_key(self.flow, self.key)


@dataclass(frozen=True)
class Unroutable:
    """The fact belongs to `flow` but cannot be synced; `reason` says why."""

    flow: str | None
    reason: str


@dataclass(frozen=True)
class Waiting:
    """An order whose customer or a line's product is not known yet: retried when that
    record's fact comes (`on` is e.g. `partner:7` or `product:3`)."""

    on: str


class Router:
    def __init__(self, mapping: MappingFile) -> None:
        self.mappers: dict[str, FlowMapper] = {
            name: FlowMapper(flow, mapping.order_status) for name, flow in mapping.flows.items()
        }

    def partner_entry(self, payload: dict[str, Any]) -> dict[str, Any]:
        """What orders need to know of a partner: its key as a Clientify contact (the
        order hangs off that contact) and its commercial entity."""
        flow = self.mappers.get("contact") or self.mappers.get("company")
        return {
            "key": None if flow is None else flow.odoo_key(payload),
            "commercial": many2one_id(payload.get("commercial_partner_id")) or payload.get("id"),
        }

    def routes(
        self,
        fact: Fact,
        partners: Mapping[str, dict[str, Any]],
        products: Mapping[str, dict[str, Any]],
        customers: Mapping[str, Any],
    ) -> list[Route | Unroutable | Waiting]:
        """Routes for `fact`; `partners`, `products` and `customers` (partners with a
        confirmed order) are the Odoo lookups by id."""
        flows = FLOWS_OF.get((fact.system, fact.entity))
        if flows is None:
            return [Unroutable(None, f"no flow reads {fact.system.value} {fact.entity} records")]
        out: list[Route | Unroutable | Waiting] = []
        for name in flows:
            mapper = self.mappers.get(name)
            if mapper is None or not mapper.flow.fields_towards(TOWARDS[fact.system]):
                continue  # flow removed from the mapping or switched off this way
            payload = fact.payload
            if (fact.system, fact.entity) == (System.ODOO, "partner"):
                payload = {**payload, "is_customer": _is_customer(payload, customers)}
            if fact.system is System.ODOO and not mapper.selects(payload):
                continue  # not this flow's records (a person for `company`, a draft order)
            if name == "order":
                enriched = _enrich_order(payload, partners, products)
                if not isinstance(enriched, dict):
                    out.append(enriched)
                    continue
                payload = enriched
            key = (
                mapper.odoo_key(payload)
                if fact.system is System.ODOO
                else mapper.clientify_key(payload)
            )
            if key is None:
                field = (
                    mapper.flow.key.odoo_fields
                    if fact.system is System.ODOO
                    else mapper.flow.key.clientify
                )
                out.append(
                    Unroutable(
                        name,
                        f"{fact.system.value} {fact.entity} {fact.source_id} has no {field} "
                        f"(the business key of the {name} flow): not synced. Fill it in to "
                        "sync it.",
                    )
                )
                continue
            try:
                # Read now, so a value the mapping cannot read is this record's skip
                # rather than an error in the decide step.
                if fact.system is System.ODOO:
                    mapper.from_odoo(payload)
                else:
                    mapper.from_clientify(payload)
            except TransformError as exc:
                problem = f"{fact.system.value} {fact.entity} {fact.source_id}: {exc}"
                out.append(Unroutable(name, f"{problem}: not synced. Correct it to sync it."))
                continue
            out.append(Route(name, key, fact, payload))
        return out


def _is_customer(partner: dict[str, Any], customers: Mapping[str, Any]) -> bool:
    rank = partner.get("customer_rank")
    has_rank = isinstance(rank, int | float) and not isinstance(rank, bool) and rank > 0
    return has_rank or str(partner.get("id")) in customers


def product_entry(payload: dict[str, Any]) -> dict[str, Any]:
    return {"barcode": payload.get("barcode"), "default_code": payload.get("default_code")}


def _enrich_order(
    order: dict[str, Any],
    partners: Mapping[str, dict[str, Any]],
    products: Mapping[str, dict[str, Any]],
) -> dict[str, Any] | Waiting | Unroutable:
    partner_id = many2one_id(order.get("partner_id"))
    if partner_id is None:
        return Unroutable("order", f"order {order.get('name')} has no customer: not synced")
    partner = partners.get(str(partner_id))
    if partner is None:
        return Waiting(f"partner:{partner_id}")
    # The order hangs off its customer's commercial entity (a person's company): wait
    # for it too, rather than judge the order by the person alone.
    commercial_id = partner.get("commercial") or partner_id
    commercial = partner if commercial_id == partner_id else partners.get(str(commercial_id))
    if commercial is None:
        return Waiting(f"partner:{commercial_id}")
    for line in _lines(order):
        product_id = many2one_id(line.get("product_id"))
        if product_id is not None and str(product_id) not in products:
            return Waiting(f"product:{product_id}")
    customer_key = commercial.get("key") or partner.get("key")
    if not customer_key:
        return Unroutable(
            "order",
            f"order {order.get('name')}: its customer (partner {partner_id}) has no tax id "
            "(the contact flow's key), so it has no Clientify contact to hang off: not "
            "synced. Fill in the customer's tax id to sync it.",
        )
    lines = [
        {**line, **products.get(str(many2one_id(line.get("product_id"))), {})}
        for line in _lines(order)
    ]
    return {**order, "partner_key": customer_key, "customer_id": commercial_id, "lines": lines}


def _lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's lines; an order whose `lines` is not a list (False) has none."""
    lines = order.get("lines")
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


@dataclass
class Unsynced:
    """A fact of `flow` that cannot be synced, with the reason (published as a skip)."""

    fact: Fact
    flow: str | None
    reason: str


@dataclass
class RouteStep:
    router: Router
    # Odoo partner id -> what orders need of it, and under FACT its last fact, to re-route
    # it when it becomes a customer. One table, so a partner fact costs one write.
    partners: Table
    products: Table  # Odoo product id -> barcode and internal reference
    waiting: Table  # "partner:N" / "product:N" -> orders parked until that record comes
    # Partners with a confirmed order are current customers (Clientify status `client`).
    customers: Table

    @classmethod
    def over(cls, router: Router, tables: Mapping[str, Table]) -> RouteStep:
        """The step over `tables`, by the names in `LOOKUP_TABLES`."""
        partners, products, waiting, customers = (tables[name] for name in LOOKUP_TABLES)
        return cls(router, partners, products, waiting, customers)

    @classmethod
    def in_memory(cls, router: Router) -> RouteStep:
        """The step over fresh plain dicts."""
        return cls.over(router, {name: {} for name in LOOKUP_TABLES})

    def on_fact(self, fact: Fact) -> list[Routed | Unsynced]:
        # Lookups first: the orders this record releases go out before its own routes.
        return self._remember(fact) + self._route(fact)

    def _route(self, fact: Fact) -> list[Routed | Unsynced]:
        out: list[Routed | Unsynced] = []
        for outcome in self.router.routes(fact, self.partners, self.products, self.customers):
            if isinstance(outcome, Route):
                out.append(Routed(flow=outcome.flow, key=outcome.key,
                                  payload=outcome.payload, fact=fact))  # fmt: skip
                if outcome.flow == "order":
                    out += self._mark_customer(str(outcome.payload["customer_id"]))
            elif isinstance(outcome, Waiting):
                parked = self.waiting.get(outcome.on) or {}
                parked[fact.source_id] = fact.model_dump(mode="json")
                self.waiting[outcome.on] = parked
            elif isinstance(outcome, Unroutable):
                out.append(Unsynced(fact, outcome.flow, outcome.reason))
        return out

    def _mark_customer(self, partner_id: str) -> list[Routed | Unsynced]:
        if partner_id in self.customers:
            return []
        self.customers[partner_id] = True
        last = (self.partners.get(partner_id) or {}).get(FACT)
        return self._route(Fact.model_validate(last)) if last is not None else []

    def _remember(self, fact: Fact) -> list[Routed | Unsynced]:
        """Keep the lookups; route the orders that waited for this record."""
        if fact.system is not System.ODOO:
            return []
        if fact.entity == "product":
            self.products[fact.source_id] = product_entry(fact.payload)
        elif fact.entity == "partner":
            entry = self.router.partner_entry(fact.payload)
            self.partners[fact.source_id] = {**entry, FACT: fact.model_dump(mode="json")}
        else:
            return []
        parked = self.waiting.pop(f"{fact.entity}:{fact.source_id}", None)
        out: list[Routed | Unsynced] = []
        for order in (parked or {}).values():
            out += self._route(Fact.model_validate(order))
        return out
