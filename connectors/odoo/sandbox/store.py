"""Records in memory, persisted to SQLite one Odoo "transaction" (RPC call) at a time.

The server is one asyncio loop and model code never awaits, so a call runs alone: it
mutates the in-memory tables directly and keeps an undo log; `commit` writes every
touched row to SQLite in one SQLite transaction, `rollback` restores the originals. A
failed call therefore leaves no trace, as in Odoo where each call is its own
transaction (odoo-api.md 1.1). A call whose commit must wait (Odoo 17 and 18 post
webhooks before committing) is rolled back and its rows `restore`d in a later
transaction, so that other calls meanwhile see the rows as they were.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

Row = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    model TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (model, id)
);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _encode(value: Any) -> Any:
    # Microseconds are kept on disk: Odoo's database has them, only the wire drops them.
    if isinstance(value, datetime):
        return {"$dt": value.isoformat(sep=" ", timespec="microseconds")}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    if "$d" in obj:
        return date.fromisoformat(obj["$d"])
    return obj


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.executescript(SCHEMA)
        self._tables: dict[str, dict[int, Row]] = {}
        self._sequences: dict[str, int] = {}
        self._undo: dict[tuple[str, int], Row | None] | None = None
        self._recomputed: set[tuple[str, int]] = set()
        # Like PostgreSQL sequences, ids are never handed out twice, even when the
        # transaction that took them rolls back.
        self._sequences_used: set[str] = set()
        # one2many indexes (child model, inverse field) -> parent id -> child ids, built
        # on first use and kept up to date by every write.
        self._indexes: dict[tuple[str, str], dict[int, list[int]]] = {}
        for model, rid, data in self._db.execute("SELECT model, id, data FROM records"):
            self._tables.setdefault(model, {})[rid] = json.loads(data, object_hook=_decode)
        for name, value in self._db.execute("SELECT name, value FROM sequences"):
            self._sequences[name] = value

    def close(self) -> None:
        self._db.close()

    # -- reading

    def table(self, model: str) -> dict[int, Row]:
        return self._tables.setdefault(model, {})

    def get(self, model: str, rid: int) -> Row | None:
        return self._tables.get(model, {}).get(rid)

    def children(self, model: str, inverse: str) -> dict[int, list[int]]:
        """parent id -> ids (ascending) of `model` rows whose `inverse` points at it."""
        key = (model, inverse)
        if key not in self._indexes:
            index: dict[int, list[int]] = {}
            for rid, row in sorted(self.table(model).items()):
                parent = row.get(inverse)
                if parent:
                    index.setdefault(parent, []).append(rid)
            self._indexes[key] = index
        return self._indexes[key]

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- writing (only inside `transaction`)

    def next_value(self, name: str) -> int:
        self._require_transaction()
        self._sequences_used.add(name)
        value = self._sequences.get(name, 0) + 1
        self._sequences[name] = value
        return value

    def insert(self, model: str, row: Row) -> int:
        rid = self.next_value(model)
        self._remember(model, rid)
        self.table(model)[rid] = {**row, "id": rid}
        self._reindex(model, rid, None, row)
        return rid

    def update(self, model: str, rid: int, changes: Row) -> None:
        self._remember(model, rid)
        row = self.table(model)[rid]
        before = dict(row)
        row.update(changes)
        self._reindex(model, rid, before, row)

    def recompute(self, model: str, rid: int, changes: Row) -> None:
        """`update` for a stored field Odoo recomputes (a `write_date` bumped by a change
        elsewhere): an automation rule watching it fires, as in Odoo, where a recompute
        is a write of that field."""
        self.update(model, rid, changes)
        self._recomputed.add((model, rid))

    def recomputed(self, model: str, rid: int) -> bool:
        """Inside a transaction: whether it recomputed a field of that row."""
        return (model, rid) in self._recomputed

    def delete(self, model: str, rid: int) -> None:
        self._remember(model, rid)
        self._reindex(model, rid, self.table(model).pop(rid, None), None)

    def _reindex(self, model: str, rid: int, old: Row | None, new: Row | None) -> None:
        for (indexed, inverse), index in self._indexes.items():
            if indexed != model:
                continue
            before = None if old is None else old.get(inverse)
            after = None if new is None else new.get(inverse)
            if before == after:
                continue
            if before and rid in index.get(before, ()):
                index[before].remove(rid)
            if after:
                bisect.insort(index.setdefault(after, []), rid)

    def changes(self) -> dict[tuple[str, int], tuple[Row | None, Row | None]]:
        """Inside a transaction: each row it touched, as (before, now); None where the
        row did not (or does no longer) exist."""
        self._require_transaction()
        assert self._undo is not None
        return {
            key: (before, None if (now := self.get(*key)) is None else dict(now))
            for key, before in self._undo.items()
        }

    def restore(self, rows: dict[tuple[str, int], Row | None]) -> None:
        """Inside a transaction: put `rows` back as they are given (None: absent), as a
        transaction rolled back to be committed later leaves them (their ids were taken
        from the sequences then, and stay taken)."""
        for (model, rid), row in rows.items():
            self._remember(model, rid)
            old = self.table(model).pop(rid, None)
            if row is not None:
                self.table(model)[rid] = dict(row)
            self._reindex(model, rid, old, row)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._undo is not None:
            raise RuntimeError("transactions do not nest")
        self._undo = {}
        self._recomputed = set()
        self._sequences_used = set()
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        else:
            self._commit()
        finally:
            self._undo = None

    def _require_transaction(self) -> None:
        if self._undo is None:
            raise RuntimeError("writes happen inside Store.transaction()")

    def _remember(self, model: str, rid: int) -> None:
        self._require_transaction()
        assert self._undo is not None
        key = (model, rid)
        if key not in self._undo:
            current = self.get(model, rid)
            self._undo[key] = None if current is None else dict(current)

    def _rollback(self) -> None:
        assert self._undo is not None
        for (model, rid), original in self._undo.items():
            if original is None:
                self.table(model).pop(rid, None)
            else:
                self.table(model)[rid] = original
        touched = {model for model, _rid in self._undo}
        for key in [key for key in self._indexes if key[0] in touched]:
            del self._indexes[key]  # rebuilt from the restored rows on next use
        with self._db:
            self._save_sequences()

    def _commit(self) -> None:
        assert self._undo is not None
        upserts = []
        deletes = []
        for model, rid in self._undo:
            row = self.get(model, rid)
            if row is None:
                deletes.append((model, rid))
            else:
                upserts.append((model, rid, json.dumps(row, default=_encode)))
        with self._db:
            self._db.executemany("DELETE FROM records WHERE model = ? AND id = ?", deletes)
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", upserts)
            self._save_sequences()

    def _save_sequences(self) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO sequences VALUES (?, ?)",
            [(name, self._sequences[name]) for name in self._sequences_used],
        )
