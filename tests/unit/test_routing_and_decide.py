"""From facts to routes and commands, without Kafka: keys, skips, order lookups, echoes,
and the decide step's outbox (a redelivered message emits again what it emitted)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from processors.decide import KEPT, DecideStep, Link, Outbox, on_fact, on_result
from processors.routing import (
    Route,
    Router,
    RouteStep,
    Unroutable,
    Waiting,
    product_entry,
)
from processors.sync_state import RecordState
from schemas.envelope import Fact, Result, ResultStatus, Routed, System, encode
from schemas.mapping import load_mapping

ROUTER = Router(load_mapping())
WHEN = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)

ACME = {
    "id": 7, "name": "Acme Soluciones", "display_name": "Acme Soluciones SL",
    "ref": "B-12.345.678", "is_company": True, "commercial_partner_id": [7, "Acme"],
    "phone": "+34 911 111 111", "street": "Calle Mayor 1", "city": "Madrid",
    "state_id": [46, "Madrid"], "country_id": [68, "Spain"], "zip": "28001", "customer_rank": 1,
}  # fmt: skip
ANA = {
    "id": 8, "name": "Ana Ruiz", "ref": False, "is_company": False,
    "commercial_partner_id": [7, "Acme"], "phone": False,
}  # fmt: skip


def odoo_fact(entity: str, payload: dict[str, Any], version: str = "v1") -> Fact:
    return Fact.observe(
        system=System.ODOO, entity=entity, source_id=payload["id"], version=version,
        payload=payload, occurred_at=WHEN,
    )  # fmt: skip


def clientify_fact(entity: str, payload: dict[str, Any], when: datetime = WHEN) -> Fact:
    return Fact.observe(
        system=System.CLIENTIFY, entity=entity, source_id=payload["id"], version=str(payload),
        payload=payload, occurred_at=when,
    )  # fmt: skip


def test_a_company_partner_feeds_the_company_and_the_contact_flow() -> None:
    routes = ROUTER.routes(odoo_fact("partner", ACME), {}, {}, {})
    assert [(r.flow, r.key) for r in routes if isinstance(r, Route)] == [
        ("company", "B12345678"),
        ("contact", "B12345678"),
    ]


def test_a_partner_without_ref_is_skipped_with_its_reason() -> None:
    [skip] = ROUTER.routes(odoo_fact("partner", ANA), {}, {}, {})
    assert isinstance(skip, Unroutable) and skip.flow == "contact"
    assert "has no ref or vat (the business key of the contact flow)" in skip.reason
    assert "Fill it in" in skip.reason


def test_the_key_is_the_reference_else_the_tax_id_without_spains_prefix() -> None:
    """People type a company's NIF into Tax ID, with its VAT prefix; Reference wins when
    both hold one."""
    by_vat = {**ACME, "ref": False, "vat": "ESB12345678"}
    routes = ROUTER.routes(odoo_fact("partner", by_vat), {}, {}, {})
    assert {(r.flow, r.key) for r in routes if isinstance(r, Route)} == {
        ("company", "B12345678"), ("contact", "B12345678"),
    }  # fmt: skip
    both = {**ACME, "ref": "A-00.000.000", "vat": "ESB12345678"}
    assert {r.key for r in ROUTER.routes(odoo_fact("partner", both), {}, {}, {})
            if isinstance(r, Route)} == {"A00000000"}  # fmt: skip


def test_orders_wait_for_their_customer_and_then_carry_its_key_and_skus() -> None:
    order = {
        "id": 4, "name": "S00004", "state": "sale", "partner_id": [8, "Ana Ruiz"],
        "date_order": "2024-05-01 10:30:00", "currency_id": [1, "EUR"],
        "lines": [{"id": 1, "name": "Widget", "product_id": [3, "[PW-1] Widget"],
                   "price_unit": 10.0, "product_uom_qty": 2.0}],
    }  # fmt: skip
    fact = odoo_fact("sale_order", order)
    assert ROUTER.routes(fact, {}, {}, {}) == [Waiting("partner:8")]
    # Ana has no tax id of her own: the order waits for her company's.
    assert ROUTER.routes(fact, {"8": ROUTER.partner_entry(ANA)}, {}, {}) == [Waiting("partner:7")]
    partners = {"7": ROUTER.partner_entry(ACME), "8": ROUTER.partner_entry(ANA)}
    assert ROUTER.routes(fact, partners, {}, {}) == [Waiting("product:3")]
    products = {"3": product_entry({"barcode": False, "default_code": "PW-1"})}
    [route] = ROUTER.routes(fact, partners, products, {})
    assert isinstance(route, Route) and route.key == "S00004"
    assert route.payload["partner_key"] == "B12345678"  # Ana's company's tax id
    assert route.payload["lines"][0]["default_code"] == "PW-1"
    assert route.payload["customer_id"] == 7  # Ana's company is the customer
    assert (
        ROUTER.routes(odoo_fact("sale_order", {**order, "state": "draft"}), partners, {}, {}) == []
    )


def test_the_loop_is_cut_a_change_goes_across_once_and_its_echo_stops() -> None:
    [company, _contact] = ROUTER.routes(odoo_fact("partner", ACME), {}, {}, {})
    assert isinstance(company, Route)
    state, link = RecordState(), Link()
    first = on_fact(company, ROUTER.mappers["company"], state, link)
    [command] = first.commands
    assert command.target is System.CLIENTIFY and command.entity == "company"
    assert command.fields["name"] == "Acme Soluciones" and command.target_id is None
    # The Clientify writer creates the company and reports it...
    result = Result(
        command_id=command.command_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", status=ResultStatus.APPLIED, target_id="501",
        written=command.fields, finished_at=WHEN,
    )  # fmt: skip
    assert on_result(result, state, link).commands == []
    assert link.clientify_id == "501" and link.odoo_id == "7"
    # ...and Clientify's webhook for that save comes back: an echo, nothing more.
    echo_record = {
        "id": 501, "name": "Acme Soluciones SL", "business_name": "Acme Soluciones",
        "taxpayer_identification_number": "B-12.345.678",
        "phones": [{"phone": "+34 911 111 111", "type": 1}],
        "addresses": [{"street": "Calle Mayor 1", "city": "Madrid", "state": "Madrid",
                       "country": "Spain", "postal_code": "28001", "type": 1}],
    }  # fmt: skip
    [back] = ROUTER.routes(clientify_fact("company", echo_record), {}, {}, {})
    assert isinstance(back, Route) and back.route_key == company.route_key
    echo = on_fact(back, ROUTER.mappers["company"], state, link)
    assert echo.commands == [] and echo.conflicts == []
    assert [(e.system, e.flow, e.business_key) for e in echo.echoes] == [
        (System.CLIENTIFY, "company", back.key)
    ]


@pytest.mark.parametrize("written", ["España", "ES", " spain ", "Spain"])
def test_the_same_country_in_another_language_is_no_edit(written: str) -> None:
    """Odoo reads "Spain", a Clientify user types "España": the same value, so neither a
    write nor a conflict; another country is an edit."""
    [company, _contact] = ROUTER.routes(odoo_fact("partner", ACME), {}, {}, {})
    assert isinstance(company, Route)
    state, link = RecordState(), Link()
    [command] = on_fact(company, ROUTER.mappers["company"], state, link).commands
    done = Result(
        command_id=command.command_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", status=ResultStatus.APPLIED, target_id="501",
        written=command.fields, finished_at=WHEN,
    )  # fmt: skip
    on_result(done, state, link)

    def edited(country: str, when: datetime) -> Any:
        record = {
            "id": 501, "name": "Acme Soluciones SL", "business_name": "Acme Soluciones",
            "taxpayer_identification_number": "B12345678",
            "phones": [{"phone": "+34 911 111 111", "type": 1}],
            "addresses": [{"street": "Calle Mayor 1", "city": "Madrid", "state": "Madrid",
                           "country": country, "postal_code": "28001", "type": 1}],
        }  # fmt: skip
        [route] = ROUTER.routes(clientify_fact("company", record, when), {}, {}, {})
        assert isinstance(route, Route)
        return on_fact(route, ROUTER.mappers["company"], state, link)

    same = edited(written, WHEN.replace(minute=40))
    assert same.commands == [] and same.conflicts == []
    [moved] = edited("Alemania", WHEN.replace(minute=50)).commands
    assert moved.target is System.ODOO and moved.fields == {"country": "Germany"}


def test_a_partner_is_a_current_customer_by_rank_or_by_a_confirmed_order() -> None:
    person = {**ANA, "ref": "12345678Z", "customer_rank": 0}

    def status(customers: dict[str, Any], partner: dict[str, Any]) -> Any:
        routes = ROUTER.routes(odoo_fact("partner", partner), {}, {}, customers)
        [contact] = [r for r in routes if isinstance(r, Route) and r.flow == "contact"]
        return ROUTER.mappers["contact"].from_odoo(contact.payload)["customer"]

    assert status({}, person) is None
    assert status({"8": True}, person) == "client"  # has a confirmed order
    assert status({}, {**person, "customer_rank": 2}) == "client"  # Invoicing app's rank


def test_a_dead_lettered_command_is_not_sent_again() -> None:
    [company, _contact] = ROUTER.routes(odoo_fact("partner", ACME), {}, {}, {})
    assert isinstance(company, Route)
    state, link = RecordState(), Link()
    [command] = on_fact(company, ROUTER.mappers["company"], state, link).commands
    failed = Result(
        command_id=command.command_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", status=ResultStatus.FAILED, skipped=command.fields,
        error="400: name: This field is required.", finished_at=WHEN,
    )  # fmt: skip
    assert on_result(failed, state, link).commands == []
    assert state.clientify.pending == {}


def test_steps_keep_a_partner_in_one_lookup_and_a_route_in_one_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A partner's lookup entry carries its last fact, which is routed again when its
    first confirmed order makes it a customer; a route's state carries its link."""
    route_step, decide_step = RouteStep.in_memory(ROUTER), DecideStep(ROUTER, {})
    person = {**ANA, "id": 9, "ref": "12345678Z", "commercial_partner_id": [9, "Ana"],
              "customer_rank": 0}  # fmt: skip
    first = route_step.on_fact(odoo_fact("partner", person))
    assert [(r.flow, r.payload["is_customer"]) for r in first if isinstance(r, Routed)] == [
        ("contact", False)
    ]
    assert route_step.partners["9"]["fact"]["payload"]["ref"] == "12345678Z"
    order = {
        "id": 5, "name": "S00005", "state": "sale", "partner_id": [9, "Ana"],
        "date_order": "2024-05-01 10:30:00", "currency_id": [1, "EUR"], "lines": [],
    }  # fmt: skip
    routed = route_step.on_fact(odoo_fact("sale_order", order))
    assert [(r.flow, r.payload.get("is_customer")) for r in routed if isinstance(r, Routed)] == [
        ("order", None),
        ("contact", True),  # routed again from the lookup entry: now a current customer
    ]
    # Deciding: the link is kept in the route's state, beside the outbox.
    [contact] = [r for r in first if isinstance(r, Routed)]
    value = contact.model_dump_json().encode()
    outcome, texts = decide_step.on_message(contact.route_key, value, ("sync.routed", 0, 0))
    assert outcome is not None and len(texts) == len(outcome.commands) == 1
    assert decide_step.states[contact.route_key]["link"]["odoo_id"] == "9"
    assert decide_step.states[contact.route_key]["outbox"]["seen"] == {"sync.routed:0": 0}
    result = Result(
        command_id=outcome.commands[0].command_id, target=System.CLIENTIFY, entity="contact",
        business_key=contact.key, status=ResultStatus.APPLIED, target_id="77",
        written=outcome.commands[0].fields, finished_at=WHEN,
    )  # fmt: skip
    decide_step.on_message(contact.route_key, encode(result), ("sync.results", 0, 0))
    assert decide_step.states[contact.route_key]["link"]["clientify_id"] == "77"
    # Anything else on those topics is logged and ignored, never folded in.
    with caplog.at_level(logging.ERROR, logger="processors.decide"):
        stray = encode(odoo_fact("partner", person))
        assert decide_step.on_message(contact.route_key, stray, None) == (None, [])
        assert decide_step.on_message(contact.route_key, b"{not json", None) == (None, [])
    assert "a fact on the routed/results/requeues topics, ignored" in caplog.text
    assert "unreadable message on the routed/results/requeues topics" in caplog.text


def test_every_message_since_the_last_commit_is_recognised_and_re_emitted() -> None:
    outbox = Outbox()
    for offset in range(5):
        outbox.record("sync.routed", 0, offset, [f"command-{offset}"])
    outbox.record("sync.results", 0, 7, [])
    # A crash after offset 4 with offsets committed up to 1: 2, 3 and 4 come again.
    assert [outbox.emitted_by("sync.routed", 0, o) for o in (2, 3, 4)] == [
        ["command-2"], ["command-3"], ["command-4"],
    ]  # fmt: skip
    assert outbox.emitted_by("sync.results", 0, 7) == []
    assert outbox.emitted_by("sync.routed", 0, 5) is None  # new
    assert outbox.emitted_by("sync.routed", 1, 0) is None  # another partition
    assert outbox.emitted_by("sync.results", 0, 8) is None


def test_the_outbox_is_bounded_and_survives_its_json_form() -> None:
    outbox = Outbox()
    for offset in range(KEPT + 10):
        outbox.record("sync.routed", 0, offset, [str(offset)])
    again = Outbox.from_json(json.loads(json.dumps(outbox.to_json())))
    assert len(again.sent) == KEPT
    assert again.emitted_by("sync.routed", 0, KEPT + 9) == [str(KEPT + 9)]
    # Too old to be known: processed before, so not folded in again, but nothing to send.
    assert again.emitted_by("sync.routed", 0, 0) == []
