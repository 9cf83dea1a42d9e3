"""Odoo pushes: the product's automation rules make Odoo post a hint to the receiver,
and the poller reads the hinted record at once, long before its next poll.

Against real Odoo 17, 18 and 19 (which post before their commit on 17 and 18, after it
on 19), and the sandbox's profiles of them. The poller polls once a minute here, so a
fact that comes within seconds came by the push.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from clientify_odoo.odoo_hooks import HOOK_RULES
from connectors.kafka.publisher import Outgoing, Publisher
from connectors.kafka.reader import read_to_end
from connectors.odoo.automation import check_rules
from producers.odoo.hints import RETRY_PAUSES
from schemas import Fact, Hint, decode
from schemas.topics import ODOO_HINTS, ODOO_PARTNER, Topics, TopicSpec
from tests.support.clientify_fixtures import SECRET, receiver_at
from tests.support.odoo_fixtures import facts_on, odoo_peer
from tests.support.push import Pushing, pushing
from tests.support.real_odoo import unique

pytestmark = pytest.mark.broker
PUSH_VERSIONS = ("real-17", "real-18", "real-19")
WITHIN = 5.0  # seconds a pushed change may take (goal: about one)
ODOO_SECRET = "odoo-hook-secret-0123456789"


async def fact_of(bootstrap: str, topic: str, rid: int, test: Callable[[Fact], bool]) -> float:
    """Seconds until a fact of partner `rid` passing `test` is on Kafka."""
    started = time.monotonic()
    while time.monotonic() - started < WITHIN * 3:
        facts = await facts_on(bootstrap, topic)
        if any(f.source_id == str(rid) and test(f) for f in facts):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"no such fact of partner {rid} after {WITHIN * 3:.0f}s")


@asynccontextmanager
async def pushing_to(name: str, bootstrap: str, prefix: str) -> AsyncIterator[Pushing]:
    async with odoo_peer(name) as peer, pushing(peer.config(), bootstrap, Topics(prefix)) as push:
        yield push


@pytest.mark.parametrize("peer_name", PUSH_VERSIONS)
async def test_a_change_in_odoo_arrives_by_push_within_seconds(
    peer_name: str, kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    topic = Topics(topic_prefix)[ODOO_PARTNER]
    async with pushing_to(peer_name, kafka_bootstrap, topic_prefix) as push:
        ending = f"/hooks/odoo/{push.odoo_secret}"
        assert await check_rules(push.client, ending, HOOK_RULES) == []
        ref = unique("PUSH")
        rid = await push.client.create("res.partner", {"name": f"Pushed {ref}", "ref": ref})
        created = await fact_of(
            kafka_bootstrap, topic, rid, lambda f: f.payload["name"] == f"Pushed {ref}"
        )
        await push.client.write("res.partner", [rid], {"name": f"Pushed again {ref}"})
        edited = await fact_of(
            kafka_bootstrap, topic, rid, lambda f: f.payload["name"] == f"Pushed again {ref}"
        )
    print(f"{peer_name}: created in {created:.2f}s, edited in {edited:.2f}s")
    assert push.follower.hints >= 2
    assert created < WITHIN and edited < WITHIN, (created, edited)


async def test_the_odoo_hook_stores_hints_and_refuses_the_rest(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    odoo_body = {"_action": "Send Webhook Notification(#3)", "_id": 7, "_model": "res.partner"}
    async with (
        receiver_at(kafka_bootstrap, topic_prefix, odoo_secret=ODOO_SECRET) as (_r, hook_url),
        aiohttp.ClientSession() as http,
    ):
        origin = hook_url.split("/hooks/")[0]
        url = f"{origin}/hooks/odoo/{ODOO_SECRET}"
        cases: list[tuple[str, str, Any, int, str]] = [
            # Clientify's secret does not open Odoo's hook, nor the other way round.
            ("POST", f"{origin}/hooks/odoo/{SECRET}", odoo_body, 404, "bad_secret"),
            ("GET", url, None, 405, "method"),
            ("POST", url, {"_id": 7}, 400, "malformed"),
            ("POST", url, {**odoo_body, "_model": "res.users"}, 400, "malformed"),
            ("POST", url, {**odoo_body, "_id": "7"}, 400, "malformed"),
        ]
        for method, target, body, status, reason in cases:
            async with http.request(method, target, json=body) as response:
                assert response.status == status, (target, body)
                assert (await response.json())["reason"] == reason
        async with http.post(url, json={**odoo_body, "_model": "res.users"}) as response:
            assert "not a model the sync reads" in (await response.json())["error"]
        started = time.monotonic()
        async with http.post(url, json=odoo_body) as response:
            assert response.status == 200 and (await response.json())["status"] == "accepted"
        assert time.monotonic() - started < 1.0  # Odoo gives up after 1 s
    hints = [decode(r.value) for r in await read_to_end(
        kafka_bootstrap, [Topics(topic_prefix)[ODOO_HINTS]], must_exist=True
    )]  # fmt: skip
    assert [(h.model, h.record_id) for h in hints if isinstance(h, Hint)] == [("res.partner", 7)]


@pytest.mark.parametrize("peer_name", ["real-17"])
async def test_a_hint_for_a_change_that_never_committed_produces_nothing(
    peer_name: str, kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    """What a hint whose change rolled back leaves: the record as it was, already
    published. The follower reads it, tries again, and gives up without a fact."""
    topic = Topics(topic_prefix)[ODOO_PARTNER]
    async with pushing_to(peer_name, kafka_bootstrap, topic_prefix) as push:
        ref = unique("NOPE")
        rid = await push.client.create("res.partner", {"name": f"Still {ref}", "ref": ref})
        await fact_of(kafka_bootstrap, topic, rid, lambda f: f.payload["name"] == f"Still {ref}")
        before = await facts_on(kafka_bootstrap, topic)
        async with Publisher(kafka_bootstrap) as publisher:
            hint = Hint(model="res.partner", record_id=rid, received_at=datetime.now(UTC))
            await publisher.publish(Outgoing(Topics(topic_prefix)[ODOO_HINTS], f"x:{rid}", hint))
        await asyncio.sleep(sum(RETRY_PAUSES) + 2)  # every retry, then a margin
        after = await facts_on(kafka_bootstrap, topic)
    assert push.follower.gave_up == 1
    assert len(after) == len(before)
