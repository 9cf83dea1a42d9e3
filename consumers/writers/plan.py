"""What a writer does with each field of a command, decided against the target's record.

Both writers read the target record, map it to canonical fields with a *reader* (the
flow's mapper, for the fields that flow towards that target) and compare field by field
(`sync_state.Write`): equal to the command's value -> `unchanged`; the target no longer
holds the `expected` value -> `skipped`, with what it holds in `found`; otherwise the
field is written. A field the target does not carry at all (Odoo 19 has no `mobile`;
another flow owns it there) cannot be written: it is `skipped` with `found` None and
named in the Result's note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import Command, Result, ResultStatus, utc_now
from schemas.mapping import Direction, Flow, MappingFile
from schemas.mapping.mapper import Canonical, FlowMapper


def reader_for(flow: Flow, towards: Direction) -> FlowMapper:
    """A mapper that reads, from the target system's own records, the canonical value
    of every field that flows towards that system (the processors' mapper reads only
    the fields flowing away from a system)."""
    fields = [
        f.model_copy(update={"direction": Direction.BOTH}) for f in flow.fields_towards(towards)
    ]
    return FlowMapper(flow.model_copy(update={"fields": fields, "direction": Direction.BOTH}))


def mappers_towards(
    mapping: MappingFile, towards: Direction
) -> tuple[dict[str, FlowMapper], dict[str, FlowMapper]]:
    """Per flow, the mapper that builds the target's payloads and the reader of the
    target's records."""
    flows: dict[str, Flow] = {name: flow for name, flow in mapping.flows.items()}
    mappers = {name: FlowMapper(flow, mapping.order_status) for name, flow in flows.items()}
    return mappers, {name: reader_for(flow, towards) for name, flow in flows.items()}


class MappingMismatch(ValueError):
    """A command carries fields this writer's mapping does not have."""


def check_fields(command: Command, mapper: FlowMapper) -> None:
    """Refuse a command with fields unknown to this writer's mapping: the worker and the
    writers then run with different mapping files, and guessing would write nothing."""
    flow = mapper.flow
    known = {field.name for field in flow.fields}
    if flow.lines is not None:
        known.add(flow.lines.clientify)  # an order's items travel under this name
    unknown = sorted(set(command.fields) - known)
    if unknown:
        raise MappingMismatch(
            f"field(s) {', '.join(unknown)} of flow {command.entity} are not in this "
            "writer's mapping: give the worker and both writers the same MAPPING_FILE, "
            "restart the writer, then `clientify-odoo dlq requeue` this command"
        )


@dataclass
class Plan:
    write: Canonical = field(default_factory=dict)
    unchanged: Canonical = field(default_factory=dict)
    skipped: Canonical = field(default_factory=dict)
    refused: Canonical = field(default_factory=dict)
    found: Canonical = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def unresolved(self, name: str, found: Any, why: str) -> None:
        """A field written as planned turns out not writable (its value names no record
        there): refused, with what the target holds and why."""
        self.refused[name] = self.write.pop(name)
        self.found[name] = found
        self.notes.append(f"{name}: {why}")

    def not_carried(self, name: str, value: Any, why: str) -> None:
        self.skipped[name] = value
        self.found[name] = None
        self.notes.append(f"{name}: {why}")

    def result(
        self,
        command: Command,
        target_id: str | None,
        *,
        note: str | None = None,
        status: ResultStatus = ResultStatus.APPLIED,
    ) -> Result:
        notes = [*self.notes, *([note] if note else [])]
        return Result(
            command_id=command.command_id,
            target=command.target,
            entity=command.entity,
            business_key=command.business_key,
            status=status,
            target_id=target_id,
            written=self.write,
            unchanged=self.unchanged,
            skipped=self.skipped,
            refused=self.refused,
            found=self.found,
            error="; ".join(notes) or None,
            finished_at=utc_now(),
        )


def plan(
    command: Command, current: Canonical | None, lacking: Mapping[str, str] | None = None
) -> Plan:
    """Compare each command field with the target's current canonical value (`None`: the
    record is to be created, so every field is written). `lacking`: fields the target
    system cannot hold at all, with why."""
    out = Plan()
    for name, value in command.fields.items():
        if lacking and name in lacking:
            out.not_carried(name, value, lacking[name])
        elif current is None:
            out.write[name] = value
        elif name not in current:
            out.not_carried(name, value, "not held by this record (another flow owns it here)")
        elif current[name] == value:
            out.unchanged[name] = value
        elif name in command.expected and current[name] != command.expected[name]:
            out.skipped[name] = value
            out.found[name] = current[name]
        else:
            out.write[name] = value
    return out


def failed(command: Command, reason: str) -> Result:
    """A command that could not be applied: every field skipped, nothing found."""
    return Plan(skipped=dict(command.fields)).result(
        command, command.target_id, note=reason, status=ResultStatus.FAILED
    )
