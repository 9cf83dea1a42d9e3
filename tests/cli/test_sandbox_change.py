"""`clientify-odoo sandbox change` as a user runs it against the two sandboxes (real
servers on 127.0.0.1, found through a `stack.env` as `up` writes it): it changes what
it says it changes, an address part edits a Clientify record's first address, and a
field it cannot set is refused with the fields it can, nothing written."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clientify_odoo.stack.plan import STACK_ENV
from connectors.clientify import ClientifyClient
from connectors.odoo import OdooClient
from tests.support.clientify_fixtures import sandbox_at
from tests.support.odoo_fixtures import API_KEY, DB, LOGIN, running_sandbox

COMMAND = str(Path(sys.executable).parent / "clientify-odoo")
TAX_ID = "B46000001"
REF = "B-41.000.002"
MADRID = {"street": "Calle Mayor 1", "city": "Madrid", "state": "Madrid",
          "country": "Spain", "postal_code": "28001", "type": 1}  # fmt: skip
HOME = {"street": "Calle Sierpes 4", "city": "Sevilla", "state": "Sevilla",
        "country": "Spain", "postal_code": "41004", "type": 2}  # fmt: skip


@dataclass
class Sandboxes:
    stack_dir: Path
    clientify: ClientifyClient
    odoo: OdooClient

    async def change(self, *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            COMMAND, "sandbox", "change", *args, "--stack-dir", str(self.stack_dir),
            env={**os.environ, "COLUMNS": "250"}, cwd="/tmp",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[Sandboxes]:
    async with sandbox_at() as (clientify_sandbox, clientify_url), running_sandbox(17) as odoo:
        (tmp_path / STACK_ENV).write_text(
            f"CLIENTIFY_URL={clientify_url}\nCLIENTIFY_API_KEY={clientify_sandbox.api_key}\n"
            f"ODOO_URL={odoo.url}\nODOO_DB={DB}\nODOO_USER={LOGIN}\nODOO_API_KEY={API_KEY}\n"
        )
        async with (
            ClientifyClient(clientify_url, clientify_sandbox.api_key) as clientify,
            odoo.client() as odoo_client,
        ):
            yield Sandboxes(tmp_path, clientify, odoo_client)


async def company(sandboxes: Sandboxes, addresses: list[dict[str, Any]]) -> int:
    created = await sandboxes.clientify.companies.create(
        {"name": "Levante SL", "taxpayer_identification_number": TAX_ID, "addresses": addresses}
    )
    return int(created["id"])


def without_ids(addresses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in address.items() if k != "id"} for address in addresses]


async def test_a_clientify_company_city_changes_its_first_address_and_keeps_the_rest(
    sandboxes: Sandboxes,
) -> None:
    company_id = await company(sandboxes, [MADRID, HOME])
    code, out, err = await sandboxes.change(
        "clientify", "company", TAX_ID, "city=Valencia", "postal_code=46001"
    )
    assert code == 0, err
    assert f"Changed Clientify company {company_id} ({TAX_ID}): " in out
    assert "; city, postal_code in its first address" in out
    stored = await sandboxes.clientify.companies.get(company_id)
    assert without_ids(stored["addresses"]) == [
        {**MADRID, "city": "Valencia", "postal_code": "46001"},
        HOME,
    ]


async def test_an_address_part_gives_a_contact_without_one_its_first_address(
    sandboxes: Sandboxes,
) -> None:
    created = await sandboxes.clientify.contacts.create(
        {"first_name": "Ana", "taxpayer_identification_number": "12345678Z"}
    )
    assert created["addresses"] == []
    code, _out, err = await sandboxes.change(
        "clientify", "contact", "12345678Z", "street=Calle Colón 1", "city=Valencia",
        "state=Valencia", "country=Spain", "postal_code=46004", "first_name=Ana María",
    )  # fmt: skip
    assert code == 0, err
    stored = await sandboxes.clientify.contacts.get(created["id"])
    [address] = without_ids(stored["addresses"])
    assert {k: v for k, v in address.items() if k != "type"} == {
        "street": "Calle Colón 1", "city": "Valencia", "state": "Valencia",
        "country": "Spain", "postal_code": "46004",
    }  # fmt: skip
    assert stored["first_name"] == "Ana María"


async def test_a_field_clientify_does_not_take_is_refused_with_the_fields_it_does(
    sandboxes: Sandboxes,
) -> None:
    company_id = await company(sandboxes, [MADRID])
    before = await sandboxes.clientify.companies.get(company_id)
    code, out, err = await sandboxes.change(
        "clientify", "company", TAX_ID, "city=Valencia", "town=Valencia", "zip=46001"
    )
    assert code == 2 and "Changed" not in out
    assert "a Clientify company takes no field 'town', 'zip'" in err
    for name in ("business_name", "city", "country", "name", "postal_code", "state", "street"):
        assert name in err.split("the fields it takes:")[1]
    # Nothing written, not even the field it knows.
    assert await sandboxes.clientify.companies.get(company_id) == before

    # A product has no address.
    await sandboxes.clientify.products.create({"name": "Tornillo", "sku": "TOR-1"})
    code, _out, err = await sandboxes.change("clientify", "product", "TOR-1", "city=Valencia")
    assert code == 2 and "a Clientify product takes no field 'city'" in err
    assert "price" in err and "sku" in err and "postal_code" not in err


async def test_a_value_clientify_rejects_says_so_and_changes_nothing(
    sandboxes: Sandboxes,
) -> None:
    company_id = await company(sandboxes, [MADRID])
    before = await sandboxes.clientify.companies.get(company_id)
    code, out, err = await sandboxes.change(
        "clientify", "company", TAX_ID, "postal_code=" + "4" * 21
    )
    assert code == 1 and "Changed" not in out
    assert "no more than 20 characters" in err and "nothing was changed" in err
    assert await sandboxes.clientify.companies.get(company_id) == before


async def odoo_partner(sandboxes: Sandboxes) -> int:
    partner: int = await sandboxes.odoo.create(
        "res.partner", {"name": "Bética SL", "ref": REF, "is_company": True, "city": "Madrid"}
    )
    return partner


async def test_an_odoo_partner_city_changes(sandboxes: Sandboxes) -> None:
    partner = await odoo_partner(sandboxes)
    code, out, err = await sandboxes.change("odoo", "partner", REF, "city=Sevilla", "zip=41004")
    assert code == 0, err
    assert f"Changed Odoo res.partner {partner} (ref {REF})" in out
    [row] = await sandboxes.odoo.read("res.partner", [partner], ["city", "zip"])
    assert (row["city"], row["zip"]) == ("Sevilla", "41004")


async def test_an_odoo_field_that_is_unknown_or_read_only_is_refused_with_the_writable_ones(
    sandboxes: Sandboxes,
) -> None:
    partner = await odoo_partner(sandboxes)
    [was] = await sandboxes.odoo.read("res.partner", [partner], ["display_name", "write_date"])
    # Odoo itself would take `display_name` and ignore it (computed, read-only).
    code, out, err = await sandboxes.change(
        "odoo", "partner", REF, "display_name=Bética", "town=Sevilla"
    )
    assert code == 2 and "Changed" not in out
    assert "an Odoo partner (res.partner) takes no field 'display_name' (read-only), " in err
    assert "'town'" in err
    writable = err.split("the fields it takes:")[1]
    for name in ("city", "country_id", "name", "state_id", "street", "zip"):
        assert name in writable
    assert "display_name" not in writable
    [now] = await sandboxes.odoo.read("res.partner", [partner], ["display_name", "write_date"])
    assert now == was

    # A value Odoo rejects: its words, and nothing changed.
    code, out, err = await sandboxes.change("odoo", "partner", REF, "country_id=Spain")
    assert code == 1 and "Changed" not in out
    assert "country_id" in err and "nothing was changed" in err
