"""The reporting store's read side: its three tables, and how fresh they are."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    name: str  # as chosen on the command line
    title: str
    view: str  # the view of consumers/reporting/sink.py SCHEMA


TABLES: tuple[TableSpec, ...] = (
    TableSpec("sales", "Confirmed sales per customer and month", "sales_by_customer_month"),
    TableSpec("products", "Product totals (confirmed orders)", "product_totals"),
    TableSpec("health", "Sync health per day", "sync_health"),
)
TABLE_NAMES = tuple(spec.name for spec in TABLES)


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class Freshness:
    updated_at: str | None  # UTC, when the consumer last wrote
    rejects: int  # messages it could not use (see sink_rejects)


def read_table(db: sqlite3.Connection, spec: TableSpec) -> Table:
    cursor = db.execute(f"SELECT * FROM {spec.view}")
    columns = tuple(column[0] for column in cursor.description)
    return Table(spec, columns, cursor.fetchall())


def freshness(db: sqlite3.Connection) -> Freshness:
    updated = db.execute("SELECT value FROM sink_meta WHERE key = 'updated_at'").fetchone()
    (rejects,) = db.execute("SELECT count(*) FROM sink_rejects").fetchone()
    return Freshness(None if updated is None else str(updated[0]), int(rejects))
