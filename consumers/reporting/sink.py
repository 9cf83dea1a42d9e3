"""The reporting consumer: confirmed sales per customer and month, product totals, and
the sync's health per day, kept in SQLite (a `Sink`, see consumers/base/sink.py).

The tables hold the newest version of each Odoo order (with its lines), partner and
product, and one row per distinct sync event; the report's numbers are views over them
(`reporting_tables`). Nothing is counted per delivery, so a fact published twice, an
older version arriving after a newer one, or a Result republished by a writer after a
redelivery changes nothing:

- a record's version is (source time, observation time, event id): the greatest wins,
  whatever the order of arrival;
- a sync event is identified by what it is about (the command, the dropped fact and
  its flow, the conflicting field), and dated by the earliest day it was seen.

Only orders in state `sale` or `done` count as sales; an order cancelled later drops
out, since its newest version is the cancelled one. Months and days are UTC.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from consumers.base.sink import Message, Unusable
from schemas import (
    AnyEnvelope,
    ConflictReport,
    DeadLetter,
    EchoNotice,
    Fact,
    Result,
    ResultStatus,
    Skip,
    System,
)
from schemas.envelope import sortable_time
from schemas.odoo_values import many2one_id, many2one_name
from schemas.topics import (
    CONFLICTS,
    DEAD_LETTERS,
    ECHOES,
    ODOO_PARTNER,
    ODOO_PRODUCT,
    ODOO_SALE_ORDER,
    RESULTS,
    SKIPS,
)

CONFIRMED_STATES = ("sale", "done")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, name TEXT NOT NULL, partner_id INTEGER,
    partner_name TEXT, state TEXT NOT NULL, month TEXT NOT NULL, currency TEXT,
    amount_untaxed REAL NOT NULL, amount_total REAL NOT NULL, version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id INTEGER NOT NULL, line_id INTEGER NOT NULL, product_id INTEGER,
    product_name TEXT, unit TEXT, quantity REAL NOT NULL, amount REAL NOT NULL,
    PRIMARY KEY (order_id, line_id)
);
CREATE TABLE IF NOT EXISTS partners (
    partner_id INTEGER PRIMARY KEY, name TEXT, ref TEXT, commercial_id INTEGER,
    version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    product_id INTEGER PRIMARY KEY, name TEXT, sku TEXT, version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_events (
    kind TEXT NOT NULL, ident TEXT NOT NULL, day TEXT NOT NULL, PRIMARY KEY (kind, ident)
);

-- Sales go to the commercial entity (the company of a contact person), as the sync
-- itself files an order under it in Clientify. Sums are rounded to 4 decimals: exact
-- for every currency, without the float noise of long sums.
CREATE VIEW IF NOT EXISTS sales_by_customer_month AS
SELECT o.month AS month,
       coalesce(p.commercial_id, o.partner_id) AS customer_id,
       max(coalesce(c.name, p.name, o.partner_name)) AS customer,
       max(coalesce(c.ref, p.ref)) AS ref,
       o.currency AS currency,
       count(*) AS orders,
       round(sum(o.amount_untaxed), 4) AS untaxed,
       round(sum(o.amount_total), 4) AS total
FROM orders o
LEFT JOIN partners p ON p.partner_id = o.partner_id
LEFT JOIN partners c ON c.partner_id = p.commercial_id
WHERE o.state IN {CONFIRMED_STATES}
GROUP BY o.month, customer_id, o.currency
ORDER BY o.month, customer, o.currency;

CREATE VIEW IF NOT EXISTS product_totals AS
SELECT l.product_id AS product_id,
       max(coalesce(pr.name, l.product_name)) AS product,
       max(pr.sku) AS sku,
       l.unit AS unit,
       o.currency AS currency,
       round(sum(l.quantity), 4) AS quantity,
       round(sum(l.amount), 4) AS amount,
       count(DISTINCT o.order_id) AS orders
FROM order_lines l
JOIN orders o ON o.order_id = l.order_id
LEFT JOIN products pr ON pr.product_id = l.product_id
WHERE o.state IN {CONFIRMED_STATES} AND l.product_id IS NOT NULL
GROUP BY l.product_id, l.unit, o.currency
ORDER BY amount DESC, product;

CREATE VIEW IF NOT EXISTS sync_health AS
SELECT day,
       sum(kind = 'write') AS writes,
       sum(kind = 'echo') AS echoes,
       sum(kind = 'skip') AS skips,
       sum(kind = 'conflict') AS conflicts,
       sum(kind = 'dead_letter') AS dead_letters
FROM sync_events
GROUP BY day
ORDER BY day;
"""


def _false_is_none(value: Any) -> Any:
    # Odoo sends False for every empty field, text and relations included.
    return None if value is False else value


Text = Annotated[str | None, BeforeValidator(_false_is_none)]
Many2one = Annotated[tuple[int, str] | None, BeforeValidator(_false_is_none)]


class _Payload(BaseModel):
    """The part of an Odoo record the report reads; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")


class _Line(_Payload):
    id: int
    product_id: Many2one = None
    product_uom_qty: float = 0.0
    price_subtotal: float = 0.0
    product_uom: Many2one = None  # the unit up to Odoo 18
    product_uom_id: Many2one = None  # from 19


class _Order(_Payload):
    id: int
    name: str
    partner_id: Many2one = None
    date_order: datetime
    state: str
    currency_id: Many2one = None
    amount_untaxed: float = 0.0
    amount_total: float = 0.0
    lines: list[_Line] = Field(default_factory=list)


class _Partner(_Payload):
    id: int
    name: Text = None
    ref: Text = None
    commercial_partner_id: Many2one = None


class _Product(_Payload):
    id: int
    name: Text = None
    default_code: Text = None


def _version(fact: Fact) -> str:
    return f"{sortable_time(fact.occurred_at)}|{sortable_time(fact.observed_at)}|{fact.event_id}"


class ReportingSink:
    name = "reporting"
    topics = tuple(
        spec.name
        for spec in (
            ODOO_SALE_ORDER, ODOO_PARTNER, ODOO_PRODUCT, RESULTS, ECHOES, SKIPS, CONFLICTS,
            DEAD_LETTERS,
        )
    )  # fmt: skip
    schema = SCHEMA
    schema_version = 1

    def apply(self, db: sqlite3.Connection, message: Message) -> None:
        envelope = message.envelope
        try:
            if isinstance(envelope, Fact):
                self._fact(db, envelope)
            else:
                self._sync_event(db, envelope)
        except ValidationError as exc:
            raise Unusable(f"{envelope.kind} of unexpected shape: {exc}") from None

    # -- records: the newest version of each

    def _fact(self, db: sqlite3.Connection, fact: Fact) -> None:
        if fact.system is not System.ODOO:
            return
        if fact.entity == "sale_order":
            self._order(db, fact)
        elif fact.entity == "partner":
            partner = _Partner.model_validate(fact.payload)
            if _newer(db, "partners", "partner_id", partner.id, _version(fact)):
                db.execute(
                    "INSERT OR REPLACE INTO partners VALUES (?, ?, ?, ?, ?)",
                    (partner.id, partner.name, partner.ref,
                     many2one_id(partner.commercial_partner_id), _version(fact)),
                )  # fmt: skip
        elif fact.entity == "product":
            product = _Product.model_validate(fact.payload)
            if _newer(db, "products", "product_id", product.id, _version(fact)):
                db.execute(
                    "INSERT OR REPLACE INTO products VALUES (?, ?, ?, ?)",
                    (product.id, product.name, product.default_code, _version(fact)),
                )

    def _order(self, db: sqlite3.Connection, fact: Fact) -> None:
        order = _Order.model_validate(fact.payload)
        version = _version(fact)
        if not _newer(db, "orders", "order_id", order.id, version):
            return
        db.execute(
            "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order.id, order.name, many2one_id(order.partner_id),
             many2one_name(order.partner_id), order.state,
             order.date_order.strftime("%Y-%m"), many2one_name(order.currency_id),
             order.amount_untaxed, order.amount_total, version),
        )  # fmt: skip
        # The lines come whole with each version: replace them.
        db.execute("DELETE FROM order_lines WHERE order_id = ?", (order.id,))
        db.executemany(
            "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (order.id, line.id, many2one_id(line.product_id), many2one_name(line.product_id),
                 many2one_name(line.product_uom_id or line.product_uom), line.product_uom_qty,
                 line.price_subtotal)
                for line in order.lines
            ],
        )  # fmt: skip

    # -- sync events: one row each, however often delivered

    def _sync_event(self, db: sqlite3.Connection, envelope: AnyEnvelope) -> None:
        match envelope:
            case Result(status=ResultStatus.APPLIED):
                event = ("write", envelope.command_id, envelope.finished_at)
            case EchoNotice():
                event = ("echo", f"{envelope.flow}|{envelope.event_id}", envelope.at)
            case Skip():
                event = ("skip", f"{envelope.flow or ''}|{envelope.event_id}", envelope.at)
            case ConflictReport():
                ident = "|".join(
                    (envelope.flow, envelope.business_key, envelope.field, envelope.caused_by)
                )
                event = ("conflict", ident, envelope.at)
            case DeadLetter():
                event = ("dead_letter", envelope.command.command_id, envelope.at)
            case _:
                return  # results of commands not written (failed, already applied)
        kind, ident, at = event
        db.execute(
            "INSERT INTO sync_events VALUES (?, ?, ?) ON CONFLICT (kind, ident) "
            "DO UPDATE SET day = min(day, excluded.day)",
            (kind, ident, at.strftime("%Y-%m-%d")),
        )


def _newer(db: sqlite3.Connection, table: str, key: str, rid: int, version: str) -> bool:
    """True when `version` is newer than the stored version of record `rid` (or none)."""
    row = db.execute(f"SELECT version FROM {table} WHERE {key} = ?", (rid,)).fetchone()
    return row is None or version > row[0]
