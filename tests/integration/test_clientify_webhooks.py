"""Webhooks end to end: the sandbox sends them as Clientify does, the receiver turns
each valid one into exactly one fact on the real broker, and refuses the rest."""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from connectors.clientify import ClientifyClient
from connectors.clientify.sandbox.app import SandboxOptions
from producers.clientify.facts import to_fact, version_of
from schemas.topics import (
    CLIENTIFY_COMPANY,
    CLIENTIFY_CONTACT,
    CLIENTIFY_PRODUCT,
    Topics,
    TopicSpec,
)
from tests.support.clientify_fixtures import (
    SECRET,
    Capture,
    read_facts,
    receiver_at,
    sandbox_at,
    serving,
)

KEY = "hook-test-key-0123"


def hook_body(event: str = "contact.saved", **data: Any) -> dict[str, Any]:
    return {
        "hook": {"id": 3123, "event": event, "target": "https://example.es/hook"},
        "data": {"id": 42, "first_name": "Ana", "created": "2023-04-19T00:46:31.777178Z", **data},
    }


async def test_saves_through_the_api_post_documented_webhooks() -> None:
    capture = Capture()
    async with serving(capture.app()) as origin:
        options = SandboxOptions(api_key=KEY, webhook_targets=[f"{origin}/hook"])
        async with sandbox_at(options) as (sandbox, base), ClientifyClient(base, KEY) as client:
            contact = await client.contacts.create(
                {"first_name": "Ana", "email": "ana@x.es", "company": "Acme",
                 "addresses": [{"city": "Madrid"}]}
            )  # fmt: skip
            await client.contacts.delete(contact["id"])
            product = await client.products.create({"name": "Taladro", "sku": "T-1", "price": 9})
            await client.products.delete(product["id"])
            await client.companies.delete(1)
            await sandbox.webhooks.drain()
    # Deliveries are concurrent and unordered, as Clientify's: compare by event.
    by_event = {body["hook"]["event"]: body for body in capture.bodies}
    assert len(capture.bodies) == 6
    # The company made from the contact's `company` name is a save too.
    assert set(by_event) == {
        "company.saved", "contact.saved", "contact.deleted",
        "product.saved", "product.deleted", "company.deleted",
    }  # fmt: skip
    assert by_event["product.deleted"]["data"]["sku"] == "T-1"
    assert by_event["company.deleted"]["data"]["name"] == "Acme"
    assert len({body["hook"]["id"] for body in capture.bodies}) == 6  # one hook per event
    saved = by_event["contact.saved"]
    assert set(saved) == {"hook", "data"}
    assert set(saved["hook"]) == {"id", "event", "target"}
    assert saved["hook"]["target"] == f"{origin}/hook"
    data = saved["data"]
    assert "url" not in data and "modified" not in data
    assert data["emails"] == [{"email": "ana@x.es", "type": 4}]  # sub-items without ids
    assert data["addresses"][0]["city"] == "Madrid" and "id" not in data["addresses"][0]
    assert data["company"] == "Acme"
    assert data["created"].endswith("Z") and len(data["created"]) == len(
        "2023-04-19T00:46:31.777178Z"
    )
    assert by_event["contact.deleted"]["data"]["first_name"] == "Ana"  # with the record
    sent_headers = capture.headers[capture.bodies.index(saved)]
    headers = {name.lower() for name in sent_headers}
    assert sent_headers["Content-Type"].startswith("application/json")
    assert not [name for name in headers if "signature" in name or "hmac" in name]


async def test_hooks_per_event_off_switch_and_no_retry() -> None:
    capture = Capture()
    async with (
        serving(capture.app()) as origin,
        aiohttp.ClientSession(headers={"Authorization": f"Token {KEY}"}) as http,
        sandbox_at(SandboxOptions(api_key=KEY)) as (sandbox, base),
        ClientifyClient(base, KEY) as client,
    ):
        admin = base.removesuffix("/v1") + "/_admin/"

        async def register(event: str, path: str) -> tuple[int, Any]:
            target = {"event": event, "target": f"{origin}/{path}"}
            async with http.post(f"{admin}hooks/", json=target) as response:
                return response.status, await response.json()

        status, hook = await register("product.saved", "hook")
        assert status == 201
        assert (await register("deal.saved", "hook"))[0] == 400
        await client.contacts.create({"first_name": "Not hooked"})
        product = await client.products.create({"name": "P", "sku": "P1"})
        await sandbox.webhooks.drain()
        assert [b["data"]["sku"] for b in capture.bodies] == ["P1"]
        assert capture.bodies[0]["hook"]["id"] == hook["id"]
        async with http.put(f"{admin}knobs/", json={"webhooks_enabled": False}) as response:
            assert response.status == 200
        await client.products.update(product["id"], {"price": 3})
        await sandbox.webhooks.drain()
        assert len(capture.bodies) == 1
        # A target that fails gets the delivery once, never again.
        sandbox.webhooks.enabled = True
        assert (await register("product.saved", "missing"))[0] == 201
        await client.products.update(product["id"], {"price": 4})
        await sandbox.webhooks.drain()
    assert (sandbox.webhooks.stats.sent, sandbox.webhooks.stats.failed) == (2, 1)


@pytest.mark.broker
async def test_a_save_becomes_exactly_one_fact_with_the_rest_version_id(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with receiver_at(kafka_bootstrap, topic_prefix) as (receiver, hook_url):
        options = SandboxOptions(api_key=KEY, webhook_targets=[hook_url])
        async with sandbox_at(options) as (sandbox, base), ClientifyClient(base, KEY) as client:
            contact = await client.contacts.create(
                {"first_name": "Ana", "taxpayer_identification_number": "12.345.678-z",
                 "email": "ana@x.es", "custom_fields": [{"field": "odoo_id", "value": "7"}]}
            )  # fmt: skip
            await sandbox.webhooks.drain()
            detail = await client.contacts.get(contact["id"])
    names = Topics(topic_prefix)
    facts = await read_facts(kafka_bootstrap, names[CLIENTIFY_CONTACT])
    assert len(facts) == 1
    fact = facts[0]
    assert fact.source_id == str(contact["id"]) and fact.business_key == "12345678Z"
    assert fact.payload["first_name"] == "Ana" and "url" not in fact.payload
    # The same version read over REST (as reconciliation does) has the same event id.
    assert to_fact("contact", detail).event_id == fact.event_id
    assert await read_facts(kafka_bootstrap, names[CLIENTIFY_COMPANY]) == []
    assert receiver.metrics.accepted.labels("contact")._value.get() == 1


def test_versions_ignore_presentation_but_not_content() -> None:
    rest = {"id": 1, "url": "http://x/v1/contacts/1/", "first_name": "Ana", "title": None,
            "company": "http://x/v1/companies/2/", "company_name": "Acme",
            "emails": [{"id": 9, "email": "a@x.es", "type": 4}],
            "custom_fields": [{"field": "f", "value": "1", "field_detail": {"id": 3}}],
            "modified": "2024-01-01T10:00:00.000001+01:00"}  # fmt: skip
    hook = {"id": 1, "first_name": "Ana", "title": "", "company": "Acme",
            "emails": [{"email": "a@x.es", "type": 4}],
            "custom_fields": [{"field": "f", "value": "1"}]}  # fmt: skip
    assert version_of("contact", rest) == version_of("contact", hook)
    assert version_of("contact", rest) != version_of("contact", {**hook, "title": "CEO"})
    assert version_of("product", {"price": "12.50"}) == version_of("product", {"price": 12.5})


@pytest.mark.broker
async def test_the_receiver_refuses_what_it_must_and_counts_it(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    async with (
        receiver_at(kafka_bootstrap, topic_prefix, max_body_bytes=2048) as (receiver, hook_url),
        aiohttp.ClientSession() as http,
    ):
        origin = hook_url.split("/hooks/")[0]
        valid = json.dumps(hook_body()).encode()
        deal = json.dumps(hook_body(event="deal.saved")).encode()
        text_id = json.dumps({"hook": hook_body()["hook"], "data": {"id": "42"}}).encode()
        big = json.dumps(hook_body(blob="x" * 4000)).encode()
        cases: list[tuple[str, str, bytes, int, str]] = [
            ("POST", f"{origin}/hooks/wrong-secret-0123456789", valid, 404, "bad_secret"),
            ("POST", f"{origin}/elsewhere", b"{}", 404, "unknown_path"),
            ("GET", hook_url, b"", 405, "method"),
            ("POST", hook_url, b"{not json", 400, "malformed"),
            ("POST", hook_url, deal, 400, "malformed"),
            ("POST", hook_url, text_id, 400, "malformed"),
            ("POST", hook_url, big, 413, "too_large"),
        ]
        for method, url, body, status, reason in cases:
            async with http.request(method, url, data=body) as response:
                assert response.status == status, (url, body[:60])
                answer = await response.json()
                assert answer["reason"] == reason
                assert "s3cret" not in json.dumps(answer)
        async with http.post(hook_url, data=b"{not json") as response:
            assert "not valid JSON" in (await response.json())["error"]
        async with http.post(hook_url, data=json.dumps(hook_body(blob="x" * 4000))) as response:
            assert "2048 bytes" in (await response.json())["error"]
        async with http.post(hook_url, json=hook_body(event="contact.deleted")) as response:
            assert response.status == 200 and (await response.json())["status"] == "ignored"
        async with http.post(
            hook_url, json=hook_body(event="product.saved", sku="P-1")
        ) as response:
            assert response.status == 200 and (await response.json())["status"] == "accepted"
        async with http.get(f"{origin}/health") as response:
            assert response.status == 200 and (await response.json())["kafka"] == "ok"
        async with http.get(f"{origin}/metrics") as response:
            metrics = await response.text()
    assert 'clientify_webhooks_rejected_total{reason="malformed"} 4.0' in metrics
    assert 'clientify_webhooks_rejected_total{reason="too_large"} 2.0' in metrics
    assert 'clientify_webhooks_accepted_total{entity="product"} 1.0' in metrics
    assert 'clientify_webhooks_ignored_total{event="contact.deleted"} 1.0' in metrics
    assert "clientify_webhooks_received_total 11.0" in metrics
    names = Topics(topic_prefix)
    assert [
        f.business_key for f in await read_facts(kafka_bootstrap, names[CLIENTIFY_PRODUCT])
    ] == ["P-1"]
    assert await read_facts(kafka_bootstrap, names[CLIENTIFY_CONTACT]) == []
    assert REGISTRY is not receiver.metrics.registry  # per-receiver metrics, no clashes


@pytest.mark.broker
async def test_the_ip_allow_list_and_trusted_proxies(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    local = ipaddress.ip_network("127.0.0.1")
    clientify = ipaddress.ip_network("203.0.113.0/24")
    cases = [
        # (allowed, trusted proxies, X-Forwarded-For, expected status)
        ((ipaddress.ip_network("10.0.0.0/8"),), (), None, 401),
        ((local,), (), None, 200),
        ((clientify,), (), "203.0.113.7", 401),  # an untrusted peer cannot claim an address
        ((clientify,), (local,), "203.0.113.7", 200),  # the proxy vouches for the sender
        ((clientify,), (local,), "203.0.113.7, 198.51.100.9", 401),  # last hop is the sender
        ((clientify,), (local,), "garbage", 401),
    ]
    for allowed, proxies, forwarded, status in cases:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        async with (
            receiver_at(
                kafka_bootstrap, topic_prefix, allowed_networks=allowed, trusted_proxies=proxies
            ) as (_receiver, url),
            aiohttp.ClientSession() as http,
            http.post(url, json=hook_body(), headers=headers) as response,
        ):
            assert response.status == status, (allowed, proxies, forwarded)


@pytest.mark.broker
async def test_no_secret_reaches_the_logs(
    kafka_bootstrap: str,
    topics: tuple[TopicSpec, ...],
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # INFO is the default level; at DEBUG aiokafka itself logs the bytes it produces.
    caplog.set_level(logging.INFO)
    # The CLI quiets the access log; whoever turns it back on must still not see secrets.
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with (
        receiver_at(kafka_bootstrap, topic_prefix) as (_receiver, hook_url),
        aiohttp.ClientSession() as http,
    ):
        for url in (hook_url, hook_url + "x", hook_url.replace("/hooks/", "/hookz/")):
            async with http.post(url, json=hook_body(email="ana.private@x.es")) as response:
                await response.read()
        async with http.post(hook_url, data=b'{"hook": 1, "data": "ana.private@x.es"}'):
            pass
    text = caplog.text + "".join(str(r.msg) for r in caplog.records)
    assert "/hooks/***" in text  # the access log ran, masked
    assert SECRET not in text and "ana.private" not in text
