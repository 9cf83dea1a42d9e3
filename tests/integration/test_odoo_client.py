"""The Odoo client over HTTP: the same tests for every sandbox profile and every real Odoo
(16 to 19), for each protocol it speaks; what needs the sandbox's knobs (faults, latency,
a fixed clock) runs on the sandbox only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from connectors.odoo import (
    OdooAccessError,
    OdooClient,
    OdooConfig,
    OdooConfigError,
    OdooFault,
    OdooMissingRecord,
    OdooUnavailable,
    OdooValidationError,
    OdooVersion,
)
from connectors.odoo.client import USER_AGENT
from connectors.odoo.sandbox import SUPPORTED_VERSIONS
from tests.support.odoo_fixtures import OdooPeer, Sandbox, odoo_peer, peers, running_sandbox
from tests.support.real_odoo import unique

CASES = [
    (peer, protocol)
    for peer in peers(sandboxes=SUPPORTED_VERSIONS)
    for protocol in ("xmlrpc", "jsonrpc", "json2")
    if protocol != "json2" or peer.endswith("-19")
]


@pytest.fixture(params=CASES, ids=lambda case: f"{case[0]}-{case[1]}")
async def connected(request: pytest.FixtureRequest) -> AsyncIterator[tuple[OdooPeer, OdooClient]]:
    name, protocol = request.param
    async with odoo_peer(name) as peer, peer.client(protocol=protocol) as client:
        yield peer, client


@pytest.fixture(params=[17, 19], ids=lambda version: f"sandbox-{version}")
async def on_sandbox(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Sandbox, OdooClient]]:
    """For what needs the sandbox's knobs."""
    async with running_sandbox(request.param) as sandbox, sandbox.client() as client:
        yield sandbox, client


async def test_connects_and_detects_the_version(connected: tuple[OdooPeer, OdooClient]) -> None:
    peer, client = connected
    assert client.version == OdooVersion(peer.version)
    assert client.uid == 2
    assert client.protocol == client.config.protocol


async def test_auto_picks_json2_from_19_only() -> None:
    for version in (18, 19):
        async with running_sandbox(version) as sandbox, sandbox.client() as client:
            assert client.protocol == ("json2" if version == 19 else "xmlrpc")


async def test_the_high_level_calls(connected: tuple[OdooPeer, OdooClient]) -> None:
    peer, client = connected
    b1, x1 = unique("B"), unique("X")
    one = await client.create("res.partner", {"name": "Ferretería Gómez S.L.", "ref": b1})
    many = await client.create_many("res.partner", [{"name": "A", "ref": x1}, {"name": "B"}])
    assert isinstance(one, int) and len(many) == 2
    assert await client.write("res.partner", [one], {"phone": "+34 600 000 000"})
    rows = await client.search_read(
        "res.partner", [["ref", "in", [b1, x1]]], ["name", "phone", "mobile", "country_id"],
        order="id desc", limit=5,
    )  # fmt: skip
    assert [row["id"] for row in rows] == [many[0], one]
    # `mobile` was dropped on 19 rather than failing the whole call.
    assert ("mobile" in rows[0]) is (peer.version <= 18)
    assert rows[1]["phone"] == "+34 600 000 000" and rows[1]["country_id"] is False
    assert await client.search("res.partner", [["ref", "=", b1]]) == [one]
    assert await client.search_count("res.partner", [["id", "in", [one, *many]]]) == 3
    read = await client.read("res.partner", [one, 999_999], ["name"])
    assert read == [{"id": one, "name": "Ferretería Gómez S.L."}]
    fields = await client.fields("sale.order.line")
    expected_uom = "product_uom_id" if peer.version >= 19 else "product_uom"
    assert expected_uom in fields and fields["qty_to_deliver"]["store"] is False
    product = await client.create("product.product", {"name": "Tornillo"})
    line = {"name": "x", "product_id": product, "price_unit": 2}
    order = await client.create("sale.order", {"partner_id": one, "order_line": [[0, 0, line]]})
    assert await client.call("sale.order", "action_confirm", [order]) is True
    assert await client.unlink("res.partner", many[1:])


async def test_typed_errors(connected: tuple[OdooPeer, OdooClient]) -> None:
    _peer, client = connected
    with pytest.raises(OdooMissingRecord):
        await client.write("res.partner", [999_999], {"name": "x"})
    barcode = unique("84123")
    await client.create("product.product", {"name": "A", "barcode": barcode})
    with pytest.raises(OdooValidationError, match="arcode"):
        await client.create("product.product", {"name": "B", "barcode": barcode})
    with pytest.raises(OdooAccessError):
        await client.call("res.partner", "_private")
    with pytest.raises(OdooFault, match="Invalid field"):
        await client.call("res.partner", "search_read", fields=["no_such_field"])
    with pytest.raises(OdooFault, match=r"doesn.t exist|does not exist") as caught:
        await client.call("no.such.model", "search", domain=[])
    assert not caught.value.transient


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
async def test_retries_transient_errors_only(version: int) -> None:
    async with running_sandbox(version) as sandbox, sandbox.client(retries=12) as client:
        sandbox.faults.error_rate = 0.5
        for i in range(10):
            await client.create("res.partner", {"name": f"R{i}"})  # 503s are never applied
        injected = sandbox.faults.injected
        assert injected > 0
        sandbox.faults.error_rate = 0.0
        assert await client.search_count("res.partner", [["name", "=like", "R%"]]) == 10
        before = sandbox.stats.requests
        with pytest.raises(OdooMissingRecord):
            await client.write("res.partner", [999_999], {"name": "x"})
        assert sandbox.stats.requests == before + 1  # a fault is final: one request


async def test_gives_up_after_its_retries_with_a_clear_error() -> None:
    async with running_sandbox(17) as sandbox, sandbox.client(retries=2) as client:
        sandbox.faults.error_rate = 1.0
        before = sandbox.stats.requests
        with pytest.raises(OdooUnavailable, match="503"):
            await client.search("res.partner", [])
        assert sandbox.stats.requests == before + 3


async def test_timeouts_are_transient_but_not_repeated_for_creates() -> None:
    async with running_sandbox(17) as sandbox, sandbox.client(retries=1, timeout=0.2) as client:
        sandbox.faults.latency_ms = 400
        before = sandbox.stats.requests
        with pytest.raises(OdooUnavailable, match="in time"):
            await client.create("res.partner", {"name": "maybe"})
        await asyncio.sleep(0.3)
        assert sandbox.stats.requests == before + 1  # the create may have happened: no retry
        with pytest.raises(OdooUnavailable):
            await client.search("res.partner", [])
        await asyncio.sleep(0.3)
        assert sandbox.stats.requests == before + 3  # a read is retried


async def test_bounded_concurrency_connection_reuse_and_user_agent() -> None:
    async with running_sandbox(17) as sandbox, sandbox.client(max_in_flight=2) as client:
        sandbox.faults.latency_ms = 100
        sandbox.stats.connections.clear()
        started = time.monotonic()
        await asyncio.gather(*(client.search("res.partner", []) for _ in range(8)))
        elapsed = time.monotonic() - started
        assert sandbox.stats.peak_in_flight <= 2
        assert elapsed >= 0.39  # 8 calls, 2 at a time, 100 ms each
        assert len(sandbox.stats.connections) <= 2  # kept alive and reused
        assert sandbox.stats.user_agents == {USER_AGENT}


@pytest.mark.parametrize("version", [16, 19])
async def test_start_up_errors_name_the_setting(version: int) -> None:
    async with running_sandbox(version) as sandbox:
        with pytest.raises(OdooConfigError, match="ODOO_API_KEY") as caught:
            await sandbox.client(api_key="f" * 40).connect()
        assert "\n" not in str(caught.value) and "f" * 40 not in str(caught.value)
        with pytest.raises(OdooConfigError, match="ODOO_USER"):
            await sandbox.client(login="someone").connect()
        with pytest.raises(OdooConfigError, match="ODOO_DB") as caught:
            await sandbox.client(db="nope").connect()
        assert "'nope'" in str(caught.value)
        url = sandbox.url
    started = time.monotonic()
    with pytest.raises(OdooConfigError, match=r"cannot reach Odoo.*ODOO_URL"):
        await OdooClient(sandbox.config(url=url)).connect()  # the server is gone
    assert time.monotonic() - started < 5


async def test_a_non_odoo_url_is_a_config_error() -> None:
    async with running_sandbox(17) as sandbox:
        with pytest.raises(OdooConfigError, match="does not answer like Odoo"):
            await sandbox.client(url=sandbox.url + "/sandbox/info").connect()


async def test_json2_is_refused_below_19() -> None:
    async with running_sandbox(18) as sandbox:
        with pytest.raises(OdooConfigError, match="no JSON-2"):
            await sandbox.client(protocol="json2").connect()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"server_version_info": [17, 0, 0, "final", 0, ""], "server_version": "17.0"},
         OdooVersion(17, 0)),
        ({"server_version_info": ["saas~17", 2, 0, "final", 0, "e"],
          "server_version": "saas~17.2+e"}, OdooVersion(17, 2, saas=True)),
        ({"server_version": "saas~18.1+e"}, OdooVersion(18, 1, saas=True)),
        ({"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}, OdooVersion(19)),
        ({"server_version_info": [16, 0, 0, "final", 0, "e"], "server_version": "16.0+e"},
         OdooVersion(16)),
    ],
)  # fmt: skip
def test_version_parsing(answer: dict[str, object], expected: OdooVersion) -> None:
    parsed = OdooVersion.parse(answer)
    assert parsed == expected and parsed.has_json2 is (expected.major >= 19)


def test_unparseable_version_is_an_error() -> None:
    with pytest.raises(OdooConfigError, match="unrecognised"):
        OdooVersion.parse({"server_version": "banana"})


async def test_concurrency_faults_are_retried(on_sandbox: tuple[Sandbox, OdooClient]) -> None:
    sandbox, client = on_sandbox
    sandbox.database.serialization_failures = 2
    before = sandbox.stats.requests
    created = await client.create("res.partner", {"name": "Reintento"})
    assert sandbox.stats.requests == before + 3
    assert await client.search("res.partner", [["name", "=", "Reintento"]]) == [created]


async def test_field_lists_follow_the_server(caplog: pytest.LogCaptureFixture) -> None:
    async with running_sandbox(19) as sandbox, sandbox.client() as client:
        caplog.set_level("INFO")
        wanted = ["name", "mobile", "title"]
        assert await client.available("res.partner", wanted) == ["name"]
        assert await client.available("res.partner", wanted) == ["name"]
        told = [r.getMessage() for r in caplog.records if "not read" in r.getMessage()]
        assert told == ["res.partner on Odoo 19.0 has no ['mobile', 'title']: not read"]
        # Nothing known is still a field list: Odoo would otherwise send every field.
        await client.create("res.partner", {"name": "Solo"})
        rows = await client.search_read("res.partner", [], ["mobile"])
        assert rows == [{"id": rows[0]["id"]}]


async def test_a_new_custom_field_is_known_at_once(connected: tuple[OdooPeer, OdooClient]) -> None:
    _peer, client = connected
    name = unique("x_test_")  # a real server's database outlives the test
    assert name not in await client.fields("res.partner")
    assert await client.available("res.partner", ["name", name]) == ["name"]
    (model,) = await client.search("ir.model", [("model", "=", "res.partner")])
    await client.create("ir.model.fields", {
        "name": name, "model_id": model, "ttype": "char", "field_description": "Estado",
    })  # fmt: skip
    assert name in await client.fields("res.partner")
    partner = await client.create("res.partner", {"name": "C", name: "client"})
    rows = await client.read("res.partner", [partner], [name])
    assert rows[0][name] == "client"


@pytest.mark.parametrize("version", [17, 19])
async def test_saas_versions_over_the_wire(version: int) -> None:
    async with running_sandbox(version, saas_minor=2) as sandbox:
        raw = await sandbox.xmlrpc("common", "version")
        assert raw["server_version_info"][:2] == [f"saas~{version}", 2]
        assert raw["server_version"] == f"saas~{version}.2+e"
        async with sandbox.client() as client:
            assert client.version == OdooVersion(version, 2, saas=True)
            assert client.protocol == ("json2" if version >= 19 else "xmlrpc")
            assert await client.search_count("res.country", [("code", "=", "ES")]) == 1


async def test_a_web_page_is_not_odoo() -> None:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        config = OdooConfig(
            url=str(server.make_url("")), db="x", login="y", api_key=SecretStr("z" * 40)
        )
        for protocol in ("auto", "jsonrpc"):
            with pytest.raises(OdooConfigError, match=r"does not answer like Odoo.*ODOO_URL"):
                await OdooClient(config.model_copy(update={"protocol": protocol})).connect()
    finally:
        await server.close()
