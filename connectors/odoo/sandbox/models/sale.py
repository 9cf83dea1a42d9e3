"""sale.order and sale.order.line: totals, confirmation and the per-version states."""

from __future__ import annotations

from typing import Any

from connectors.odoo.sandbox.errors import UserError, ValidationError
from connectors.odoo.sandbox.fields import Field
from connectors.odoo.sandbox.orm import Env, Model, Record, Vals, api_records, as_ids
from connectors.odoo.sandbox.profiles import Profile


def company_currency(env: Env) -> int | None:
    for row in env.store.table("res.currency").values():
        if row.get("name") == env.profile.company_currency:
            return int(row["id"])
    return None


def default_taxes(env: Env) -> list[int]:
    rate = env.profile.default_sale_tax
    if rate is None:
        return []
    return [
        int(row["id"])
        for row in env.store.table("account.tax").values()
        if row.get("type_tax_use") == "sale" and row.get("amount") == rate and row.get("active")
    ][:1]


def _line_state(env: Env, row: Record) -> Any:
    order = env.store.get("sale.order", row.get("order_id") or 0)
    return None if order is None else order.get("state")


def _qty_to_deliver(env: Env, row: Record) -> float:
    return float((row.get("product_uom_qty") or 0.0) - (row.get("qty_delivered") or 0.0))


class SaleOrder(Model):
    name = "sale.order"
    description = "Sales Order"
    default_order = "date_order desc, id desc"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        fields = [
            Field("name", "char", "Order Reference", required=True),
            Field("partner_id", "many2one", "Customer", relation="res.partner", required=True),
            Field("date_order", "datetime", "Order Date", required=True),
            Field("state", "selection", "Status", selection=profile.order_states),
            Field("currency_id", "many2one", "Currency", relation="res.currency"),
            Field("client_order_ref", "char", "Customer Reference"),
            Field("note", "text", "Terms and conditions"),
            Field(
                "order_line", "one2many", "Order Lines",
                relation="sale.order.line", inverse="order_id",
            ),
            Field("amount_untaxed", "monetary", "Untaxed Amount", readonly=True),
            Field("amount_tax", "monetary", "Taxes", readonly=True),
            Field("amount_total", "monetary", "Total", readonly=True),
        ]  # fmt: skip
        if profile.has_locked:
            fields.append(Field("locked", "boolean", "Locked"))
        return fields

    def defaults(self, env: Env) -> Vals:
        defaults: Vals = {
            "state": "draft",
            "date_order": env.now.strftime("%Y-%m-%d %H:%M:%S"),
            "currency_id": company_currency(env),
        }
        if env.profile.has_locked:
            defaults["locked"] = False
        return defaults

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        if rid is None and not vals.get("name"):
            vals = {**vals, "name": f"S{env.store.next_value('sale.order.sequence'):05d}"}
        return vals

    def after_write(self, env: Env, rid: int, vals: Vals, created: bool) -> None:
        self.recompute_amounts(env, rid)

    def recompute_amounts(self, env: Env, rid: int) -> None:
        """Stored totals; when they change the order is written (write_date moves)."""
        lines = [
            env.store.get("sale.order.line", line)
            for line in env.children("sale.order.line", "order_id").get(rid, [])
        ]
        untaxed = round(sum(line.get("price_subtotal") or 0.0 for line in lines if line), 2)
        total = round(sum(line.get("price_total") or 0.0 for line in lines if line), 2)
        amounts = {
            "amount_untaxed": untaxed,
            "amount_tax": round(total - untaxed, 2),
            "amount_total": total,
        }
        row = env.store.get(self.name, rid)
        assert row is not None
        if any(row.get(key) != value for key, value in amounts.items()):
            env.store.update(self.name, rid, amounts)
            self.touch(env, rid)

    # -- workflow buttons, callable over RPC like in Odoo

    @api_records
    def action_confirm(self, env: Env, ids: Any) -> bool:
        orders = [self.row(env, rid) for rid in self._existing(env, ids)]
        lines = env.store.table("sale.order.line").values()
        ordered = {order["id"] for order in orders}
        if any(line.get("order_id") in ordered and not line.get("product_id") for line in lines):
            raise UserError(env.profile.product_less_line_refusal)
        refused = [order for order in orders if not self._confirmable(env, order)]
        if refused:
            names = ", ".join(str(order.get("name")) for order in refused)
            raise UserError(
                f"The following orders are not in a state requiring confirmation: {names}"
            )
        confirmed_at = env.now.strftime("%Y-%m-%d %H:%M:%S")
        for order in orders:
            self.write_one(env, order["id"], {"state": "sale", "date_order": confirmed_at})
        return True

    @staticmethod
    def _confirmable(env: Env, order: Record) -> bool:
        # 17+ confirm only quotations; up to 16 a confirmed order can be confirmed again.
        if env.profile.reconfirm_fails:
            return order.get("state") in ("draft", "sent")
        return order.get("state") not in ("done", "cancel")

    @api_records
    def action_cancel(self, env: Env, ids: Any) -> bool:
        for rid in self._existing(env, ids):
            self.write_one(env, rid, {"state": "cancel"})
        return True

    @api_records
    def action_done(self, env: Env, ids: Any) -> bool:
        """Lock a confirmed order: state `done` up to 16, `locked` from 17."""
        for rid in self._existing(env, ids):
            if env.profile.has_locked:
                self.write_one(env, rid, {"locked": True})
            else:
                self.write_one(env, rid, {"state": "done"})
        return True


def _orders(env: Env) -> SaleOrder:
    model = env["sale.order"]
    assert isinstance(model, SaleOrder)
    return model


class SaleOrderLine(Model):
    name = "sale.order.line"
    description = "Sales Order Line"
    default_order = "order_id, id"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        fields = [
            Field(
                "order_id", "many2one", "Order Reference",
                relation="sale.order", required=True,
            ),
            Field("name", "text", "Description", required=True),
            Field("product_id", "many2one", "Product", relation="product.product"),
            Field("product_uom_qty", "float", "Quantity"),
            Field("qty_delivered", "float", "Delivery Quantity"),
            Field("price_unit", "float", "Unit Price"),
            Field("discount", "float", "Discount (%)"),
            Field(profile.line_uom_field, "many2one", "Unit of Measure", relation="uom.uom"),
            Field(profile.line_tax_field, "many2many", "Taxes", relation="account.tax"),
            Field("price_subtotal", "monetary", "Subtotal", readonly=True),
            Field("price_tax", "float", "Total Tax", readonly=True),
            Field("price_total", "monetary", "Total", readonly=True),
            Field(
                "state", "selection", "Order Status",
                selection=profile.order_states, compute=_line_state, readonly=True,
            ),
        ]  # fmt: skip
        if profile.stock:
            # sale_stock: computed, not stored, not searchable (odoo-api.md section 3).
            fields.append(
                Field(
                    "qty_to_deliver", "float", "Qty To Deliver",
                    store=False, compute=_qty_to_deliver,
                )
            )  # fmt: skip
        return fields

    def defaults(self, env: Env) -> Vals:
        return {"product_uom_qty": 1.0, "qty_delivered": 0.0, "discount": 0.0}

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        product_id = vals.get("product_id")
        if rid is None and not product_id and env.profile.lines_need_a_product_to_exist:
            raise ValidationError(
                "The operation cannot be completed: Missing required fields on accountable "
                "sale order line."
            )
        if rid is not None or not product_id:
            return vals
        # Precomputed stored fields: a line given only a product gets its description,
        # price, unit and taxes from it (odoo-api.md section 9).
        product = env["product.product"]
        row = env.store.get(product.name, product_id)
        if row is None:
            return vals  # the many2one check reports it
        filled = dict(vals)
        filled.setdefault("name", product.display_name(env, row))
        filled.setdefault("price_unit", product.value(env, row, "list_price") or 0.0)
        filled.setdefault(env.profile.line_uom_field, product.value(env, row, "uom_id") or 1)
        filled.setdefault(env.profile.line_tax_field, default_taxes(env))
        return filled

    def after_write(self, env: Env, rid: int, vals: Vals, created: bool) -> None:
        row = env.store.get(self.name, rid)
        assert row is not None
        subtotal = round(
            (row.get("price_unit") or 0.0)
            * (row.get("product_uom_qty") or 0.0)
            * (1 - (row.get("discount") or 0.0) / 100),
            2,
        )
        rate = sum(
            (env.store.get("account.tax", tax) or {}).get("amount") or 0.0
            for tax in as_ids(row.get(env.profile.line_tax_field) or [])
        )
        tax = round(subtotal * rate / 100, 2)
        env.store.update(
            self.name,
            rid,
            {"price_subtotal": subtotal, "price_tax": tax, "price_total": subtotal + tax},
        )
        _orders(env).recompute_amounts(env, int(row["order_id"]))

    def unlink_one(self, env: Env, rid: int) -> None:
        row = env.store.get(self.name, rid)
        super().unlink_one(env, rid)
        order = None if row is None else env.store.get("sale.order", row.get("order_id") or 0)
        if order is not None:
            _orders(env).recompute_amounts(env, int(order["id"]))

    def display_name(self, env: Env, row: Record) -> str:
        order = env.store.get("sale.order", row.get("order_id") or 0)
        prefix = "" if order is None else f"{order.get('name')} - "
        return f"{prefix}{row.get('name') or ''}"
