"""product.template and product.product (its variants, which `_inherits` the template).

Template fields read through a variant are delegated: they live on the template row,
so a price written on the template is what every variant reads. Whether that write
also moves the variants' `write_date` depends on the version (odoo-api.md section 9).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectors.odoo.sandbox.errors import ValidationError
from connectors.odoo.sandbox.fields import Field
from connectors.odoo.sandbox.orm import Env, Model, Record, Vals
from connectors.odoo.sandbox.profiles import Profile

# Template fields a variant reads and writes through `product_tmpl_id`.
DELEGATED = ("name", "list_price", "type", "detailed_type", "is_storable", "sale_ok", "uom_id")
# Variant fields a template shows for its (single) variant and writes through to it.
VARIANT_OWNED = ("default_code", "barcode")


def _first_variant_value(name: str) -> Any:
    def compute(env: Env, row: Record) -> Any:
        variants = env.children("product.product", "product_tmpl_id").get(row["id"], [])
        variant = env.store.get("product.product", variants[0]) if variants else None
        return None if variant is None else variant.get(name)

    return compute


def _template_type(env: Env, row: Record) -> Any:
    # 15-17: `type` follows `detailed_type`, where storable is "product".
    return row.get("detailed_type")


def _list_price(env: Env, row: Record) -> Any:
    template = env.store.get("product.template", row.get("product_tmpl_id") or 0)
    return None if template is None else template.get("list_price")


def template_fields(profile: Profile) -> list[Field]:
    fields = [
        Field("name", "char", "Name", required=True),
        Field("list_price", "float", "Sales Price"),
        Field("sale_ok", "boolean", "Can be Sold"),
        Field("uom_id", "many2one", "Unit of Measure", relation="uom.uom"),
        Field("description_sale", "text", "Sales Description"),
        Field("active", "boolean", "Active"),
        Field(
            "product_variant_ids", "one2many", "Products",
            relation="product.product", inverse="product_tmpl_id",
        ),
    ]  # fmt: skip
    types = Field(
        profile.product_type_field, "selection", "Product Type", selection=profile.product_types
    )
    fields.append(types)
    if profile.product_type_field == "detailed_type":
        fields.append(
            Field(
                "type", "selection", "Type", selection=profile.product_types,
                compute=_template_type, readonly=True,
            )
        )  # fmt: skip
    if profile.has_is_storable:
        fields.append(Field("is_storable", "boolean", "Track Inventory"))
    for name, label in (("default_code", "Internal Reference"), ("barcode", "Barcode")):
        fields.append(
            Field(
                name, "char", label, store=False, searchable=True,
                compute=_first_variant_value(name),
            )
        )  # fmt: skip
    return fields


class ProductTemplate(Model):
    name = "product.template"
    description = "Product"
    default_order = "name"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        return template_fields(profile)

    def defaults(self, env: Env) -> Vals:
        return {
            "active": True,
            "sale_ok": True,
            "list_price": 1.0,
            "uom_id": 1,
            env.profile.product_type_field: "consu",
        }

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        # The variant-owned values are written after the row exists (after_write).
        return vals

    def after_write(self, env: Env, rid: int, vals: Vals, created: bool) -> None:
        variant_vals = {name: vals[name] for name in VARIANT_OWNED if name in vals}
        variants = env.children("product.product", "product_tmpl_id").get(rid, [])
        variant = env["product.product"]
        if created and env.context.get("create_product_product", True):
            variant.create_one(env, {**variant_vals, "product_tmpl_id": rid})
            return
        for variant_id in variants:
            if variant_vals:
                variant.write_one(env, variant_id, variant_vals)
            elif "list_price" in vals and env.profile.template_price_bumps_variant:
                variant.touch(env, variant_id)


class ProductProduct(Model):
    name = "product.product"
    description = "Product Variant"
    default_order = "default_code, name, id"

    @staticmethod
    def declare(profile: Profile) -> list[Field]:
        delegated = [
            replace(field, delegate="product_tmpl_id", store=False, searchable=True)
            for field in template_fields(profile)
            if field.name in DELEGATED
        ]
        return [
            Field(
                "product_tmpl_id", "many2one", "Product Template",
                relation="product.template", required=True,
            ),
            Field("default_code", "char", "Internal Reference"),
            Field("barcode", "char", "Barcode"),
            Field("active", "boolean", "Active"),
            Field("lst_price", "float", "Sales Price", store=False, compute=_list_price),
            *delegated,
        ]  # fmt: skip

    def create_one(self, env: Env, vals: Vals) -> int:
        # Creating a variant creates its template, which must not create another variant.
        previous = env.context.get("create_product_product")
        env.context["create_product_product"] = False
        try:
            return super().create_one(env, vals)
        finally:
            if previous is None:
                env.context.pop("create_product_product", None)
            else:
                env.context["create_product_product"] = previous

    def defaults(self, env: Env) -> Vals:
        return {"active": True}

    def prepare(self, env: Env, vals: Vals, rid: int | None) -> Vals:
        if rid is None and "product_tmpl_id" not in vals:
            # No template given: the delegated values create one (Odoo's _inherits).
            template_defaults = env["product.template"].defaults(env)
            vals = {**{k: v for k, v in template_defaults.items() if k in DELEGATED}, **vals}
        barcode = vals.get("barcode")
        if barcode:
            self._check_barcode(env, str(barcode), rid)
        return vals

    def _check_barcode(self, env: Env, barcode: str, rid: int | None) -> None:
        for row in env.store.table(self.name).values():
            if row.get("barcode") == barcode and row["id"] != rid:
                if env.profile.barcode_per_company_message:
                    raise ValidationError(
                        "Barcode(s) already assigned:\n\n"
                        f'- Barcode "{barcode}" already assigned to product(s): '
                        f"{self.display_name(env, row)}"
                    )
                raise ValidationError(
                    "The operation cannot be completed: "
                    "A barcode can only be assigned to one product !"
                )

    def display_name(self, env: Env, row: Record) -> str:
        name = self.value(env, row, "name") or ""
        code = row.get("default_code")
        return f"[{code}] {name}" if code else str(name)
