"""The decision at the heart of the sync, as a pure function of (state, fact).

Per record (one flow, one business key) the processors keep a `RecordState`: for each
side the last canonical values its facts showed and the writes of ours to it that are
still awaited; and per field the *base*, the value that won last, with the time of the
edit that made it win. A fact is compared field by field:

- equal to a write of ours that is awaited there: an **echo**, dropped and counted;
- equal to what that side's facts already showed: nothing (re-poll, redelivery);
- otherwise an **edit**. The latest edit of a field wins everywhere: an edit newer than
  the base becomes the base and is written to the other side; an older one loses, the
  base is written back to its side, and both values go out as a **conflict**. An edit
  made while a write of ours to that side was in flight is reported as a conflict too.

Only changed fields travel, so edits of different fields on both sides both survive.
Writes are conditional (`Write.expected`) and the writers report what they did not
write (`apply_result`), so a write never undoes an edit it did not know about.

Echoes are recognised by value, as neither API says who made a change: a user edit
that sets exactly the value the sync is writing to that field at that moment is taken
as the echo. The field still ends with that value; only that edit's time is not
recorded. Times are what the source says: Odoo dates a whole record by `write_date`,
so when a poll sees several edits at once, each field is dated by the last of them.
Keeping this free of Kafka and Faust lets it be tested exhaustively.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.envelope import System, deterministic_id, sortable_time

Fields = dict[str, Any]


def _other(side: System) -> System:
    return System.CLIENTIFY if side is System.ODOO else System.ODOO


@dataclass
class SideState:
    known: Fields = field(default_factory=dict)
    written: Fields = field(default_factory=dict)  # what the sync last wrote here
    # Values written, in order, whose outcome is not known yet.
    pending: dict[str, list[Any]] = field(default_factory=dict)
    # Values the writer reported done, in order, not yet seen back in a fact. With
    # `pending`, what a fact may show as an echo of our own writes.
    landed: dict[str, list[Any]] = field(default_factory=dict)
    last_occurred_at: str | None = None
    # Digests of the facts folded in lately (fact id + canonical content), to know a
    # fact delivered again: a worker restart re-routes the facts since its last commit.
    folded: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "known": self.known,
            "written": self.written,
            "pending": self.pending,
            "landed": self.landed,
            "last_occurred_at": self.last_occurred_at,
            "folded": self.folded,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SideState:
        return cls(
            known=dict(data.get("known", {})),
            written=dict(data.get("written", {})),
            pending={k: list(v) for k, v in data.get("pending", {}).items()},
            landed={k: list(v) for k, v in data.get("landed", {}).items()},
            last_occurred_at=data.get("last_occurred_at"),
            folded=list(data.get("folded", [])),
        )


@dataclass
class RecordState:
    odoo: SideState = field(default_factory=SideState)
    clientify: SideState = field(default_factory=SideState)
    base: Fields = field(default_factory=dict)  # field -> the value that won last
    base_times: dict[str, str] = field(default_factory=dict)  # field -> its edit time

    def side(self, system: System) -> SideState:
        return self.odoo if system is System.ODOO else self.clientify

    def to_json(self) -> dict[str, Any]:
        return {
            "odoo": self.odoo.to_json(),
            "clientify": self.clientify.to_json(),
            "base": self.base,
            "base_times": self.base_times,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RecordState:
        if not data:
            return cls()
        return cls(
            odoo=SideState.from_json(data.get("odoo", {})),
            clientify=SideState.from_json(data.get("clientify", {})),
            base=dict(data.get("base", {})),
            base_times=dict(data.get("base_times", {})),
        )


@dataclass(frozen=True)
class Conflict:
    field: str
    winner: System
    winning_value: Any
    losing_value: Any
    winner_time: str
    loser_time: str


@dataclass(frozen=True)
class Write:
    """Set `value`, but only where the target still holds `expected` (when known).

    Neither system offers compare-and-set, so the writer reads the record and skips a
    field whose current value is not the expected one: the target changed it meanwhile,
    its own fact will come, and this state machine resolves the two edits by time. A
    blind write would silently undo that newer edit.
    """

    value: Any
    expected: Any


@dataclass
class Decision:
    """What to write to each side, and what to report."""

    writes: dict[System, dict[str, Write]] = field(default_factory=dict)
    echoed: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    stale: bool = False
    duplicate: bool = False

    @property
    def is_echo(self) -> bool:
        """The fact changed nothing but the fields the sync itself had written."""
        return bool(self.echoed) and not self.writes and not self.conflicts

    def fields_for(self, target: System) -> Fields:
        return {name: w.value for name, w in self.writes.get(target, {}).items()}

    def expected_for(self, target: System) -> Fields:
        """Expected current values, for the fields where one is known."""
        return {
            name: w.expected
            for name, w in self.writes.get(target, {}).items()
            if w.expected is not MISSING
        }


MISSING: Any = object()  # never seen on that side
LANDED_KEPT = 8  # done writes remembered per field until their echo shows
FOLDED_KEPT = 32  # facts remembered per side, to recognise one delivered again


def apply_fact(
    state: RecordState,
    source: System,
    canonical: Fields,
    occurred_at: datetime,
    *,
    fact_id: str | None = None,
    suppress_echoes: bool = True,
) -> Decision:
    """Fold one fact into `state` (mutated) and decide what to write where.

    A fact (`fact_id`) seen before with the same canonical content changes nothing: an
    older version delivered again after newer ones would otherwise read as an edit
    (Odoo dates versions to the second, so being older is not always visible). The
    same fact mapped differently (a new mapping, a partner now a customer) is new.

    `suppress_echoes=False` relays every field a fact changes to the other side, as a
    naive integration does: only for showing what the suppression prevents (a loop).
    """
    when = sortable_time(occurred_at)
    mine = state.side(source)
    decision = Decision()
    if fact_id is not None:
        digest = deterministic_id(fact_id, json.dumps(canonical, sort_keys=True, default=str))
        if digest in mine.folded:
            decision.duplicate = True
            return decision
        mine.folded = [*mine.folded, digest][-FOLDED_KEPT:]
    if mine.last_occurred_at is not None and when < mine.last_occurred_at:
        # An older version arriving late (e.g. a reconciliation overlap): the newer
        # one was already applied, so this one must not roll fields back.
        decision.stale = True
        return decision
    mine.last_occurred_at = when
    for name, value in canonical.items():
        if suppress_echoes and _seen_back(mine, name, value):
            mine.known[name] = value
            decision.echoed.append(name)
            continue
        if mine.known.get(name, MISSING) == value:
            if mine.written.get(name, MISSING) == value:
                decision.echoed.append(name)  # our write, already confirmed by its result
            continue  # unchanged (a re-poll, or our write has not landed yet)
        mine.known[name] = value
        # Facts come in order: our writes reported done before this version are
        # behind it, whether or not a poll showed them.
        mine.landed.pop(name, None)
        _decide_edit(state, source, name, value, when, decision, relay=not suppress_echoes)
    return decision


def _decide_edit(
    state: RecordState,
    source: System,
    name: str,
    value: Any,
    when: str,
    decision: Decision,
    *,
    relay: bool = False,
) -> None:
    """An edit of `name` on `source`: the latest edit of a field wins everywhere."""
    target = _other(source)
    winner, winner_time = state.base.get(name, MISSING), state.base_times.get(name, "")
    if value is None and winner is MISSING:
        # Empty where no side has had a value yet: nothing to tell the other side, whose
        # record may hold a value not seen yet (an empty must not erase it), or lack the
        # field altogether (Odoo 19's `mobile`).
        return
    if winner is not MISSING and when < winner_time:
        # A later edit already won: this one loses, and `source` gets the winner back
        # unless it is already on its way there.
        decision.conflicts.append(Conflict(name, target, winner, value, winner_time, when))
        if _effective(state.side(source), name) != winner:
            _record_write(state, decision, source, name, winner)
        return
    in_flight = name in state.side(source).pending
    if in_flight and winner is not MISSING and winner != value:
        # `source` was edited while an older winner was being written to it.
        decision.conflicts.append(Conflict(name, source, value, winner, when, winner_time))
    state.base[name], state.base_times[name] = value, when
    if relay or _effective(state.side(target), name) != value:
        _record_write(state, decision, target, name, value)
    if in_flight:
        # Our older write may still land after this edit: write the winner back too.
        _record_write(state, decision, source, name, value)


def _effective(side: SideState, name: str) -> Any:
    """The value a side holds once our writes land (as far as we know)."""
    for awaited in (side.pending, side.landed):
        values = awaited.get(name)
        if values:
            return values[-1]
    return side.known.get(name, MISSING)


def _record_write(
    state: RecordState, decision: Decision, target: System, name: str, value: Any
) -> None:
    side = state.side(target)
    expected = _effective(side, name)
    side.written[name] = value
    side.pending.setdefault(name, []).append(value)
    decision.writes.setdefault(target, {})[name] = Write(value, expected)


def apply_result(
    state: RecordState,
    target: System,
    *,
    written: Fields | None = None,
    unchanged: Fields | None = None,
    skipped: Fields | None = None,
    refused: Fields | None = None,
    found: Fields | None = None,
    failed: Fields | None = None,
) -> Decision:
    """Fold a writer's report for one command into `state`.

    `written` and `unchanged` (the target already held the value): those writes, and
    every earlier write of the field, are done; a poll that coalesces versions may never
    show them. What the target holds is still learned from its facts only.

    `skipped`: the target held `found` instead of the expected value. When `found` is
    what its facts last showed, nothing unseen happened there (our expectation came from
    a write that did not land), so a value that is still the winner is written again
    against it. Otherwise the target changed after its last fact: that fact is on its
    way and will be resolved against our value when it arrives.

    `refused`: the target cannot hold the value (it names no record there). It is not
    sent again, and the target keeps `found`: its next fact showing that is no edit of
    its own, so it neither overwrites the value on the other side nor counts as a
    conflict; the value waits, with its reason reported, for someone to fix either side.

    `failed`: the command was dead-lettered (rejected, or out of retries). Its writes
    stop being awaited and are not sent again from here: the dead letter is where a
    user fixes and requeues it, and re-sending would only fail the same way, forever.
    """
    decision = Decision()
    side = state.side(target)
    for name, value in ((written or {}) | (unchanged or {})).items():
        _forget_write(side, name, value, landed=True)
    for name, value in (failed or {}).items():
        _forget_write(side, name, value, landed=False)
    for name, value in (refused or {}).items():
        _forget_write(side, name, value, landed=False)
        side.known[name] = (found or {}).get(name)
    for name, value in (skipped or {}).items():
        _forget_write(side, name, value, landed=False)
        still_wins = state.base.get(name, MISSING) == value
        nothing_unseen = (found or {}).get(name, MISSING) == side.known.get(name, MISSING)
        if still_wins and nothing_unseen and name not in side.pending:
            side.landed.pop(name, None)
            _record_write(state, decision, target, name, value)
    return decision


def apply_requeue(state: RecordState, target: System, fields: Fields) -> Decision:
    """A dead-lettered write sent back by a user (`dlq requeue`), folded into `state`.

    Each field is written again where its value is still the winner and the target does
    not hold it (or get it) already, and awaited like any write of ours: its echo then
    reads as one. Had the writer sent it on its own, the target's fact of it would be
    taken for a user's edit there, newer than the edit it came from, and win everywhere.
    A field a newer edit won meanwhile is dropped: the old value would undo that edit.
    """
    decision = Decision()
    side = state.side(target)
    for name, value in fields.items():
        if state.base.get(name, value) != value or _effective(side, name) == value:
            continue
        _record_write(state, decision, target, name, value)
    return decision


def _forget_write(side: SideState, name: str, value: Any, *, landed: bool) -> None:
    in_flight = side.pending.get(name, [])
    if value in in_flight:
        # Writes land in order: a landed one implies every earlier one did too.
        index = in_flight.index(value)
        done = in_flight[: index + 1] if landed else []
        del in_flight[(0 if landed else index) : index + 1]
        if done:
            history = side.landed.setdefault(name, [])
            history.extend(done)
            del history[:-LANDED_KEPT]
    if not in_flight:
        side.pending.pop(name, None)


def _seen_back(side: SideState, name: str, value: Any) -> bool:
    """Whether `value` is one of our writes to this field coming back (an echo); if so,
    it and every write before it stop being awaited."""
    for awaited in (side.landed, side.pending):
        values = awaited.get(name, [])
        if value in values:
            del values[: values.index(value) + 1]
            if awaited is side.pending:
                side.landed.pop(name, None)  # the landed ones are all older
            if not values:
                awaited.pop(name, None)
            return True
    return False
