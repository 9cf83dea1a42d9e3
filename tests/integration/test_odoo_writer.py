"""The Odoo writer against the sandbox over HTTP (Odoo 17 and 19): the custom field,
creates and field-by-field updates with country/state resolution, keys found however
they are punctuated, skips where Odoo changed meanwhile, and `mobile` absent on 19."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.odoo import OdooClient
from consumers.writers.odoo import OdooTarget
from schemas.mapping import load_mapping
from tests.contracts.target import TargetContract
from tests.support.commands import COMPANY
from tests.support.commands import odoo_command as command
from tests.support.odoo_fixtures import install_language, odoo_peer, peers, running_sandbox
from tests.support.real_odoo import unique

PARTNER_FIELDS = ["name", "ref", "is_company", "phone", "street", "city", "zip", "state_id",
                  "country_id", "x_clientify_status"]  # fmt: skip


@pytest.fixture(params=[17, 19])
async def odoo(request: pytest.FixtureRequest) -> AsyncIterator[tuple[OdooTarget, OdooClient]]:
    async with running_sandbox(request.param) as sandbox, sandbox.client() as client:
        writer = OdooTarget(client, load_mapping())
        assert await writer.ensure_custom_fields() == ["res.partner.x_clientify_status"]
        assert await writer.ensure_custom_fields() == []  # once is enough
        yield writer, client


class OdooHarness:
    def __init__(self, target: OdooTarget, client: OdooClient) -> None:
        self.target, self.client = target, client

    def company(self) -> dict[str, Any]:
        return dict(COMPANY)

    async def make(self, entity: str, key: str, fields: dict[str, Any]) -> str:
        flow = self.target.mappers[entity].flow
        vals = self.target.mappers[entity].to_odoo(fields) | {flow.key.odoo[0]: key}
        vals |= {
            name: value for name, value in flow.odoo.where.items() if not isinstance(value, list)
        }
        return str(await self.client.create(flow.odoo.model, vals))

    async def change(self, entity: str, record_id: str, fields: dict[str, Any]) -> None:
        mapper = self.target.mappers[entity]
        await self.client.write(mapper.flow.odoo.model, [int(record_id)], mapper.to_odoo(fields))


class TestOdooTarget(TargetContract):
    @pytest.fixture(params=peers(sandboxes=(17, 19)))
    async def harness(self, request: pytest.FixtureRequest) -> AsyncIterator[OdooHarness]:
        async with odoo_peer(request.param) as peer, peer.client() as client:
            yield OdooHarness(OdooTarget(client, load_mapping()), client)


async def read(client: OdooClient, model: str, record_id: str | None) -> dict[str, Any]:
    fields = PARTNER_FIELDS if model == "res.partner" else ["name", "list_price", "default_code"]
    [row] = await client.read(model, [int(record_id or 0)], fields)
    return row


async def test_company_created_and_updated_with_country_and_state(
    odoo: tuple[OdooTarget, OdooClient],
) -> None:
    writer, client = odoo
    await install_language(client, "es_ES")  # "España" is a name only in Spanish
    fields = {"name": "Acme Soluciones", "phone": "+34 911 111 111", "street": "Calle Mayor 1",
              "city": "Madrid", "state": "Madrid", "country": "España", "zip": "28001"}  # fmt: skip
    created = await writer.apply(command("company", "B12345678", fields))
    row = await read(client, "res.partner", created.target_id)
    assert row["is_company"] is True and row["ref"] == "B12345678"
    assert row["country_id"][1] == "Spain" and row["state_id"][1].startswith("Madrid")

    moved = await writer.apply(
        command("company", "B12345678", {"state": "Barcelona", "city": "Barcelona"},
                expected={"city": "Madrid"}, target_id=created.target_id)
    )  # fmt: skip
    assert moved.written == {"state": "Barcelona", "city": "Barcelona"}
    row = await read(client, "res.partner", created.target_id)
    assert row["state_id"][1].startswith("Barcelona") and row["street"] == "Calle Mayor 1"
    same = await writer.apply(command("company", "B12345678", {"city": "Barcelona"}))
    assert same.unchanged == {"city": "Barcelona"}


async def test_key_found_however_punctuated_and_stale_fields_skipped(
    odoo: tuple[OdooTarget, OdooClient],
) -> None:
    writer, client = odoo
    partner_id = await client.create(
        "res.partner", {"name": "Ana Ruiz", "ref": "12.345.678-z", "city": "Madrid"}
    )
    result = await writer.apply(
        command("contact", "12345678Z", {"city": "Toledo", "name": "Ana María",
                                         "clientify_status": "client"},
                expected={"city": "Sevilla"})
    )  # fmt: skip
    assert result.target_id == str(partner_id)
    assert result.skipped == {"city": "Toledo"} and result.found == {"city": "Madrid"}
    assert result.written == {"name": "Ana María", "clientify_status": "client"}
    row = await read(client, "res.partner", result.target_id)
    assert (row["city"], row["name"], row["x_clientify_status"]) == (
        "Madrid",
        "Ana María",
        "client",
    )


async def test_mobile_is_written_where_odoo_has_it(odoo: tuple[OdooTarget, OdooClient]) -> None:
    writer, client = odoo
    result = await writer.apply(
        command("contact", "X1234567L", {"name": "Luis", "phone": "911", "mobile": "600"})
    )
    assert result.written.get("phone") == "911"
    update = await writer.apply(command("contact", "X1234567L", {"mobile": "601"}))
    if client.version is not None and client.version.major >= 19:
        for done, value in ((result, "600"), (update, "601")):
            assert done.skipped == {"mobile": value} and done.found == {"mobile": None}
            assert done.error and "has no field mobile" in done.error
    else:
        assert result.written["mobile"] == "600" and update.written == {"mobile": "601"}
        [row] = await client.read("res.partner", [int(result.target_id or 0)], ["mobile"])
        assert row["mobile"] == "601"


async def test_products_and_unknown_countries(odoo: tuple[OdooTarget, OdooClient]) -> None:
    writer, client = odoo
    created = await writer.apply(command("product", "WID-1", {"name": "Widget", "price": 12.5}))
    updated = await writer.apply(command("product", "WID-1", {"price": 13.0}))
    assert updated.target_id == created.target_id and updated.written == {"price": 13.0}
    row = await read(client, "product.product", created.target_id)
    assert (row["name"], row["list_price"], row["default_code"]) == ("Widget", 13.0, "WID-1")
    # A country Odoo does not know is reported, never guessed; the rest is written.
    narnia = await writer.apply(command("contact", "Y7654321G", {"name": "X", "country": "Narnia"}))
    assert narnia.written == {"name": "X"} and narnia.refused == {"country": "Narnia"}
    assert narnia.found == {"country": None} and not narnia.skipped
    assert narnia.error and "no country named 'Narnia'" in narnia.error
    row = await read(client, "res.partner", narnia.target_id)
    assert (row["name"], row["country_id"]) == ("X", False)


async def test_a_company_partners_contact_leaves_the_company_fields_alone(
    odoo: tuple[OdooTarget, OdooClient],
) -> None:
    writer, client = odoo
    company = await writer.apply(
        command("company", "B12345678", {"name": "Acme", "city": "Madrid"})
    )
    result = await writer.apply(
        command("contact", "B12345678", {"city": "Toledo", "clientify_status": "client"})
    )
    assert result.target_id == company.target_id  # the same partner: no second one
    assert result.written == {"clientify_status": "client"}
    assert result.skipped == {"city": "Toledo"} and result.found == {"city": None}
    assert (await read(client, "res.partner", company.target_id))["city"] == "Madrid"


# What Clientify users write for a country, and the ISO code Odoo must end up with.
COUNTRIES = {
    "Germany": "DE", "Alemania": "DE", "DE": "DE", "de": "DE", "Chile": "CL",
    "Mexico": "MX", "México": "MX", "Austria": "AT", "Denmark": "DK", "Dinamarca": "DK",
    "Netherlands": "NL", "Países Bajos": "NL", "Morocco": "MA", "Marruecos": "MA",
    "Spain": "ES", "España": "ES", "  españa ": "ES", "ES": "ES",
}  # fmt: skip
# Every Spanish province by the names people write (Castilian, the co-official one, the
# short one) and by its code, with the code Odoo knows it by.
PROVINCES: dict[str, tuple[str, ...]] = {
    "C": ("A Coruña", "La Coruña", "Coruña"), "VI": ("Álava", "Araba", "Alava"),
    "AB": ("Albacete",), "A": ("Alicante", "Alacant"), "AL": ("Almería", "Almeria"),
    "O": ("Asturias",), "AV": ("Ávila",), "BA": ("Badajoz",),
    "PM": ("Baleares", "Islas Baleares", "Illes Balears"), "B": ("Barcelona",),
    "BU": ("Burgos",), "CC": ("Cáceres",), "CA": ("Cádiz",), "S": ("Cantabria",),
    "CS": ("Castellón", "Castelló"), "CE": ("Ceuta",), "CR": ("Ciudad Real",),
    "CO": ("Córdoba",), "CU": ("Cuenca",), "GI": ("Gerona", "Girona"), "GR": ("Granada",),
    "GU": ("Guadalajara",), "SS": ("Guipúzcoa", "Gipuzkoa"), "H": ("Huelva",),
    "HU": ("Huesca",), "J": ("Jaén",), "LO": ("La Rioja",), "GC": ("Las Palmas",),
    "LE": ("León",), "L": ("Lérida", "Lleida"), "LU": ("Lugo",), "M": ("Madrid",),
    "MA": ("Málaga",), "ME": ("Melilla",), "MU": ("Murcia",), "NA": ("Navarra",),
    "OR": ("Orense", "Ourense"), "P": ("Palencia",), "PO": ("Pontevedra",),
    "SA": ("Salamanca",), "TF": ("Santa Cruz de Tenerife",), "SG": ("Segovia",),
    "SE": ("Sevilla",), "SO": ("Soria",), "T": ("Tarragona",), "TE": ("Teruel",),
    "TO": ("Toledo",), "V": ("Valencia", "València"), "VA": ("Valladolid",),
    "BI": ("Vizcaya", "Bizkaia"), "ZA": ("Zamora",), "Z": ("Zaragoza",),
}  # fmt: skip


@pytest.mark.parametrize("peer_name", peers(sandboxes=(17, 18)))
async def test_countries_and_every_spanish_province_are_the_right_record(
    peer_name: str,
) -> None:
    """Countries in English, in Spanish once Spanish is installed, and as ISO codes; the
    52 provinces by name, by co-official name and by code: each lands on its own record.
    Before Spanish is installed, a Spanish name is reported, never guessed."""
    async with odoo_peer(peer_name) as peer, peer.client() as client:
        writer = OdooTarget(client, load_mapping())
        codes = {c["id"]: c["code"] for c in await client.search_read("res.country", [], ["code"])}

        async def country_of(value: str) -> str | None:
            fields = {"name": "Ana", "country": value}
            result = await writer.apply(command("contact", unique("Y") + "G", fields))
            [row] = await client.read("res.partner", [int(result.target_id or 0)], ["country_id"])
            return codes[row["country_id"][0]] if row["country_id"] else None

        lang = await client.search("res.lang", [("code", "=", "es_ES"), ("active", "=", True)])
        if not lang:  # a server other tests have not given Spanish yet
            assert await country_of("Alemania") is None
            await install_language(client, "es_ES")
            writer = OdooTarget(client, load_mapping())  # it reads the languages once
        for value, code in COUNTRIES.items():
            assert await country_of(value) == code, value

        [spain] = await client.search("res.country", [("code", "=", "ES")])
        rows = await client.search_read("res.country.state", [("country_id", "=", spain)], ["code"])
        states = {s["id"]: s["code"] for s in rows}
        assert sorted(states.values()) == sorted(PROVINCES)  # all 52, Melilla as ME
        key = unique("B") + "8"
        for code, names in PROVINCES.items():
            for value in (*names, code):
                result = await writer.apply(
                    command("company", key, {"name": "Acme", "country": "Spain", "state": value})
                )
                assert not result.skipped and not result.refused, (value, result.error)
                [row] = await client.read("res.partner", [int(result.target_id or 0)], ["state_id"])
                assert states[row["state_id"][0]] == code, value
