"""The decide step: a route's routed fact, writer result or requeued dead letter in,
commands and reports out, its state kept in one table entry per route.

Glue between the mapping (raw record -> canonical fields), the decision core
(`sync_state`) and the envelopes on the topics. Free of Kafka: the Faust agent hands it
each message and its place on its topic, with the `states` table; `replay tables` runs
it over plain dicts to rebuild that table from the log.

A route's entry (`RouteRecord`) is its `RecordState`, its `Link` (the record's id on
each side) and its `Outbox`. The outbox is why a redelivery is safe: the agent changes
a route's state and then sends what the change produced, and a crash (kill -9) can fall
between the two: the state change is already in RocksDB and its changelog while the
messages never left, and the input offsets were not committed, so Kafka redelivers every
message since the last commit. Folding a redelivered message into a state that already
holds it produces nothing (the state is idempotent), which would lose those messages.
So per route the entry keeps, for each input topic-partition, the last offset folded in,
and for the recent messages what each emitted: a message at or below that offset is a
redelivery, and its messages are sent again with the same ids (the writers' tracking
drops the copies that did arrive). Redeliveries reach back to the last offset commit
(seconds), so a few dozen messages per route are plenty; `KEPT` bounds the entry.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from processors.routing import Route, Router
from processors.sync_state import (
    Decision,
    RecordState,
    apply_fact,
    apply_requeue,
    apply_result,
)
from schemas.envelope import (
    AnyEnvelope,
    Command,
    ConflictReport,
    EchoNotice,
    EnvelopeError,
    Requeue,
    Result,
    ResultStatus,
    Routed,
    System,
    decode,
    encode,
    utc_now,
)
from schemas.mapping.mapper import FlowMapper

log = logging.getLogger(__name__)

# The decide step's table, by name (Faust's table name, so also its changelog's); it is
# partitioned like `sync.routed`.
ROUTE_TABLES = ("states",)
LINK, OUTBOX = "link", "outbox"  # in a route's entry, besides the RecordState
KEPT = 64  # inputs whose messages an outbox remembers


@dataclass
class Outbox:
    """What each input of a route emitted, so a redelivery emits the same again (see
    the module doc)."""

    seen: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> offset
    sent: dict[str, list[str]] = field(default_factory=dict)  # "topic:partition:offset"

    def emitted_by(self, topic: str, partition: int, offset: int) -> list[str] | None:
        """The messages to send again when this input was folded in before, else None."""
        last = self.seen.get(f"{topic}:{partition}")
        if last is None or offset > last:
            return None
        messages = self.sent.get(f"{topic}:{partition}:{offset}")
        if messages is None:
            log.warning(
                "%s:%d:%d redelivered after more than %d newer messages of its route; "
                "what it emitted is no longer known and is not sent again",
                topic, partition, offset, KEPT,
            )  # fmt: skip
            return []
        return messages

    def record(self, topic: str, partition: int, offset: int, messages: list[str]) -> None:
        self.seen[f"{topic}:{partition}"] = offset
        self.sent[f"{topic}:{partition}:{offset}"] = messages
        for old in list(self.sent)[:-KEPT]:
            del self.sent[old]

    def to_json(self) -> dict[str, Any]:
        return {"seen": self.seen, "sent": self.sent}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Outbox:
        data = data or {}
        return cls(dict(data.get("seen", {})), dict(data.get("sent", {})))


@dataclass
class Link:
    """The ids a route's record has on each side, learned from facts and results."""

    odoo_id: str | None = None
    clientify_id: str | None = None
    odoo_is_company: bool = False

    def id_on(self, system: System) -> str | None:
        return self.odoo_id if system is System.ODOO else self.clientify_id

    def to_json(self) -> dict[str, Any]:
        return {
            "odoo_id": self.odoo_id,
            "clientify_id": self.clientify_id,
            "odoo_is_company": self.odoo_is_company,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Link:
        return cls(**(data or {}))


@dataclass
class Outcome:
    commands: list[Command] = field(default_factory=list)
    conflicts: list[ConflictReport] = field(default_factory=list)
    echoes: list[EchoNotice] = field(default_factory=list)
    stale: bool = False
    duplicate: bool = False

    @property
    def messages(self) -> list[Command | ConflictReport | EchoNotice]:
        """Everything to publish, in order."""
        return [*self.commands, *self.conflicts, *self.echoes]


def on_fact(
    route: Route,
    mapper: FlowMapper,
    state: RecordState,
    link: Link,
    *,
    suppress_echoes: bool = True,
) -> Outcome:
    """Fold a fact of this route into `state` and `link` (both mutated)."""
    fact, payload = route.fact, route.payload
    if fact.system is System.ODOO:
        link.odoo_id = fact.source_id
        link.odoo_is_company = payload.get("is_company") is True
        canonical = mapper.from_odoo(payload)
    else:
        link.clientify_id = fact.source_id
        canonical = mapper.from_clientify(payload, is_company=link.odoo_is_company)
    decision = apply_fact(
        state, fact.system, canonical, fact.occurred_at,
        fact_id=fact.event_id, suppress_echoes=suppress_echoes,
    )  # fmt: skip
    outcome = _outcome(route.flow, route.key, fact.event_id, decision, link)
    if decision.is_echo:
        notice = EchoNotice(
            event_id=fact.event_id, system=fact.system, flow=route.flow,
            business_key=route.key, at=utc_now(),
        )  # fmt: skip
        outcome.echoes.append(notice)
    return outcome


def on_result(result: Result, state: RecordState, link: Link) -> Outcome:
    """Fold a writer's result for this route into `state` and `link` (both mutated)."""
    if result.target_id is not None:
        if result.target is System.ODOO:
            link.odoo_id = result.target_id
        else:
            link.clientify_id = result.target_id
    if result.status is ResultStatus.FAILED:
        # Dead-lettered: the writer reports every field as skipped, nothing found.
        decision = apply_result(state, result.target, failed=result.skipped)
    else:
        decision = apply_result(
            state,
            result.target,
            written=result.written,
            unchanged=result.unchanged,
            skipped=result.skipped,
            refused=result.refused,
            found=result.found,
        )
    return _outcome(result.entity, result.business_key, result.command_id, decision, link)


def on_requeue(command: Command, state: RecordState, link: Link) -> Outcome:
    """Issue a requeued dead letter's `command` for this route (`state` and `link`
    mutated), with the fields still to write (see `apply_requeue`). It keeps its id, so
    the writers apply it once however often it is sent; with no field left it still
    goes, empty, for its Result to tell `dlq list` how the requeue ended."""
    decision = apply_requeue(state, command.target, command.fields)
    reissued = command.model_copy(
        update={
            "fields": decision.fields_for(command.target),
            "expected": decision.expected_for(command.target),
            "target_id": link.id_on(command.target) or command.target_id,
            "issued_at": utc_now(),
        }
    )
    return Outcome([reissued])


def _outcome(flow: str, key: str, cause: str, decision: Decision, link: Link) -> Outcome:
    commands = [
        Command.for_fact(
            fact_id=cause,
            target=target,
            entity=flow,
            business_key=key,
            fields=decision.fields_for(target),
            expected=decision.expected_for(target),
            target_id=link.id_on(target),
        )
        for target in decision.writes
    ]
    now = utc_now()
    conflicts = [
        ConflictReport(
            flow=flow,
            business_key=key,
            field=conflict.field,
            winner=conflict.winner,
            winning_value=conflict.winning_value,
            losing_value=conflict.losing_value,
            winner_time=conflict.winner_time,
            loser_time=conflict.loser_time,
            caused_by=cause,
            at=now,
        )
        for conflict in decision.conflicts
    ]
    return Outcome(commands, conflicts, stale=decision.stale, duplicate=decision.duplicate)


@dataclass
class RouteRecord:
    """A route's entry in the `states` table: its state, its link and its outbox, kept
    as one JSON object so that a decision costs one table write."""

    state: RecordState = field(default_factory=RecordState)
    link: Link = field(default_factory=Link)
    outbox: Outbox = field(default_factory=Outbox)

    def to_json(self) -> dict[str, Any]:
        return {**self.state.to_json(), LINK: self.link.to_json(), OUTBOX: self.outbox.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RouteRecord:
        data = data or {}
        return cls(
            RecordState.from_json(data),
            Link.from_json(data.get(LINK)),
            Outbox.from_json(data.get(OUTBOX)),
        )


@dataclass
class DecideStep:
    router: Router
    # Route key -> its RouteRecord, as JSON.
    states: MutableMapping[str, Any]
    suppress_echoes: bool = True

    def on_message(
        self, key: str, message: AnyEnvelope | bytes, place: tuple[str, int, int] | None
    ) -> tuple[Outcome | None, list[str]]:
        """Fold one message of `sync.routed`/`results`/`requeues` (decoded, or as read)
        at `place` (topic, partition, offset; None when rebuilding) into the route's
        entry: the outcome (None when nothing was decided) and the messages to publish,
        encoded."""
        record = RouteRecord.from_json(self.states.get(key))
        if place is not None:
            again = record.outbox.emitted_by(*place)
            if again is not None:
                return None, again
        outcome = self._decide(message, record.state, record.link)
        if outcome is None:
            return None, []
        texts = [encode(emitted).decode() for emitted in outcome.messages]
        if place is not None:
            record.outbox.record(*place, texts)
        self.states[key] = record.to_json()
        return outcome, texts

    def _decide(
        self, message: AnyEnvelope | bytes, state: RecordState, link: Link
    ) -> Outcome | None:
        if isinstance(message, bytes):
            try:
                message = decode(message)
            except EnvelopeError as exc:
                log.error(
                    "unreadable message on the routed/results/requeues topics, ignored: %s", exc
                )
                return None
        if isinstance(message, Result):
            return on_result(message, state, link)
        if isinstance(message, Requeue):
            if message.command is None:
                return None  # a requeue recorded with nothing to send
            log.info("requeued dead letter %s: issuing %s", message.dead_letter_id,
                     message.command.command_id)  # fmt: skip
            return on_requeue(message.command, state, link)
        if not isinstance(message, Routed):
            log.error("a %s on the routed/results/requeues topics, ignored", message.kind)
            return None
        mapper = self.router.mappers.get(message.flow)
        if mapper is None:
            log.warning("flow %s is no longer in the mapping; fact ignored", message.flow)
            return None
        route = Route(message.flow, message.key, message.fact, message.payload)
        return on_fact(route, mapper, state, link, suppress_echoes=self.suppress_echoes)
