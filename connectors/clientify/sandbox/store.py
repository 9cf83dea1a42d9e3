"""The sandbox's state on disk: one SQLite file, records kept as JSON documents.

Every record is also held in memory (the sandbox serves lists by filtering in Python),
and every write goes straight to SQLite, so a restarted sandbox has the same data.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS hooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL, target TEXT NOT NULL,
    UNIQUE (event, target)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: Path | None) -> None:
        """`path=None` keeps everything in memory (tests that need no restart)."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        # Per kind in id order: loaded by id, and ids only grow (`next_id`).
        self._docs: dict[str, dict[int, Doc]] = {}
        rows = self._db.execute("SELECT kind, id, body FROM records ORDER BY kind, id")
        for kind, record_id, body in rows:
            self._docs.setdefault(kind, {})[record_id] = json.loads(body)
        # Per kind and record, what `texts` computed from it, until the record changes.
        self._texts: dict[str, dict[int, str]] = {}

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Many writes in one transaction (seeding thousands of records)."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- records

    def all(self, kind: str) -> list[Doc]:
        """Every record of `kind` in id order (the list endpoints' default order)."""
        return list(self._docs.get(kind, {}).values())

    def texts(self, kind: str, compute: Callable[[Doc], str]) -> dict[int, str]:
        """`compute(record)` by record id for every record of `kind` (the text a list
        filter searches), computed once per version of a record: the filter looks at
        every record on every request."""
        texts = self._texts.setdefault(kind, {})
        for record_id, doc in self._docs.get(kind, {}).items():
            if record_id not in texts:
                texts[record_id] = compute(doc)
        return texts

    def get(self, kind: str, record_id: int) -> Doc | None:
        return self._docs.get(kind, {}).get(record_id)

    def put(self, kind: str, doc: Doc) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)",
            (kind, doc["id"], json.dumps(doc, ensure_ascii=False)),
        )
        self._docs.setdefault(kind, {})[int(doc["id"])] = doc
        self._texts.get(kind, {}).pop(int(doc["id"]), None)

    def delete(self, kind: str, record_id: int) -> Doc | None:
        self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))
        self._texts.get(kind, {}).pop(record_id, None)
        return self._docs.get(kind, {}).pop(record_id, None)

    def next_id(self, sequence: str) -> int:
        """Ids never reused, even after a delete (like a database sequence)."""
        current = int(self.meta(f"seq:{sequence}") or 0) + 1
        self.set_meta(f"seq:{sequence}", str(current))
        return current

    # -- webhook registrations

    def hooks(self) -> list[Doc]:
        rows = self._db.execute("SELECT id, event, target FROM hooks ORDER BY id")
        return [{"id": row[0], "event": row[1], "target": row[2]} for row in rows]

    def add_hook(self, event: str, target: str) -> Doc:
        """Register (event, target) once; registering it again returns the same hook."""
        self._db.execute(
            "INSERT OR IGNORE INTO hooks (event, target) VALUES (?, ?)", (event, target)
        )
        row = self._db.execute(
            "SELECT id FROM hooks WHERE event = ? AND target = ?", (event, target)
        ).fetchone()
        return {"id": row[0], "event": event, "target": target}

    def delete_hook(self, hook_id: int) -> bool:
        return self._db.execute("DELETE FROM hooks WHERE id = ?", (hook_id,)).rowcount > 0

    # -- small settings (the API key, sequences)

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))
