"""The sandbox against Odoo's documented behaviour (odoo-api.md sections 1, 3, 4, 8, 9),
each checked over real HTTP on the wire the way a client sees it."""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.odoo.sandbox import SUPPORTED_VERSIONS, DataDirError, seed
from tests.support.odoo_fixtures import API_KEY, DB, Sandbox, install_language, running_sandbox

WIRE_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture(params=SUPPORTED_VERSIONS, ids=lambda v: f"odoo{v}")
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    async with running_sandbox(request.param) as running:
        yield running


async def fault(coro: Any) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        await coro
    return caught.value


# ---------------------------------------------------------------- common service


async def test_version_and_authenticate(sandbox: Sandbox) -> None:
    version = await sandbox.xmlrpc("common", "version")
    v = sandbox.version
    assert version == {
        "server_version": f"{v}.0",
        "server_version_info": [v, 0, 0, "final", 0, ""],
        "server_serie": f"{v}.0",
        "protocol_version": 1,
    }
    assert await sandbox.xmlrpc("common", "authenticate", DB, "admin", API_KEY, {}) == 2
    assert await sandbox.xmlrpc("common", "login", DB, "admin", API_KEY) == 2
    assert await sandbox.xmlrpc("common", "authenticate", DB, "admin", "wrong", {}) is False
    assert await sandbox.xmlrpc("common", "authenticate", DB, "nobody", API_KEY, {}) is False


async def test_unknown_database_is_fault_1_with_the_psycopg2_text(sandbox: Sandbox) -> None:
    error = await fault(sandbox.xmlrpc("common", "authenticate", "nope", "admin", API_KEY, {}))
    assert error.faultCode == 1
    assert error.faultString.startswith("Traceback (most recent call last):")
    assert 'database "nope" does not exist' in error.faultString.splitlines()[-1]


async def test_wrong_key_on_object_is_fault_3(sandbox: Sandbox) -> None:
    error = await fault(
        sandbox.xmlrpc("object", "execute_kw", DB, 2, "bad", "res.partner", "search", [[]])
    )
    assert (error.faultCode, error.faultString) == (3, "Access Denied")


async def test_web_version_and_json2_only_on_19() -> None:
    for version in (18, 19):
        async with running_sandbox(version) as sandbox:
            async with sandbox.session.get(f"{sandbox.url}/web/version") as reply:
                if version == 18:
                    assert reply.status == 404
                else:
                    assert await reply.json() == {
                        "version_info": [19, 0, 0, "final", 0, ""],
                        "version": "19.0",
                    }
            async with sandbox.session.post(
                f"{sandbox.url}/json/2/res.partner/search", json={"domain": []},
                headers={"Authorization": f"bearer {API_KEY}"},
            ) as reply:  # fmt: skip
                assert reply.status == (404 if version == 18 else 200)


# ---------------------------------------------------------------- faults


async def test_fault_codes_for_model_errors(sandbox: Sandbox) -> None:
    error = await fault(sandbox.execute("no.such.model", "search", []))
    assert (error.faultCode, error.faultString) == (2, "Object no.such.model doesn't exist")
    error = await fault(sandbox.execute("res.partner", "_compute_display_name", []))
    assert error.faultCode == 4 and "Private methods" in error.faultString
    error = await fault(sandbox.execute("res.partner", "no_such_method", []))
    assert error.faultCode == 1 and "does not exist" in error.faultString
    error = await fault(sandbox.execute("res.partner", "search_read", [], fields=["nope"]))
    assert error.faultCode == 1
    on = "'res.partner'" if sandbox.version >= 19 else "model 'res.partner'"
    assert error.faultString.splitlines()[-1] == f"ValueError: Invalid field 'nope' on {on}"
    error = await fault(sandbox.execute("res.partner", "write", [1], {"name": "x"}, "extra"))
    assert error.faultCode == 1 and "TypeError" in error.faultString


async def test_missing_records(sandbox: Sandbox) -> None:
    pid = await sandbox.execute("res.partner", "create", {"name": "Temporal"})
    assert await sandbox.execute("res.partner", "unlink", [pid]) is True
    assert await sandbox.execute("res.partner", "read", [pid], fields=["name"]) == []
    error = await fault(sandbox.execute("res.partner", "write", [pid], {"name": "x"}))
    assert error.faultCode == 2
    assert error.faultString.startswith("Record does not exist or has been deleted.")
    error = await fault(sandbox.execute("res.partner", "unlink", [pid]))
    assert error.faultCode == 2
    assert await sandbox.execute("res.partner", "unlink", []) is True


async def test_a_failed_call_leaves_no_trace(sandbox: Sandbox) -> None:
    before = await sandbox.execute("res.partner", "search_count", [])
    await fault(sandbox.execute("res.partner", "create", [{"name": "ok"}, {"name": 5}]))
    assert await sandbox.execute("res.partner", "search_count", []) == before


async def test_jsonrpc_error_shape(sandbox: Sandbox) -> None:
    answer = await sandbox.jsonrpc(
        "object", "execute_kw", DB, 2, "bad-key", "res.partner", "search", [[]]
    )
    error = answer["error"]
    assert answer["id"] == 7
    assert error["code"] == (0 if sandbox.version >= 19 else 200)
    assert error["message"] == "Odoo Server Error"
    assert error["data"]["name"] == "odoo.exceptions.AccessDenied"
    assert set(error["data"]) == {"name", "message", "arguments", "context", "debug"}
    answer = await sandbox.jsonrpc(
        "object", "execute_kw", DB, 2, API_KEY, "res.partner", "write", [[999999], {}]
    )
    assert answer["error"]["data"]["name"] == "odoo.exceptions.MissingError"
    answer = await sandbox.jsonrpc("common", "version")
    assert answer["result"]["server_version_info"][0] == sandbox.version


async def test_json2_statuses() -> None:
    async with running_sandbox(19) as sandbox:
        status, body = await sandbox.json2("res.partner", "search", key="wrong", domain=[])
        assert (status, body["name"]) == (401, "werkzeug.exceptions.Unauthorized")
        assert body["message"] == "Invalid apikey"
        status, body = await sandbox.json2("no.model", "search", domain=[])
        assert status == 404
        status, body = await sandbox.json2("res.partner", "create", vals_list=[{"name": "A"}])
        assert status == 200 and isinstance(body, list) and len(body) == 1
        status, _body = await sandbox.json2("res.partner", "write", ids=body, vals={"name": "B"})
        assert status == 200
        status, body = await sandbox.json2("res.partner", "search_read", ids=[1], domain=[])
        assert status == 422  # ids given to an @api.model method
        status, body = await sandbox.json2("res.partner", "search_read", domian=[])
        assert status == 422  # a misspelt keyword
        status, body = await sandbox.json2("res.partner", "write", ids=[99999], vals={})
        assert (status, body["name"]) == (404, "odoo.exceptions.MissingError")
        status, body = await sandbox.json2("res.partner", "search_read", fields=["mobile"])
        assert status == 500 and body["name"] == "builtins.ValueError"
        status, body = await sandbox.json2(
            "res.partner", "search_read", domain=[["id", "in", [1]]], fields=["name"]
        )
        assert status == 200 and body[0]["id"] == 1


# ---------------------------------------------------------------- value conventions


async def test_values_on_the_wire(sandbox: Sandbox) -> None:
    spain = await sandbox.execute("res.country", "search_read", [["code", "=", "ES"]])
    pid = await sandbox.execute(
        "res.partner", "create", {"name": "Acme", "country_id": spain[0]["id"], "phone": ""}
    )
    (row,) = await sandbox.execute(
        "res.partner", "read", [pid], fields=["country_id", "state_id", "email", "phone",
                                               "write_date", "create_uid"]
    )  # fmt: skip
    assert row["id"] == pid
    assert row["country_id"] == [spain[0]["id"], "Spain"]
    assert row["state_id"] is False and row["email"] is False
    assert row["phone"] in ("", False)  # both mean empty (section 9)
    assert WIRE_DATETIME.match(row["write_date"])
    assert row["create_uid"] == [2, "Mitchell Admin"]


async def test_write_date_is_one_per_call_with_hidden_microseconds(sandbox: Sandbox) -> None:
    ids = await sandbox.execute("res.partner", "create", [{"name": f"P{i}"} for i in range(3)])
    assert isinstance(ids, list) and len(ids) == 3
    rows = await sandbox.execute("res.partner", "read", ids, fields=["write_date"])
    assert len({row["write_date"] for row in rows}) == 1
    table = sandbox.database.store.table("res.partner")
    (moment,) = {table[i]["write_date"] for i in ids}  # one transaction time, stored whole
    value = rows[0]["write_date"]
    assert moment.strftime("%Y-%m-%d %H:%M:%S") == value  # truncated, never rounded
    assert (
        await sandbox.execute(
            "res.partner", "search", [["id", "in", ids], ["write_date", "=", value]]
        )
        == []
    )
    found = await sandbox.execute(
        "res.partner", "search", [["id", "in", ids], ["write_date", ">=", value]]
    )
    assert found == ids
    iso = value.replace(" ", "T") + "Z"
    assert (
        await sandbox.execute(
            "res.partner", "search_count", [["id", "in", ids], ["write_date", ">=", iso]]
        )
        == 3
    )
    assert (
        await sandbox.execute(
            "res.partner", "search_count", [["id", "in", ids], ["write_date", ">=", value[:10]]]
        )
        == 3
    )


async def test_create_single_or_list_and_the_kwarg_quirk(sandbox: Sandbox) -> None:
    single = await sandbox.execute("res.partner", "create", {"name": "One"})
    assert isinstance(single, int)
    many = await sandbox.execute("res.partner", "create", [{"name": "A"}, {"name": "B"}])
    assert isinstance(many, list) and len(many) == 2
    call = sandbox.xmlrpc(
        "object", "execute_kw", DB, 2, API_KEY, "res.partner", "create", [],
        {"vals_list": {"name": "kw"}},
    )  # fmt: skip
    if sandbox.version <= 16:
        error = await fault(call)
        assert error.faultCode == 1 and "IndexError" in error.faultString
    else:
        assert isinstance(await call, int)


# ---------------------------------------------------------------- search


@pytest.fixture
async def people() -> AsyncIterator[Sandbox]:
    async with running_sandbox(17) as sandbox:
        rows = [
            {"name": "Ana García", "ref": "A1", "is_company": False, "phone": "600"},
            {"name": "ana lópez", "ref": "A2", "is_company": False},
            {"name": "Construcciones Ruiz S.L.", "ref": "B1", "is_company": True},
            {"name": "Talleres Díaz", "is_company": True, "active": False},
            {"name": "Pedro", "ref": "C1", "email": "p@x.es"},
        ]
        await sandbox.execute("res.partner", "create", rows)
        yield sandbox


DOMAINS: list[tuple[list[Any], set[str]]] = [
    ([["ref", "=", "A1"]], {"Ana García"}),
    ([["ref", "!=", "A1"]], {"ana lópez", "Construcciones Ruiz S.L.", "Pedro"}),
    ([["ref", "=", False]], set()),
    ([["phone", "!=", False]], {"Ana García"}),
    ([["ref", "in", ["A1", "C1"]]], {"Ana García", "Pedro"}),
    ([["ref", "not in", ["A1", "C1"]]], {"ana lópez", "Construcciones Ruiz S.L."}),
    ([["name", "like", "ana"]], {"ana lópez"}),
    ([["name", "ilike", "ana"]], {"Ana García", "ana lópez"}),
    ([["name", "not ilike", "ana"]], {"Construcciones Ruiz S.L.", "Pedro"}),
    ([["name", "=ilike", "ANA%"]], {"Ana García", "ana lópez"}),
    ([["name", "=like", "Ana%"]], {"Ana García"}),
    ([["id", ">", 0], ["ref", ">=", "B1"]], {"Construcciones Ruiz S.L.", "Pedro"}),
    ([["ref", "<", "B1"]], {"Ana García", "ana lópez"}),
    ([["ref", "<=", "A2"]], {"Ana García", "ana lópez"}),
    (["|", ["ref", "=", "A1"], ["ref", "=", "C1"]], {"Ana García", "Pedro"}),
    (["&", ["is_company", "=", False], ["name", "ilike", "ana"]], {"Ana García", "ana lópez"}),
    (["!", ["is_company", "=", False]], {"Construcciones Ruiz S.L."}),
    (
        ["|", "&", ["is_company", "=", True], ["ref", "=", "B1"], "!", ["email", "=", False]],
        {"Construcciones Ruiz S.L.", "Pedro"},
    ),
    ([["is_company", "=", True], ["active", "in", [True, False]]],
     {"Construcciones Ruiz S.L.", "Talleres Díaz"}),
]  # fmt: skip


@pytest.mark.parametrize(("domain", "names"), DOMAINS, ids=[str(d) for d, _ in DOMAINS])
async def test_domain_operators(people: Sandbox, domain: list[Any], names: set[str]) -> None:
    rows = await people.execute("res.partner", "search_read", domain, fields=["name"])
    assert {row["name"] for row in rows} == names


async def test_bad_domains_are_fault_1(people: Sandbox) -> None:
    for domain in ([["name", "~", "x"]], ["&", ["name", "=", "x"]], [["mobil", "=", "1"]], "x"):
        error = await fault(people.execute("res.partner", "search", domain))
        assert error.faultCode == 1


async def test_order_limit_offset_and_active_test(people: Sandbox) -> None:
    rows = await people.execute(
        "res.partner", "search_read", [["ref", "!=", False]], fields=["ref"],
        order="ref desc", limit=2, offset=1,
    )  # fmt: skip
    assert [row["ref"] for row in rows] == ["B1", "A2"]
    assert await people.execute("res.partner", "search_count", [["name", "ilike", "talleres"]]) == 0
    archived = await people.execute(
        "res.partner", "search_count", [["name", "ilike", "talleres"]],
        context={"active_test": False},
    )  # fmt: skip
    assert archived == 1
    error = await fault(people.execute("res.partner", "search", [], order="display_name"))
    assert error.faultCode == 1 and "not stored" in error.faultString  # 17+: not stored


# ---------------------------------------------------------------- models by version


async def test_partner_fields_by_version(sandbox: Sandbox) -> None:
    fields = await sandbox.execute("res.partner", "fields_get", attributes=["type", "store"])
    assert ("mobile" in fields) is (sandbox.version <= 18)
    assert ("title" in fields) is (sandbox.version <= 18)
    assert fields["display_name"]["store"] is (sandbox.version <= 16)
    assert ("complete_name" in fields) is (sandbox.version >= 17)
    assert "customer_rank" in fields  # account is installed in these runs
    call = sandbox.execute("res.partner", "search_read", [], fields=["mobile"], limit=1)
    if sandbox.version >= 19:
        assert (await fault(call)).faultCode == 1
    else:
        assert isinstance(await call, list)


async def test_module_dependent_fields() -> None:
    async with running_sandbox(17, modules=frozenset()) as bare:
        error = await fault(bare.execute("sale.order.line", "search_read", [],
                                         fields=["qty_to_deliver"]))  # fmt: skip
        assert error.faultString.splitlines()[-1] == (
            "ValueError: Invalid field 'qty_to_deliver' on model 'sale.order.line'"
        )
        fields = await bare.execute("res.partner", "fields_get")
        assert "customer_rank" not in fields


async def test_product_types_and_barcodes(sandbox: Sandbox) -> None:
    v = sandbox.version
    type_field = "detailed_type" if 15 <= v <= 17 else "type"
    fields = await sandbox.execute("product.product", "fields_get", attributes=["selection"])
    assert type_field in fields
    assert ("detailed_type" in fields) is (v in (16, 17))
    assert ("is_storable" in fields) is (v >= 18)
    storable = sandbox.execute("product.product", "create", {"name": "Caja", type_field: "product"})
    if v >= 18:
        error = await fault(storable)  # 'product' is no longer a type
        assert error.faultCode == 1 and "Wrong value" in error.faultString
    else:
        assert isinstance(await storable, int)
    await sandbox.execute("product.product", "create", {"name": "A", "barcode": "8400000000017"})
    error = await fault(
        sandbox.execute("product.product", "create", {"name": "B", "barcode": "8400000000017"})
    )
    assert error.faultCode == 2
    assert ("Barcode(s) already assigned" in error.faultString) is (v >= 16)


async def test_template_price_moves_variant_write_date_from_17(sandbox: Sandbox) -> None:
    pid = await sandbox.execute(
        "product.product", "create", {"name": "Widget", "default_code": "PW-1", "list_price": 5}
    )
    (variant,) = await sandbox.execute(
        "product.product", "read", [pid], fields=["product_tmpl_id", "write_date", "display_name"]
    )
    assert variant["display_name"] == "[PW-1] Widget"
    sandbox.advance(5)
    await sandbox.execute("product.template", "write", [variant["product_tmpl_id"][0]],
                          {"list_price": 7.5})  # fmt: skip
    (after,) = await sandbox.execute(
        "product.product", "read", [pid], fields=["lst_price", "list_price", "write_date"]
    )
    assert after["lst_price"] == after["list_price"] == 7.5
    assert (after["write_date"] > variant["write_date"]) is (sandbox.version >= 17)


async def test_sale_order_lifecycle(sandbox: Sandbox) -> None:
    v = sandbox.version
    partner = await sandbox.execute("res.partner", "create", {"name": "Cliente"})
    product = await sandbox.execute(
        "product.product", "create", {"name": "Peer Widget", "default_code": "PW-1",
                                      "list_price": 11.0}
    )  # fmt: skip
    order_id = await sandbox.execute(
        "sale.order", "create",
        {"partner_id": partner, "order_line": [[0, 0, {"product_id": product,
                                                       "product_uom_qty": 3}]]},
    )  # fmt: skip
    assert isinstance(order_id, int)
    uom, tax = ("product_uom_id", "tax_ids") if v >= 19 else ("product_uom", "tax_id")
    (order,) = await sandbox.execute(
        "sale.order", "read", [order_id],
        fields=["name", "state", "amount_total", "currency_id", "order_line"],
    )  # fmt: skip
    assert order["name"].startswith("S0") and order["state"] == "draft"
    assert order["currency_id"][1] == ("EUR" if v <= 16 else "USD")
    assert order["amount_total"] == (33.0 if v <= 16 else 37.95)
    (line,) = await sandbox.execute(
        "sale.order.line", "read", order["order_line"],
        fields=["name", "price_unit", uom, tax, "qty_to_deliver", "product_id"],
    )  # fmt: skip
    assert line["name"] == "[PW-1] Peer Widget" and line["price_unit"] == 11.0
    assert line[uom][1] == "Units" and line["qty_to_deliver"] == 3.0
    assert line["product_id"] == [product, "[PW-1] Peer Widget"]
    other = "tax_id" if v >= 19 else "tax_ids"
    assert (await fault(sandbox.execute(
        "sale.order.line", "read", order["order_line"], fields=[other]
    ))).faultCode == 1  # fmt: skip

    assert await sandbox.execute("sale.order", "action_confirm", [order_id]) is True
    again = sandbox.execute("sale.order", "action_confirm", [order_id])
    if v >= 17:
        assert (await fault(again)).faultCode == 2
    else:
        assert await again is True
    states = await sandbox.execute("sale.order", "fields_get", ["state"], attributes=["selection"])
    keys = [key for key, _label in states["state"]["selection"]]
    assert ("done" in keys) is (v <= 16)

    # A line price change bumps the order's write_date (totals are recomputed).
    (before,) = await sandbox.execute("sale.order", "read", [order_id], fields=["write_date"])
    sandbox.advance(3)
    await sandbox.execute("sale.order.line", "write", order["order_line"], {"price_unit": 12.0})
    (after,) = await sandbox.execute(
        "sale.order", "read", [order_id], fields=["write_date", "amount_untaxed"]
    )
    assert after["write_date"] > before["write_date"] and after["amount_untaxed"] == 36.0
    await sandbox.execute("sale.order.line", "write", order["order_line"], {"qty_delivered": 2})
    (line,) = await sandbox.execute(
        "sale.order.line", "read", order["order_line"], fields=["qty_to_deliver"]
    )
    assert line["qty_to_deliver"] == 1.0
    error = await fault(sandbox.execute(
        "sale.order.line", "search", [["qty_to_deliver", ">", 0]]
    ))  # fmt: skip
    assert error.faultCode == 1  # computed, not stored, not searchable


async def test_custom_field_through_ir_model_fields(sandbox: Sandbox) -> None:
    (model,) = await sandbox.execute("ir.model", "search", [["model", "=", "res.partner"]])
    error = await fault(sandbox.execute("ir.model.fields", "create", {
        "name": "clientify_status", "model_id": model, "field_description": "x",
        "ttype": "char"}))  # fmt: skip
    assert error.faultCode == 2 and "x_" in error.faultString
    await sandbox.execute("ir.model.fields", "create", {
        "name": "x_clientify_status", "model_id": model,
        "field_description": "Estado en Clientify", "ttype": "char",
    })  # fmt: skip
    fields = await sandbox.execute("res.partner", "fields_get", ["x_clientify_status"])
    assert fields["x_clientify_status"]["type"] == "char"
    pid = await sandbox.execute(
        "res.partner", "create", {"name": "X", "x_clientify_status": "client"}
    )
    rows = await sandbox.execute(
        "res.partner", "search_read", [["x_clientify_status", "=", "client"]], fields=["name"]
    )
    assert [row["id"] for row in rows] == [pid]  # fmt: skip


async def test_countries_states_and_currencies(sandbox: Sandbox) -> None:
    (spain,) = await sandbox.execute("res.country", "search", [["code", "=", "ES"]])
    madrid = await sandbox.execute(
        "res.country.state", "search_read", [["country_id", "=", spain], ["code", "=", "M"]],
        fields=["name"],
    )  # fmt: skip
    assert madrid[0]["name"] == "Madrid"
    by_name = await sandbox.execute(
        "res.country.state", "search", [["country_id", "=", spain], ["name", "=ilike", "madrid"]]
    )
    assert by_name == [madrid[0]["id"]]  # fmt: skip
    assert await sandbox.execute("res.country.state", "search_count",
                                 [["country_id", "=", spain]]) == 52  # fmt: skip
    codes = await sandbox.execute("res.currency", "search_read", [], fields=["name"])
    assert {"EUR", "USD"} <= {row["name"] for row in codes}


# ---------------------------------------------------------------- knobs, disk, seed


async def test_fault_knobs() -> None:
    async with running_sandbox(17) as sandbox:
        async with sandbox.session.post(
            f"{sandbox.url}/sandbox/faults", json={"error_rate": 1.0, "latency_ms": 50},
            headers={"Authorization": f"bearer {API_KEY}"},
        ) as reply:  # fmt: skip
            assert reply.status == 200
        async with sandbox.session.post(f"{sandbox.url}/jsonrpc", json={}) as reply:
            assert reply.status == 503
        assert sandbox.faults.injected == 1
        async with sandbox.session.post(
            f"{sandbox.url}/sandbox/faults", json={"error_rate": 2}, headers={}
        ) as reply:
            assert reply.status == 401


async def test_persisted_on_disk(tmp_path: Path) -> None:
    async with running_sandbox(16, data_dir=tmp_path) as sandbox:
        pid = await sandbox.execute("res.partner", "create", {"name": "Persistente"})
    async with running_sandbox(16, data_dir=tmp_path) as sandbox:
        rows = await sandbox.execute("res.partner", "read", [pid], fields=["name"])
        assert rows == [{"id": pid, "name": "Persistente"}]
    with pytest.raises(DataDirError, match="profile"):
        async with running_sandbox(17, data_dir=tmp_path):
            pass


async def test_the_automation_app_installs_into_a_database_made_without_it(
    tmp_path: Path,
) -> None:
    """`up` now starts its Odoo sandbox with base_automation: a data dir an earlier
    release made without it opens, with the app installed; dropping a module does not."""
    modules = frozenset({"account"})
    async with running_sandbox(17, modules, data_dir=tmp_path) as sandbox:
        pid = await sandbox.execute("res.partner", "create", {"name": "Antes"})
    async with running_sandbox(17, modules | {"base_automation"}, data_dir=tmp_path) as sandbox:
        installed = await sandbox.execute(
            "ir.module.module", "search_read", [["state", "=", "installed"]], fields=["name"]
        )
        assert {row["name"] for row in installed} == {"base", "account", "base_automation"}
        assert await sandbox.execute("res.partner", "read", [pid], fields=["name"]) == [
            {"id": pid, "name": "Antes"}
        ]
        assert await sandbox.execute("base.automation", "search_count", []) == 0
    with pytest.raises(DataDirError, match="profile"):
        async with running_sandbox(17, frozenset({"base_automation"}), data_dir=tmp_path):
            pass


async def test_seed_is_realistic() -> None:
    async with running_sandbox(17) as sandbox:
        report = seed(sandbox.database, partners=40, products=10, orders=15)
        assert (report.partners, report.products, report.orders) == (40, 10, 15)
        partners = await sandbox.execute(
            "res.partner", "search_read", [["ref", "!=", False]],
            fields=["name", "ref", "street", "zip", "state_id", "country_id", "is_company"],
        )  # fmt: skip
        assert len(partners) > 20
        for row in partners:
            assert re.fullmatch(r"[AB]\d{7}\d|\d{8}[A-Z]", row["ref"]), row["ref"]
            assert row["is_company"] is (row["ref"][0] in "AB")
            if not row["is_company"]:  # a NIF's letter is its number modulo 23
                assert row["ref"][8] == "TRWAGMYFPDXBNJZSQVHLCKE"[int(row["ref"][:8]) % 23]
            assert row["country_id"][1] == "Spain" and row["zip"][:2].isdigit()
        products = await sandbox.execute("product.product", "search_read", [],
                                          fields=["default_code", "barcode"])  # fmt: skip
        assert all(p["default_code"].startswith("SKU-") and len(p["barcode"]) == 13
                   for p in products)  # fmt: skip
        states = await sandbox.execute("sale.order", "search_read", [], fields=["state"])
        assert {row["state"] for row in states} <= {"draft", "sale"} and len(states) == 15


async def test_serialization_failures_roll_back() -> None:
    async with running_sandbox(19) as sandbox:
        async with sandbox.session.post(
            f"{sandbox.url}/sandbox/faults", json={"serialization_failures": 2},
            headers={"Authorization": f"bearer {API_KEY}"},
        ) as reply:  # fmt: skip
            assert (await reply.json())["serialization_failures"] == 2
        error = await fault(sandbox.execute("res.partner", "create", {"name": "Colisión"}))
        assert error.faultCode == 1
        assert error.faultString.splitlines()[-1] == (
            "psycopg2.errors.SerializationFailure: "
            "could not serialize access due to concurrent update"
        )
        status, body = await sandbox.json2("res.partner", "create", vals_list=[{"name": "C"}])
        assert (status, body["name"]) == (409, "psycopg2.errors.SerializationFailure")
        assert await sandbox.execute("res.partner", "search_count", []) == 0  # rolled back
        assert await sandbox.execute("res.partner", "create", {"name": "C"}) == 3


async def test_locking_and_cancelling_by_version(sandbox: Sandbox) -> None:
    partner = await sandbox.execute("res.partner", "create", {"name": "Cliente"})
    first, second = await sandbox.execute(
        "sale.order", "create", [{"partner_id": partner}, {"partner_id": partner}]
    )
    await sandbox.execute("sale.order", "action_confirm", [first])
    assert await sandbox.execute("sale.order", "action_done", [first]) is True
    fields = ["state", "locked"] if sandbox.version >= 17 else ["state"]
    (locked,) = await sandbox.execute("sale.order", "read", [first], fields=fields)
    if sandbox.version >= 17:  # pitfall 1: locked orders stay 'sale'
        assert (locked["state"], locked["locked"]) == ("sale", True)
    else:
        assert locked["state"] == "done"
    await sandbox.execute("sale.order", "action_cancel", [second])
    error = await fault(sandbox.execute("sale.order", "action_confirm", [second]))
    assert error.faultCode == 2 and "S0" in error.faultString


async def test_country_names_are_translated_once_the_language_is_installed() -> None:
    async with running_sandbox(17) as sandbox:
        spanish = {"lang": "es_ES"}
        rows = await sandbox.execute(
            "res.country", "search_read", [["code", "=", "ES"]], fields=["name"], context=spanish
        )
        assert rows[0]["name"] == "Spain"  # Spanish is not installed: 17 reads English
        async with sandbox.client() as client:
            await install_language(client, "es_ES")
        rows = await sandbox.execute(
            "res.country", "search_read", [["code", "=", "ES"]], fields=["name"], context=spanish
        )
        assert rows[0]["name"] == "España"
        assert await sandbox.execute(
            "res.country", "search", [["name", "=", "Spain"]], context=spanish
        ) == []  # fmt: skip
        found = await sandbox.execute(
            "res.country", "search", [["name", "=", "Spain"]], context={"lang": "en_US"}
        )
        assert found == [rows[0]["id"]]
        partner = await sandbox.execute("res.partner", "create", {"country_id": found[0],
                                                                  "name": "X"})  # fmt: skip
        (read,) = await sandbox.execute(
            "res.partner", "read", [partner], fields=["country_id"], context=spanish
        )
        assert read["country_id"] == [found[0], "España"]


async def test_19_warns_that_rpc_endpoints_are_deprecated(caplog: pytest.LogCaptureFixture) -> None:
    for version in (18, 19):
        caplog.clear()
        async with running_sandbox(version) as sandbox:
            await sandbox.xmlrpc("common", "version")
            await sandbox.xmlrpc("common", "version")
            await sandbox.jsonrpc("common", "version")
        warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
        if version == 18:
            assert warnings == []
        else:
            assert len(warnings) == 2 and all("Odoo 22" in w for w in warnings)


async def test_json2_unknown_and_internal_methods_are_404() -> None:
    async with running_sandbox(19) as sandbox:
        for method in ("no_such_method", "value", "create_one"):  # internal helpers too
            status, body = await sandbox.json2("res.partner", method)
            assert (status, body["name"]) == (404, "werkzeug.exceptions.NotFound"), method
        status, body = await sandbox.json2("res.partner", "_private")
        assert (status, body["name"]) == (403, "odoo.exceptions.AccessError")


async def test_x2many_commands() -> None:
    async with running_sandbox(17) as sandbox:
        partner = await sandbox.execute("res.partner", "create", {"name": "Cliente"})
        product = await sandbox.execute("product.product", "create", {"name": "Tornillo"})
        line = {"name": "a", "product_id": product, "price_unit": 10.0, "product_uom_qty": 1}
        order = await sandbox.execute("sale.order", "create", {
            "partner_id": partner, "order_line": [[0, 0, line], [0, 0, {**line, "name": "b"}]],
        })  # fmt: skip

        async def lines() -> list[dict[str, Any]]:
            (row,) = await sandbox.execute("sale.order", "read", [order], fields=["order_line"])
            found: list[dict[str, Any]] = await sandbox.execute(
                "sale.order.line", "read", row["order_line"], fields=["name", "tax_id"]
            )
            return found

        first, second = await lines()
        await sandbox.execute("sale.order", "write", [order], {"order_line": [
            [1, first["id"], {"name": "a2"}], [2, second["id"]], [0, 0, {**line, "name": "c"}],
        ]})  # fmt: skip
        assert [row["name"] for row in await lines()] == ["a2", "c"]
        kept = (await lines())[1]["id"]
        await sandbox.execute("sale.order", "write", [order], {"order_line": [[6, 0, [kept]]]})
        assert [row["id"] for row in await lines()] == [kept]
        await sandbox.execute("sale.order.line", "write", [kept], {"tax_id": [[6, 0, []]]})
        assert (await lines())[0]["tax_id"] == []
        (totals,) = await sandbox.execute("sale.order", "read", [order], fields=["amount_total"])
        assert totals["amount_total"] == 10.0  # recomputed without the tax
        await sandbox.execute("sale.order", "write", [order], {"order_line": [[5]]})
        assert await lines() == []
        error = await fault(
            sandbox.execute("sale.order", "write", [order], {"order_line": [[9, 0, {}]]})
        )
        assert error.faultCode == 1 and "invalid command" in error.faultString


async def test_dotted_paths_and_names_for_many2one() -> None:
    async with running_sandbox(18) as sandbox:
        spain, france = [
            (await sandbox.execute("res.country", "search", [["code", "=", code]]))[0]
            for code in ("ES", "FR")
        ]
        ids = await sandbox.execute("res.partner", "create", [
            {"name": "Madrileña", "country_id": spain}, {"name": "Parisienne",
                                                         "country_id": france},
        ])  # fmt: skip
        for domain in ([["country_id.code", "=", "ES"]], [["country_id", "=", "Spain"]],
                       [["country_id", "ilike", "spa"]]):  # fmt: skip
            assert await sandbox.execute("res.partner", "search", domain) == [ids[0]], domain
        product = await sandbox.execute("product.product", "create", {"name": "Casco"})
        order = await sandbox.execute("sale.order", "create", {
            "partner_id": ids[1], "order_line": [[0, 0, {"product_id": product}]]})  # fmt: skip
        found = await sandbox.execute(
            "sale.order", "search", [["order_line.product_id.name", "=", "Casco"]]
        )
        assert found == [order]


async def test_execute_db_service_and_limit_zero(sandbox: Sandbox) -> None:
    await sandbox.execute("res.partner", "create", [{"name": "A"}, {"name": "B"}])
    count = await sandbox.xmlrpc(
        "object", "execute", DB, 2, API_KEY, "res.partner", "search_count", []
    )
    assert count == 2
    assert len(await sandbox.execute("res.partner", "search", [], limit=0)) == 2
    assert len(await sandbox.execute("res.partner", "search", [], limit=1, offset=1)) == 1
    assert await sandbox.xmlrpc("db", "list") == [DB]
    assert await sandbox.xmlrpc("db", "server_version") == f"{sandbox.version}.0"
    error = await fault(sandbox.xmlrpc("common", "no_such_call"))
    assert error.faultCode == 1 and "Method not available" in error.faultString
