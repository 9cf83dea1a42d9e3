"""The decide agent's outbox: a redelivered message emits again what it emitted."""

from __future__ import annotations

import json

from processors.decide import KEPT, Outbox


def test_every_message_since_the_last_commit_is_recognised_and_re_emitted() -> None:
    outbox = Outbox()
    for offset in range(5):
        outbox.record("sync.routed", 0, offset, [f"command-{offset}"])
    outbox.record("sync.results", 0, 7, [])
    # A crash after offset 4 with offsets committed up to 1: 2, 3 and 4 come again.
    assert [outbox.emitted_by("sync.routed", 0, o) for o in (2, 3, 4)] == [
        ["command-2"], ["command-3"], ["command-4"],
    ]  # fmt: skip
    assert outbox.emitted_by("sync.results", 0, 7) == []
    assert outbox.emitted_by("sync.routed", 0, 5) is None  # new
    assert outbox.emitted_by("sync.routed", 1, 0) is None  # another partition
    assert outbox.emitted_by("sync.results", 0, 8) is None


def test_the_outbox_is_bounded_and_survives_its_json_form() -> None:
    outbox = Outbox()
    for offset in range(KEPT + 10):
        outbox.record("sync.routed", 0, offset, [str(offset)])
    again = Outbox.from_json(json.loads(json.dumps(outbox.to_json())))
    assert len(again.sent) == KEPT
    assert again.emitted_by("sync.routed", 0, KEPT + 9) == [str(KEPT + 9)]
    # Too old to be known: processed before, so not folded in again, but nothing to send.
    assert again.emitted_by("sync.routed", 0, 0) == []
