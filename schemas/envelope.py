"""Envelopes: facts (what a system said), commands (what to write) and results.

Every message carries `kind` and `schema_version`. Readers go through `decode`, which
upcasts older versions to the current shape before validation (the event-sourcing
"upcasting" pattern), so a topic written by an older release still replays.

Event and command ids are deterministic (UUIDv5 of what identifies them), so a re-poll,
a redelivered webhook or a re-run processor yields the same id and downstream dedupe
makes the repeat a no-op.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from schemas.keys import route_key

# Fixed namespace: changing it would change every id ever issued.
ID_NAMESPACE = uuid.UUID("6f4c5f0e-2b8a-4a57-9d0e-6b1f3c7a9e21")


class System(StrEnum):
    ODOO = "odoo"
    CLIENTIFY = "clientify"


class EnvelopeError(ValueError):
    """A message on a topic is not a valid envelope; says which topic bytes and why."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def sortable_time(moment: datetime) -> str:
    """Fixed-width UTC text (microseconds always present), so string order is time
    order: how tables store the times they compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deterministic_id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "|".join(str(part) for part in parts)))


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _aware_utc(cls, value: Any) -> Any:
        # Odoo sends naive UTC datetimes; make every datetime explicit UTC.
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class Fact(_Envelope):
    """One observed version of one record in one system, exactly as the system sent it."""

    kind: Literal["fact"] = "fact"
    schema_version: Literal[2] = 2
    event_id: str
    system: System
    entity: str
    source_id: str
    business_key: str | None = None
    occurred_at: datetime = Field(description="when the source says the change happened")
    observed_at: datetime = Field(description="when the product saw it")
    payload: dict[str, Any]

    @classmethod
    def observe(
        cls,
        *,
        system: System,
        entity: str,
        source_id: str | int,
        version: str,
        payload: dict[str, Any],
        occurred_at: datetime,
        business_key: str | None = None,
        observed_at: datetime | None = None,
    ) -> Fact:
        """A fact whose id depends only on (system, entity, id, version)."""
        return cls(
            event_id=deterministic_id("fact", system.value, entity, source_id, version),
            system=system,
            entity=entity,
            source_id=str(source_id),
            business_key=business_key,
            occurred_at=occurred_at,
            observed_at=observed_at or utc_now(),
            payload=payload,
        )


class Routed(_Envelope):
    """A fact re-keyed for one route (`flow:business key`, see `schemas.keys.route_key`)
    on `sync.routed`, with what the worker's lookups added to its payload (an order's
    customer key and its lines' SKUs)."""

    kind: Literal["routed"] = "routed"
    schema_version: Literal[1] = 1
    flow: str
    key: str
    payload: dict[str, Any]
    fact: Fact

    @property
    def route_key(self) -> str:
        return route_key(self.flow, self.key)


class Command(_Envelope):
    """Upsert one record in the target system, with only the fields that changed.

    `entity` is the mapping flow (company, contact, product, order) and `fields` and
    `expected` use its canonical field names; the writer maps them to the target's
    shape. A field is written only where the target still holds its `expected` value
    (when one is given): neither API has compare-and-set, and this keeps a write from
    undoing an edit the sync has not seen yet.
    """

    kind: Literal["command"] = "command"
    schema_version: Literal[1] = 1
    command_id: str
    target: System
    entity: str
    business_key: str
    target_id: str | None = Field(default=None, description="linked id, when known")
    fields: dict[str, Any]
    expected: dict[str, Any] = Field(default_factory=dict)
    caused_by: str = Field(description="id of the fact (or result) that led to this command")
    issued_at: datetime

    @classmethod
    def for_fact(
        cls,
        *,
        fact_id: str,
        target: System,
        entity: str,
        business_key: str,
        fields: dict[str, Any],
        expected: dict[str, Any] | None = None,
        target_id: str | None = None,
        issued_at: datetime | None = None,
    ) -> Command:
        """A command whose id depends only on its cause, target and content: a re-run
        repeats it (and the writers' tracking drops the copy), while a different decision
        from the same fact (re-routed once its partner became a customer) is a new one."""
        content = json.dumps([fields, expected or {}], sort_keys=True, default=str)
        return cls(
            command_id=deterministic_id("command", fact_id, target.value, entity, content),
            target=target,
            entity=entity,
            business_key=business_key,
            target_id=target_id,
            fields=fields,
            expected=expected or {},
            caused_by=fact_id,
            issued_at=issued_at or utc_now(),
        )


class ResultStatus(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    FAILED = "failed"


class Result(_Envelope):
    """What a writer did with a command (canonical field names, like the command's).

    `written` were set; `unchanged` already held the value; `skipped` held `found`
    instead of the expected value and were left alone; `refused` cannot be held by the
    target as given (a country that names no record there): left at `found`, with the
    reason in `error`. Results feed the link table (`target_id`) and the processors'
    record of writes in flight.
    """

    kind: Literal["result"] = "result"
    schema_version: Literal[1] = 1
    command_id: str
    target: System
    entity: str
    business_key: str
    status: ResultStatus
    target_id: str | None = None
    written: dict[str, Any] = Field(default_factory=dict)
    unchanged: dict[str, Any] = Field(default_factory=dict)
    skipped: dict[str, Any] = Field(default_factory=dict)
    refused: dict[str, Any] = Field(default_factory=dict)
    found: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    finished_at: datetime


class Skip(_Envelope):
    """A record the sync does not apply (no or invalid business key, unreadable fact),
    with the reason; counted and shown to the user, never silently dropped."""

    kind: Literal["skip"] = "skip"
    schema_version: Literal[1] = 1
    event_id: str
    system: System
    entity: str
    source_id: str
    flow: str | None = None
    reason: str
    at: datetime


class ConflictReport(_Envelope):
    """The same field changed on both sides: the later edit won; both values kept."""

    kind: Literal["conflict"] = "conflict"
    schema_version: Literal[1] = 1
    flow: str
    business_key: str
    field: str
    winner: System
    winning_value: Any
    losing_value: Any
    winner_time: str
    loser_time: str
    caused_by: str
    at: datetime


class DeadLetter(_Envelope):
    """A command a writer could not apply (rejected, or still failing after its retry
    budget), kept whole with the reason so nothing is lost and it can be replayed."""

    kind: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = 1
    command: Command
    reason: str
    attempts: int = Field(ge=0, description="how many times the writer tried it")
    at: datetime


class EchoNotice(_Envelope):
    """A fact recognised as the sync's own write coming back, and dropped: published so
    that consumers (reporting, monitoring) can count what the suppression prevented."""

    kind: Literal["echo"] = "echo"
    schema_version: Literal[1] = 1
    event_id: str = Field(description="id of the dropped fact")
    system: System = Field(description="the side the echo came from")
    flow: str
    business_key: str
    at: datetime


class Requeue(_Envelope):
    """A dead letter sent back (`clientify-odoo dlq requeue`), on `sync.requeues`, keyed
    by its record's route. The worker issues `command` itself, so that it awaits the
    write like any of its own and knows its echo; it drops a field a newer edit won
    meanwhile. `command` is None when `superseded` took every field already."""

    kind: Literal["requeue"] = "requeue"
    schema_version: Literal[1] = 1
    dead_letter_id: str
    command_id: str | None
    command: Command | None = None
    # field -> id of the newer dead letter carrying it, or of the later applied command
    superseded: dict[str, str] = Field(default_factory=dict)
    at: datetime


class Hint(_Envelope):
    """Odoo saying a record changed (an automation rule's webhook), on `odoo.hints`, keyed
    by `model:id`. Only a nudge: Odoo posts it inside the transaction that made the
    change, before the commit, and a change that rolls back was announced anyway; the
    poller reads the record from committed state, and the fact is what it reads."""

    kind: Literal["hint"] = "hint"
    schema_version: Literal[1] = 1
    system: System = System.ODOO
    model: str
    record_id: int = Field(gt=0)
    action: str = Field(default="", description="the rule that fired, as Odoo names it")
    received_at: datetime


AnyEnvelope = (
    Fact
    | Routed
    | Command
    | Result
    | Skip
    | ConflictReport
    | DeadLetter
    | EchoNotice
    | Requeue
    | Hint
)
Envelope = Annotated[AnyEnvelope, Field(discriminator="kind")]
_ENVELOPE: TypeAdapter[AnyEnvelope] = TypeAdapter(Envelope)

CURRENT_VERSIONS = {
    "fact": 2, "routed": 1, "command": 1, "result": 1, "skip": 1, "conflict": 1,
    "dead_letter": 1, "echo": 1, "requeue": 1, "hint": 1,
}  # fmt: skip


def _fact_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 (the first prototype) named the record id `record_id` and had neither
    # `business_key` nor `observed_at`; the best observation time it offers is its
    # occurrence time.
    upgraded = dict(data)
    upgraded["source_id"] = str(upgraded.pop("record_id"))
    upgraded.setdefault("business_key", None)
    upgraded.setdefault("observed_at", upgraded["occurred_at"])
    upgraded["schema_version"] = 2
    return upgraded


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("fact", 1): _fact_v1_to_v2,
}


def encode(envelope: AnyEnvelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(data: bytes | str | dict[str, Any]) -> AnyEnvelope:
    """Read any envelope of any known version; raise `EnvelopeError` saying why not."""
    if not isinstance(data, dict):
        try:  # the common case, a valid envelope of the current version: parsed in one pass
            return _ENVELOPE.validate_json(data)
        except ValidationError:
            pass  # read below step by step, to upcast it or to say exactly what is wrong
    try:
        raw: Any = data if isinstance(data, dict) else json.loads(data)
    except ValueError as exc:  # not UTF-8, not JSON, or a number too long for Python
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise EnvelopeError(f"expected a JSON object, got {type(raw).__name__}")
    kind = raw.get("kind", "fact")  # v1 facts carried no `kind`
    raw.setdefault("kind", kind)
    version = raw.get("schema_version")
    if not isinstance(version, int):
        raise EnvelopeError(f"{kind}: schema_version missing or not an integer")
    current = CURRENT_VERSIONS.get(kind)
    if current is None:
        raise EnvelopeError(f"unknown envelope kind {kind!r}")
    if version > current:
        raise EnvelopeError(
            f"{kind} schema_version {version} is newer than this release understands "
            f"({current}); upgrade clientify-odoo"
        )
    while version < current:
        upcast = UPCASTERS.get((kind, version))
        if upcast is None:
            raise EnvelopeError(f"{kind} schema_version {version} can no longer be read")
        raw = upcast(raw)
        version = raw["schema_version"]
    try:
        return _ENVELOPE.validate_python(raw)
    except ValidationError as exc:
        # The union's first location element is the discriminator tag: drop it.
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or kind}: {err['msg']}"
            for err in exc.errors()
        )
        raise EnvelopeError(f"invalid {kind}: {fields}") from None
