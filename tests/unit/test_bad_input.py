"""Bad input, without Kafka: mapping files and odd records through the worker's own steps.

A mapping file, however wrong, is a `MappingError` naming the line and the key, never a
traceback. A batch of records with odd values (Odoo's `False` everywhere, missing
fields, very long or non-Latin text, invalid tax ids, unknown countries; Clientify
nulls and unexpected shapes) goes through the steps the Faust agents run
(`processors.routing` and `processors.decide`, over plain dicts as `replay tables` runs
them): nothing raises, each record is routed or skipped with a reason naming it, only a
missing key or an unreadable value is a skip, and every good record of the batch gets
its command.
(`tests/system/test_bad_input_pipeline.py` sends such a batch through the real processes.)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.decide import DecideStep
from processors.routing import Router, RouteStep, Unsynced
from schemas import Command, EnvelopeError, Fact, Routed, System, decode, encode
from schemas.mapping import DEFAULT_MAPPING, MappingError, MappingFile, load_mapping
from schemas.mapping.mapper import FlowMapper
from schemas.mapping.transforms import TransformError

WHEN = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
ROUTER = Router(load_mapping())

# ------------------------------------------------------------------ mapping files

DEFAULT = yaml.safe_load(DEFAULT_MAPPING.read_text())
# Values unique in the dumped file, so the line an error names can be checked by eye.
MARKERS: list[Any] = ["Mark987654", "Mark[987654][0]", 987654, [987654], {"m": 987654}, None]
MARKER_TEXT = ("987654", "null")
PROBLEM = r"(?m)^  mapping\.yaml line (\d+), (\S+): "


def paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key and list item of the parsed mapping, outermost first."""
    children: list[tuple[str | int, Any]] = (
        list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if isinstance(node, list) else []
    )  # fmt: skip
    out = []
    for key, child in children:
        out += [(*prefix, key), *paths(child, (*prefix, key))]
    return out


def dotted(path: tuple[str | int, ...]) -> str:
    """`("flows", "company", "fields", 4)` -> `flows.company.fields[4]`, as errors show it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def within(inner: str, outer: str) -> bool:
    """Whether dotted path `inner` is `outer` or below it."""
    return inner == outer or inner.startswith((f"{outer}.", f"{outer}["))


def mutated(path: tuple[str | int, ...], action: str, marker: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(DEFAULT))  # a deep copy
    *parents, last = path
    node: Any = data
    for part in parents:
        node = node[part]
    if action == "replace":
        node[last] = marker
    elif action == "delete":
        del node[last]
    elif isinstance(node[last], dict):  # "extend": a key no schema knows
        node[last]["colour"] = marker
    return data


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@settings(max_examples=150)
@given(
    st.sampled_from(paths(DEFAULT)),
    st.sampled_from(["replace", "delete", "extend"]),
    st.sampled_from(MARKERS),
)
def test_a_wrong_key_or_value_is_named_with_its_line(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[str | int, ...], action: str,
    marker: Any,
) -> None:  # fmt: skip
    text = yaml.safe_dump(mutated(path, action, marker), sort_keys=False, allow_unicode=True)
    lines = text.splitlines()
    try:
        mapping = load_mapping(write(tmp_path_factory.mktemp("m"), text))
    except MappingError as error:
        problems = re.findall(PROBLEM, str(error))
        assert problems, str(error)
        for line, where in problems:
            # On the way to the change: an ancestor (a flow needs a key) or under it.
            assert within(where, dotted(path)) or within(dotted(path), where), error
            if action != "delete" and within(where, dotted(path)):
                assert any(m in lines[int(line) - 1] for m in MARKER_TEXT), (lines, error)
        return
    usable(mapping)


def usable(mapping: MappingFile) -> None:
    """A mapping that loads maps records without errors other than unreadable values."""
    record = {
        "id": 7, "name": "Acme", "display_name": "Acme SL", "ref": "B1", "is_company": True,
        "phone": "1", "mobile": "2", "street": "S", "city": "C", "zip": "Z",
        "state_id": [1, "Madrid (ES)"], "country_id": [68, "Spain"], "is_customer": True,
        "default_code": "P1", "list_price": 2.5, "state": "sale", "partner_key": "B1",
        "date_order": "2024-05-01 10:30:00", "currency_id": [1, "EUR"],
        "lines": [{"name": "W", "barcode": False, "default_code": "P1", "price_unit": 1.0,
                   "product_uom_qty": 2.0}],
        "taxpayer_identification_number": "B1", "business_name": "Acme", "sku": "P1",
        "price": "2.50", "phones": [{"phone": "1", "type": 1}], "addresses": [{"city": "C"}],
    }  # fmt: skip
    for flow in mapping.flows.values():
        mapper = FlowMapper(flow, mapping.order_status)
        try:
            mapper.to_clientify(mapper.from_odoo(record), create=True)
            mapper.to_odoo(mapper.from_clientify(record))
        except TransformError:
            pass  # the mapping reads a field with a transform that does not fit it


@settings(max_examples=100)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=15,
        ).map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
        st.just(b"flows: {}\n# Almer\xeda\n"),  # Latin-1, not UTF-8
        st.just("[" * 5000 + "]" * 5000),
        st.just("a: &a [*a]\n"),
        st.just("version: 1\n---\nflows: {}\n"),
        st.just("flows: !!python/object/apply:os.system [true]\n"),
    )
)
def test_any_file_loads_or_is_a_mapping_error(
    tmp_path_factory: pytest.TempPathFactory, content: str | bytes
) -> None:
    try:
        load_mapping(write(tmp_path_factory.mktemp("m"), content))
    except MappingError as error:
        assert "mapping.yaml" in str(error)


def test_not_utf8_and_unusable_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"mapping\.yaml line 2: not UTF-8"):
        load_mapping(write(tmp_path, b"flows: {}\n# Almer\xeda\n"))
    text = DEFAULT_MAPPING.read_text().replace('"addresses[0].city"', '"addresses[0][1]"', 1)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "[0][1]" in row)
    with pytest.raises(MappingError) as error:
        load_mapping(write(tmp_path, text))
    assert f"mapping.yaml line {line}, flows.company.fields[4].clientify:" in str(error.value)
    assert "addresses[0].city" in str(error.value)  # what a path looks like
    # Without its transform the main phone would be a text where the mobile needs a list.
    text = DEFAULT_MAPPING.read_text().replace(
        "{name: phone, odoo: phone, clientify: phones, transform: phone, phone_type: 1}",
        "{name: phone, odoo: phone, clientify: phones}",
    )
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row == "  contact:")
    with pytest.raises(MappingError) as error:
        load_mapping(write(tmp_path, text))
    assert (
        f"mapping.yaml line {line + 1}, flows.contact: Value error, fields `phone` and "
        "`mobile` cannot both be written to Clientify" in str(error.value)
    )


# ------------------------------------------------------------------ odd records


@dataclass(frozen=True)
class Odd:
    """A value for a field, and what the sync must make of it."""

    value: Any
    skip: bool  # the record cannot be synced: a skip, with a reason naming the field


ABSENT = object()  # the field is missing from the record
LONG = st.builds(lambda c, n: c * n, st.sampled_from("ñ漢🙂Ωx"), st.integers(300, 20_000))
NON_LATIN = st.text(st.characters(min_codepoint=0x370, exclude_categories=("Cs",)), max_size=40)
SHAPES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.just(ABSENT), st.just(""),
    st.lists(st.none() | st.integers() | st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.none() | st.integers(), max_size=2),
    st.sampled_from([[999, "Atlantis"], "Atlantis", [1], [], [None, None], 10**400]),
)  # fmt: skip
# Any text field takes anything: text is whatever the value reads as.
ANY_VALUE = st.one_of(SHAPES, LONG, NON_LATIN).map(lambda v: Odd(v, skip=False))
NO_KEY = st.sampled_from([False, None, "", "  ", ["B1"], {"k": 1}, True, ABSENT])
# No tax id, once its noise is gone; a SKU, odd as it is.
NOISE = st.sampled_from(["---", " . - ", "\t.\n"])
# Odd but usable keys, unique per record (`{n}`), so each record has a route of its own.
ODD_KEY = st.sampled_from(["ñ-{n}", "B" * 300 + "{n}", "b {n}.2-3", "漢字{n}", "{n}"])
NOT_A_NUMBER = st.sampled_from(
    ["abc", "NaN", "inf", float("nan"), float("-inf"), 10**400, [1], {"a": 1}, "1,5"]
)
A_NUMBER = st.sampled_from([None, False, "", "12.5", -0.0, 1e300, 7, [], ABSENT])
PRICES = NOT_A_NUMBER.map(lambda v: Odd(v, skip=True)) | A_NUMBER.map(lambda v: Odd(v, False))


@dataclass(frozen=True)
class Kind:
    system: System
    entity: str
    key: str  # the field holding the business key
    number: str | None  # a field read as a number
    texts: tuple[str, ...]  # fields read as text (or as lists of sub-items)

    def good(self, n: int) -> dict[str, Any]:
        """A record the sync must carry across, with `n` in its id and key."""
        return {**GOOD[self.entity, self.system], "id": n, self.key: f"B{n:08d}"}


GOOD = {
    ("partner", System.ODOO): {
        "name": "Acme", "display_name": "Acme SL", "is_company": True, "phone": "+34 911",
        "mobile": False, "street": "Calle Mayor 1", "city": "Madrid", "zip": "28001",
        "state_id": [46, "Madrid (ES)"], "country_id": [68, "Spain"], "customer_rank": 0,
        "commercial_partner_id": False,
    },
    ("product", System.ODOO): {"name": "Widget", "list_price": 9.5},
    ("contact", System.CLIENTIFY): {
        "first_name": "Ana", "status": "cold-lead", "phones": [{"phone": "600", "type": 2}],
        "addresses": [{"street": "Sol 2", "city": "Sevilla", "country": "Spain"}],
    },
    ("company", System.CLIENTIFY): {
        "name": "Acme SL", "business_name": "Acme", "phones": [{"phone": "911", "type": 1}],
        "addresses": [{"city": "Madrid", "state": "Madrid", "country": "Atlantis"}],
    },
    ("product", System.CLIENTIFY): {"name": "Widget", "price": "12.50"},
}  # fmt: skip
KINDS = [
    Kind(System.ODOO, "partner", "ref", None, (
        "name", "display_name", "phone", "mobile", "street", "city", "zip", "state_id",
        "country_id", "is_company", "customer_rank", "commercial_partner_id")),
    Kind(System.ODOO, "product", "default_code", "list_price", ("name",)),
    Kind(System.CLIENTIFY, "contact", "taxpayer_identification_number", None,
         ("first_name", "status", "phones", "addresses")),
    Kind(System.CLIENTIFY, "company", "taxpayer_identification_number", None,
         ("name", "business_name", "phones", "addresses")),
    Kind(System.CLIENTIFY, "product", "sku", "price", ("name",)),
]  # fmt: skip


@st.composite
def odd_records(draw: st.DrawFn, n: int) -> tuple[Kind, dict[str, Any], bool]:
    """A record of some kind with odd values in some fields, and whether it must be
    skipped."""
    kind = draw(st.sampled_from(KINDS))
    record = kind.good(n)
    changes = {field: draw(ANY_VALUE) for field in draw(st.sets(st.sampled_from(kind.texts)))}
    if draw(st.booleans()):
        tax_id = kind.key in ("ref", "taxpayer_identification_number")
        changes[kind.key] = draw(
            NO_KEY.map(lambda v: Odd(v, skip=True))
            | NOISE.map(lambda v: Odd(v, skip=tax_id))
            | ODD_KEY.map(lambda text: Odd(text.format(n=n), skip=False))
            | st.just(Odd(10_000 + n, skip=False))  # a number as key
        )
    if kind.number and draw(st.booleans()):
        changes[kind.number] = draw(PRICES)
    for field, odd in changes.items():
        if odd.value is ABSENT:
            del record[field]
        else:
            record[field] = odd.value
    return kind, record, any(odd.skip for odd in changes.values())


def fact_of(kind: Kind, record: dict[str, Any]) -> Fact:
    return Fact.observe(
        system=kind.system, entity=kind.entity, source_id=record["id"], version="v1",
        payload=record, occurred_at=WHEN,
    )  # fmt: skip


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(finite, value.values()))
    if isinstance(value, list):
        return all(map(finite, value))
    return True


@settings(max_examples=60)
@given(st.data())
def test_a_batch_of_odd_records_is_routed_or_skipped_and_good_ones_still_go(
    data: st.DataObject,
) -> None:
    batch = [data.draw(odd_records(n)) for n in range(1, data.draw(st.integers(1, 8)) + 1)]
    goods = [(kind, kind.good(n)) for n, kind in enumerate(KINDS, start=100)]
    # Good records before, among and after the odd ones.
    batch = [(*goods[0], False), *batch[:3], *[(k, r, False) for k, r in goods[1:]], *batch[3:]]
    route = RouteStep.in_memory(ROUTER)
    decide = DecideStep(ROUTER, {})
    commands: dict[tuple[System, str], list[Command]] = {}
    offsets = iter(range(1000))  # each routed message's place on its topic
    for kind, record, must_skip in batch:
        fact = fact_of(kind, record)
        outputs = route.on_fact(fact)
        assert outputs, record  # never silently dropped
        skips = [out for out in outputs if isinstance(out, Unsynced)]
        assert bool(skips) is must_skip, (record, skips)
        for skip in skips:
            name = f"{kind.system.value} {kind.entity} {record['id']}"
            assert skip.reason.startswith(name) and "not synced" in skip.reason
        for routed in outputs:
            if isinstance(routed, Routed):
                value = routed.model_dump_json().encode()
                place = ("sync.routed", 0, next(offsets))
                outcome, texts = decide.on_message(routed.route_key, value, place)
                assert outcome is not None
                for text in texts:
                    message = decode(text)  # everything published reads back
                    if isinstance(message, Command):
                        assert finite(message.fields), message.fields
                        commands.setdefault((kind.system, str(record["id"])), []).append(message)
        name = record.get("name")
        company = kind.entity == "partner" and record.get("is_company") is True
        if company and name and not must_skip:
            # Long or non-Latin text crosses whole: the company's business name is it.
            [company] = [c for c in commands.get((kind.system, str(record["id"])), [])
                         if c.entity == "company"]  # fmt: skip
            assert company.fields["name"] == str(name)
    for kind, record in goods:
        assert commands[kind.system, str(record["id"])], (kind, record)


def test_an_unreadable_value_is_a_skip_naming_the_field_and_the_value() -> None:
    product = {"id": 5, "sku": "P-5", "name": "Widget", "price": "doce euros"}
    [skip] = RouteStep.in_memory(ROUTER).on_fact(fact_of(KINDS[4], product))
    assert isinstance(skip, Unsynced) and skip.flow == "product"
    assert skip.reason.startswith("clientify product 5: price: expected a number")
    assert "'doce euros'" in skip.reason
    huge = {**product, "price": "9" * 5000}  # the reason stays short
    [skip] = RouteStep.in_memory(ROUTER).on_fact(fact_of(KINDS[4], huge))
    assert isinstance(skip, Unsynced) and len(skip.reason) < 300


def test_an_order_with_a_bad_date_is_skipped_and_one_without_lines_list_still_goes() -> None:
    partners = {"7": {"key": "B12345678", "commercial": 7}}
    step = RouteStep(ROUTER, partners, {}, {}, {})
    order = {
        "id": 40, "name": "S00040", "state": "sale", "partner_id": [7, "Acme"],
        "date_order": "yesterday", "currency_id": [1, "EUR"], "lines": False,
    }  # fmt: skip
    fact = Fact.observe(
        system=System.ODOO, entity="sale_order", source_id=40, version="1", payload=order,
        occurred_at=WHEN,
    )  # fmt: skip
    [skip] = step.on_fact(fact)
    assert isinstance(skip, Unsynced) and "order_date: expected a date and time" in skip.reason
    dated = fact.model_copy(update={"payload": {**order, "date_order": "2024-05-01 10:30:00"}})
    [routed] = step.on_fact(dated)
    assert isinstance(routed, Routed) and routed.payload["lines"] == []


def test_a_message_with_an_endless_number_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError, match="not JSON"):
        decode(b'{"kind": "fact", "schema_version": 2, "n": ' + b"9" * 5000 + b"}")
    fact = fact_of(KINDS[4], {"id": 5, "sku": "P-5", "price": int("9" * 4000)})
    assert decode(encode(fact)) == fact  # what Python can read still round-trips
