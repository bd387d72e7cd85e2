"""Reading rows by column name: the data modules build their dataclasses from ``row["name"]``,
never from a position, without changing how the caller's connection returns rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any


def fetch_all(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row  # this cursor only: other users of the connection keep tuples
    return cur.execute(sql, tuple(params)).fetchall()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, tuple(params)).fetchone()


def scalar(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> Any:
    """The first column of the first row; None when there is no row."""
    row = conn.execute(sql, tuple(params)).fetchone()
    return None if row is None else row[0]


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid an INSERT just made (``lastrowid`` is None only when nothing was inserted)."""
    if cur.lastrowid is None:
        raise sqlite3.OperationalError("the insert made no row")
    return cur.lastrowid
