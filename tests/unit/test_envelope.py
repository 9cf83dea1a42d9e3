"""Envelopes: round trips, deterministic ids, old versions still read, clear errors."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    Command,
    ConflictReport,
    EnvelopeError,
    Fact,
    Result,
    ResultStatus,
    Skip,
    System,
    decode,
    encode,
)

WHEN = datetime(2024, 5, 1, 10, 30, 0)


def make_fact(version: str = "2024-05-01 10:30:00#ab", **payload: object) -> Fact:
    return Fact.observe(
        system=System.ODOO,
        entity="partner",
        source_id=42,
        version=version,
        payload={"id": 42, "name": "Acme SL", **payload},
        occurred_at=WHEN,
        business_key="B12345678",
    )


def test_fact_round_trips_through_bytes() -> None:
    fact = make_fact()
    assert decode(encode(fact)) == fact


def test_event_id_depends_only_on_system_entity_id_and_version() -> None:
    first, again = make_fact(), make_fact(name="changed payload, same version")
    assert first.event_id == again.event_id
    assert first.observed_at <= again.observed_at
    assert make_fact(version="2024-05-01 10:30:01#cd").event_id != first.event_id
    other_entity = Fact.observe(
        system=System.ODOO, entity="product", source_id=42, version="2024-05-01 10:30:00#ab",
        payload={}, occurred_at=WHEN,
    )  # fmt: skip
    assert other_entity.event_id != first.event_id


def test_naive_source_datetimes_are_read_as_utc() -> None:
    assert make_fact().occurred_at == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def test_a_version_1_fact_still_reads() -> None:
    # The first prototype's shape: `record_id`, no kind, no business_key, no observed_at.
    old = {
        "schema_version": 1,
        "event_id": "e-1",
        "system": "clientify",
        "entity": "contact",
        "record_id": 9,
        "occurred_at": "2023-04-29T18:02:53.179188+02:00",
        "payload": {"id": 9, "first_name": "Ana"},
    }
    fact = decode(json.dumps(old).encode())
    assert isinstance(fact, Fact)
    assert fact.schema_version == 2
    assert fact.source_id == "9"
    assert fact.business_key is None
    assert fact.observed_at == fact.occurred_at == datetime(2023, 4, 29, 16, 2, 53, 179188, UTC)
    assert fact.payload["first_name"] == "Ana"


def test_command_and_result_round_trip_and_command_ids_are_deterministic() -> None:
    fact = make_fact()
    command = Command.for_fact(
        fact_id=fact.event_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", fields={"name": "Acme SL"},
    )  # fmt: skip
    again = Command.for_fact(
        fact_id=fact.event_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", fields={"name": "Acme SL"},
    )  # fmt: skip
    assert command.command_id == again.command_id
    # Another decision from the same fact (its partner became a customer meanwhile) is
    # another command: the writers' tracking must not take it for a redelivery.
    other = Command.for_fact(
        fact_id=fact.event_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", fields={"name": "Acme SL"}, expected={"name": "Acme"},
    )  # fmt: skip
    assert other.command_id != command.command_id
    assert decode(encode(command)) == command
    result = Result(
        command_id=command.command_id, target=System.CLIENTIFY, entity="company",
        business_key="B12345678", status=ResultStatus.APPLIED, target_id="77",
        written={"name": "Acme SL"}, finished_at=WHEN,
    )  # fmt: skip
    assert decode(encode(result)) == result


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"kind": "fact"}', "schema_version missing"),
        (b'{"kind": "gossip", "schema_version": 1}', "unknown envelope kind 'gossip'"),
        (b'{"kind": "fact", "schema_version": 99}', "newer than this release"),
        (b'{"kind": "fact", "schema_version": 2, "event_id": "x"}', "invalid fact: system"),
    ],
)
def test_bad_messages_get_a_specific_error(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode(raw)


@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_envelope_error(raw: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        decode(raw)


def test_skips_and_conflict_reports_round_trip() -> None:
    skip = Skip(
        event_id="e", system=System.ODOO, entity="partner", source_id="9", flow="contact",
        reason="partner has no ref (tax id): not synced", at=WHEN,
    )  # fmt: skip
    conflict = ConflictReport(
        flow="company", business_key="B12345678", field="name", winner=System.CLIENTIFY,
        winning_value="Acme SL", losing_value="ACME", winner_time="2024-05-01T10:30:05Z",
        loser_time="2024-05-01T10:30:00Z", caused_by="e", at=WHEN,
    )  # fmt: skip
    assert decode(encode(skip)) == skip
    assert decode(encode(conflict)) == conflict
