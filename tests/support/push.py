"""Odoo pushing to a running receiver: the product's automation rules installed in an
Odoo, posting to a receiver on a free port, and a poller that follows the hints. Used by
the push tests and `bench.odoo_push`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.test_utils import TestServer

from clientify_odoo.odoo_hooks import HOOK_RULES, odoo_hook_url
from connectors.kafka.publisher import Publisher
from connectors.odoo import OdooClient, OdooConfig
from connectors.odoo.automation import install_rules, remove_rules
from producers.odoo import OdooPoller, PollerOptions, transactional_id
from producers.odoo.hints import HintFollower
from producers.receiver import ReceiverConfig, WebhookReceiver, new_secret
from schemas.topics import ODOO_HINTS, Topics


@dataclass
class Pushing:
    client: OdooClient  # a user's own, editing in Odoo
    poller: OdooPoller
    follower: HintFollower
    odoo_secret: str


@asynccontextmanager
async def pushing(
    config: OdooConfig, bootstrap: str, topics: Topics, *, interval: float = 60.0
) -> AsyncIterator[Pushing]:
    """The rules post to a receiver on a free port; the poller has polled once (what
    the database holds already), then polls every `interval` s and follows the hints.
    The rules are removed at the end."""
    odoo_secret = new_secret()
    receiver_config = ReceiverConfig(secret=new_secret(), odoo_secret=odoo_secret, topics=topics)
    async with (
        OdooClient(config) as client,
        OdooClient(config) as poller_client,
        Publisher(bootstrap) as hints,
        Publisher(bootstrap, transactional_id=transactional_id(topics, config.db)) as facts,
    ):
        server = TestServer(WebhookReceiver(receiver_config, hints).app(), port=0)
        await server.start_server()
        options = PollerOptions(interval=interval, interval_with_pushes=interval, overlap=0)
        poller = OdooPoller(poller_client, facts, bootstrap, topics=topics, options=options)
        await poller.start()
        await poller.poll_once()
        stop = asyncio.Event()
        follower = HintFollower(bootstrap, topics[ODOO_HINTS], poller.read_hinted)
        tasks = [asyncio.create_task(follower.run(stop)), asyncio.create_task(poller.run(stop))]
        try:
            url = odoo_hook_url(str(server.make_url("")), odoo_secret)
            await install_rules(client, url, HOOK_RULES)
            await asyncio.sleep(1)  # the follower reads from the end: let it get there
            yield Pushing(client, poller, follower, odoo_secret)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await remove_rules(client)
            await server.close()
