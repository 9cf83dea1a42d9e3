"""The sync decision, exhaustively: echoes, field-level deltas, conflicts, convergence."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.sync_state import MISSING, RecordState, apply_fact, apply_result
from schemas.envelope import System

ODOO, CLIENTIFY = System.ODOO, System.CLIENTIFY
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_versions_delivered_again_after_a_restart_change_nothing() -> None:
    """Two Odoo versions in the same second (write_date is truncated), then both again
    (a restarted worker re-routes what it had not committed): the second delivery must
    not read the older version as a new edit."""
    state = RecordState()
    first = apply_fact(state, ODOO, {"price": 70.0}, at(0), fact_id="v1")
    second = apply_fact(state, ODOO, {"price": 53.0}, at(0), fact_id="v2")
    assert first.fields_for(CLIENTIFY) == {"price": 70.0}
    assert second.fields_for(CLIENTIFY) == {"price": 53.0}
    again = [apply_fact(state, ODOO, {"price": p}, at(0), fact_id=v) for v, p in
             (("v1", 70.0), ("v2", 53.0))]  # fmt: skip
    assert all(d.duplicate and not d.writes for d in again)
    assert state.base["price"] == 53.0
    # The same fact mapped anew (another mapping, a partner now a customer) is new.
    remapped = apply_fact(state, ODOO, {"price": 53.0, "job": "Gerente"}, at(0), fact_id="v2")
    assert not remapped.duplicate and remapped.fields_for(CLIENTIFY) == {"job": "Gerente"}


def test_a_new_record_is_written_across_and_its_echo_is_dropped() -> None:
    state = RecordState()
    first = apply_fact(state, ODOO, {"name": "Acme", "city": "Madrid"}, at(0))
    assert first.fields_for(CLIENTIFY) == {"name": "Acme", "city": "Madrid"}
    assert first.expected_for(CLIENTIFY) == {}  # never seen there: nothing to compare
    echo = apply_fact(state, CLIENTIFY, {"name": "Acme", "city": "Madrid"}, at(1))
    assert echo.is_echo and echo.writes == {} and sorted(echo.echoed) == ["city", "name"]
    # A re-poll of the same Odoo version changes nothing either.
    again = apply_fact(state, ODOO, {"name": "Acme", "city": "Madrid"}, at(0))
    assert again.writes == {} and not again.conflicts


def test_only_changed_fields_travel() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "Acme", "city": "Madrid"}, at(0))
    apply_fact(state, CLIENTIFY, {"name": "Acme", "city": "Madrid"}, at(1))
    decision = apply_fact(state, CLIENTIFY, {"name": "Acme", "city": "Sevilla"}, at(2))
    assert decision.fields_for(ODOO) == {"city": "Sevilla"}
    assert decision.expected_for(ODOO) == {"city": "Madrid"}


def test_edits_of_different_fields_on_both_sides_both_survive() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "Acme", "city": "Madrid"}, at(0))
    apply_fact(state, CLIENTIFY, {"name": "Acme", "city": "Madrid"}, at(1))
    from_odoo = apply_fact(state, ODOO, {"name": "Acme SL", "city": "Madrid"}, at(5))
    from_clientify = apply_fact(state, CLIENTIFY, {"name": "Acme", "city": "Cádiz"}, at(6))
    assert from_odoo.writes.keys() == {CLIENTIFY}
    assert from_odoo.fields_for(CLIENTIFY) == {"name": "Acme SL"}
    assert from_clientify.writes.keys() == {ODOO}
    assert from_clientify.fields_for(ODOO) == {"city": "Cádiz"}
    assert not from_odoo.conflicts and not from_clientify.conflicts


def test_same_field_on_both_sides_the_later_wins_and_the_loser_is_reported() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "Acme"}, at(0))
    apply_fact(state, CLIENTIFY, {"name": "Acme"}, at(1))
    apply_fact(state, ODOO, {"name": "Odoo edit"}, at(10))
    later = apply_fact(state, CLIENTIFY, {"name": "Clientify edit"}, at(12))
    [conflict] = later.conflicts
    assert (conflict.winner, conflict.winning_value, conflict.losing_value) == (
        CLIENTIFY, "Clientify edit", "Odoo edit",
    )  # fmt: skip
    assert later.fields_for(ODOO) == {"name": "Clientify edit"}


def test_an_earlier_edit_arriving_late_loses() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "Acme"}, at(0))
    apply_fact(state, CLIENTIFY, {"name": "Acme"}, at(1))
    apply_fact(state, CLIENTIFY, {"name": "Clientify edit"}, at(20))
    earlier = apply_fact(state, ODOO, {"name": "Odoo edit"}, at(15))
    [conflict] = earlier.conflicts
    assert conflict.winner is CLIENTIFY and conflict.losing_value == "Odoo edit"
    assert CLIENTIFY not in earlier.writes


def test_an_older_version_arriving_after_a_newer_one_is_stale() -> None:
    state = RecordState()
    apply_fact(state, CLIENTIFY, {"name": "v2"}, at(10))
    stale = apply_fact(state, CLIENTIFY, {"name": "v1"}, at(5))
    assert stale.stale and stale.writes == {}


def test_state_survives_its_json_form() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "Acme", "price": 9.5}, at(0))
    assert RecordState.from_json(state.to_json()) == state
    assert MISSING not in state.to_json().values()


def test_a_write_skipped_for_a_newer_target_edit_is_redone_only_if_it_still_wins() -> None:
    state = RecordState()
    apply_fact(state, ODOO, {"name": "A"}, at(0))
    apply_fact(state, CLIENTIFY, {"name": "A"}, at(1))
    apply_fact(state, ODOO, {"name": "B"}, at(10))  # -> write B to Clientify, expecting A
    # Clientify's writer found "C" there (an edit at 5, older than B): B is still the
    # winner, so it is written again, now expecting "C".
    apply_fact(state, CLIENTIFY, {"name": "C"}, at(5))
    redo = apply_result(state, CLIENTIFY, skipped={"name": "B"}, found={"name": "C"})
    assert redo.fields_for(CLIENTIFY) == {"name": "B"}
    assert redo.expected_for(CLIENTIFY) == {"name": "C"}


def test_an_empty_field_no_side_had_a_value_for_is_no_edit() -> None:
    """A new Clientify contact without a mobile: nothing to write to Odoo, whose partner
    (not polled yet) may have one, or no `mobile` field at all (19). A value then goes
    across as usual, and emptying it later is an edit like any other."""
    state = RecordState()
    first = apply_fact(state, CLIENTIFY, {"name": "Ana", "mobile": None}, at(0))
    assert first.fields_for(ODOO) == {"name": "Ana"}
    odoo = apply_fact(state, ODOO, {"name": "Ana", "mobile": "600"}, at(5))
    assert odoo.fields_for(CLIENTIFY) == {"mobile": "600"}
    assert apply_fact(state, CLIENTIFY, {"name": "Ana", "mobile": "600"}, at(7)).is_echo
    emptied = apply_fact(state, CLIENTIFY, {"name": "Ana", "mobile": None}, at(9))
    assert emptied.fields_for(ODOO) == {"mobile": None}


def test_a_refused_value_stays_where_it_was_typed_and_is_not_sent_again() -> None:
    """Clientify says "Atlantis", Odoo has no such country: the Odoo writer creates the
    partner without one and refuses the country. Odoo's fact then showing no country is
    not an Odoo edit: Clientify keeps "Atlantis", nothing loops; a real edit still goes."""
    state = RecordState()
    first = apply_fact(state, CLIENTIFY, {"name": "Nadie", "country": "Atlantis"}, at(0))
    assert first.fields_for(ODOO) == {"name": "Nadie", "country": "Atlantis"}
    after = apply_result(
        state, ODOO, written={"name": "Nadie"}, refused={"country": "Atlantis"},
        found={"country": None},
    )  # fmt: skip
    assert after.writes == {}
    created = apply_fact(state, ODOO, {"name": "Nadie", "country": None}, at(5))
    assert created.writes == {} and not created.conflicts
    assert state.base["country"] == "Atlantis"
    fixed = apply_fact(state, ODOO, {"name": "Nadie", "country": "Germany"}, at(9))
    assert fixed.fields_for(CLIENTIFY) == {"country": "Germany"}


# -- a simulation: two systems, a processor, two writers, random interleavings --------


@dataclass
class World:
    """Two stores edited by users, a processor, and two writers that compare before
    writing (as the real writers do) and report skipped fields back."""

    stores: dict[System, dict[str, int]] = field(
        default_factory=lambda: {ODOO: {"a": 0, "b": 0}, CLIENTIFY: {"a": 0, "b": 0}}
    )
    facts: dict[System, list[tuple[dict[str, int], datetime]]] = field(
        default_factory=lambda: {ODOO: [], CLIENTIFY: []}
    )
    commands: dict[System, list[tuple[dict[str, Any], dict[str, Any]]]] = field(
        default_factory=lambda: {ODOO: [], CLIENTIFY: []}
    )
    results: dict[System, list[tuple[dict[str, Any], ...]]] = field(
        default_factory=lambda: {ODOO: [], CLIENTIFY: []}
    )
    state: RecordState = field(default_factory=RecordState)
    polled_odoo: bool = False  # a poll sees only the newest version, not each one
    clock: int = 0
    last_edit: dict[str, tuple[int, int]] = field(default_factory=dict)  # field -> (t, v)

    def tick(self) -> datetime:
        self.clock += 1
        return at(self.clock)

    def linked(self) -> World:
        """Both sides hold the same record and the sync has seen both."""
        for side in (ODOO, CLIENTIFY):
            self.facts[side].append((dict(self.stores[side]), self.tick()))
        for _ in range(10):
            for side in (ODOO, CLIENTIFY):
                self.deliver(side)
                self.apply(side)
        assert not self.busy()
        return self

    def edit(self, side: System, name: str) -> None:
        # Every edit types a new value: a user typing exactly the value the sync is
        # writing at that instant is taken as the echo (see processors/sync_state.py).
        when = self.tick()
        value = self.clock
        self.stores[side][name] = value
        self.last_edit[name] = (self.clock, value)
        self.facts[side].append((dict(self.stores[side]), when))  # every version is seen

    def _emit(self, decision: Any) -> None:
        for target in decision.writes:
            self.commands[target].append(
                (decision.fields_for(target), decision.expected_for(target))
            )

    def deliver(self, side: System) -> None:
        if self.results[side]:
            written, unchanged, skipped, found = self.results[side].pop(0)
            self._emit(
                apply_result(
                    self.state,
                    side,
                    written=written,
                    unchanged=unchanged,
                    skipped=skipped,
                    found=found,
                )
            )
        if self.facts[side]:
            if side is ODOO and self.polled_odoo:
                del self.facts[side][:-1]
            snapshot, when = self.facts[side].pop(0)
            self._emit(apply_fact(self.state, side, snapshot, when))

    def apply(self, side: System) -> None:
        if not self.commands[side]:
            return
        fields, expected = self.commands[side].pop(0)
        store = self.stores[side]
        unchanged = {n: v for n, v in fields.items() if store[n] == v}
        skipped = {
            n: v
            for n, v in fields.items()
            if n not in unchanged and n in expected and store[n] != expected[n]
        }
        written = {n: v for n, v in fields.items() if n not in skipped and n not in unchanged}
        if written:
            store.update(written)
            self.facts[side].append((dict(store), self.tick()))
        found = {n: store[n] for n in skipped}
        self.results[side].append((written, unchanged, skipped, found))

    def busy(self) -> bool:
        return any(self.facts[s] or self.commands[s] or self.results[s] for s in (ODOO, CLIENTIFY))


step = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from([ODOO, CLIENTIFY]), st.sampled_from("ab")),
    st.tuples(st.just("deliver"), st.sampled_from([ODOO, CLIENTIFY])),
    st.tuples(st.just("apply"), st.sampled_from([ODOO, CLIENTIFY])),
)  # fmt: skip


@settings(max_examples=int(os.environ.get("SIM_EXAMPLES", "500")))
@given(st.lists(step, max_size=30), st.randoms(use_true_random=False), st.booleans())
def test_both_sides_converge_on_the_latest_edit_without_looping(
    steps: list[tuple[Any, ...]], rng: Any, polled_odoo: bool
) -> None:
    world = World(polled_odoo=polled_odoo).linked()
    for kind, side, *rest in steps:
        if kind == "edit":
            world.edit(side, rest[0])
        elif kind == "deliver":
            world.deliver(side)
        else:
            world.apply(side)
    moves = [(act, side) for act in (world.deliver, world.apply) for side in (ODOO, CLIENTIFY)]
    for _ in range(500):  # drain, every move each round in a random order
        if not world.busy():
            break  # an echo loop would never get here
        for act, side in rng.sample(moves, len(moves)):
            act(side)
    assert not world.busy(), "the sync kept writing: an echo loop"
    assert world.stores[ODOO] == world.stores[CLIENTIFY]
    if polled_odoo:
        # A poll dates every field of a record by its write_date, so an older field
        # edit can look newer than the other side's: convergence is what holds then.
        return
    for name, (_t, value) in world.last_edit.items():
        assert world.stores[ODOO][name] == value, (name, world.last_edit)
