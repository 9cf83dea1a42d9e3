"""The declarative mapping: the default file, line-numbered errors, and each transform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.keys import normalise_key
from schemas.mapping import DEFAULT_MAPPING, Direction, KeyNormalizer, MappingError, load_mapping
from schemas.mapping.mapper import FlowMapper
from schemas.mapping.transforms import TransformError

MAPPING = load_mapping()
COMPANY = FlowMapper(MAPPING.flows["company"])
CONTACT = FlowMapper(MAPPING.flows["contact"])
PRODUCT = FlowMapper(MAPPING.flows["product"])
ORDER = FlowMapper(MAPPING.flows["order"], order_status=MAPPING.order_status)

ACME_ODOO_16: dict[str, Any] = {
    "id": 7, "name": "Acme Soluciones", "display_name": "Acme Soluciones SL",
    "ref": "B-12.345.678", "is_company": True, "phone": "+34 911 111 111",
    "mobile": "+34 600 000 000", "street": "Calle Mayor 1", "city": "Madrid",
    "state_id": [46, "Madrid (ES)"], "country_id": [68, "Spain"], "zip": "28001",
    "is_customer": True, "write_date": "2024-05-01 10:30:00",
}  # fmt: skip


def test_default_mapping_has_the_four_flows_of_the_spec() -> None:
    assert set(MAPPING.flows) == {"company", "contact", "product", "order"}
    assert MAPPING.flows["order"].direction is Direction.ODOO_TO_CLIENTIFY
    assert MAPPING.flows["company"].key.normalize is KeyNormalizer.TAX_ID
    assert DEFAULT_MAPPING.name == "mapping.yaml"


def test_company_partner_to_clientify_company() -> None:
    fields = COMPANY.from_odoo(ACME_ODOO_16)
    assert COMPANY.odoo_key(ACME_ODOO_16) == "B12345678"
    assert COMPANY.selects(ACME_ODOO_16)
    assert COMPANY.to_clientify(fields, create=True) == {
        "name": "Acme Soluciones SL",
        "business_name": "Acme Soluciones",
        "phones": [{"phone": "+34 911 111 111", "type": 1}],
        "addresses": [
            {"street": "Calle Mayor 1", "city": "Madrid", "state": "Madrid",
             "country": "Spain", "postal_code": "28001"}
        ],
    }  # fmt: skip


def test_company_partner_contact_owns_only_status_and_phones() -> None:
    fields = CONTACT.from_odoo(ACME_ODOO_16)
    assert fields == {"customer": "client", "phone": "+34 911 111 111", "mobile": "+34 600 000 000"}
    assert CONTACT.to_clientify(fields) == {
        "status": "client",
        "phones": [
            {"phone": "+34 911 111 111", "type": 1},
            {"phone": "+34 600 000 000", "type": 2},
        ],
    }


def test_person_partner_maps_name_and_address_and_odoo_19_has_no_mobile() -> None:
    person_19 = {
        "id": 9, "name": "Ana Ruiz", "ref": "12345678Z", "is_company": False,
        "phone": False, "street": "C/ Sol 2", "city": "Sevilla", "country_id": [68, "Spain"],
        "zip": "41001", "is_customer": False,
    }  # fmt: skip
    fields = CONTACT.from_odoo(person_19)
    assert "mobile" not in fields  # absent on 19: never read as "empty"
    assert fields["name"] == "Ana Ruiz"
    assert fields["phone"] is None and fields["customer"] is None
    assert CONTACT.to_clientify({"name": "Ana Ruiz", "city": "Sevilla"}) == {
        "first_name": "Ana",
        "last_name": "Ruiz",
        "addresses": [{"city": "Sevilla"}],
    }


@pytest.mark.parametrize(
    ("first", "last", "odoo"),
    [("Ana", "Ruiz", "Ana Ruiz"), ("María José", "García López", "María José García López"),
     ("María", "José García López", "María José García López"), ("Ana  ", " Ruiz", "Ana Ruiz"),
     ("Cher", "", "Cher"), ("", "Ruiz", "Ruiz")],
)  # fmt: skip
def test_a_name_split_either_way_is_the_same_name(first: str, last: str, odoo: str) -> None:
    """Odoo has one name, Clientify a first and a last: compared whole, so a different
    split is no change, and nothing of the name is lost either way."""
    clientify = CONTACT.from_clientify({"first_name": first, "last_name": last})["name"]
    assert clientify == CONTACT.from_odoo({"name": odoo, "is_company": False})["name"] == odoo
    assert CONTACT.to_odoo({"name": clientify}) == {"name": odoo}


def test_a_new_name_keeps_the_first_name_the_record_has() -> None:
    record = {"first_name": "María José", "last_name": "García"}
    assert CONTACT.to_clientify({"name": "María José García López"}, record=record) == {
        "first_name": "María José", "last_name": "García López",
    }  # fmt: skip
    # A new first name: the first word, the rest the last name.
    assert CONTACT.to_clientify({"name": "Ana Ruiz"}, record=record) == {
        "first_name": "Ana", "last_name": "Ruiz",
    }  # fmt: skip
    assert CONTACT.to_clientify({"name": None}, record=record) == {
        "first_name": "", "last_name": "",
    }  # fmt: skip


def test_clientify_company_to_odoo_uses_name_when_business_name_is_empty() -> None:
    company = {
        "id": 3, "name": "Acme", "business_name": "", "taxpayer_identification_number": "b12345678",
        "phones": [{"phone": "950 23 50 37", "type": 3}, {"phone": "911", "type": 1}],
        "addresses": [{"street": "Av. 1", "city": "Almería", "state": "Almería", "country": "Spain",
                       "postal_code": "04001", "type": 1}],
    }  # fmt: skip
    fields = COMPANY.from_clientify(company)
    assert COMPANY.clientify_key(company) == "B12345678"
    assert fields["name"] == "Acme"
    assert "display_name" not in fields  # computed in Odoo: one way only
    assert COMPANY.to_odoo(fields) == {
        "name": "Acme", "phone": "911", "street": "Av. 1", "city": "Almería",
        "state_id": "Almería", "country_id": "Spain", "zip": "04001",
    }  # fmt: skip
    assert COMPANY.odoo_many2one_fields() == ["state_id", "country_id"]


def test_clientify_list_items_without_addresses_do_not_erase_them() -> None:
    listed_contact = {"id": 5, "first_name": "Ana", "status": "hot-lead", "phones": []}
    fields = CONTACT.from_clientify(listed_contact)
    assert fields == {"clientify_status": "hot-lead", "name": "Ana", "phone": None,
                      "mobile": None}  # fmt: skip
    assert CONTACT.to_odoo(fields)["phone"] is False  # Odoo's "empty"


def test_products_both_ways() -> None:
    fields = PRODUCT.from_odoo(
        {"id": 1, "name": "Widget", "default_code": "PW-1", "list_price": 9.5}
    )
    assert PRODUCT.to_clientify(fields) == {"name": "Widget", "price": 9.5}
    assert PRODUCT.from_clientify({"name": "Widget", "sku": "PW-1", "price": "11.333"}) == {
        "name": "Widget",
        "price": 11.33,
    }


def test_confirmed_order_items_carry_the_product_key_and_a_quantity_fallback(
    tmp_path: Path,
) -> None:
    order = {
        "id": 4, "name": "S00004", "state": "sale", "partner_id": [7, "Acme Soluciones SL"],
        "partner_key": "B12345678",
        "date_order": "2024-05-01 10:30:00", "currency_id": [1, "EUR"],
        "lines": [
            {"name": "[PW-1] Widget", "barcode": "8412345678905", "default_code": "PW-1",
             "price_unit": 10.0, "qty_to_deliver": 3.0, "product_uom_qty": 3.0},
            {"name": "Gadget", "barcode": False, "default_code": "GD-2", "price_unit": 2.5,
             "product_uom_qty": 2.0},
        ],
    }  # fmt: skip
    assert ORDER.selects(order) and not ORDER.selects({**order, "state": "draft"})
    payload = ORDER.to_clientify(ORDER.from_odoo(order), create=True)
    assert payload == {
        "contact": "B12345678", "order_date": "2024-05-01T10:30:00+00:00",
        "currency": "EUR", "ecommerce": "Odoo", "status": "confirmed",
        "items": [
            {"name": "[PW-1] Widget", "sku": "PW-1", "price": 10.0, "quantity": 3.0},
            {"name": "Gadget", "sku": "GD-2", "price": 2.5, "quantity": 2.0},
        ],
    }  # fmt: skip
    assert ORDER.from_clientify({"order_id": "S00004"}) == {}  # one-way flow
    # The seed's choice, the barcode when there is one, is one line of the mapping away.
    text = DEFAULT_MAPPING.read_text().replace(
        "{name: sku, odoo: default_code,", "{name: sku, odoo: barcode, odoo_fallback: default_code,"
    )
    seeded = load_mapping(write(tmp_path, text))
    items = FlowMapper(seeded.flows["order"]).from_odoo(order)["items"]
    assert [item["sku"] for item in items] == ["8412345678905", "GD-2"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("B-12.345.678", "B12345678"), (" b 12345678 ", "B12345678"), ("", None), (False, None),
     (None, None), ("  ", None), (12345678, "12345678"), ("ESB99887766", "B99887766"),
     ("es-b-99.887.766", "B99887766"), ("ES12345678Z", "12345678Z"), ("ESX1234567L", "X1234567L"),
     ("DE123456789", "DE123456789"), ("ESTUDIO-7", "ESTUDIO7")],
)  # fmt: skip
def test_tax_ids_are_normalised_before_comparing(raw: object, expected: str | None) -> None:
    assert normalise_key(raw, KeyNormalizer.TAX_ID) == expected


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


def test_users_can_switch_a_flow_off_and_rename_fields(tmp_path: Path) -> None:
    text = DEFAULT_MAPPING.read_text()
    text = text.replace("    clientify: {resource: products}\n",
                        "    clientify: {resource: products}\n    direction: off\n")  # fmt: skip
    text = text.replace("{name: zip, odoo: zip, clientify: \"addresses[0].postal_code\"}",
                        "{name: zip, odoo: zip, clientify: \"addresses[0].zip_code\"}")  # fmt: skip
    mapping = load_mapping(write(tmp_path, text))
    assert mapping.flows["product"].fields_towards(Direction.ODOO_TO_CLIENTIFY) == []
    company = FlowMapper(mapping.flows["company"])
    assert company.to_clientify({"zip": "28001"}) == {"addresses": [{"zip_code": "28001"}]}


def test_errors_name_the_line_and_the_field(tmp_path: Path) -> None:
    text = DEFAULT_MAPPING.read_text().replace(
        '{name: city, odoo: city, clientify: "addresses[0].city"}',
        '{name: city, odoo: city, clientify: "addresses[0].city", transform: uppercase}',
        1,
    )
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "transform: uppercase" in row)
    with pytest.raises(MappingError) as error:
        load_mapping(write(tmp_path, text))
    message = str(error.value)
    assert f"mapping.yaml line {line}, flows.company.fields[4].transform:" in message
    assert "'text'" in message and "'phone'" in message  # says what is allowed


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("flows: {}\nversion: 2\n", "line 2, version: Input should be 1"),
        ("flows:\n  invoice: {}\n", "flows.invoice"),
        (
            "flows:\n  product:\n    odoo: {model: product.product}\n"
            "    clientify: {resource: products}\n    key: {odoo: default_code, clientify: sku}\n"
            "    fields:\n      - {name: p, odoo: phone, clientify: phones, transform: phone}\n",
            "line 7, flows.product.fields[0]: Value error, transform `phone` needs `phone_type`",
        ),
        ("flows: [\n", "not valid YAML"),
        ("- a list\n", "expected a mapping with `flows:`"),
        (
            "flows:\n  product:\n    odoo: {model: product.product}\n"
            "    clientify: {resource: products}\n    key: {odoo: default_code, clientify: sku}\n"
            "    fields:\n      - {name: p, odoo: name, colour: red}\n",
            "line 7, flows.product.fields[0].colour: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_mapping_files_get_specific_errors(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    with pytest.raises(MappingError, match=None) as error:
        load_mapping(write(tmp_path, yaml_text))
    assert expected in str(error.value)


def test_a_missing_mapping_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"cannot read the mapping file .*nope\.yaml"):
        load_mapping(tmp_path / "nope.yaml")


odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=60),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
)  # fmt: skip


@given(st.dictionaries(st.sampled_from(sorted(ACME_ODOO_16)), odd_values))
def test_odd_odoo_values_map_or_fail_with_a_transform_error(record: dict[str, Any]) -> None:
    for mapper in (COMPANY, CONTACT, PRODUCT, ORDER):
        try:
            fields = mapper.from_odoo(record)
        except TransformError as error:
            assert "expected" in str(error)
            continue
        mapper.to_clientify(fields, create=True)


def test_the_seeds_key_reference_only_is_one_line_away(tmp_path: Path) -> None:
    text = DEFAULT_MAPPING.read_text().replace("odoo: [ref, vat]", "odoo: ref")
    contact = FlowMapper(load_mapping(write(tmp_path, text)).flows["contact"])
    assert contact.flow.key.odoo == ("ref",)
    assert contact.odoo_key({"ref": False, "vat": "ESB99887766"}) is None
    assert CONTACT.odoo_key({"ref": False, "vat": "ESB99887766"}) == "B99887766"
    assert CONTACT.odoo_key({"ref": " ", "vat": "ESB99887766"}) == "B99887766"


def test_full_name_needs_both_clientify_fields(tmp_path: Path) -> None:
    text = DEFAULT_MAPPING.read_text().replace(" clientify_last_name: last_name,", "")
    with pytest.raises(MappingError, match="transform `full_name` goes with `clientify`"):
        load_mapping(write(tmp_path, text))
