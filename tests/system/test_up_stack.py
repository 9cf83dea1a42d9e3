"""`clientify-odoo up` (what `./dev up` runs) brings the whole product up on the seeded
sandboxes: it starts the local broker when no cluster is configured, records flow both
ways, a change made in each sandbox reaches the other side, a crashed service is
restarted and shown, the stack keeps all of its state in its stack dir, and Ctrl-C stops
everything cleanly, the broker last."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from clientify_odoo.odoo_hooks import HOOK_RULES
from clientify_odoo.stack.broker import LocalBroker, free_port_pair
from clientify_odoo.stack.plan import STACK_ENV, read_env_file, reporting_db
from connectors.clientify import ClientifyClient
from connectors.odoo.client import OdooClient, OdooConfig
from schemas.envelope import DeadLetter, Hint
from schemas.keys import normalise_tax_id
from schemas.topics import DEAD_LETTERS, ODOO_HINTS, RESULTS, Topics
from tests.support.project import REPO
from tests.support.stack_fixtures import eventually, topic_messages

pytestmark = pytest.mark.broker


class Sandboxes:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def odoo(self) -> OdooClient:
        return OdooClient(
            OdooConfig(
                url=self.env["ODOO_URL"], db="odoo", login="admin",
                api_key=self.env["ODOO_API_KEY"],  # type: ignore[arg-type]
            )
        )  # fmt: skip

    def clientify(self) -> ClientifyClient:
        return ClientifyClient(self.env["CLIENTIFY_URL"], self.env["CLIENTIFY_API_KEY"])

    async def odoo_partners(self) -> dict[str, dict[str, Any]]:
        async with self.odoo() as odoo:
            rows = await odoo.search_read(
                "res.partner", [("ref", "!=", False)], ["ref", "name", "city", "is_company"]
            )
        return {normalise_tax_id(row["ref"]) or "": row for row in rows}

    async def clientify_records(self, resource: str) -> dict[str, dict[str, Any]]:
        async with self.clientify() as clientify:
            records = [r async for r in getattr(clientify, resource).list()]
        out: dict[str, dict[str, Any]] = {}
        for record in records:
            key = normalise_tax_id(str(record.get("taxpayer_identification_number") or ""))
            if key:
                out[key] = record
        return out


def change(stack_dir: Path, *argv: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clientify_odoo", "sandbox", "change", *argv,
         "--stack-dir", str(stack_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Changed" in done.stdout


def report(db: Path) -> dict[str, list[dict[str, Any]]]:
    """The report in `db`, as `clientify-odoo report --db <db>` prints it for tools."""
    done = subprocess.run(
        [sys.executable, "-m", "clientify_odoo", "report", "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tables: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return tables


def children_of(pid: int) -> dict[str, int]:
    """The `clientify-odoo` services running under `pid`, by sub-command."""
    found = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True)
    out: dict[str, int] = {}
    for line in found.stdout.splitlines():
        child, _, command = line.partition(" ")
        words = command.split()
        if "clientify_odoo" in words:
            out[" ".join(words[words.index("clientify_odoo") + 1 :][:2])] = int(child)
    return out


def command_line(pid: int) -> str:
    """What `ps` shows of `pid` to any user of the machine."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_up_runs_everything_on_the_sandboxes_both_ways_and_stops_on_ctrl_c(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "stack"
    # A home and a working directory of its own: whatever the stack writes outside its
    # stack dir lands there, where a second stack would meet it.
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("XDG_")}, "HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": topic_prefix,
        "COLUMNS": "240",
    }  # fmt: skip
    for name in ("ODOO_URL", "CLIENTIFY_API_KEY", "WEBHOOK_SECRET"):
        env.pop(name, None)
    # The default seed, as `./dev up` runs it: every seeded record must sync.
    argv = [
        sys.executable, "-m", "clientify_odoo", "up", "--stack-dir", str(stack_dir),
        "--poll-interval", "1", "--refresh", "1",
        "--odoo-port", str(free_port_pair()), "--clientify-port", str(free_port_pair()),
        "--webhook-port", str(free_port_pair()), "--no-metrics",
    ]  # fmt: skip
    process = run_up(argv, env, cwd)
    try:
        started = wait_for_line(process, "The report:", within=120)
        stack_env = read_env_file(stack_dir / STACK_ENV)
        assert (stack_dir / STACK_ENV).stat().st_mode & 0o777 == 0o600
        sandboxes = Sandboxes(stack_env)

        # Every seed flows, both ways: Odoo partners become Clientify contacts (companies
        # Clientify companies too), Clientify contacts and companies become Odoo partners.
        odoo_seeded = await sandboxes.odoo_partners()
        clientify_contacts = await sandboxes.clientify_records("contacts")
        clientify_seeded = clientify_contacts | await sandboxes.clientify_records("companies")
        odoo_companies = {k for k, p in odoo_seeded.items() if p["is_company"]}
        company_ref = min(odoo_companies)
        person_tax_id = next(k for k in clientify_contacts if k not in odoo_seeded)

        async def seeds_arrived() -> bool:
            companies = await sandboxes.clientify_records("companies")
            contacts = await sandboxes.clientify_records("contacts")
            partners = await sandboxes.odoo_partners()
            return (
                odoo_companies <= companies.keys()
                and odoo_seeded.keys() <= contacts.keys()
                and clientify_seeded.keys() <= partners.keys()
            )

        await eventually(seeds_arrived, None, "every seeded record on the other side", within=90)

        # A change in each sandbox, made as a user would, reaches the other side.
        change(stack_dir, "odoo", "partner", odoo_seeded[company_ref]["ref"], "city=Sevilla")
        change(stack_dir, "clientify", "contact", person_tax_id, "first_name=Anabel")

        async def changes_arrived() -> bool:
            company = (await sandboxes.clientify_records("companies"))[company_ref]
            partner = (await sandboxes.odoo_partners())[person_tax_id]
            city = (company.get("addresses") or [{}])[0].get("city")
            return city == "Sevilla" and partner["name"].startswith("Anabel")

        await eventually(changes_arrived, None, "both changes on the other side", within=90)

        # The Odoo sandbox pushed that change, as a real Odoo with the product's
        # automation rules does: its post is a hint on Kafka.
        async with sandboxes.odoo() as odoo:
            assert await odoo.search_count("base.automation", []) == len(HOOK_RULES)
        changed_id = odoo_seeded[company_ref]["id"]

        async def pushed() -> bool:
            hints = await topic_messages(kafka_bootstrap, Topics(topic_prefix)[ODOO_HINTS])
            return any(
                isinstance(h, Hint) and (h.model, h.record_id) == ("res.partner", changed_id)
                for h in hints
            )

        await eventually(pushed, None, "the Odoo sandbox's hint on Kafka", within=30)

        # The reporter counts into the database in the stack dir, the one `up` names.
        report_db = reporting_db(stack_dir, topic_prefix)
        assert f"report --db {report_db}" in "".join(started)

        async def reported() -> bool:
            return sum(int(day["writes"]) for day in report(report_db)["health"]) > 0

        await eventually(reported, None, f"writes counted in {report_db}", within=60)

        # No secret on a command line, where every user of the machine can read it.
        services = children_of(process.pid)
        secrets = [stack_env[name] for name in ("ODOO_API_KEY", "CLIENTIFY_API_KEY",
                                                "WEBHOOK_SECRET", "ODOO_HOOK_SECRET")]  # fmt: skip
        for pid in services.values():
            shown = command_line(pid)
            assert not [secret for secret in secrets if secret in shown], shown

        # A crashed service is restarted, and the view says so.
        assert {"worker --data-dir", "write clientify", "write odoo", "poll odoo"} <= set(
            services
        ), services
        os.kill(services["write odoo"], signal.SIGKILL)
        wait_for_line(process, "exited with code -9", within=60)

        async def restarted() -> bool:
            now = children_of(process.pid).get("write odoo")
            return now is not None and now != services["write odoo"]

        await eventually(restarted, None, "the odoo writer restarted", within=60)
    finally:
        process.send_signal(signal.SIGINT)
        rest = rest_of_output(process, within=150)
    assert process.returncode == 0, rest
    assert "All services stopped" in rest
    assert not [pid for pid in services.values() if alive(pid)]
    # Every seeded record was applied (the README shows 0 dead letters): the writers'
    # results are there to read, and nothing went to the dead letters.
    topics = Topics(topic_prefix)
    assert await topic_messages(kafka_bootstrap, topics[RESULTS])
    dead = await topic_messages(kafka_bootstrap, topics[DEAD_LETTERS])
    assert not dead, [
        f"{d.command.entity} {d.command.business_key}: {d.reason}"
        for d in dead
        if isinstance(d, DeadLetter)
    ]
    # The topics were fresh, yet no client library error was printed while their
    # leaders were elected: not by `up`, not in any service's log.
    logs = [path.read_text() for path in (stack_dir / "logs").iterdir()]
    library_errors = [
        line
        for text in (*started, *logs)
        for line in text.splitlines()
        if "ERROR" in line and "aiokafka" in line
    ]
    assert not library_errors, library_errors
    # All of the stack's state is in its stack dir: nothing in the home or the cwd.
    assert not [*home.rglob("*"), *cwd.iterdir()]


def wait_for_line(process: subprocess.Popen[str], text: str, within: float) -> list[str]:
    """Lines printed until one contains `text`; fails with the output if it never does."""
    lines = _lines_of(process)
    seen: list[str] = []
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never printed; output was:\n{''.join(seen)}")


_readers: dict[int, queue.Queue[str | None]] = {}


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """A queue fed by a thread reading the process's stdout (select() can't see lines
    already in Python's buffer)."""
    if process.pid not in _readers:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        _readers[process.pid] = lines
    return _readers[process.pid]


def rest_of_output(process: subprocess.Popen[str], within: float) -> str:
    process.wait(timeout=within)
    lines = _lines_of(process)
    out: list[str] = []
    while (line := lines.get(timeout=within)) is not None:
        out.append(line)
    return "".join(out)


def run_up(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(extra)
    return env


def test_up_starts_the_local_broker_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port_pair()
    data_dir = tmp_path / "kafka"
    argv = [
        sys.executable, "-m", "clientify_odoo", "up", "--port", str(port),
        "--data-dir", str(data_dir), "--stack-dir", str(tmp_path / "stack"), "--seed", "0",
        "--odoo-port", str(free_port_pair()), "--clientify-port", str(free_port_pair()),
        "--webhook-port", str(free_port_pair()), "--no-metrics",
    ]  # fmt: skip
    process = run_up(argv, base_env())
    broker = LocalBroker(data_dir=data_dir, port=port)
    try:
        wait_for_line(process, "healthy", within=120)
        assert broker.pid() is not None
    finally:
        process.send_signal(signal.SIGINT)
        rest = rest_of_output(process, within=90)
    assert process.returncode == 0, rest
    assert "Kafka stopped" in rest
    assert broker.pid() is None
    assert (data_dir / "kraft" / "meta.properties").exists()  # data kept for the next run
