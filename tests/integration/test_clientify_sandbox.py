"""Every documented behaviour of the Clientify sandbox, checked over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.clientify.sandbox.app import SandboxOptions
from connectors.spanish_tax_ids import DNI_LETTERS, cif
from tests.support.clientify_fixtures import sandbox_at

MADRID_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0[12]:00$")
KEY = "test-key-0123456789"


class Api:
    """Raw HTTP against the sandbox, so the tests see exactly what a client would."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    def admin(self, path: str) -> str:
        return self.base.removesuffix("/v1") + "/_admin/" + path

    async def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = KEY, **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Token {key}"} if key else {}
        url = path if "://" in path else f"{self.base}/{path}"
        async with self.session.request(
            method, url, json=body, headers=headers, params=params or None, allow_redirects=False
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with (
        sandbox_at(SandboxOptions(data_dir=tmp_path, api_key=KEY)) as (_sandbox, base),
        aiohttp.ClientSession() as session,
    ):
        yield Api(session, base)


async def new_contact(api: Api, **fields: Any) -> dict[str, Any]:
    status, body = await api.call("POST", "contacts/", {"first_name": "Ana", **fields})
    assert status == 201, body
    return dict(body)


# ------------------------------------------------------------------ authentication


async def test_missing_key_is_a_404_with_api_key_not_provided(api: Api) -> None:
    assert await api.call("GET", "contacts/", key=None) == (
        404,
        {"detail": "Api key not provided."},
    )


async def test_bad_key_is_401_invalid_token(api: Api) -> None:
    assert await api.call("GET", "contacts/", key="wrong") == (401, {"detail": "Invalid token."})


async def test_my_account_checks_the_key_and_shows_the_time_zone(api: Api) -> None:
    status, body = await api.call("GET", "settings/my-account/")
    assert status == 200
    assert body["count"] == 1
    assert body["results"][0]["time_zone"] == "Europe/Madrid"
    assert body["results"][0]["currency"] == "EUR"


# ------------------------------------------------------------------ paths


async def test_unknown_path_is_an_html_404_even_without_a_key(api: Api) -> None:
    for key in (KEY, None):
        async with api.session.get(
            f"{api.base}/nothing-here/", headers={"Authorization": f"Token {key}"} if key else {}
        ) as response:
            assert response.status == 404
            assert response.content_type == "text/html"
            assert "Not Found" in await response.text()


async def test_missing_trailing_slash_redirects_like_django(api: Api) -> None:
    async with api.session.get(f"{api.base}/contacts", allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["Location"].endswith("/v1/contacts/")


# ------------------------------------------------------------------ contacts


async def test_contact_shape_follows_the_documented_response(api: Api) -> None:
    contact = await new_contact(
        api,
        last_name="Ruiz",
        email="ana@x.es",
        phone="+34600000000",
        status="cold-lead",
        taxpayer_identification_number="12345678Z",
        tags=["odoo"],
        custom_fields=[{"field": "odoo_id", "value": "17"}],
        addresses=[{"street": "C/ Mayor 1", "city": "Madrid", "postal_code": "28001", "type": 1}],
    )
    assert contact["url"] == f"{api.base}/contacts/{contact['id']}/"
    assert contact["emails"] == [{"id": contact["emails"][0]["id"], "email": "ana@x.es", "type": 4}]
    assert contact["phones"][0]["type"] == 1 and contact["phones"][0]["phone"] == "+34600000000"
    assert contact["channel"] == "integrations-api"
    assert contact["custom_fields"][0]["field"] == "odoo_id"
    assert contact["custom_fields"][0]["field_detail"]["field_type"] == 1
    assert contact["addresses"][0]["city"] == "Madrid" and "id" in contact["addresses"][0]
    assert MADRID_STAMP.match(contact["created"]) and MADRID_STAMP.match(contact["modified"])
    assert contact["company"] is None and contact["deals"] == []


async def test_list_items_lack_addresses_websites_and_deals(api: Api) -> None:
    contact = await new_contact(api, addresses=[{"city": "Sevilla"}])
    status, page = await api.call("GET", "contacts/")
    assert status == 200
    item = page["results"][0]
    assert item["id"] == contact["id"]
    assert not {"addresses", "websites", "deals"} & set(item)
    status, addresses = await api.call("GET", f"contacts/{contact['id']}/addresses/")
    assert status == 200 and addresses["results"][0]["city"] == "Sevilla"


async def test_a_contact_posted_twice_is_duplicated(api: Api) -> None:
    first = await new_contact(api, email="same@x.es")
    second = await new_contact(api, email="same@x.es")
    assert first["id"] != second["id"]
    _status, page = await api.call("GET", "contacts/", email="same@x.es")
    assert page["count"] == 2


async def test_company_name_on_a_contact_links_or_creates_the_company(api: Api) -> None:
    status, company = await api.call("POST", "companies/", {"name": "Acme"})
    assert status == 201
    linked = await new_contact(api, company="acme")
    assert linked["company"] == company["url"] and linked["company_name"] == "Acme"
    created = await new_contact(api, company="Nueva SL")
    _status, page = await api.call("GET", "companies/", query="Nueva")
    assert page["count"] == 1 and created["company"] == page["results"][0]["url"]


async def test_validation_errors_are_a_drf_field_map(api: Api) -> None:
    status, body = await api.call(
        "POST", "contacts/", {"status": "boss", "emails": [{"email": "ok@x.es"}, {"email": "no"}]}
    )
    assert status == 400
    assert body == {
        "first_name": ["This field is required."],
        "status": ['"boss" is not a valid choice.'],
        "emails": [{}, {"email": ["Enter a valid email address."]}],
    }
    status, body = await api.call("POST", "companies/", {"number_of_employees": "many"})
    assert status == 400
    assert body == {
        "name": ["This field is required."],
        "number_of_employees": ["A valid integer is required."],
    }
    status, body = await api.call("POST", "products/", {"name": "X", "price": "cheap"})
    assert (status, body) == (400, {"price": ["A valid number is required."]})


async def test_bodies_that_are_not_objects_or_json(api: Api) -> None:
    status, body = await api.call("POST", "contacts/", [1, 2])
    assert status == 400
    assert body == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    async with api.session.post(
        f"{api.base}/contacts/",
        data=b"{nope",
        headers={"Authorization": f"Token {KEY}", "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["detail"].startswith("JSON parse error")


async def test_put_is_a_partial_update(api: Api) -> None:
    contact = await new_contact(api, last_name="Ruiz", title="CTO")
    await asyncio.sleep(0.001)
    status, updated = await api.call("PUT", f"contacts/{contact['id']}/", {"title": "CEO"})
    assert status == 200
    assert (updated["title"], updated["last_name"]) == ("CEO", "Ruiz")
    assert updated["created"] == contact["created"]
    assert updated["modified"] > contact["modified"]


async def test_delete_is_204_and_then_not_found(api: Api) -> None:
    contact = await new_contact(api)
    status, body = await api.call("DELETE", f"contacts/{contact['id']}/")
    assert (status, body) == (204, "")
    assert await api.call("GET", f"contacts/{contact['id']}/") == (404, {"detail": "Not found."})


# ------------------------------------------------------------------ lists and filters


async def test_drf_pagination_default_20_max_100_with_full_urls(api: Api) -> None:
    status, seeded = await api.call("POST", api.admin("seed/"), {"count": 130})
    assert status == 201 and seeded["products"] == 130
    _status, first = await api.call("GET", "products/")
    assert (first["count"], len(first["results"]), first["previous"]) == (130, 20, None)
    assert first["next"] == f"{api.base}/products/?page=2"
    _status, big = await api.call("GET", "products/", page_size="500")
    assert len(big["results"]) == 100
    assert big["next"] == f"{api.base}/products/?page_size=500&page=2"
    _status, last = await api.call("GET", big["next"])
    assert len(last["results"]) == 30 and last["next"] is None
    assert last["previous"] == f"{api.base}/products/?page_size=500"
    assert await api.call("GET", "products/", page="9") == (404, {"detail": "Invalid page."})


async def test_query_email_phone_and_sku_filters(api: Api) -> None:
    ana = await new_contact(
        api, last_name="Ruiz", email="ana@x.es", phone="+34 600 11 22 33",
        taxpayer_identification_number="B-12.345.678",
    )  # fmt: skip
    await new_contact(api, first_name="Luis", email="luis@x.es")
    for params in ({"query": "ruiz"}, {"query": "12.345"}, {"email": "ANA@x.es"},
                   {"phone": "600112233"}):  # fmt: skip
        _status, page = await api.call("GET", "contacts/", **params)
        assert [c["id"] for c in page["results"]] == [ana["id"]], params
    for sku in ("A-1", "A-10"):
        await api.call("POST", "products/", {"name": sku, "sku": sku, "price": 1})
    _status, page = await api.call("GET", "products/", sku="A-1")
    assert [p["sku"] for p in page["results"]] == ["A-1"]


async def test_query_sees_each_record_as_it_is_now(tmp_path: Path) -> None:
    """`query=` searches a text kept per record (lists scan every record on every
    request): an update or a delete changes what it finds at once, a match never spans
    two fields, and a restarted sandbox lists in id order."""
    async with (
        sandbox_at(SandboxOptions(data_dir=tmp_path, api_key=KEY)) as (_sandbox, base),
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, base)
        ids = [(await new_contact(api, first_name=f"Nombre{n}", last_name="Ruiz"))["id"]
               for n in range(3)]  # fmt: skip

        async def found(text: str) -> list[int]:
            _status, page = await api.call("GET", "contacts/", query=text)
            return [c["id"] for c in page["results"]]

        assert await found("nombre1") == [ids[1]]
        await api.call("PUT", f"contacts/{ids[1]}/", {"first_name": "Otro"})
        assert await found("nombre1") == [] and await found("otro") == [ids[1]]
        assert await found("nombre2ruiz") == []  # first name and last name are two fields
        await api.call("DELETE", f"contacts/{ids[0]}/")
        assert await found("ruiz") == ids[1:]
    async with (
        sandbox_at(SandboxOptions(data_dir=tmp_path, api_key=KEY)) as (_again, base),
        aiohttp.ClientSession() as session,
    ):
        _status, page = await Api(session, base).call("GET", "contacts/", query="RUIZ")
        assert [c["id"] for c in page["results"]] == ids[1:]


async def test_unknown_and_unsupported_filters_are_ignored(api: Api) -> None:
    await new_contact(api, taxpayer_identification_number="11111111H")
    await new_contact(api, taxpayer_identification_number="22222222J")
    for params in ({"colour": "blue"}, {"taxpayer_identification_number": "11111111H"}):
        _status, page = await api.call("GET", "contacts/", **params)
        assert page["count"] == 2, params


async def test_modified_and_created_filters(api: Api) -> None:
    old = await new_contact(api)
    await asyncio.sleep(0.01)
    new = await new_contact(api)
    cut = datetime.fromisoformat(new["created"]) - timedelta(microseconds=1)
    for op, expected in (("gt", [new]), ("gte", [new]), ("lt", [old]), ("lte", [old])):
        for field in ("created", "modified"):
            _status, page = await api.call(
                "GET", "contacts/", **{f"{field}[{op}]": cut.isoformat()}
            )
            assert [c["id"] for c in page["results"]] == [c["id"] for c in expected], (field, op)
    _status, page = await api.call("GET", "contacts/", **{"created[gte]": "2000/01/01"})
    assert page["count"] == 2
    _status, page = await api.call("GET", "contacts/", **{"modified[lt]": "2000-01-01T00:00Z"})
    assert page["count"] == 0
    status, body = await api.call("GET", "contacts/", **{"modified[gt]": "yesterday"})
    assert (status, body) == (400, {"modified[gt]": ["Enter a valid date/time."]})


async def test_custom_field_definitions(api: Api) -> None:
    await api.call(
        "POST", "products/", {"name": "X", "custom_fields": [{"field": "odoo_id", "value": 3}]}
    )
    _status, page = await api.call("GET", "custom-fields/", object_type="products")
    assert page["count"] == 1
    field = page["results"][0]
    assert (field["name"], field["content_type"]) == ("odoo_id", "products | product")
    _status, page = await api.call("GET", "custom-fields/", object_type="contacts")
    assert page["count"] == 0


# ------------------------------------------------------------------ orders


async def test_orders_are_get_and_post_only_and_upsert_by_ecommerce_and_order_id(api: Api) -> None:
    contact = await new_contact(api)
    order = {
        "order_id": "S00042", "ecommerce": "Odoo", "status": "confirmed", "currency": "EUR",
        "order_date": "2024-01-31 10:00:00", "contact": contact["url"],
        "items": [{"name": "Tornillo", "sku": "T-1", "price": "1.50", "quantity": 4}],
    }  # fmt: skip
    status, created = await api.call("POST", "orders/", order)
    assert status == 201 and created["amount"] == "6.00" and created["contact"] == contact["url"]
    status, again = await api.call("POST", "orders/", {**order, "status": "paid"})
    assert (status, again["id"], again["status"]) == (200, created["id"], "paid")
    _status, page = await api.call("GET", "orders/")
    assert page["count"] == 1
    for method, path in (("PUT", "orders/"), ("DELETE", f"orders/{created['id']}/"),
                         ("PATCH", f"orders/{created['id']}/")):  # fmt: skip
        status, body = await api.call(method, path, {})
        assert (status, body) == (405, {"detail": f'Method "{method}" not allowed.'})


async def test_order_contact_by_fields_is_matched_or_created(api: Api) -> None:
    contact = await new_contact(api, taxpayer_identification_number="12345678Z")
    base = {"ecommerce": "Odoo", "items": [{"name": "x", "price": 1, "quantity": 1}]}
    by_nif = {"taxpayer_identification_number": "12.345.678-z"}
    status, order = await api.call("POST", "orders/", {**base, "order_id": "1", "contact": by_nif})
    assert status == 201 and order["contact"] == contact["url"]
    status, body = await api.call(
        "POST", "orders/", {**base, "order_id": "2", "contact": "http://x/v1/contacts/999/"}
    )
    assert (status, body) == (400, {"contact": ["Invalid hyperlink - Object does not exist."]})
    status, body = await api.call(
        "POST",
        "orders/",
        {"ecommerce": "Odoo", "order_id": "3", "contact": contact["url"], "items": []},
    )
    assert (status, body) == (400, {"items": ["This list may not be empty."]})


# ------------------------------------------------------------------ throttling, faults, disk


async def test_throttling_answers_429_with_retry_after(tmp_path: Path) -> None:
    options = SandboxOptions(api_key=KEY, throttle_rps=2)
    async with sandbox_at(options) as (sandbox, base), aiohttp.ClientSession() as session:
        api = Api(session, base)
        statuses = [(await api.call("GET", "contacts/"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        async with session.get(f"{base}/contacts/", headers={"Authorization": f"Token {KEY}"}) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
            body = await r.json()
        assert body == {"detail": "Request was throttled. Expected available in 1 second."}
        await asyncio.sleep(1.05)
        assert (await api.call("GET", "contacts/"))[0] == 200
        assert sandbox.throttle.throttled == 2


async def test_stats_count_requests_per_endpoint(api: Api) -> None:
    contact = await new_contact(api, first_name="Ana")
    await api.call("GET", f"contacts/{contact['id']}/")
    await api.call("GET", "contacts/")
    await api.call("GET", "companies/")
    status, stats = await api.call("GET", api.admin("stats/"))
    assert status == 200 and stats["requests"] == 4
    assert stats["requests_by_endpoint"] == {
        "POST /v1/contacts/": 1, "GET /v1/contacts/{id}/": 1,
        "GET /v1/contacts/": 1, "GET /v1/companies/": 1,
    }  # fmt: skip


async def test_latency_and_error_knobs(api: Api) -> None:
    admin = api.admin("knobs/")
    status, knobs = await api.call("PUT", admin, {"latency_ms": 150, "error_rate": 1})
    assert status == 200 and knobs["error_rate"] == 1
    started = time.monotonic()
    status, body = await api.call("GET", "contacts/")
    assert status == 503 and "detail" in body
    assert time.monotonic() - started >= 0.15
    status, knobs = await api.call("PUT", admin, {"error_rate": 2})
    assert status == 400 and "error_rate" in knobs
    await api.call("PUT", admin, {"latency_ms": 0, "error_rate": 0})
    assert (await api.call("GET", "contacts/"))[0] == 200


async def test_data_and_key_survive_a_restart(tmp_path: Path) -> None:
    async with sandbox_at(SandboxOptions(data_dir=tmp_path)) as (sandbox, base):
        key = sandbox.api_key
        async with aiohttp.ClientSession() as session:
            await Api(session, base).call("POST", "products/", {"name": "P", "sku": "P-1"}, key=key)
    async with sandbox_at(SandboxOptions(data_dir=tmp_path)) as (again, base):
        assert again.api_key == key
        async with aiohttp.ClientSession() as session:
            _status, page = await Api(session, base).call("GET", "products/", key=key)
    assert [p["sku"] for p in page["results"]] == ["P-1"]


async def test_seed_data_is_realistic_and_spanish(api: Api) -> None:
    admin = api.admin("seed/")
    assert (await api.call("POST", admin, {"count": 5}))[1] == {
        "companies": 5, "contacts": 5, "products": 5,
    }  # fmt: skip
    _status, contacts = await api.call("GET", "contacts/")
    _status, companies = await api.call("GET", "companies/")
    for contact in contacts["results"]:
        nif = contact["taxpayer_identification_number"]
        assert nif[-1] == DNI_LETTERS[int(nif[:8]) % 23]
        assert contact["company"] is not None and contact["emails"][0]["email"].endswith(".es")
    for company in companies["results"]:
        tax_id = company["taxpayer_identification_number"]
        assert tax_id == cif(tax_id[0], int(tax_id[1:8]))
    assert cif("B", 1234567) == "B12345674"  # a published valid CIF


async def test_custom_field_source_and_type_filters_and_ordering(api: Api) -> None:
    a = await new_contact(api, first_name="Zoe", contact_source="Odoo",
                          custom_fields=[{"field": "odoo_id", "value": "17"}])  # fmt: skip
    b = await new_contact(api, first_name="Ana", contact_type="lead")
    status, _seeded = await api.call("POST", api.admin("seed/"), {"count": 12})  # tops up to 12
    assert status == 201
    _status, page = await api.call("GET", "contacts/", ordering="-id", page_size="3")
    assert [c["id"] for c in page["results"]] == [12, 11, 10]  # numbers, not text
    for doc_id in range(3, 13):
        await api.call("DELETE", f"contacts/{doc_id}/")
    for params, expected in (
        ({"cf_odoo_id": "17"}, [a]), ({"contact_source": "Odoo"}, [a]),
        ({"contact_type": "lead"}, [b]), ({"ordering": "first_name"}, [b, a]),
        ({"ordering": "-id"}, [b, a]), ({"ordering": "colour"}, [a, b]),
    ):  # fmt: skip
        _status, page = await api.call("GET", "contacts/", **params)
        assert [c["id"] for c in page["results"]] == [c["id"] for c in expected], params


async def test_sub_lists_users_and_unsupported_media(api: Api) -> None:
    contact = await new_contact(api, tags=["vip", "odoo"], phones=[{"phone": "600", "type": 2}])
    _status, tags = await api.call("GET", f"contacts/{contact['id']}/tags/")
    assert [t["name"] for t in tags["results"]] == ["vip", "odoo"]
    _status, phones = await api.call("GET", f"contacts/{contact['id']}/phones/")
    assert phones["count"] == 1 and phones["results"][0]["type"] == 2
    status, users = await api.call("GET", "users/")
    assert status == 200 and users["count"] == 1
    async with api.session.post(
        f"{api.base}/contacts/", data=b"first_name=Ana",
        headers={"Authorization": f"Token {KEY}", "Content-Type": "text/plain"},
    ) as response:  # fmt: skip
        assert response.status == 415
        assert (await response.json())[
            "detail"
        ] == 'Unsupported media type "text/plain" in request.'
