"""Every flow of the mapping file, both ways, field by field, with every service running
as in production, against the Odoo sandbox (17 with the Inventory app, 19 without) and
against real Odoo 16, 17, 18 and 19 (19 over JSON-2, the others over XML-RPC).

Odoo -> Clientify: a company partner with its address and phones (a Clientify company
and its contact), a person whose tax id is only in Tax ID with Spain's VAT prefix (a
contact, first and last name split), three products, and a confirmed order whose items
carry the products' internal references. Clientify -> Odoo: a company with a province
and "España", a contact with a first and a last name in "Alemania", a product's new
price and a new product. The README's table of versions, flows and directions points
here. A real server's database outlives the test, so every key is new to it.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from connectors.clientify import ClientifyClient
from connectors.odoo import OdooClient
from connectors.spanish_tax_ids import cif, nif
from tests.support.stack_fixtures import (
    ODOO_TARGETS,
    OdooTarget,
    SyncStack,
    eventually,
    stack_for,
)

pytestmark = pytest.mark.broker


async def one(probe: Any) -> Any:
    found = await probe
    return found[0] if len(found) == 1 else None


async def id_of(odoo: OdooClient, model: str, domain: list[Any]) -> int:
    [found] = await odoo.search(model, domain)
    return int(found)


@pytest.mark.parametrize("target", ODOO_TARGETS)
async def test_every_flow_both_ways(
    target: OdooTarget, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    kind, version, modules = target
    stack = await asyncio.to_thread(stack_for, target, kafka_bootstrap, topic_prefix, tmp_path)
    # Delivering part of an order is a knob of the sandbox (a real Odoo delivers through
    # a validated picking): there the item quantity is what is left to deliver.
    partly_delivered = kind == "sandbox" and "sale_stock" in modules
    draw = random.Random()
    acme_key, norte_key = cif("B", draw.randrange(10**7)), cif("A", draw.randrange(10**7))
    maria_nif, ana_nif = nif(draw.randrange(10**8)), nif(draw.randrange(10**8))
    run = f"{draw.randrange(10**6):06d}"
    codes = [f"PW-{run}", f"GD-{run}", f"DH-{run}", f"NEW-{run}"]
    await stack.up()
    try:
        async with stack.odoo() as odoo:
            spain = await id_of(odoo, "res.country", [("code", "=", "ES")])
            madrid = await id_of(
                odoo, "res.country.state", [("country_id", "=", spain), ("code", "=", "M")]
            )
            acme: dict[str, Any] = {
                "name": "Acme Soluciones", "ref": acme_key, "is_company": True,
                "phone": "+34 911 111 111", "street": "Calle Mayor 1", "city": "Madrid",
                "zip": "28001", "country_id": spain, "state_id": madrid,
            }  # fmt: skip
            if version < 19:
                acme["mobile"] = "+34 600 000 001"  # `mobile` is gone on 19
            acme_id = await odoo.create("res.partner", acme)
            await odoo.create("res.partner", {
                "name": "María José García López", "vat": f"ES{maria_nif}", "city": "Sevilla",
                "country_id": spain,
            })  # fmt: skip
            products = [
                await odoo.create(
                    "product.product",
                    {
                        "name": name,
                        "default_code": code,
                        "list_price": price,
                        **({"barcode": f"84{draw.randrange(10**11):011d}"} if barcode else {}),
                    },
                )
                for name, code, price, barcode in (
                    ("Widget", codes[0], 10.0, True),
                    ("Gadget", codes[1], 2.5, False),
                    ("Doohickey", codes[2], 7.0, True),
                )
            ]
            delivered = (1, 0, 0) if partly_delivered else (0, 0, 0)
            order_id = await odoo.create("sale.order", {
                "partner_id": acme_id,
                "order_line": [[0, 0, {"product_id": p, "product_uom_qty": q,
                                       **({"qty_delivered": d} if partly_delivered else {})}]
                               for p, q, d in zip(products, (3, 2, 1), delivered, strict=True)],
            })  # fmt: skip
            await odoo.call("sale.order", "action_confirm", [order_id])
            [order] = await odoo.read("sale.order", [order_id], ["name"])

        async with stack.clientify() as clientify:
            await odoo_to_clientify(
                clientify, stack, version, acme_key, maria_nif, order["name"], codes,
                widgets=2.0 if partly_delivered else 3.0,
            )  # fmt: skip
            await clientify.companies.create({
                "name": "Talleres Norte SL", "business_name": "Talleres Norte SL",
                "taxpayer_identification_number": norte_key,
                "addresses": [{"street": "Gran Vía 1", "city": "Bilbao", "state": "Vizcaya",
                               "country": "España", "postal_code": "48001", "type": 1}],
            })  # fmt: skip
            await clientify.contacts.create({
                "first_name": "Ana", "last_name": "Ruiz López",
                "taxpayer_identification_number": ana_nif,
                "addresses": [{"city": "Berlín", "country": "Alemania", "type": 1}],
            })  # fmt: skip
            [gadget] = await clientify.find_products_by_sku(codes[1])
            await clientify.products.update(gadget["id"], {"price": "3.75"})
            await clientify.products.create({"name": "Tuerca", "sku": codes[3], "price": "0.40"})

        async with stack.odoo() as odoo:
            await clientify_to_odoo(odoo, stack, norte_key, ana_nif, products[1], codes[3])

        # "España" reached Odoo as Spain and came back as Spain: the same country, so
        # Clientify keeps what its user typed (no second write, no conflict).
        await asyncio.sleep(5)
        async with stack.clientify() as clientify:
            norte = await one(clientify.find_by_tax_id(clientify.companies, norte_key))
            norte = await clientify.companies.get(norte["id"])
            assert norte["addresses"][0]["country"] == "España"
    finally:
        stack.down()


async def odoo_to_clientify(
    clientify: ClientifyClient,
    stack: SyncStack,
    version: int,
    acme_key: str,
    maria_nif: str,
    order_name: str,
    codes: list[str],
    widgets: float,
) -> None:
    # company: a Clientify company with its address, state and country.
    company = await eventually(
        lambda: one(clientify.find_by_tax_id(clientify.companies, acme_key)),
        stack, "the company in Clientify", within=180,
    )  # fmt: skip
    assert (company["business_name"], company["name"]) == ("Acme Soluciones", "Acme Soluciones")
    company = await clientify.companies.get(company["id"])  # with its addresses
    [address] = company["addresses"]
    assert (address["street"], address["city"], address["postal_code"]) == (
        "Calle Mayor 1", "Madrid", "28001",
    )  # fmt: skip
    assert (address["state"], address["country"]) == ("Madrid", "Spain")
    # contact: the company's contact carries its phones, and becomes a client with the
    # confirmed order.
    phones = {1: "+34 911 111 111"} | ({2: "+34 600 000 001"} if version < 19 else {})

    async def a_client() -> dict[str, Any] | None:
        found = await one(clientify.find_by_tax_id(clientify.contacts, acme_key))
        return found if found and found["status"] == "client" else None

    contact = await eventually(a_client, stack, "the company's contact, a client")
    assert {p["type"]: p["phone"] for p in contact["phones"]} == phones
    # contact: a person keyed by the Tax ID, with its name in first and last name.
    maria = await eventually(
        lambda: one(clientify.find_by_tax_id(clientify.contacts, maria_nif)),
        stack, "the person keyed by Tax ID",
    )  # fmt: skip
    assert (maria["first_name"], maria["last_name"]) == ("María", "José García López")
    maria = await clientify.contacts.get(maria["id"])  # a listing carries no addresses
    assert maria["addresses"][0]["city"] == "Sevilla"
    # product: each one by its internal reference.
    named = (("Widget", "10.00"), ("Gadget", "2.50"), ("Doohickey", "7.00"))
    for code, (name, price) in zip(codes, named, strict=False):
        [product] = await eventually(
            lambda code=code: clientify.find_products_by_sku(code), stack, f"product {code}"
        )
        assert (product["name"], product["price"]) == (name, price)

    # order: its items carry the products' internal references, as the products do.
    async def the_order() -> dict[str, Any] | None:
        return next(iter([o async for o in clientify.orders.list() if o["order_id"] == order_name]),
                    None)  # fmt: skip

    order = await eventually(the_order, stack, "the order in Clientify")
    items = sorted(order["items"], key=lambda item: item["name"])
    assert [(i["sku"], float(i["price"]), float(i["quantity"])) for i in items] == [
        (codes[2], 7.0, 1.0), (codes[1], 2.5, 2.0), (codes[0], 10.0, widgets),
    ]  # fmt: skip
    assert order["ecommerce"] == "Odoo" and order["status"] == "confirmed"


async def clientify_to_odoo(
    odoo: OdooClient, stack: SyncStack, norte_key: str, ana_nif: str, gadget: int, new_code: str
) -> None:
    spain = await id_of(odoo, "res.country", [("code", "=", "ES")])
    germany = await id_of(odoo, "res.country", [("code", "=", "DE")])
    bizkaia = await id_of(
        odoo, "res.country.state", [("country_id", "=", spain), ("code", "=", "BI")]
    )
    fields = ["name", "is_company", "street", "city", "zip", "state_id", "country_id"]

    async def partner(key: str) -> dict[str, Any] | None:
        found = await odoo.search_read("res.partner", [("ref", "=", key)], fields)
        return found[0] if len(found) == 1 else None

    # company: a company partner with its province ("Vizcaya" is Odoo's "Bizkaia
    # (Vizcaya)") and its country in Spanish.
    norte = await eventually(lambda: partner(norte_key), stack, "the company in Odoo")
    assert (norte["name"], norte["is_company"], norte["street"], norte["zip"]) == (
        "Talleres Norte SL", True, "Gran Vía 1", "48001",
    )  # fmt: skip
    assert (norte["state_id"][0], norte["country_id"][0]) == (bizkaia, spain)
    # contact: first and last name as Odoo's one name; "Alemania" is Germany.
    ana = await eventually(lambda: partner(ana_nif), stack, "the contact in Odoo")
    assert (ana["name"], ana["city"], ana["country_id"][0]) == ("Ana Ruiz López", "Berlín", germany)

    # product: a new price, and a new product.
    async def repriced() -> bool:
        [row] = await odoo.read("product.product", [gadget], ["list_price"])
        return bool(row["list_price"] == 3.75)

    await eventually(repriced, stack, "the Gadget's new price in Odoo")

    async def created() -> list[dict[str, Any]] | None:
        return (
            await odoo.search_read(
                "product.product", [("default_code", "=", new_code)], ["name", "list_price"]
            )
            or None
        )

    [tuerca] = await eventually(created, stack, "the new product in Odoo")
    assert (tuerca["name"], tuerca["list_price"]) == ("Tuerca", 0.4)
