"""The reporting consumer on the real broker, with orders made in the Odoo sandbox and
polled by the real poller: its numbers against the sandbox's own records, delivered
twice, rebuilt from scratch, and the `reporter` / `report` commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.kafka.publisher import Outgoing, Publisher
from connectors.odoo import OdooClient
from connectors.odoo.sandbox import seed
from consumers.base.sink import SinkConfig, SinkConsumer, Store, open_read_only
from consumers.reporting.sink import ReportingSink
from consumers.reporting.tables import TABLES, read_table
from producers.odoo import OdooPoller, PollerOptions
from schemas import (
    Command,
    ConflictReport,
    DeadLetter,
    EchoNotice,
    Fact,
    Result,
    ResultStatus,
    Skip,
    System,
)
from schemas.topics import Topics, TopicSpec
from tests.contracts.sink import SinkContract, SinkHarness
from tests.support.odoo_fixtures import Sandbox, running_sandbox, transactional_publisher

pytestmark = pytest.mark.broker
Tables = dict[str, list[dict[str, Any]]]
FACT_TOPICS = ("odoo.sale_order", "odoo.partner", "odoo.product")


# ------------------------------------------------------------------ the sandbox side


@dataclass
class Shop:
    """A sandbox Odoo whose orders are polled into this test's topics."""

    sandbox: Sandbox
    client: OdooClient
    poller: OdooPoller


@contextlib.asynccontextmanager
async def shop(bootstrap: str, prefix: str) -> AsyncIterator[Shop]:
    async with (
        running_sandbox(17) as sandbox,
        sandbox.client() as client,
        transactional_publisher(bootstrap, prefix) as publisher,
    ):
        options = PollerOptions(page_size=50, overlap=30)
        poller = OdooPoller(client, publisher, bootstrap, topics=Topics(prefix), options=options)
        await poller.start()
        yield Shop(sandbox, client, poller)


async def two_months_of_sales(shop: Shop) -> None:
    """Orders over two months, some polled in several versions: confirmed, edited after
    confirmation, cancelled after confirmation, confirmed late; one customer is a
    contact person of a company."""
    sandbox, client = shop.sandbox, shop.client
    seed(sandbox.database, partners=12, products=6, orders=0)
    (company,) = await client.search("res.partner", [("is_company", "=", True)], limit=1)
    await client.create("res.partner", {"name": "Lucía Romero", "parent_id": company})
    seed(sandbox.database, partners=0, products=0, orders=14, random_seed=1)
    await shop.poller.backfill()
    sandbox.advance(35 * 24 * 3600)  # the next month
    seed(sandbox.database, partners=0, products=0, orders=14, random_seed=2)
    await shop.poller.poll_once()

    sandbox.advance(2)
    confirmed = await client.search("sale.order", [("state", "=", "sale")], order="id")
    drafts = await client.search("sale.order", [("state", "=", "draft")], order="id")
    await client.call("sale.order", "action_cancel", confirmed[:1])
    (edited,) = await client.read("sale.order", confirmed[1:2], ["order_line"])
    await client.write("sale.order.line", edited["order_line"][:1], {"product_uom_qty": 40})
    await client.call("sale.order", "action_confirm", drafts[:1])
    await shop.poller.poll_once()


async def expected_from_sandbox(client: OdooClient) -> Tables:
    """The report's sales and products computed from the sandbox's records directly."""
    everyone = {"active_test": False}
    partners = {
        p["id"]: p
        for p in await client.search_read(
            "res.partner", [], ["name", "ref", "commercial_partner_id"], context=everyone
        )
    }
    orders = await client.search_read(
        "sale.order", [("state", "in", ["sale", "done"])],
        ["partner_id", "date_order", "currency_id", "amount_untaxed", "amount_total"],
    )  # fmt: skip
    sales: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    currency = {}
    for order in orders:
        customer = partners[order["partner_id"][0]]["commercial_partner_id"][0]
        key = (order["date_order"][:7], customer, order["currency_id"][1])
        sales[key][0] += 1
        sales[key][1] += order["amount_untaxed"]
        sales[key][2] += order["amount_total"]
        currency[order["id"]] = order["currency_id"][1]
    lines = await client.search_read(
        "sale.order.line", [("order_id", "in", list(currency))],
        ["order_id", "product_id", "product_uom", "product_uom_qty", "price_subtotal"],
    )  # fmt: skip
    products: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in lines:
        key = (line["product_id"][0], line["product_uom"][1], currency[line["order_id"][0]])
        products[key][0] += line["product_uom_qty"]
        products[key][1] += line["price_subtotal"]
    return {
        "sales": [
            {"month": month, "customer_id": customer, "customer": partners[customer]["name"],
             "ref": partners[customer]["ref"] or None, "currency": cur, "orders": count,
             "untaxed": round(untaxed, 2), "total": round(total, 2)}
            for (month, customer, cur), (count, untaxed, total) in sales.items()
        ],
        "products": [
            {"product_id": product, "unit": unit, "currency": cur, "quantity": qty,
             "amount": round(amount, 2)}
            for (product, unit, cur), (qty, amount) in products.items()
        ],
    }  # fmt: skip


# ------------------------------------------------------------------ the report side


async def catch_up(bootstrap: str, prefix: str, db: Path) -> SinkConsumer:
    with Store(db, ReportingSink(), prefix) as store:
        async with SinkConsumer(store, SinkConfig(bootstrap, prefix, max_records=25)) as reader:
            assert await reader.catch_up(asyncio.Event())
    return reader


def report(db: Path) -> Tables:
    with contextlib.closing(open_read_only(db)) as connection:
        return {spec.name: read_table(connection, spec).records() for spec in TABLES}


def comparable(tables: Tables) -> Tables:
    """Sales and products with money to the cent, in a stable order, columns as computed
    from the sandbox."""
    sales = [
        {key: round(v, 2) if key in ("untaxed", "total") else v for key, v in row.items()}
        for row in tables["sales"]
    ]
    products = [
        {"product_id": r["product_id"], "unit": r["unit"], "currency": r["currency"],
         "quantity": r["quantity"], "amount": round(r["amount"], 2)}
        for r in tables["products"]
    ]  # fmt: skip
    return {
        "sales": sorted(sales, key=lambda r: (r["month"], r["customer_id"], r["currency"])),
        "products": sorted(products, key=lambda r: (r["product_id"], r["unit"], r["currency"])),
    }


async def test_report_matches_the_sandbox_records(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    async with shop(kafka_bootstrap, topic_prefix) as odoo:
        await two_months_of_sales(odoo)
        expected = comparable(await expected_from_sandbox(odoo.client))
    reader = await catch_up(kafka_bootstrap, topic_prefix, tmp_path / "report.sqlite3")
    got = comparable(report(tmp_path / "report.sqlite3"))

    assert got == expected
    assert len({row["month"] for row in got["sales"]}) == 2
    assert reader.rejected == 0 and reader.applied > 40  # versions of orders, partners...
    # The contact person's orders (if the seed gave it any) are filed under its company,
    # so no customer in the report is a contact of another.
    with contextlib.closing(sqlite3.connect(tmp_path / "report.sqlite3")) as db:
        (versions,) = db.execute("SELECT count(*) FROM orders").fetchone()
        contacts = {row[0] for row in db.execute("SELECT partner_id FROM partners "
                                                 "WHERE commercial_id != partner_id")}  # fmt: skip
    assert versions == 28  # one row per order, however many versions were polled
    assert contacts and not contacts & {row["customer_id"] for row in got["sales"]}


async def republish_reversed(bootstrap: str, prefix: str) -> int:
    """Every fact on the fact topics published again, newest first: duplicates, and
    older versions arriving after newer ones."""
    consumer = AIOKafkaConsumer(
        *(prefix + name for name in FACT_TOPICS), bootstrap_servers=bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for part in batch.values():
                records += part
    finally:
        await consumer.stop()
    async with Publisher(bootstrap) as publisher:
        await publisher.publish_all(
            [Outgoing(r.topic, r.key.decode(), r.value) for r in reversed(records)]
        )
    return len(records)


async def test_delivered_twice_changes_nothing(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    db = tmp_path / "report.sqlite3"
    async with shop(kafka_bootstrap, topic_prefix) as odoo:
        await two_months_of_sales(odoo)
    await catch_up(kafka_bootstrap, topic_prefix, db)
    before = report(db)

    republished = await republish_reversed(kafka_bootstrap, topic_prefix)
    reader = await catch_up(kafka_bootstrap, topic_prefix, db)
    assert reader.applied == republished > 40
    assert report(db) == before

    # Every message delivered again (positions forgotten, the effects kept).
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("DELETE FROM sink_positions")
    reader = await catch_up(kafka_bootstrap, topic_prefix, db)
    assert reader.applied == 2 * republished
    assert report(db) == before


# ------------------------------------------------------------------ sync health

DAY1 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def result(command_id: str, status: ResultStatus, at: datetime) -> Result:
    return Result(
        command_id=command_id, target=System.CLIENTIFY, entity="company", business_key="B1",
        status=status, finished_at=at,
    )  # fmt: skip


def conflict(at: datetime) -> ConflictReport:
    return ConflictReport(
        flow="company", business_key="B1", field="phone", winner=System.ODOO,
        winning_value="+34 1", losing_value="+34 2", winner_time="t2", loser_time="t1",
        caused_by="fact-9", at=at,
    )  # fmt: skip


def dead_letter(at: datetime) -> DeadLetter:
    command = Command.for_fact(
        fact_id="fact-5", target=System.ODOO, entity="contact", business_key="X1", fields={}
    )
    return DeadLetter(command=command, reason="rejected: 400", attempts=3, at=at)


def echo(event_id: str, at: datetime) -> EchoNotice:
    return EchoNotice(
        event_id=event_id, system=System.CLIENTIFY, flow="contact", business_key="B1", at=at
    )


def skip(flow: str, at: datetime) -> Skip:
    return Skip(
        event_id="fact-3", system=System.ODOO, entity="partner", source_id="3", flow=flow,
        reason="no ref", at=at,
    )  # fmt: skip


def odoo_fact(entity: str, payload: dict[str, Any]) -> Fact:
    return Fact.observe(
        system=System.ODOO, entity=entity, source_id=payload["id"], version="v1",
        payload=payload, occurred_at=DAY1,
    )  # fmt: skip


class TestReportingSink(SinkContract):
    @pytest.fixture
    def harness(self) -> SinkHarness:
        partner = {"id": 7, "name": "Acme", "ref": "B1", "commercial_partner_id": [7, "Acme"]}
        line = {"id": 1, "product_id": [3, "Widget"], "product_uom_qty": 2.0,
                "price_subtotal": 20.0, "product_uom": [1, "Units"]}  # fmt: skip
        order = {"id": 5, "name": "S00005", "partner_id": [7, "Acme"],
                 "date_order": "2024-05-01 10:30:00", "state": "sale",
                 "currency_id": [1, "EUR"], "amount_untaxed": 20.0, "amount_total": 24.2,
                 "lines": [line]}  # fmt: skip
        return SinkHarness(ReportingSink(), [
            ("odoo.partner", odoo_fact("partner", partner)),
            ("odoo.product", odoo_fact("product", {"id": 3, "name": "Widget"})),
            ("odoo.sale_order", odoo_fact("sale_order", order)),
            ("sync.results", result("c1", ResultStatus.APPLIED, DAY1)),
            ("sync.echoes", echo("e1", DAY1)),
            ("sync.skips", skip("contact", DAY1)),
            ("sync.conflicts", conflict(DAY1)),
            ("sync.dead_letters", dead_letter(DAY1)),
        ])  # fmt: skip


async def test_sync_health_counts_each_event_once_on_its_first_day(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    def to(topic: str, *envelopes: Any) -> list[Outgoing]:
        return [Outgoing(topic_prefix + topic, str(i), e) for i, e in enumerate(envelopes)]

    applied, failed = ResultStatus.APPLIED, ResultStatus.FAILED
    async with Publisher(kafka_bootstrap) as publisher:
        await publisher.publish_all([
            # c1 republished by a writer after a redelivery; c4 was already applied;
            # c5 failed (its dead letter counts instead).
            *to("sync.results", result("c1", applied, DAY1), result("c2", applied, DAY1),
                result("c3", applied, DAY2), result("c1", applied, DAY1),
                result("c4", ResultStatus.ALREADY_APPLIED, DAY2), result("c5", failed, DAY2)),
            *to("sync.echoes", echo("f1", DAY1), echo("f1", DAY1), echo("f2", DAY2)),
            *to("sync.skips", skip("company", DAY1), skip("contact", DAY1)),
            # The same conflict again, reported later: it belongs to its first day.
            *to("sync.conflicts", conflict(DAY2 + timedelta(days=1)), conflict(DAY2)),
            *to("sync.dead_letters", dead_letter(DAY2), dead_letter(DAY2)),
            Outgoing(topic_prefix + "sync.skips", "x", b"not an envelope"),
        ])  # fmt: skip
    reader = await catch_up(kafka_bootstrap, topic_prefix, tmp_path / "r.sqlite3")

    assert report(tmp_path / "r.sqlite3")["health"] == [
        {"day": "2024-05-01", "writes": 2, "echoes": 1, "skips": 2, "conflicts": 0,
         "dead_letters": 0},
        {"day": "2024-05-02", "writes": 1, "echoes": 1, "skips": 0, "conflicts": 1,
         "dead_letters": 1},
    ]  # fmt: skip
    assert reader.rejected == 1
    with contextlib.closing(sqlite3.connect(tmp_path / "r.sqlite3")) as db:
        ((topic, error),) = db.execute("SELECT topic, error FROM sink_rejects").fetchall()
    assert topic == "sync.skips" and "not JSON" in error


# ------------------------------------------------------------------ the commands


class Cli:
    def __init__(self, bootstrap: str, prefix: str, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "cli-report.sqlite3"
        self.env = {
            **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix,
            "COLUMNS": "160",
        }  # fmt: skip

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "clientify_odoo", *args, "--db", str(self.db)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # cwd: the test's own directory, so no .env of the work tree is read.
        return subprocess.run(
            self.argv(*args), cwd=self.tmp, env=self.env, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip

    def start(self, *args: str, log: Path) -> subprocess.Popen[str]:
        with log.open("w") as out:
            return subprocess.Popen(
                self.argv(*args), cwd=self.tmp, env=self.env, stdout=out, stderr=out, text=True
            )

    def json(self, *args: str) -> Tables:
        done = self.run("report", *args, "--format", "json")
        assert done.returncode == 0, done.stderr
        tables: Tables = json.loads(done.stdout)
        return tables


async def test_rebuild_from_the_topics_gives_the_same_numbers(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    cli = Cli(kafka_bootstrap, topic_prefix, tmp_path)
    async with shop(kafka_bootstrap, topic_prefix) as odoo:
        await two_months_of_sales(odoo)
        expected = comparable(await expected_from_sandbox(odoo.client))
    missing = cli.run("report")
    assert missing.returncode == 1
    assert "no report database" in missing.stderr and "report --rebuild" in missing.stderr

    once = cli.run("reporter", "--once")
    assert once.returncode == 0, once.stderr
    assert "up to date" in once.stderr
    first = cli.json()
    assert comparable(first) == expected

    rebuilt = cli.run("report", "--rebuild", "--format", "json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Replaying the topics" in rebuilt.stderr  # the progress bar
    assert json.loads(rebuilt.stdout) == first
    again = cli.run("reporter", "--rebuild", "--once")
    assert again.returncode == 0, again.stderr
    assert cli.json() == first


async def test_report_formats(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    cli = Cli(kafka_bootstrap, topic_prefix, tmp_path)
    async with shop(kafka_bootstrap, topic_prefix) as odoo:
        await two_months_of_sales(odoo)
    assert cli.run("reporter", "--once").returncode == 0
    tables = cli.json()
    assert set(tables) == {"sales", "products", "health"}
    assert set(cli.json("products", "health")) == {"products", "health"}

    shown = cli.run("report")
    assert shown.returncode == 0, shown.stderr
    for title in ("Confirmed sales per customer and month", "Product totals", "Sync health"):
        assert title in shown.stdout
    top = tables["sales"][0]
    assert top["customer"] in shown.stdout and f"{top['total']:,.2f}" in shown.stdout

    as_csv = cli.run("report", "sales", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    header, *rows = as_csv.stdout.splitlines()
    assert header == "month,customer_id,customer,ref,currency,orders,untaxed,total"
    assert len(rows) == len(tables["sales"])

    refused = cli.run("report", "--format", "csv")
    assert refused.returncode == 2 and "report sales --format csv" in refused.stderr
    unknown = cli.run("report", "salez")
    assert unknown.returncode == 2 and "choose from sales, products, health" in unknown.stderr
    cli.env["TOPIC_PREFIX"] = "nothing-here."
    other_sync = cli.run("reporter", "--once")
    assert other_sync.returncode == 2
    assert "built from the topics of TOPIC_PREFIX=" in other_sync.stderr
    assert "report --rebuild" in other_sync.stderr
    cli.db = tmp_path / "other.sqlite3"
    no_topics = cli.run("reporter", "--once")
    assert no_topics.returncode == 2 and "clientify-odoo kafka topics" in no_topics.stderr
    cli.env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:1"
    no_kafka = cli.run("reporter", "--once")
    assert no_kafka.returncode == 2
    assert no_kafka.stderr.strip().splitlines() == [
        "error: cannot reach Kafka at 127.0.0.1:1. Start it with `clientify-odoo kafka up`, "
        "or set KAFKA_BOOTSTRAP_SERVERS (or --bootstrap) to your cluster."
    ]


async def test_reporter_follows_new_orders_and_stops_cleanly(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    cli = Cli(kafka_bootstrap, topic_prefix, tmp_path)
    log = tmp_path / "reporter.log"
    reporter = cli.start("reporter", log=log)
    try:
        await wait_for(lambda: "Following new messages" in log.read_text(), log)
        async with shop(kafka_bootstrap, topic_prefix) as odoo:
            await two_months_of_sales(odoo)
            expected = comparable(await expected_from_sandbox(odoo.client))
        await wait_for(lambda: comparable(cli.json()) == expected, log)

        busy = cli.run("report", "--rebuild")
        assert busy.returncode == 2
        assert "another process is writing" in busy.stderr
    finally:
        reporter.send_signal(signal.SIGINT)
        code = reporter.wait(timeout=60)
    output = tail(log)
    assert code == 0, output
    assert "stopped:" in output and "Traceback" not in output


async def wait_for(condition: Any, log: Path, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {within}s:\n{tail(log)}")
        await asyncio.sleep(0.5)


def tail(log: Path) -> str:
    return log.read_text()[-4000:]
