"""One step of a route: a fact or a result in, commands and reports out.

Glue between the mapping (raw record -> canonical fields), the decision core
(`sync_state`) and the envelopes on the topics. Still free of Kafka: the Faust agent
loads the route's state and link from its tables, calls this, and stores them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.routing import Route
from processors.sync_state import (
    Decision,
    RecordState,
    apply_fact,
    apply_requeue,
    apply_result,
)
from schemas.envelope import (
    Command,
    ConflictReport,
    EchoNotice,
    Result,
    ResultStatus,
    System,
    utc_now,
)
from schemas.mapping.mapper import FlowMapper


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
