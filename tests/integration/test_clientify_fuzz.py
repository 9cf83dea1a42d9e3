"""Hypothesis against the webhook receiver over real HTTP with a real broker: whatever
the body and headers, it never crashes (no 5xx), never accepts an invalid body and
never loses a valid one (every accepted fact is on Kafka)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.clientify.facts import ENTITIES, SOURCE_OF, to_fact
from schemas.topics import Topics, TopicSpec
from tests.support.clientify_fixtures import read_facts, receiver_at

pytestmark = pytest.mark.broker
EVENTS = [f"{e}.{a}" for e in ENTITIES for a in ("saved", "deleted")]
MAX_BODY = 16 * 1024


class ReceiverThread:
    """The receiver on its own event loop, so synchronous Hypothesis tests can call it."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._bootstrap, self._prefix = bootstrap, prefix
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.url = ""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with receiver_at(self._bootstrap, self._prefix, max_body_bytes=MAX_BODY) as (_, url):
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ReceiverThread:
        self._thread.start()
        assert self._ready.wait(30), "receiver did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def receiver(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> Iterator[ReceiverThread]:
    with ReceiverThread(kafka_bootstrap, topic_prefix) as running:
        yield running


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ids = st.integers(min_value=-5, max_value=2**40) | st.booleans() | st.text(max_size=3) | st.none()
hooks = st.fixed_dictionaries(
    {"id": ids, "event": st.sampled_from([*EVENTS, "deal.saved", "contact.created", ""]),
     "target": st.text(max_size=30) | st.integers()}
)  # fmt: skip
datas = st.dictionaries(st.text(max_size=10), json_values, max_size=6).flatmap(
    lambda extra: st.fixed_dictionaries({"id": ids}).map(lambda d: {**extra, **d})
)
webhooks = st.fixed_dictionaries({"hook": hooks, "data": datas | json_values})
valid_webhooks = st.fixed_dictionaries(
    {
        "hook": st.fixed_dictionaries(
            {
                "id": st.integers(0, 10**6),
                "event": st.sampled_from(EVENTS),
                "target": st.text(max_size=30),
            }
        ),
        "data": st.dictionaries(st.text(max_size=10), json_values, max_size=6).map(
            lambda extra: {**extra, "id": zlib.crc32(json.dumps(extra).encode()) + 1}
        ),
    }
)
bodies = (
    valid_webhooks.map(lambda b: json.dumps(b, ensure_ascii=False, indent=1).encode())
    | webhooks.map(lambda b: json.dumps(b).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | webhooks.map(lambda b: json.dumps(b).encode()[: len(json.dumps(b)) // 2])
    | st.just(b"[" * 5000 + b"]" * 5000)
    | st.just(b'{"hook":' + b"1" * (MAX_BODY + 10) + b"}")
)
# Header names are HTTP tokens (anything else never reaches the app: the HTTP parser
# refuses it); values are any visible ASCII.
header_names = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20
)
headers = st.dictionaries(
    header_names.filter(lambda h: h.lower() not in ("content-length", "host", "transfer-encoding")),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip),
    max_size=3,
)
content_types = st.sampled_from(
    ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 1


def is_valid(raw: bytes) -> bool:
    """An oracle written apart from the receiver: is this a body it must accept?"""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    if depth(body) > 32:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("hook"), dict):
        return False
    hook, data = body["hook"], body.get("data")

    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    return (
        integer(hook.get("id")) and hook.get("event") in EVENTS
        and isinstance(hook.get("target"), str)
        and isinstance(data, dict) and integer(data.get("id")) and data["id"] > 0
        and len(raw) <= MAX_BODY
    )  # fmt: skip


def post(url: str, body: bytes, content_type: str, extra: dict[str, str]) -> tuple[int, Any]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST", parts.path, body=body, headers={**extra, "Content-Type": content_type}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_fuzzed_bodies_and_headers(
    receiver: ReceiverThread, kafka_bootstrap: str, topic_prefix: str
) -> None:
    accepted: dict[str, set[str]] = {entity: set() for entity in ENTITIES}
    answers: list[str] = []  # every "accepted" answer (repeated bodies give repeated ids)

    def check(body: bytes, content_type: str, extra: dict[str, str]) -> None:
        status, answer = post(receiver.url, body, content_type, extra)
        assert status < 500, (status, answer)
        if not is_valid(body):
            assert status in (400, 413), (status, answer, body[:80])
            assert answer["reason"] in ("malformed", "too_large")
            return
        assert status == 200, (status, answer)
        data = json.loads(body)
        entity, action = data["hook"]["event"].split(".")
        if action == "deleted":
            assert answer["status"] == "ignored"
            return
        assert answer["status"] == "accepted"
        assert answer["event_id"] == to_fact(entity, data["data"]).event_id
        accepted[entity].add(answer["event_id"])
        answers.append(answer["event_id"])

    examples = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    # Valid bodies on their own, so the "never lose one" side is always well exercised.
    examples(
        given(valid_webhooks.map(lambda b: json.dumps(b).encode()), content_types, headers)(check)
    )()
    examples(given(bodies, content_types, headers)(check))()
    names = Topics(topic_prefix)
    for entity in ENTITIES:
        stored = {
            f.event_id for f in asyncio.run(read_facts(kafka_bootstrap, names[SOURCE_OF[entity]]))
        }
        assert accepted[entity] <= stored  # nothing accepted was lost
        assert stored <= accepted[entity]  # nothing refused was stored
    assert len(answers) > 30  # the valid path was well exercised
