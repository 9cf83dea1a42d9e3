"""The promises every writer's target keeps, whatever system it writes to.

One suite, run against each target: a test module subclasses `TargetContract` and gives
it a `harness` fixture for its system (the eventsourcing pattern of one abstract test
case per backend). What only one system does (Odoo's countries, Clientify's phones) is
tested beside the subclass, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from consumers.writers.command_writer import Target
from consumers.writers.plan import MappingMismatch
from schemas import Result, ResultStatus
from tests.support.commands import command
from tests.support.real_odoo import unique


@dataclass(frozen=True)
class Keys:
    """Business keys of one test's own (a real system's database outlives each test)."""

    tax_id: str
    typed: str  # the same tax id, as a user may type it
    other: str  # another tax id
    sku: str

    @classmethod
    def fresh(cls) -> Keys:
        tax_id = unique("B") + "8"
        typed = f"{tax_id[0].lower()}-{tax_id[1:3]}.{tax_id[3:6]}.{tax_id[6:]}"
        return cls(tax_id, typed, unique("A") + "1", unique("WID-"))


class TargetHarness(Protocol):
    """A target and a way into its system that does not go through the target."""

    target: Target

    def company(self) -> dict[str, Any]:
        """The canonical fields of a typical company, as they flow towards this system."""

    async def make(self, entity: str, key: str, fields: dict[str, Any]) -> str:
        """Create a record with `fields` (plain text fields) in the system directly, as a
        user would, its key typed as given; returns its id."""

    async def change(self, entity: str, record_id: str, fields: dict[str, Any]) -> None:
        """Change a record in the system directly, as a user would (plain text fields)."""


@dataclass
class Applied:
    result: Result
    harness: TargetHarness

    async def record(self) -> dict[str, Any]:
        assert self.result.target_id is not None
        current = await self.harness.target.read(self.result.entity, self.result.target_id)
        assert current is not None
        return current


async def apply(harness: TargetHarness, *args: Any, **extra: Any) -> Applied:
    result = await harness.target.apply(command(harness.target.system, *args, **extra))
    return Applied(result, harness)


class TargetContract:
    @pytest.fixture
    def keys(self) -> Keys:
        return Keys.fresh()

    async def test_setup_can_run_at_every_start(self, harness: TargetHarness) -> None:
        await harness.target.setup()
        assert await harness.target.setup() == []  # what it prepared is there already

    async def test_a_new_record_gets_every_field(self, harness: TargetHarness, keys: Keys) -> None:
        fields = harness.company()
        created = await apply(harness, "company", keys.tax_id, fields)
        assert created.result.status is ResultStatus.APPLIED and created.result.target_id
        assert created.result.written == fields and not created.result.skipped
        stored = await created.record()
        assert {name: stored[name] for name in fields} == fields

    async def test_the_same_command_again_changes_nothing(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        fields = harness.company()
        first = await apply(harness, "company", keys.tax_id, fields)
        again = await apply(harness, "company", keys.tax_id, fields)  # no link: found by key
        assert again.result.target_id == first.result.target_id
        assert again.result.unchanged == fields and not again.result.written

    async def test_a_record_is_found_by_its_key_however_it_was_typed(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        made = await harness.make("company", keys.typed, {"name": "Acme", "city": "Madrid"})
        found = await apply(harness, "company", keys.tax_id, {"city": "Madrid"})
        assert found.result.target_id == made  # not a second record
        assert found.result.unchanged == {"city": "Madrid"}

    async def test_only_what_changed_is_written(self, harness: TargetHarness, keys: Keys) -> None:
        fields = harness.company()
        created = await apply(harness, "company", keys.tax_id, fields)
        moved = await apply(
            harness, "company", keys.tax_id, {**fields, "city": "Getafe"},
            target_id=created.result.target_id,
        )  # fmt: skip
        assert moved.result.written == {"city": "Getafe"}
        assert moved.result.unchanged == {k: v for k, v in fields.items() if k != "city"}
        stored = await moved.record()
        assert (stored["city"], stored["street"]) == ("Getafe", fields["street"])

    async def test_a_field_changed_there_meanwhile_is_left_and_reported(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        created = await apply(harness, "company", keys.tax_id, harness.company())
        assert created.result.target_id is not None
        await harness.change("company", created.result.target_id, {"city": "Toledo"})
        stale = await apply(
            harness, "company", keys.tax_id, {"city": "Sevilla"}, expected={"city": "Madrid"}
        )
        assert stale.result.skipped == {"city": "Sevilla"}
        assert stale.result.found == {"city": "Toledo"} and not stale.result.written
        assert (await stale.record())["city"] == "Toledo"

    async def test_a_link_to_a_record_with_another_key_is_not_followed(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        """The user changed the linked record's tax id: it is no longer this record."""
        other = await harness.make("company", keys.other, {"name": "Other", "city": "Lugo"})
        created = await apply(harness, "company", keys.tax_id, harness.company(), target_id=other)
        assert created.result.target_id not in (None, other)
        assert created.result.written == harness.company()

    async def test_a_product_is_created_then_its_price_updated(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        created = await apply(harness, "product", keys.sku, {"name": "Widget", "price": 12.5})
        updated = await apply(harness, "product", keys.sku, {"price": 13.0})
        assert updated.result.target_id == created.result.target_id
        assert updated.result.written == {"price": 13.0}
        assert await updated.record() == {"name": "Widget", "price": 13.0}

    async def test_fields_its_mapping_does_not_have_are_refused(
        self, harness: TargetHarness, keys: Keys
    ) -> None:
        with pytest.raises(MappingMismatch, match="same MAPPING_FILE"):
            await apply(harness, "company", keys.tax_id, {"shoe_size": 44})
