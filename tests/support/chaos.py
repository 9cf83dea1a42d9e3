"""Chaos harness: mixed changes on both sides while services die, the broker restarts
and the sandboxes fail, then a check that both sides hold exactly what the changes imply.

Used by the CI tests (tests/system/test_chaos.py, small runs) and by the long run,
`python -m bench.chaos`. The expected state is computed from the
generated changes alone, never from what the sync did.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import aiohttp

from clientify_odoo.stack.broker import BrokerError, LocalBroker, LocalCluster
from connectors.clientify import AdaptiveRateLimiter, ClientifyClient
from connectors.odoo.client import OdooClient
from schemas import DeadLetter
from schemas.keys import normalise_tax_id
from tests.support.stack_fixtures import ODOO_KEY, SyncStack, topic_messages

T = TypeVar("T")
WRITERS_AND_WORKER = ("worker", "clientify-writer", "odoo-writer")
EVERY_SERVICE = (*WRITERS_AND_WORKER, "odoo-poller", "webhook-receiver", "reconciler")
DRIVER_TRIES = 20  # the driver is a user: it tries again when a sandbox fails
BROKER_START_TRIES = 30


def nif(n: int) -> str:
    return f"B{70000000 + n:08d}"


def person_nif(n: int) -> str:
    return f"{50000000 + n:08d}Z"


class Changes:
    """The changes to make, and the state they must lead to."""

    def __init__(self, count: int, rng: random.Random, first: int = 0) -> None:
        """`first`: the number of the first change, which names its records (nif(n),
        SKU-n): a sandbox seeded with SKU-00001.. needs changes numbered past its seed."""
        self.partners: dict[str, dict[str, Any]] = {}  # Odoo companies by ref
        self.products: dict[str, dict[str, Any]] = {}  # by SKU
        self.contacts: dict[str, dict[str, Any]] = {}  # Clientify persons by tax id
        self.steps: list[tuple[str, str, dict[str, Any]]] = []
        for n in range(first, first + count):
            kind = rng.choice(("partner", "product", "contact"))
            pool = {"partner": self.partners, "product": self.products, "contact": self.contacts}[
                kind
            ]
            if pool and rng.random() < 0.5:  # update an existing record
                key = rng.choice(sorted(pool))
                change = self._update(kind, n)
                pool[key] = {**pool[key], **change}
            else:
                key, change = self._create(kind, n)
                pool[key] = change
            self.steps.append((kind, key, change))

    @staticmethod
    def _create(kind: str, n: int) -> tuple[str, dict[str, Any]]:
        if kind == "partner":
            return nif(n), {"name": f"Empresa {n} SL", "phone": f"+34 91{n:07d}", "city": "Madrid"}
        if kind == "product":
            return f"SKU-{n:05d}", {"name": f"Producto {n}", "list_price": float(n % 97 + 1)}
        return person_nif(n), {"first_name": f"Persona {n}", "phone": f"+34 6{n:08d}"}

    @staticmethod
    def _update(kind: str, n: int) -> dict[str, Any]:
        if kind == "partner":
            return {"city": f"Ciudad {n}", "phone": f"+34 93{n:07d}"}
        if kind == "product":
            return {"list_price": float(n % 89 + 2)}
        return {"first_name": f"Persona cambiada {n}"}


async def _persist(
    action: Callable[[], Awaitable[T]], found: Callable[[], Awaitable[T | None]]
) -> T:
    """Do `action` as a user would: when the system fails, look whether it happened
    anyway (`found`), else try again."""
    for attempt in range(DRIVER_TRIES):
        try:
            return await action()
        except Exception:  # noqa: BLE001 - any failure of the system under chaos
            await asyncio.sleep(0.2 * (attempt + 1))
            with contextlib.suppress(Exception):
                done = await found()
                if done is not None:
                    return done
    raise AssertionError(f"the sandbox kept failing {DRIVER_TRIES} times")


async def _nothing() -> None:
    return None  # a write applied twice is the same write: just try again


ODOO_MODELS = {"partner": ("res.partner", "ref"), "product": ("product.product", "default_code")}


def driver_limiter() -> AdaptiveRateLimiter:
    """The driver's Clientify pace: it is a user, not the product under test, so it
    forgets a 429 burst within seconds instead of pacing itself down for minutes (the
    writer's limiter remembers a ceiling for 5 minutes and climbs 0.5 request/s per
    second: a long run made 1,500 changes in 35 minutes that way)."""
    return AdaptiveRateLimiter(
        initial_rate=50.0, max_rate=200.0, increase_per_second=50.0, ceiling_memory=5.0,
        name="chaos-driver",
    )  # fmt: skip


class Systems(Protocol):
    """Where the changes are made and checked: the two systems' APIs (a `SyncStack`'s
    sandboxes, or the compose stack's)."""

    @property
    def clientify_url(self) -> str: ...

    @property
    def clientify_key(self) -> str: ...

    def odoo(self) -> AbstractAsyncContextManager[OdooClient]: ...

    def clientify(self) -> AbstractAsyncContextManager[ClientifyClient]: ...


async def apply_changes(
    stack: Systems, changes: Changes, on_change: Callable[[int], None] | None = None
) -> None:
    """Make every change as a user would in each system (Odoo: companies, products;
    Clientify: contacts), in order; `on_change(n)` as the n-th one starts."""
    odoo_ids: dict[str, int] = {}
    clientify_ids: dict[str, int] = {}
    driver = ClientifyClient(stack.clientify_url, stack.clientify_key, limiter=driver_limiter())
    async with stack.odoo() as odoo, driver as clientify:
        for n, (kind, key, change) in enumerate(changes.steps, 1):
            if on_change is not None:
                on_change(n)
            if kind in ODOO_MODELS:
                model, key_field = ODOO_MODELS[kind]
                if key in odoo_ids:
                    await _persist(partial(odoo.write, model, [odoo_ids[key]], change), _nothing)
                    continue
                values = {**change, key_field: key}
                if kind == "partner":
                    values["is_company"] = True

                async def odoo_found(
                    m: str = model, f: str = key_field, k: str = key
                ) -> int | None:
                    ids = await odoo.search(m, [(f, "=", k)])
                    return ids[0] if ids else None

                odoo_ids[key] = await _persist(partial(odoo.create, model, values), odoo_found)
                continue
            body = dict(change)
            if "phone" in body:
                body["phones"] = [{"phone": body.pop("phone"), "type": 1}]
            if key in clientify_ids:
                update = partial(clientify.contacts.update, clientify_ids[key], body)
                await _persist(update, _nothing)
                continue
            payload = {**body, "taxpayer_identification_number": key}

            async def create() -> int:
                return int((await clientify.contacts.create(payload))["id"])  # noqa: B023

            async def clientify_found() -> int | None:
                found = await clientify.find_by_tax_id(clientify.contacts, key)  # noqa: B023
                return int(found[0]["id"]) if found else None

            clientify_ids[key] = await _persist(create, clientify_found)


@dataclass
class Chaos:
    """What the driver does while the changes are made, and what it counts."""

    victims: tuple[str, ...] = WRITERS_AND_WORKER
    kill_every: tuple[float, float] = (2.0, 5.0)
    kills: int = 0
    restarts: int = 0
    bursts: int = 0
    broker_restarts: int = 0
    killed: dict[str, int] = field(default_factory=dict)
    # Why each restarted service had stopped: its exit code and the end of its log.
    deaths: list[str] = field(default_factory=list)
    brokers_killed: list[str] = field(default_factory=list)  # "broker 2 (controller leader)"

    async def kill_randomly(
        self, stack: SyncStack, stop: asyncio.Event, rng: random.Random
    ) -> None:
        while self.victims and not await _wait(stop, rng.uniform(*self.kill_every)):
            victim = rng.choice(self.victims)
            process = stack.processes.get(victim)
            if process is None or process.poll() is not None:
                continue
            process.kill()  # kill -9: no clean shutdown, no offset commit
            process.wait()
            self.kills += 1
            self.killed[victim] = self.killed.get(victim, 0) + 1

    async def keep_alive(self, stack: SyncStack, stop: asyncio.Event) -> None:
        """Restart what died (killed, or crashed while the broker was away), as `up` and
        compose do."""
        while not await _wait(stop, 0.5):
            for name, process in list(stack.processes.items()):
                if process.poll() is not None:
                    self.deaths.append(
                        f"{name} exited with {process.returncode}:\n{stack.log_tail(name)}"
                    )
                    stack.start(name)
                    self.restarts += 1

    async def throttle_bursts(
        self, stack: SyncStack, stop: asyncio.Event, rng: random.Random
    ) -> None:
        """Bursts of 429: Clientify throttled to 2 requests/s for a few seconds at a time."""
        while not await _wait(stop, rng.uniform(8.0, 15.0)):
            await clientify_knobs(stack, throttle_rps=2)
            self.bursts += 1
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            await clientify_knobs(stack, throttle_rps=0)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless stopped; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def clientify_knobs(stack: SyncStack, **knobs: float) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await session.put(
            f"{stack.clientify_admin_url}/knobs/", json=knobs,
            headers={"Authorization": f"Token {stack.clientify_key}"},
        )  # fmt: skip
        answer.raise_for_status()


async def odoo_faults(stack: SyncStack, error_rate: float) -> None:
    async with aiohttp.ClientSession() as session:
        answer = await session.post(
            f"http://127.0.0.1:{stack.odoo_port}/sandbox/faults", json={"error_rate": error_rate},
            headers={"Authorization": f"bearer {ODOO_KEY}"},
        )  # fmt: skip
        answer.raise_for_status()


async def differences(stack: Systems, changes: Changes) -> list[str]:
    """What still differs from the expected state (empty when all is in place)."""
    problems: list[str] = []
    async with stack.clientify() as clientify:
        companies = [c async for c in clientify.companies.list()]
        contacts = [c async for c in clientify.contacts.list()]
        products = [p async for p in clientify.products.list()]
    async with stack.odoo() as odoo:
        partners = await odoo.search_read(
            "res.partner", [("ref", "!=", False)], ["ref", "name", "phone", "city"]
        )
        odoo_products = await odoo.search_read(
            "product.product", [("default_code", "!=", False)], ["default_code", "list_price"]
        )
    by_tax = _group(companies, "taxpayer_identification_number")
    contacts_by_tax = _group(contacts, "taxpayer_identification_number")
    for raw_key, want in changes.partners.items():
        key = normalise_tax_id(raw_key) or raw_key
        found = by_tax.get(key, [])
        if len(found) != 1:
            problems.append(f"company {key}: {len(found)} in Clientify")
            continue
        company = found[0]
        phones = [p["phone"] for p in company.get("phones", []) if p.get("type") == 1]
        city = (company.get("addresses") or [{}])[0].get("city")
        if (company["business_name"], phones, city) != (
            want["name"],
            [want["phone"]],
            want["city"],
        ):
            problems.append(
                f"company {key}: {company['business_name']}, {phones}, {city} != {want}"
            )
        if len(contacts_by_tax.get(key, [])) != 1:
            problems.append(f"contact of company {key}: {len(contacts_by_tax.get(key, []))}")
    skus = _group(products, "sku")
    for key, want in changes.products.items():
        found = skus.get(key, [])
        if len(found) != 1 or float(found[0]["price"]) != want["list_price"]:
            problems.append(f"product {key}: {[(p['sku'], p['price']) for p in found]} != {want}")
        if len([p for p in odoo_products if p["default_code"] == key]) != 1:
            problems.append(f"Odoo product {key} duplicated or missing")
    refs = _group(partners, "ref")
    for key, want in changes.contacts.items():
        found = refs.get(key, [])
        if len(found) != 1 or found[0]["name"] != want["first_name"]:
            problems.append(f"partner {key}: {[p['name'] for p in found]} != {want['first_name']}")
    return problems


def _group(records: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        value = record.get(field)
        if value:
            key = normalise_tax_id(str(value)) if field != "sku" else str(value)
            out.setdefault(key or str(value), []).append(record)
    return out


async def dead_letters(stack: SyncStack) -> list[DeadLetter]:
    messages = await topic_messages(stack.bootstrap, stack.prefix + "sync.dead_letters")
    return [m for m in messages if isinstance(m, DeadLetter)]


async def converge(stack: SyncStack, changes: Changes, within: float) -> float:
    """Wait until both sandboxes hold exactly the expected state; seconds it took. Dead
    letters that come meanwhile (a contact that waited too long for its company while
    the broker was away) are requeued too, as a user watching `dlq list` would."""
    started = time.monotonic()
    problems: list[str] = []
    while time.monotonic() - started < within:
        problems = await differences(stack, changes)
        if not problems:
            return time.monotonic() - started
        await requeue_dead_letters(stack)
        await asyncio.sleep(3)
    raise AssertionError(f"{len(problems)} differences, e.g. {problems[:10]}\n{stack.logs()}")


# What happens to the brokers while the changes are made; awaited once, beside them.
BrokerFaults = Callable[[Chaos, random.Random], Awaitable[None]]


def broker_restart(broker: LocalBroker) -> BrokerFaults:
    """The one broker stops cleanly and starts again, once."""

    async def faults(chaos: Chaos, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(5.0, 15.0))
        await asyncio.to_thread(restart, broker)
        chaos.broker_restarts += 1

    return faults


def cluster_kills(cluster: LocalCluster) -> BrokerFaults:
    """kill -9 a broker that does not lead the controller quorum, start it again a few
    seconds later; then the same to the controller leader."""

    async def faults(chaos: Chaos, rng: random.Random) -> None:
        for leader in (False, True):
            await asyncio.sleep(rng.uniform(5.0, 10.0))
            leading = cluster.controller_leader()
            assert leading is not None, "no node says which one leads the controllers"
            pick = leading if leader else rng.choice(
                [node.node_id for node in cluster.nodes if node.node_id != leading]
            )  # fmt: skip
            node = cluster.node(pick)
            await asyncio.to_thread(node.kill)
            chaos.brokers_killed.append(
                f"broker {pick}" + (" (controller leader)" if leader else "")
            )
            await asyncio.sleep(rng.uniform(5.0, 10.0))  # down while changes go on
            await asyncio.to_thread(_start_again, node)
            chaos.broker_restarts += 1

    return faults


def restart(broker: LocalBroker) -> None:
    """Stop the broker cleanly and start it again."""
    broker.down()
    _start_again(broker)


def _start_again(broker: LocalBroker) -> None:
    """Start a stopped broker on its ports, which the old process may hold for a moment
    after it exits."""
    for attempt in range(BROKER_START_TRIES):
        try:
            broker.up(on_progress=lambda _line: None)
            return
        except BrokerError:
            if attempt == BROKER_START_TRIES - 1:
                raise
            time.sleep(1)


@dataclass
class ChaosReport:
    changes: int
    seconds_changing: float
    seconds_to_converge: float
    chaos: Chaos
    faults_injected: int
    throttled: int
    dead_letters: list[DeadLetter]


async def run_chaos(
    stack: SyncStack,
    changes: Changes,
    chaos: Chaos,
    rng: random.Random,
    *,
    broker_faults: BrokerFaults | None = None,
    error_rate: float = 0.0,
    bursts: bool = False,
    within: float = 300.0,
    on_change: Callable[[int], None] | None = None,
) -> ChaosReport:
    """Make `changes` under `chaos`, then wait until both sides hold the expected state
    (dead letters, all explained, are requeued once the faults stop, as a user would)."""
    await stack.up()
    for copy in stack.copies["reconciler"]:
        stack.start(copy)
    await odoo_faults(stack, error_rate)
    await clientify_knobs(stack, error_rate=error_rate)
    stop, alive = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(chaos.kill_randomly(stack, stop, rng)),
        asyncio.create_task(chaos.keep_alive(stack, alive)),
    ]
    if bursts:
        tasks.append(asyncio.create_task(chaos.throttle_bursts(stack, stop, rng)))
    started = time.monotonic()
    changing = asyncio.create_task(apply_changes(stack, changes, on_change))
    if broker_faults is not None:  # while the changes are being made
        await broker_faults(chaos, rng)
    await changing
    seconds_changing = time.monotonic() - started
    stop.set()
    await asyncio.gather(*tasks[:1], *tasks[2:])
    await odoo_faults(stack, 0.0)
    await clientify_knobs(stack, error_rate=0.0, throttle_rps=0)
    stats = await stack.clientify_stats()
    try:
        await asyncio.sleep(10)  # let the writers finish what they retry
        await requeue_dead_letters(stack)
        seconds = await converge(stack, changes, within)
        letters = await dead_letters(stack)
    finally:
        alive.set()
        await tasks[1]
    return ChaosReport(
        len(changes.steps), seconds_changing, seconds, chaos,
        int(stats["faults_injected"]), int(stats["throttled"]), letters,
    )  # fmt: skip


async def requeue_dead_letters(stack: SyncStack) -> list[DeadLetter]:
    """Every dead letter must say why; after the chaos, send them back through the
    writers (`clientify-odoo dlq requeue --all`, which skips those already requeued), as
    a user fixing the cause would."""
    letters = await dead_letters(stack)
    unexplained = [letter for letter in letters if not letter.reason.strip()]
    assert not unexplained, f"dead letters without a reason: {unexplained}"
    if letters:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clientify_odoo", "dlq", "requeue", "--all",
            env=stack.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
    return letters
