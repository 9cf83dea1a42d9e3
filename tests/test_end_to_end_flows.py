"""End to end, field by field, on Odoo 17 (with the Inventory app) and 19 (without): a
company partner with its address, state and phones, products, and a confirmed order of
three lines, through every service running as in production; and a product price
changed in Clientify back to Odoo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stack_fixtures import SyncStack, eventually

pytestmark = pytest.mark.broker


@pytest.mark.parametrize(("profile", "modules"), [(17, "account,sale_stock"), (19, "account")])
async def test_every_flow_field_by_field(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, profile: int, modules: str
) -> None:
    stack = SyncStack(
        kafka_bootstrap, topic_prefix, tmp_path, odoo_profile=profile, odoo_modules=modules
    )
    inventory = "sale_stock" in modules
    await stack.up()
    try:
        async with stack.odoo() as odoo:
            [spain] = await odoo.search("res.country", [("code", "=", "ES")])
            [madrid] = await odoo.search(
                "res.country.state", [("country_id", "=", spain), ("code", "=", "M")]
            )
            partner: dict[str, Any] = {
                "name": "Acme Soluciones", "ref": "B-12.345.678", "is_company": True,
                "phone": "+34 911 111 111", "street": "Calle Mayor 1", "city": "Madrid",
                "zip": "28001", "country_id": spain, "state_id": madrid,
            }  # fmt: skip
            if profile < 19:
                partner["mobile"] = "+34 600 000 001"  # `mobile` is gone on 19
            partner_id = await odoo.create("res.partner", partner)
            products = [
                await odoo.create(
                    "product.product",
                    {
                        "name": name,
                        "default_code": code,
                        "list_price": price,
                        **({"barcode": barcode} if barcode else {}),
                    },
                )
                for name, code, price, barcode in (
                    ("Widget", "PW-1", 10.0, "8412345678905"),
                    ("Gadget", "GD-2", 2.5, None),  # no barcode: the SKU falls back
                    ("Doohickey", "DH-3", 7.0, "8412345678912"),
                )
            ]
            # One unit of the widgets already delivered: with the Inventory app the order
            # carries what is still to deliver (qty_to_deliver), else the ordered quantity.
            order_id = await odoo.create("sale.order", {
                "partner_id": partner_id,
                "order_line": [[0, 0, {"product_id": p, "product_uom_qty": q,
                                       **({"qty_delivered": d} if inventory else {})}]
                               for p, q, d in zip(products, (3, 2, 1), (1, 0, 0), strict=True)],
            })  # fmt: skip
            await odoo.call("sale.order", "action_confirm", [order_id])
            [order] = await odoo.read("sale.order", [order_id], ["name"])

        async with stack.clientify() as clientify:

            async def company() -> dict[str, Any] | None:
                found = await clientify.find_by_tax_id(clientify.companies, "B12345678")
                return found[0] if found else None

            async def contact() -> dict[str, Any] | None:
                found = await clientify.find_by_tax_id(clientify.contacts, "B12345678")
                return found[0] if found else None

            async def the_order() -> dict[str, Any] | None:
                orders = [o async for o in clientify.orders.list()]
                return next((o for o in orders if o.get("order_id") == order["name"]), None)

            found_company = await eventually(company, stack, "company in Clientify")
            assert found_company["business_name"] == "Acme Soluciones"
            [address] = found_company["addresses"]
            assert (address["street"], address["city"], address["postal_code"]) == (
                "Calle Mayor 1", "Madrid", "28001",
            )  # fmt: skip
            assert (address["state"], address["country"]) == ("Madrid", "Spain")
            found_contact = await eventually(contact, stack, "contact in Clientify")
            phones = {p["type"]: p["phone"] for p in found_contact["phones"]}
            expected_phones = {1: "+34 911 111 111"}
            if profile < 19:
                expected_phones[2] = "+34 600 000 001"
            assert phones == expected_phones

            found_order = await eventually(the_order, stack, "order in Clientify")
            items = sorted(found_order["items"], key=lambda item: item["name"])
            assert [(i["sku"], float(i["price"]), float(i["quantity"])) for i in items] == [
                ("8412345678912", 7.0, 1.0),
                ("GD-2", 2.5, 2.0),
                ("8412345678905", 10.0, 2.0 if inventory else 3.0),
            ]
            assert found_order["ecommerce"] == "Odoo"

            async def a_client() -> bool:  # Acme has a confirmed order now
                found = await contact()
                return found is not None and found["status"] == "client"

            await eventually(a_client, stack, "contact status client")

            # Clientify -> Odoo: a product price.
            [gadget] = await clientify.find_products_by_sku("GD-2")
            await clientify.products.update(gadget["id"], {"price": "3.75"})

        async def repriced() -> bool:
            async with stack.odoo() as odoo:
                [row] = await odoo.read("product.product", [products[1]], ["list_price"])
            return bool(row["list_price"] == 3.75)

        await eventually(repriced, stack, "Odoo price changed")
    finally:
        stack.down()
