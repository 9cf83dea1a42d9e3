"""With Kafka stopped the receiver answers 503 (nothing is accepted that could be lost),
and once Kafka is back it accepts again, without a restart. Uses its own broker so the
shared one keeps serving the other tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from connectors.kafka.admin import ensure_topics
from schemas.topics import CLIENTIFY_CONTACT, Topics
from tests.support.clientify_fixtures import read_facts, receiver_at

pytestmark = pytest.mark.broker
PREFIX = "outage."


def webhook(record_id: int) -> dict[str, Any]:
    return {
        "hook": {"id": 1, "event": "contact.saved", "target": "https://example.es/hook"},
        "data": {"id": record_id, "first_name": f"Contacto {record_id}"},
    }


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port_pair())
    await asyncio.to_thread(broker.up, on_progress=lambda _line: None)
    try:
        await ensure_topics(broker.bootstrap, Topics(PREFIX).declared(1, (CLIENTIFY_CONTACT,)))
        yield broker
    finally:
        await asyncio.to_thread(broker.down)


async def test_503_while_kafka_is_down_and_accepted_once_it_is_back(
    own_broker: LocalBroker,
) -> None:
    async with (
        receiver_at(own_broker.bootstrap, PREFIX, publish_timeout=3) as (_receiver, url),
        aiohttp.ClientSession() as http,
    ):
        health = url.split("/hooks/")[0] + "/health"
        async with http.post(url, json=webhook(1)) as response:
            assert response.status == 200

        await asyncio.to_thread(own_broker.down)
        async with http.post(url, json=webhook(2)) as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "kafka_unavailable"
            assert response.headers["Retry-After"] == "5"
        async with http.get(health) as response:
            assert response.status == 503 and (await response.json())["kafka"] == "unreachable"

        await asyncio.to_thread(own_broker.up, on_progress=lambda _line: None)
        deadline = time.monotonic() + 60
        while True:
            async with http.post(url, json=webhook(3)) as response:
                if response.status == 200:
                    break
                assert response.status == 503
            assert time.monotonic() < deadline, "the receiver never accepted again"
            await asyncio.sleep(1)
        async with http.get(health) as response:
            assert response.status == 200 and (await response.json())["kafka"] == "ok"

    stored = {
        f.source_id
        for f in await read_facts(own_broker.bootstrap, Topics(PREFIX)[CLIENTIFY_CONTACT])
    }
    assert {"1", "3"} <= stored  # every accepted webhook is on Kafka
