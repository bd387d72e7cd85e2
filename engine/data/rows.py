"""Reading rows by column name: the data modules build their dataclasses from ``row["name"]``,
never from a position, without changing how the caller's connection returns rows. Long lists
are read a page at a time (``Page``): each page starts after the last sort key of the one
before (keyset), so a deep page costs what the first does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

PAGE_SIZE = 500  # rows per page when a whole list is read a page at a time


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


@dataclass
class Page(Generic[T]):
    """One page of a list read in order: its rows and the cursor that the next page starts
    after (the last row's sort key; None when this page is the last)."""

    items: list[T]
    next: Any = None


def page_of(items: list[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    """``items`` read with ``LIMIT limit`` as a Page: a short page is the last one."""
    return Page(items, key(items[-1]) if items and len(items) >= limit else None)
