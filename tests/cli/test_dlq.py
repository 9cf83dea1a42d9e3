"""Dead letters and their requeue: which values go back, how the processors take the
requeued command's Result, and `clientify-odoo dlq` against the real broker with the
real worker and Clientify writer processes: a rejected command is requeued after the
fix, issued by the worker and lands once, however often it is requeued."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.clientify import ClientifyClient
from connectors.kafka.publisher import Publisher
from consumers.writers.dead_letters import (
    Book,
    Entry,
    read_book,
    requeue_id,
    send,
)
from processors.decide import Link, on_requeue, on_result
from processors.sync_state import RecordState, apply_fact, apply_result
from schemas import Command, DeadLetter, Result, ResultStatus, System
from schemas.topics import Topics, TopicSpec
from tests.support.clientify_fixtures import sandbox_at
from tests.support.commands import outgoing
from tests.support.kafka import Reader, reading
from tests.support.worker import Worker

COMMAND = str(Path(sys.executable).parent / "clientify-odoo")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def letter(key: str, fields: dict[str, Any], minutes: int, entity: str = "company") -> Entry:
    command = Command.for_fact(
        fact_id=f"fact-{key}-{minutes}", target=System.CLIENTIFY, entity=entity,
        business_key=key, fields=fields, expected={name: "old" for name in fields},
    )  # fmt: skip
    at = T0 + timedelta(minutes=minutes)
    return Entry(DeadLetter(command=command, reason="400", attempts=1, at=at))


def test_a_requeued_command_has_one_new_id_per_dead_letter() -> None:
    dead = letter("B1", {"name": "Acme"}, 0)
    [planned] = Book([dead]).plan([dead])
    assert planned.command is not None
    assert planned.command.command_id == requeue_id(dead.id) != dead.id
    [again] = Book([dead]).plan([dead])
    assert again.command is not None and again.command.command_id == planned.command.command_id
    assert planned.command.fields == {"name": "Acme"}
    assert planned.command.expected == {"name": "old"}


def test_only_the_newest_dead_value_of_a_field_goes_back() -> None:
    older = letter("B1", {"name": "Acme", "phone": "1"}, 0)
    newer = letter("B1", {"name": "Acme SL"}, 5)
    newest = letter("B1", {"phone": "2"}, 9)
    other = letter("B2", {"name": "Other"}, 7)
    book = Book([newest, other, older, newer])
    assert [e.id for e in book.entries] == [older.id, newer.id, other.id, newest.id]
    plans = {p.entry.id: p for p in book.plan(book.open())}
    # Every field of `older` has a newer dead value: nothing of it is sent.
    assert plans[older.id].command is None
    assert plans[older.id].superseded == {"name": newer.id, "phone": newest.id}
    sent = plans[newer.id].command
    assert sent is not None and sent.fields == {"name": "Acme SL"}
    assert plans[other.id].superseded == {}
    # Alone, the older one still leaves the newer values to their own letters.
    [alone] = book.plan([older])
    assert alone.command is None


def test_a_field_a_later_command_wrote_is_not_sent_back() -> None:
    """Seen in the chaos run: a contact dead-lettered while it waited for its company,
    then a newer edit of it went through; requeuing the old phone would undo that edit
    (the target's next fact would show it as the newest edit, and it would win)."""
    dead = letter("B1", {"phone": "old", "name": "Acme"}, 0, entity="contact")
    record = (System.CLIENTIFY, "contact", "B1")
    later = {(record, "phone"): (T0 + timedelta(minutes=3), "later-command")}
    earlier = {(record, "name"): (T0 - timedelta(minutes=3), "earlier-command")}
    [planned] = Book([dead], {**later, **earlier}).plan([dead])
    assert planned.superseded == {"phone": "later-command"}
    assert planned.command is not None and planned.command.fields == {"name": "Acme"}


def test_an_older_value_landing_after_a_newer_edit_would_win_so_it_is_held_back() -> None:
    # Why only the newest value goes back: two Odoo edits, both dead-lettered...
    state = RecordState()
    for value, minute in (("Acme", 1), ("Acme SL", 2)):
        decision = apply_fact(state, System.ODOO, {"name": value}, T0 + timedelta(minutes=minute))
        apply_result(state, System.CLIENTIFY, failed=decision.fields_for(System.CLIENTIFY))
    # ...if the older one were requeued and landed, Clientify's fact would show it as
    # an edit made now, which beats the newer Odoo edit and is written back to Odoo.
    echo = apply_fact(state, System.CLIENTIFY, {"name": "Acme"}, T0 + timedelta(hours=1))
    assert echo.fields_for(System.ODOO) == {"name": "Acme"}


def clientify_result(command_id: str, status: ResultStatus, **outcome: Any) -> Result:
    return Result(
        command_id=command_id, target=System.CLIENTIFY, entity="company", business_key="B1",
        status=status, finished_at=T0, **outcome,
    )  # fmt: skip


def dead_lettered(state: RecordState, link: Link, fields: dict[str, Any]) -> Command:
    """A Clientify command of these fields, dead-lettered (its FAILED Result folded)."""
    dead = Command.for_fact(
        fact_id="f1", target=System.CLIENTIFY, entity="company", business_key="B1",
        fields=fields,
    )  # fmt: skip
    failed = on_result(clientify_result(dead.command_id, ResultStatus.FAILED, skipped=fields),
                       state, link)  # fmt: skip
    assert not failed.commands and not state.clientify.pending  # not re-sent from here
    return dead


def requeued(dead: Command) -> Command:
    return dead.model_copy(update={"command_id": requeue_id(dead.command_id)})


def test_the_worker_issues_a_requeue_and_takes_its_result_without_loop_or_conflict() -> None:
    state, link = RecordState(), Link(odoo_id="7")
    edit = apply_fact(state, System.ODOO, {"name": "Acme", "city": "Madrid"}, T0)
    fields = edit.fields_for(System.CLIENTIFY)
    dead = dead_lettered(state, link, fields)
    [issued] = on_requeue(requeued(dead), state, link).commands
    assert issued.command_id == requeue_id(dead.command_id) and issued.fields == fields
    # The requeued command lands: the link learns the new Clientify id, nothing is sent.
    landed = on_result(
        clientify_result(issued.command_id, ResultStatus.APPLIED, target_id="42", written=fields),
        state, link,
    )  # fmt: skip
    assert not landed.commands and link.clientify_id == "42"
    # Clientify's fact of the write changes nothing on Odoo and reports no conflict.
    echo = apply_fact(state, System.CLIENTIFY, fields, T0 + timedelta(minutes=5))
    assert not echo.writes and not echo.conflicts
    # A later Odoo edit flows as usual.
    later = apply_fact(state, System.ODOO, {**fields, "city": "Bilbao"}, T0 + timedelta(hours=1))
    assert later.fields_for(System.CLIENTIFY) == {"city": "Bilbao"}


def test_a_requeue_drops_what_a_newer_edit_took_and_its_echo_is_no_edit() -> None:
    """The chaos run's lost update: a command dead-lettered (it waited too long for its
    company), a newer edit of the phone went through, then the requeue. Sent by the
    writer alone, the old phone landed on Clientify and its echo, read before the
    writer's Result, was taken for a user's edit: it won on Odoo and everywhere."""
    state, link = RecordState(), Link(odoo_id="7")
    first = apply_fact(state, System.ODOO, {"name": "Acme", "phone": "1"}, T0)
    dead = dead_lettered(state, link, first.fields_for(System.CLIENTIFY))
    newer = apply_fact(
        state, System.ODOO, {"name": "Acme", "phone": "2"}, T0 + timedelta(minutes=1)
    )
    [through] = newer.fields_for(System.CLIENTIFY).items()
    assert through == ("phone", "2")
    on_result(clientify_result("newer", ResultStatus.APPLIED, target_id="42",
                               written={"phone": "2"}), state, link)  # fmt: skip

    [issued] = on_requeue(requeued(dead), state, link).commands
    assert issued.fields == {"name": "Acme"} and issued.target_id == "42"
    # Its echo comes before the writer's Result: our own write, not an edit.
    echo = apply_fact(
        state, System.CLIENTIFY, {"name": "Acme", "phone": "2"}, T0 + timedelta(minutes=5)
    )
    assert not echo.writes and not echo.conflicts and sorted(echo.echoed) == ["name", "phone"]
    # Requeued again (a second operator), nothing is left: the command goes empty, for
    # the writer to end it (its tracking drops the copy of an applied id).
    [empty] = on_requeue(requeued(dead), state, link).commands
    assert empty.fields == {} and empty.command_id == issued.command_id
    # Without the worker's own record of the write, the echo of the old phone would
    # have read as an edit made now, and won on Odoo.
    blind = RecordState.from_json(state.to_json())
    lost = apply_fact(
        blind, System.CLIENTIFY, {"name": "Acme", "phone": "1"}, T0 + timedelta(minutes=6)
    )
    assert lost.fields_for(System.ODOO) == {"phone": "1"}


# ------------------------------------------------------------------ with the broker


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, env=env, cwd="/tmp",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def writer(env: dict[str, str], log: Path) -> AsyncIterator[None]:
    """The Clientify writer as a user runs it."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            COMMAND, "write", "clientify", "--partitions", "1", "--metrics-port", "0",
            env=env, cwd="/tmp",
            stdout=output, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
            assert code == 0, await asyncio.to_thread(log.read_text)


async def requests_served(url: str, key: str) -> int:
    """What the sandbox's admin stats count: every API request that reached it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url.removesuffix('/v1')}/_admin/stats/",
                 headers={"Authorization": f"Token {key}"}) as response,
    ):  # fmt: skip
        stats: dict[str, Any] = await response.json()
    return int(stats["requests"])


def command(entity: str, key: str, fields: dict[str, Any]) -> Command:
    return Command.for_fact(
        fact_id=f"dlq-test-{entity}-{key}", target=System.CLIENTIFY, entity=entity,
        business_key=key, fields=fields,
    )  # fmt: skip


async def until_result(results: Reader, command_id: str, count: int = 1) -> list[Result]:
    async with asyncio.timeout(60):
        while True:
            found = [
                r for r in results.seen if isinstance(r, Result) and r.command_id == command_id
            ]
            if len(found) >= count:
                return found
            await results.until(len(results.seen) + 1)


@pytest.mark.broker
async def test_dlq_requeues_a_rejected_command_once_after_the_fix(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str, tmp_path: Path
) -> None:
    prefix = topic_prefix
    company = command("company", "B12345678", {"display_name": "Acme SL", "city": "Madrid"})
    product = command("product", "W-1", {"name": "Widget", "price": 9.5})
    async with (
        sandbox_at() as (sandbox, url),
        Publisher(kafka_bootstrap) as publisher,
        reading(kafka_bootstrap, prefix + "sync.results") as results,
        reading(kafka_bootstrap, prefix + "sync.dead_letters") as dead,
    ):
        env = {
            **os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
            "CLIENTIFY_URL": url, "CLIENTIFY_API_KEY": sandbox.api_key, "COLUMNS": "250",
        }  # fmt: skip
        worker = Worker(kafka_bootstrap, prefix, tmp_path)  # it issues the requeues
        worker.start()
        try:
            async with writer(env, tmp_path / "writer.log"):
                warm_up = command("product", "W-0", {"name": "Warm-up", "price": 1.0})
                await publisher.publish_all(outgoing(prefix, warm_up))
                await until_result(results, warm_up.command_id)

                # Clientify rejects everything (400) for a while: both commands die.
                sandbox.faults.error_status, sandbox.faults.error_rate = 400, 1.0
                await publisher.publish_all(outgoing(prefix, company, product))
                letters = await dead.until(2)
                assert {lt.command.command_id for lt in letters if isinstance(lt, DeadLetter)} == {
                    company.command_id, product.command_id,
                }  # fmt: skip
                sandbox.faults.error_rate = 0.0  # the fix

                code, out, err = await run("dlq", "list", env=env)
                assert code == 0, err
                rows = [line for line in out.splitlines() if company.command_id[:8] in line]
                assert len(rows) == 1 and "B12345678" in rows[0] and "Clientify rejected" in rows[0]
                assert rows[0].rstrip(" │|").endswith("no"), out
                assert "2 dead letter(s), 2 not requeued" in out

                code, out, err = await run("dlq", "show", company.command_id[:8], env=env)
                shown = json.loads(out)
                assert code == 0 and shown["requeue"] is None, err
                assert shown["dead_letter"]["command"]["fields"] == company.fields

                served = await requests_served(url, sandbox.api_key)
                code, out, err = await run(
                    "dlq", "requeue", "--id", company.command_id[:8], "--dry-run", env=env
                )
                assert code == 0 and "Dry run: nothing sent" in out, err
                assert requeue_id(company.command_id)[:8] in out and "product" not in out

                code, out, err = await run(
                    "dlq", "requeue", "--id", company.command_id[:8], env=env
                )
                assert code == 0 and "Sent 1 command(s)" in out, err
                [landed] = await until_result(results, requeue_id(company.command_id))
                assert landed.status is ResultStatus.APPLIED and landed.target_id
                stored = await sandbox_companies(url, sandbox.api_key)
                assert [c["taxpayer_identification_number"] for c in stored] == ["B12345678"]
                after_one = await requests_served(url, sandbox.api_key)
                assert after_one > served

                # Requeued again: the dlq says so and sends nothing...
                code, out, err = await run("dlq", "requeue", "--id", company.command_id, env=env)
                assert code == 0 and "was requeued before" in out and "applied" in out, err
                assert "Nothing to requeue" in out
                # ...and a second send anyway (two operators at once) is dropped by the
                # writer's tracking: its stored Result comes again, Clientify sees nothing.
                book = await read_book(kafka_bootstrap, Topics(prefix))
                entry = book.find(company.command_id)
                stale = Book([Entry(entry.letter)])  # as read before the first requeue
                await send(kafka_bootstrap, Topics(prefix),
                           stale.plan(stale.entries), f"{prefix}test-second-operator")  # fmt: skip
                first, second = await until_result(results, requeue_id(company.command_id), 2)
                assert first == second
                assert await requests_served(url, sandbox.api_key) == after_one
                assert len(await sandbox_companies(url, sandbox.api_key)) == 1

                # --all: the product only (the company is done), dry run first.
                served = await requests_served(url, sandbox.api_key)
                code, out, err = await run("dlq", "requeue", "--all", "--dry-run", env=env)
                assert code == 0 and "W-1" in out and "B12345678" not in out.split("To send")[1], (
                    err
                )
                assert await requests_served(url, sandbox.api_key) == served
                code, out, err = await run("dlq", "requeue", "--all", env=env)
                assert code == 0 and "Sent 1 command(s)" in out, err
                [product_landed] = await until_result(results, requeue_id(product.command_id))
                assert product_landed.status is ResultStatus.APPLIED
                code, out, err = await run("dlq", "requeue", "--all", env=env)
                assert code == 0 and "Nothing to requeue" in out, err

                code, out, err = await run("dlq", "list", env=env)
                assert code == 0 and out.count(": applied") == 2, out
                assert "2 dead letter(s), 0 not requeued" in out
                code, out, err = await run("dlq", "list", "--open", env=env)
                assert code == 0 and "No open dead letters" in out
        finally:
            worker.stop()
        assert worker.process is not None and worker.process.returncode == 0, worker.tail()


async def sandbox_companies(url: str, key: str) -> list[dict[str, Any]]:
    async with ClientifyClient(url, key) as client:
        return [c async for c in client.companies.list()]


async def test_an_unknown_id_or_unreachable_kafka_is_one_clear_line(
    kafka_bootstrap: str, topics: tuple[TopicSpec, ...], topic_prefix: str
) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "TOPIC_PREFIX": topic_prefix, "COLUMNS": "250"}  # fmt: skip
    code, out, err = await run("dlq", "list", env=env)
    assert code == 0 and "No dead letters on" in out, err
    code, _out, err = await run("dlq", "show", "abc", env=env)
    assert code == 2 and "no dead letter with id 'abc'" in err and err.count("\n") == 1, err
    code, _out, err = await run("dlq", "list", env={**env, "TOPIC_PREFIX": f"{topic_prefix}x."})
    assert code == 2 and "missing: create them with `clientify-odoo kafka topics`" in err, err
    nowhere = {**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    code, _out, err = await run("dlq", "list", env=nowhere)
    assert code == 2 and "cannot reach Kafka at 127.0.0.1:9" in err, err
