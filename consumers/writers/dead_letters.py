"""Dead letters: what is on `sync.dead_letters`, what became of each, and sending one
back to its writer after the cause is fixed (a *requeue*).

A dead letter is known by its command's id: the writers' tracking dead-letters a command
once (a redelivery republishes the same letter, read once here).

A requeued command gets a new id, `requeue_id(dead id)`: the dead id is recorded as
applied on `sync.applied`, so the writer would drop it. The new id is the same however
often the letter is requeued, so a second send (two operators, a re-run) is dropped by
the writer's tracking in turn: a requeued command is applied at most once. A requeue
goes to the worker, on `sync.requeues`: the worker issues the command like one of its
own (it then knows the write's echo when the target reports it, and it drops a field
a newer edit won meanwhile). `dlq list` reads what was sent back from the same topic,
and how it ended from `sync.applied`.

When several dead letters of one record carry the same field (an outage dead-letters
every edit made meanwhile), only the newest value is sent back. Were an older one to
land first, the target's next fact would show it as a fresh edit there, newer than the
edit that produced the newer letter, and it would win over that edit on both sides.
For the same reason a field that a later command of the record did write (the sync
moved on after the dead letter: a contact that waited too long for its company, then a
newer edit went through) is not sent back either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from connectors.kafka.admin import partitions_of
from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from consumers.base.tracking import load_applied, replayed
from schemas import Command, DeadLetter, Requeue, Result, ResultStatus, System, decode
from schemas.envelope import EnvelopeError, deterministic_id, utc_now
from schemas.keys import route_key
from schemas.topics import (
    APPLIED_COMMANDS,
    DEAD_LETTERS,
    REQUEUES,
    RESULTS,
    Topics,
)

log = logging.getLogger(__name__)

SHORT_ID = 8  # characters of an id shown in tables; any unique prefix is accepted


def requeue_id(dead_command_id: str) -> str:
    """The id of the command a dead letter is sent back as: one per dead letter."""
    return deterministic_id("requeue", dead_command_id)


@dataclass(frozen=True)
class Entry:
    """One dead letter, with its requeue and how the requeued command ended (None while
    its writer has not handled it)."""

    letter: DeadLetter
    requeue: Requeue | None = None
    outcome: ResultStatus | None = None

    @property
    def id(self) -> str:
        return self.letter.command.command_id

    @property
    def record(self) -> Record:
        command = self.letter.command
        return command.target, command.entity, command.business_key


@dataclass(frozen=True)
class Planned:
    """What requeuing `entry` sends: `command`, or None when `superseded` took every field."""

    entry: Entry
    command: Command | None
    superseded: dict[str, str] = field(default_factory=dict)

    def requeue(self) -> Requeue:
        return Requeue(
            dead_letter_id=self.entry.id,
            command_id=None if self.command is None else self.command.command_id,
            command=self.command,
            superseded=self.superseded,
            at=utc_now(),
        )


class UnknownDeadLetter(LookupError):
    """No dead letter, or more than one, has the id given."""


Record = tuple[System, str, str]  # target, flow, business key


class Book:
    """Every dead letter, oldest first, with what became of it; and per record and field
    the last command the writers did apply (`written`: when it finished, its id)."""

    def __init__(
        self,
        entries: Iterable[Entry],
        written: Mapping[tuple[Record, str], tuple[datetime, str]] | None = None,
    ) -> None:
        # Stable: letters of one record share a partition, read in their order.
        self.entries = sorted(entries, key=lambda entry: entry.letter.at)
        self.written = dict(written or {})

    def find(self, wanted: str) -> Entry:
        """The entry whose id is `wanted` or starts with it."""
        matches = [entry for entry in self.entries if entry.id.startswith(wanted.strip())]
        if len(matches) != 1 or not wanted.strip():
            found = "no dead letter" if not matches else f"{len(matches)} dead letters"
            raise UnknownDeadLetter(
                f"{found} with id {wanted!r}: give one id (or a unique start of one) "
                "from `clientify-odoo dlq list`"
            )
        return matches[0]

    def open(self) -> list[Entry]:
        """Dead letters not requeued yet."""
        return [entry for entry in self.entries if entry.requeue is None]

    def plan(self, chosen: Iterable[Entry]) -> list[Planned]:
        """What requeuing `chosen` sends, oldest first, newer values taking precedence."""
        wanted = {entry.id for entry in chosen}
        newest: dict[tuple[Record, str], str] = {}  # (record, field) -> id
        plans: list[Planned] = []
        for entry in reversed(self.entries):
            fields = entry.letter.command.fields
            if entry.id in wanted:
                superseded = {
                    f: newest[entry.record, f] for f in fields if (entry.record, f) in newest
                }
                for name in fields:
                    later = self.written.get((entry.record, name))
                    if later is not None and later[0] > entry.letter.at:
                        superseded.setdefault(name, later[1])
                plans.append(_plan(entry, superseded))
            for name in fields:
                newest.setdefault((entry.record, name), entry.id)
        return plans[::-1]


def _plan(entry: Entry, superseded: dict[str, str]) -> Planned:
    dead = entry.letter.command
    fields = {name: value for name, value in dead.fields.items() if name not in superseded}
    if not fields:
        return Planned(entry, None, superseded)
    command = dead.model_copy(
        update={
            "command_id": requeue_id(dead.command_id),
            "fields": fields,
            "expected": {name: value for name, value in dead.expected.items() if name in fields},
            "issued_at": utc_now(),
        }
    )
    return Planned(entry, command, superseded)


class MissingTopics(Exception):
    """The dead-letter topics are not there: the topic registry was not applied."""


async def read_book(bootstrap: str, topics: Topics) -> Book:
    """Every dead letter on the topics now, with its requeue and that one's outcome."""
    letters, requeues = await _letters_and_requeues(bootstrap, topics)
    outcomes = await _outcomes(bootstrap, topics, requeues.values()) if requeues else {}
    return Book(
        (
            Entry(letter, requeues.get(dead_id), outcomes.get(dead_id))
            for dead_id, letter in letters.items()
        ),
        await _written(bootstrap, topics[RESULTS]) if letters else {},
    )


async def read_open(bootstrap: str, topics: Topics) -> list[Entry]:
    """The dead letters not requeued yet, oldest first. Reads only the dead-letter and
    requeue topics (not the results and applied commands `read_book` reads for the
    fates and plans), so `status` can ask on every run."""
    letters, requeues = await _letters_and_requeues(bootstrap, topics)
    return Book(Entry(letter, requeues.get(dead_id)) for dead_id, letter in letters.items()).open()


async def _letters_and_requeues(
    bootstrap: str, topics: Topics
) -> tuple[dict[str, DeadLetter], dict[str, Requeue]]:
    """Every dead letter by its command id, and the newest requeue of each."""
    names = topics.names((DEAD_LETTERS, REQUEUES))
    present = {tp.topic for tp in await partitions_of(bootstrap, *names)}
    missing = [name for name in names if name not in present]
    if missing:
        raise MissingTopics(
            f"topic(s) {', '.join(missing)} missing: create them with `clientify-odoo kafka "
            "topics` (or run the writers once: they create every topic)"
        )
    letters: dict[str, DeadLetter] = {}
    requeues: dict[str, Requeue] = {}
    for record in await read_to_end(bootstrap, names):  # in offset order per partition
        try:
            if record.topic == topics[REQUEUES]:
                requeue = Requeue.model_validate_json(record.value)
                requeues[requeue.dead_letter_id] = requeue  # the newest wins
                continue
            envelope = decode(record.value)
        except (EnvelopeError, ValidationError) as exc:
            log.warning("unreadable message on %s, ignored: %s", record.topic, exc)
            continue
        if isinstance(envelope, DeadLetter):
            letters.setdefault(envelope.command.command_id, envelope)
    return letters, requeues


async def _written(bootstrap: str, results: str) -> dict[tuple[Record, str], tuple[datetime, str]]:
    """Per record and field, the last applied command that wrote it (or found it there)."""
    written: dict[tuple[Record, str], tuple[datetime, str]] = {}
    for record in await read_to_end(bootstrap, [results]):
        try:
            result = decode(record.value or b"")
        except EnvelopeError:
            continue
        if not isinstance(result, Result) or result.status is not ResultStatus.APPLIED:
            continue
        target = (result.target, result.entity, result.business_key)
        for name in (*result.written, *result.unchanged):
            known = written.get((target, name))
            if known is None or known[0] < result.finished_at:
                written[target, name] = (result.finished_at, result.command_id)
    return written


async def _outcomes(
    bootstrap: str, topics: Topics, requeues: Iterable[Requeue]
) -> dict[str, ResultStatus]:
    """Per dead letter, the status of its requeued command's Result, once there is one:
    the writers store each command's Result with its id on the applied topic."""
    applied = await load_applied(bootstrap, topics[APPLIED_COMMANDS])
    outcomes: dict[str, ResultStatus] = {}
    for requeue in requeues:
        stored = applied.get(requeue.command_id or "")
        for outgoing in replayed(stored) if stored is not None else ():
            if isinstance(outgoing.value, Result):
                outcomes[requeue.dead_letter_id] = outgoing.value.status
    return outcomes


async def send(
    bootstrap: str, topics: Topics, plans: Sequence[Planned], transactional_id: str
) -> None:
    """Record the planned requeues on `sync.requeues`, atomically (a reader sees all or
    none), keyed by their record's route: the worker reads them in order with that
    record's facts and results and issues the commands (see `Requeue`)."""
    records: list[Outgoing] = []
    for planned in plans:
        dead = planned.entry.letter.command
        key = route_key(dead.entity, dead.business_key)  # the record's partition
        records.append(Outgoing(topics[REQUEUES], key, planned.requeue()))
    async with Publisher(
        bootstrap, client_id="clientify-odoo-dlq", transactional_id=transactional_id
    ) as publisher:
        await publisher.publish_all(records)
