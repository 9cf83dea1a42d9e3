"""The two steps of the processors, over any mutable mappings as their tables.

`RouteStep` keeps the Odoo lookups orders need and turns a fact into routed facts and
skips; `DecideStep` folds a routed fact or a result into a route's state and link and
returns what to publish. The Faust agents call them with their tables; `replay tables`
calls them with plain dicts to rebuild those tables from the log. One implementation,
so a rebuild computes exactly what the live worker did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from processors.decide import Link, Outcome, on_fact, on_requeue, on_result
from processors.outbox import Outbox
from processors.routing import Route, Router, Unroutable, Waiting, partner_entry, product_entry
from processors.sync_state import RecordState
from schemas.envelope import EnvelopeError, Fact, Requeue, Result, System, decode, encode

log = logging.getLogger(__name__)
Table = MutableMapping[str, Any]

# The tables of each step, by name (Faust's table names, so also their changelogs').
# The lookups are global (any worker may route an order); `states` is partitioned like
# `sync.routed`.
LOOKUP_TABLES = ("odoo_partners", "odoo_products", "waiting_orders", "odoo_customers")
ROUTE_TABLES = ("states",)
FACT = "fact"  # in a partner's lookup entry
LINK, OUTBOX = "link", "outbox"  # in a route's state, besides the RecordState


# How a routed fact's JSON starts: pydantic writes the fields in the order declared.
ROUTED = b'{"kind":"routed"'


class RoutedFact(BaseModel):
    """A fact re-keyed for one route, with what the lookups added to its payload."""

    kind: Literal["routed"] = "routed"
    flow: str
    key: str
    payload: dict[str, Any]
    fact: Fact

    @property
    def route_key(self) -> str:
        return Route(self.flow, self.key, self.fact, self.payload).route_key


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

    def on_fact(self, fact: Fact) -> list[RoutedFact | Unsynced]:
        # Lookups first: the orders this record releases go out before its own routes.
        return self._remember(fact) + self._route(fact)

    def _route(self, fact: Fact) -> list[RoutedFact | Unsynced]:
        out: list[RoutedFact | Unsynced] = []
        for outcome in self.router.routes(fact, self.partners, self.products, self.customers):
            if isinstance(outcome, Route):
                out.append(RoutedFact(flow=outcome.flow, key=outcome.key,
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

    def _mark_customer(self, partner_id: str) -> list[RoutedFact | Unsynced]:
        if partner_id in self.customers:
            return []
        self.customers[partner_id] = True
        last = (self.partners.get(partner_id) or {}).get(FACT)
        return self._route(Fact.model_validate(last)) if last is not None else []

    def _remember(self, fact: Fact) -> list[RoutedFact | Unsynced]:
        """Keep the lookups; route the orders that waited for this record."""
        if fact.system is not System.ODOO:
            return []
        if fact.entity == "product":
            self.products[fact.source_id] = product_entry(fact.payload)
        elif fact.entity == "partner":
            entry = partner_entry(fact.payload)
            self.partners[fact.source_id] = {**entry, FACT: fact.model_dump(mode="json")}
        else:
            return []
        parked = self.waiting.pop(f"{fact.entity}:{fact.source_id}", None)
        out: list[RoutedFact | Unsynced] = []
        for order in (parked or {}).values():
            out += self._route(Fact.model_validate(order))
        return out


@dataclass
class DecideStep:
    router: Router
    # Route key -> RecordState (JSON), its LINK and its OUTBOX: one table, so a decision
    # costs one write.
    states: Table
    suppress_echoes: bool = True

    def on_message(
        self, key: str, value: bytes, place: tuple[str, int, int] | None
    ) -> tuple[Outcome | None, list[str]]:
        """Fold one message of `sync.routed`/`results`/`requeues` at `place` (topic, partition,
        offset; None when rebuilding) into the tables: the outcome (None when nothing
        was decided) and the messages to publish, encoded."""
        stored = self.states.get(key) or {}
        outbox = Outbox.from_json(stored.get(OUTBOX))
        if place is not None:
            again = outbox.emitted_by(*place)
            if again is not None:
                return None, again
        state = RecordState.from_json(stored)
        link = Link.from_json(stored.get(LINK))
        outcome = self._decide(value, state, link)
        if outcome is None:
            return None, []
        texts = [encode(message).decode() for message in outcome.messages]
        if place is not None:
            outbox.record(*place, texts)
        self.states[key] = {**state.to_json(), LINK: link.to_json(), OUTBOX: outbox.to_json()}
        return outcome, texts

    def _decide(self, value: bytes, state: RecordState, link: Link) -> Outcome | None:
        try:
            if value.startswith(ROUTED):  # the bulk of the traffic: parsed in one pass
                routed = RoutedFact.model_validate_json(value)
            else:
                envelope = decode(value)
                if isinstance(envelope, Result):
                    return on_result(envelope, state, link)
                if isinstance(envelope, Requeue):
                    if envelope.command is None:
                        return None  # a requeue recorded with nothing to send
                    log.info("requeued dead letter %s: issuing %s", envelope.dead_letter_id,
                             envelope.command.command_id)  # fmt: skip
                    return on_requeue(envelope.command, state, link)
                log.error("a %s on the routed/results/requeues topics, ignored", envelope.kind)
                return None
        except (ValueError, EnvelopeError, ValidationError) as exc:
            log.error("unreadable message on the routed/results/requeues topics, ignored: %s", exc)
            return None
        mapper = self.router.mappers.get(routed.flow)
        if mapper is None:
            log.warning("flow %s is no longer in the mapping; fact ignored", routed.flow)
            return None
        route = Route(routed.flow, routed.key, routed.fact, routed.payload)
        return on_fact(route, mapper, state, link, suppress_echoes=self.suppress_echoes)
