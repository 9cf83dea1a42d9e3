"""The base for consumers whose effect goes into their own SQLite database: a report, an
audit trail, a feed for a warehouse.

A consumer is a `Sink`: the topics it reads, the SQL schema of its tables, and `apply`,
which gets each decoded envelope with an open transaction. The base does the rest:

- **exactly-once into the store**: each batch's effect and the position reached in its
  topic partition are written in one SQLite transaction, and the consumer starts from
  the stored positions. A crash anywhere loses nothing and applies nothing twice; the
  store is the record of what was read, not the Kafka consumer group.
- **every partition**: a store is one process's database, so it reads every partition
  of its topics (no consumer group splits them); one process writes a store at a time
  (a lock file next to it).
- **replay**: a new store starts at the beginning of every topic; `rebuild` wipes the
  store and so replays everything, with progress (`catch_up`).
- **idempotent handling is still the sink's job**: the same fact can sit on a topic
  twice (a re-poll, a producer retry, a writer republishing a stored Result), so
  `apply` upserts by the envelope's own ids instead of counting deliveries.
- a message that is not a valid envelope, or that `apply` refuses by raising `Unusable`
  (its partial effect is undone), is recorded in `sink_rejects` with the reason in the
  same transaction and skipped: visible, never silently dropped, and a rebuild after a
  fix reads it again.

Only committed messages are read (`read_committed`), so aborted transactions of the
writers and the poller never reach a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from aiokafka import TopicPartition

from connectors.kafka import clients
from schemas import AnyEnvelope, EnvelopeError, decode

log = logging.getLogger(__name__)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS sink_positions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS sink_rejects (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, at_offset INTEGER NOT NULL,
    error TEXT NOT NULL, PRIMARY KEY (topic, partition, at_offset)
);
CREATE TABLE IF NOT EXISTS sink_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
ASSIGN_TIMEOUT = 30.0


class SinkError(Exception):
    """The consumer cannot run as things are (its store, its topics); the text says why
    and what to do."""

    def __init__(self, message: str, *, needs_rebuild: bool = False) -> None:
        super().__init__(message)
        self.needs_rebuild = needs_rebuild  # a rebuild (wipe and replay) would fix it


class Unusable(Exception):
    """Raised by `Sink.apply` for an envelope it cannot use (e.g. a payload of an
    unexpected shape): recorded as a reject instead of stopping the consumer."""


@dataclass(frozen=True)
class Message:
    """One envelope as a sink sees it; `topic` is the declared name, without the prefix."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    envelope: AnyEnvelope


class Sink(Protocol):
    """What a store-backed consumer declares; `apply` runs inside the batch transaction."""

    # Read-only members, so plain class attributes satisfy them.
    @property
    def name(self) -> str:
        """Recorded in the store: the store of another sink is refused."""

    @property
    def topics(self) -> Sequence[str]:
        """Declared names (schemas.topics), without TOPIC_PREFIX."""

    @property
    def schema(self) -> str:
        """SQL run at every open: CREATE TABLE / VIEW IF NOT EXISTS ..."""

    @property
    def schema_version(self) -> int:
        """Bump it when `schema` changes: stores of another version must be rebuilt."""

    def apply(self, db: sqlite3.Connection, message: Message) -> None: ...


@dataclass(frozen=True)
class Reject:
    topic: str
    partition: int
    offset: int
    error: str


class Store:
    """A sink's SQLite database: its tables, the positions read and the rejects."""

    def __init__(self, path: Path, sink: Sink, topic_prefix: str = "", *, fresh: bool = False):
        self.path, self.sink, self.prefix = path, sink, topic_prefix
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as undo:  # what is open, closed again on a failure
            self._lock = _exclusive_lock(path)
            undo.callback(self._lock.close)
            if fresh:
                self._wipe()
            # Transactions are explicit (`_transaction`): autocommit mode otherwise.
            self.db = sqlite3.connect(path, isolation_level=None)
            undo.callback(self.db.close)
            try:
                self._prepare()
            except sqlite3.DatabaseError as exc:
                raise SinkError(
                    f"{path} cannot be used as a store ({exc}): choose another file"
                ) from None
            undo.pop_all()  # kept open until `close`

    def _wipe(self) -> None:
        """Delete the store to start afresh; only a store of this sink (a wrong path
        must not cost anyone their database)."""
        path = self.path
        if path.exists() and _sink_of(path) != self.sink.name:
            raise SinkError(f"{path} is not a store of {self.sink.name}: not deleting it")
        for stale in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)

    def _prepare(self) -> None:
        db = self.db
        # WAL: `report` reads while the consumer writes. synchronous=NORMAL may lose the
        # last transactions on power loss, never consistency: their positions go too, so
        # those messages are simply read again.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if tables and "sink_meta" not in tables:
            raise SinkError(f"{self.path} is the database of something else: choose another file")
        # executescript commits first: the DDL (all IF NOT EXISTS) runs outside the
        # explicit transactions.
        db.executescript(_BOOKKEEPING)
        with self._transaction():
            meta = dict(db.execute("SELECT key, value FROM sink_meta").fetchall())
            if not meta:
                db.executemany(
                    "INSERT INTO sink_meta VALUES (?, ?)",
                    [("sink", self.sink.name), ("topic_prefix", self.prefix)],
                )
                db.execute(f"PRAGMA user_version = {int(self.sink.schema_version)}")
        self._check(meta, db.execute("PRAGMA user_version").fetchone()[0])
        db.executescript(self.sink.schema)

    def _check(self, meta: dict[str, str], version: int) -> None:
        if meta and meta.get("sink") != self.sink.name:
            raise SinkError(
                f"{self.path} is the store of {meta.get('sink')!r}, not {self.sink.name!r}: "
                "choose another database file"
            )
        if meta and meta.get("topic_prefix") != self.prefix:
            raise SinkError(
                f"{self.path} was built from the topics of TOPIC_PREFIX="
                f"{meta.get('topic_prefix')!r}, not {self.prefix!r}: use another database "
                "file, or rebuild this one",
                needs_rebuild=True,
            )
        if version != self.sink.schema_version:
            raise SinkError(
                f"{self.path} has the tables of version {version} of {self.sink.name}, this "
                f"release needs version {self.sink.schema_version}: rebuild it (it is "
                "derived from the topics, nothing is lost)",
                needs_rebuild=True,
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def positions(self) -> dict[TopicPartition, int]:
        """Per partition (full topic name), the next offset to read."""
        rows = self.db.execute("SELECT topic, partition, next_offset FROM sink_positions")
        return {TopicPartition(topic, part): offset for topic, part, offset in rows}

    def write(
        self,
        tp: TopicPartition,
        next_offset: int,
        messages: Sequence[Message],
        rejects: Sequence[Reject] = (),
    ) -> int:
        """The effect of a batch of one partition and the position after it, atomically;
        returns how many messages `apply` refused."""
        refused: list[Reject] = []
        with self._transaction() as db:
            for message in messages:
                db.execute("SAVEPOINT message")
                try:
                    self.sink.apply(db, message)
                except Unusable as exc:
                    db.execute("ROLLBACK TO message")
                    log.error("%s offset %d refused: %s", tp, message.offset, exc)
                    refused.append(
                        Reject(message.topic, message.partition, message.offset, str(exc))
                    )
                db.execute("RELEASE message")
            db.executemany(
                "INSERT OR REPLACE INTO sink_rejects VALUES (?, ?, ?, ?)",
                [(r.topic, r.partition, r.offset, r.error) for r in (*rejects, *refused)],
            )
            db.execute(
                "INSERT INTO sink_positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                (tp.topic, tp.partition, next_offset),
            )
            db.execute(
                "INSERT OR REPLACE INTO sink_meta VALUES ('updated_at', ?)",
                (datetime.now(UTC).isoformat(timespec="seconds"),),
            )
        return len(refused)

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _exclusive_lock(path: Path) -> Any:
    """Hold `<db>.lock` while the store is open; the OS drops it when the process dies."""
    handle = path.with_name(path.name + ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SinkError(
            f"another process is writing {path} (a running consumer of it?): stop it first, "
            "or use another database file"
        ) from None
    return handle


def _sink_of(path: Path) -> str | None:
    """The name of the sink whose store `path` is, if it is one."""
    try:
        with contextlib.closing(open_read_only(path)) as db:
            row = db.execute("SELECT value FROM sink_meta WHERE key = 'sink'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def open_read_only(path: Path) -> sqlite3.Connection:
    """A store opened for reading while its consumer may be writing it."""
    if not path.exists():
        raise SinkError(f"there is no store at {path} yet")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


@dataclass(frozen=True)
class SinkConfig:
    bootstrap: str
    topic_prefix: str = ""
    poll_ms: int = 500
    max_records: int = 1000  # per read; each partition's share is one transaction


ProgressCallback = Callable[[int, int], None]  # (messages read, messages to read)


class SinkConsumer:
    """Reads a sink's topics into its store: `catch_up` to the current end, `follow`."""

    def __init__(self, store: Store, config: SinkConfig) -> None:
        self.store, self.config = store, config
        self.applied = 0
        self.rejected = 0
        self._topics = {config.topic_prefix + name: name for name in store.sink.topics}
        self._next = store.positions()
        self._placed: set[TopicPartition] = set()
        self._consumer = clients.consumer(
            config.bootstrap,
            client_id=f"clientify-odoo.{store.sink.name}",
            max_poll_records=config.max_records,
        )

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        try:
            present = await self._consumer.topics()
            missing = sorted(set(self._topics) - present)
            if missing:
                raise SinkError(
                    f"Kafka topics missing: {', '.join(missing)}; create them with "
                    "`clientify-odoo kafka topics`"
                )
            # No group: every partition is assigned, and new ones as they appear.
            self._consumer.subscribe(list(self._topics))
            async with asyncio.timeout(ASSIGN_TIMEOUT):
                while not self._everything_assigned():  # noqa: ASYNC110 - aiokafka has no event
                    await asyncio.sleep(0.05)
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    def _everything_assigned(self) -> bool:
        # Metadata may list some topics before others: wait for all of them.
        return {tp.topic for tp in self._consumer.assignment()} == set(self._topics)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def catch_up(
        self, stop: asyncio.Event, on_progress: ProgressCallback | None = None
    ) -> bool:
        """Read up to the end the topics have now; False when `stop` came first."""
        self._place()
        partitions = sorted(self._consumer.assignment())
        ends = await self._consumer.end_offsets(partitions)
        firsts = await self._consumer.beginning_offsets(partitions)
        starts = {tp: max(self._next.get(tp, 0), firsts[tp]) for tp in partitions}
        total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)

        def report() -> None:
            if on_progress is not None:
                done = sum(
                    max(0, min(self._next.get(tp, 0), ends[tp]) - starts[tp]) for tp in partitions
                )
                on_progress(done, total)

        report()
        while not stop.is_set():
            # The position, not the stored offset: a transaction marker ends a partition.
            behind = [tp for tp in partitions if await self._consumer.position(tp) < ends[tp]]
            if not behind:
                if on_progress is not None:
                    on_progress(total, total)
                return True
            await self._step()
            report()
        return False

    async def follow(self, stop: asyncio.Event) -> None:
        """Keep reading new messages until `stop` is set."""
        while not stop.is_set():
            await self._step()

    def _place(self) -> None:
        """Start each newly assigned partition at its stored position. aiokafka resets
        every position when the assignment changes (a partition was added), so all are
        placed again then; `_step` drops anything read before the seek took effect."""
        assigned = self._consumer.assignment()
        if assigned == self._placed:
            return
        for tp in assigned:
            if tp in self._next:
                self._consumer.seek(tp, self._next[tp])
        self._placed = set(assigned)

    async def _step(self) -> None:
        self._place()
        batches = await self._consumer.getmany(timeout_ms=self.config.poll_ms)
        for tp, records in batches.items():
            fresh = [r for r in records if r.offset >= self._next.get(tp, 0)]
            if fresh:
                self._write(tp, fresh)

    def _write(self, tp: TopicPartition, records: list[Any]) -> None:
        declared = self._topics[tp.topic]
        messages: list[Message] = []
        rejects: list[Reject] = []
        for record in records:
            try:
                if record.value is None:
                    raise EnvelopeError("no value (a tombstone)")
                envelope = decode(record.value)
            except EnvelopeError as exc:
                log.error("%s offset %d is not a readable envelope: %s", tp, record.offset, exc)
                rejects.append(Reject(declared, tp.partition, record.offset, str(exc)))
                continue
            messages.append(Message(declared, tp.partition, record.offset, record.key, envelope))
        next_offset = records[-1].offset + 1
        refused = self.store.write(tp, next_offset, messages, rejects)
        self._next[tp] = next_offset
        self.applied += len(messages) - refused
        self.rejected += len(rejects) + refused
