"""What the poller reads: the entities it publishes and the models whose changes it scans.

An entity is what a fact carries (a partner, a product variant, an order with its
lines). A stream is one model scanned by `write_date`: the entity's own model, or a
model whose changes do not always move the entity's `write_date` (a template's price
on 16, an order line) and so are scanned too and mapped to the entities they affect
(odoo-api.md pitfall 8). Field lists are wishes: the client keeps only those the
server has, so one list serves 14 to 19.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.topics import ODOO_PARTNER, ODOO_PRODUCT, ODOO_SALE_ORDER, TopicSpec

LOG_FIELDS = ("create_date", "write_date", "write_uid")


@dataclass(frozen=True)
class Lines:
    """Child records carried inside the entity's payload (order lines)."""

    model: str
    link: str  # the many2one from the child to the entity
    fields: tuple[str, ...]
    payload_key: str


@dataclass(frozen=True)
class Parent:
    """A record whose writes change the entity without always moving its write_date
    (a variant reads its price from its template): its write_date also dates the fact."""

    link: str  # the many2one from the entity to it
    model: str


@dataclass(frozen=True)
class Entity:
    name: str
    model: str
    topic: TopicSpec
    fields: tuple[str, ...]
    key_field: str
    lines: Lines | None = None
    parent: Parent | None = None


@dataclass(frozen=True)
class Stream:
    """One model scanned by (write_date, id); `link` maps its rows to entity ids
    (None: the rows are the entity's own records)."""

    model: str
    entity: Entity
    link: str | None = None

    @property
    def indirect(self) -> bool:
        return self.link is not None


PARTNER = Entity(
    "partner",
    "res.partner",
    ODOO_PARTNER,
    (
        "name", "display_name", "complete_name", "ref", "vat", "is_company", "company_type",
        "parent_id", "commercial_partner_id", "type", "function", "phone", "mobile", "email",
        "street", "street2", "city", "zip", "state_id", "country_id", "lang", "active",
        "customer_rank", "x_clientify_status", *LOG_FIELDS,
    ),
    "ref",
)  # fmt: skip
PRODUCT = Entity(
    "product",
    "product.product",
    ODOO_PRODUCT,
    (
        "name", "display_name", "default_code", "barcode", "list_price", "lst_price",
        "product_tmpl_id", "type", "detailed_type", "is_storable", "sale_ok", "uom_id",
        "active", *LOG_FIELDS,
    ),
    "default_code",
    parent=Parent("product_tmpl_id", "product.template"),
)  # fmt: skip
SALE_ORDER = Entity(
    "sale_order",
    "sale.order",
    ODOO_SALE_ORDER,
    (
        "name", "partner_id", "date_order", "state", "locked", "currency_id",
        "client_order_ref", "amount_untaxed", "amount_tax", "amount_total", "order_line",
        *LOG_FIELDS,
    ),
    "name",
    Lines(
        "sale.order.line",
        "order_id",
        (
            "order_id", "name", "product_id", "product_uom_qty", "qty_delivered",
            "qty_to_deliver", "price_unit", "discount", "product_uom", "product_uom_id",
            "tax_id", "tax_ids", "price_subtotal", "price_total", *LOG_FIELDS,
        ),
        "lines",
    ),
)  # fmt: skip

STREAMS: tuple[Stream, ...] = (
    Stream("res.partner", PARTNER),
    Stream("product.product", PRODUCT),
    # A template's price is read through its variants; on 16 writing it leaves the
    # variants' write_date alone, so templates are scanned as well.
    Stream("product.template", PRODUCT, link="product_variant_ids"),
    Stream("sale.order", SALE_ORDER),
    # Editing a line does not always move the order's write_date.
    Stream("sale.order.line", SALE_ORDER, link="order_id"),
)
