"""Re-run a source topic through the current mapping, so the targets get what changed.

After a user adds a field to the mapping (or turns a direction on), records synced
before hold nothing for it. Replaying the newest version of each record of a source
topic makes the worker map it again: fields whose canonical value is already known are
unchanged and produce nothing; the new field is an edit and is written to the other
side, once (a second replay finds it known). Older versions are not replayed: the
worker would drop them as stale anyway.

The facts are published again as they were (same ids) onto their own topic; the live
worker does the rest. A dry run computes, with the worker's own steps over the current
tables (read from their changelogs), the commands the replay would cause.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from processors.decide import DecideStep
from processors.replay_tables import Tables, current_tables
from processors.routing import Router, RouteStep
from schemas.envelope import Command, EnvelopeError, Fact, Routed, decode
from schemas.mapping import MappingFile


@dataclass(frozen=True)
class Replayed:
    facts: list[tuple[str, Fact]]  # (topic, newest fact) per record
    read: int  # facts read in all


async def newest_facts(bootstrap: str, topics: list[str], since: datetime | None) -> Replayed:
    """The newest fact of each record on `topics` (from `since`, else the beginning)."""
    newest: dict[tuple[str, str, str], tuple[str, Fact]] = {}
    read = 0
    for record in await read_to_end(bootstrap, topics, since=since):
        try:
            fact = decode(record.value or b"")
        except EnvelopeError:
            continue
        if not isinstance(fact, Fact):
            continue
        read += 1
        identity = (fact.system.value, fact.entity, fact.source_id)
        known = newest.get(identity)
        if known is None or fact.occurred_at >= known[1].occurred_at:
            newest[identity] = (record.topic, fact)
    return Replayed(list(newest.values()), read)


async def dry_run(
    bootstrap: str, prefix: str, mapping: MappingFile, replayed: Replayed
) -> list[Command]:
    """The commands the worker would emit for `replayed`, given its current tables."""
    tables: Tables = copy.deepcopy(await current_tables(bootstrap, prefix))
    t = tables.by_name
    router = Router(mapping)
    route_step = RouteStep.over(router, t)
    decide_step = DecideStep(router, t["states"])
    commands: list[Command] = []
    for _topic, fact in replayed.facts:
        for out in route_step.on_fact(fact):
            if not isinstance(out, Routed):
                continue
            outcome, _texts = decide_step.on_message(out.route_key, out, None)
            if outcome is not None:
                commands += outcome.commands
    return commands


async def publish(bootstrap: str, replayed: Replayed) -> None:
    async with Publisher(bootstrap, client_id="clientify-odoo-replay") as publisher:
        await publisher.publish_all(
            [Outgoing(topic, fact.source_id, fact) for topic, fact in replayed.facts]
        )
