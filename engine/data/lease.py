"""SQL on ``scheduler_lease``: the one row that says which scheduler serves a home, renewed by
its heartbeat and taken over when it lapses."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ..schema import write_tx
from .rows import fetch_one


@dataclass
class Lease:
    owner: str
    pid: int
    host: str
    mode: str
    heartbeat: float


def holder(conn: sqlite3.Connection) -> Lease | None:
    r = fetch_one(conn, "SELECT owner, pid, host, mode, heartbeat FROM scheduler_lease WHERE id=1")
    return None if r is None else Lease(owner=r["owner"], pid=r["pid"], host=r["host"],
                                        mode=r["mode"], heartbeat=r["heartbeat"])


def acquire(conn: sqlite3.Connection, me: Lease, lapsed: Callable[[Lease], bool]) -> Lease:
    """Take or renew the lease for ``me`` (its heartbeat: now) when it is free, already ours,
    or held by a holder that ``lapsed``; in one IMMEDIATE transaction. Returns who holds it
    now (``me`` when taken)."""
    with write_tx(conn):
        held = holder(conn)
        if held is not None and held.owner != me.owner and not lapsed(held):
            return held
        conn.execute(
            "INSERT INTO scheduler_lease(id, owner, pid, host, mode, heartbeat, started)"
            " VALUES (1,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET owner=excluded.owner,"
            " pid=excluded.pid, host=excluded.host, mode=excluded.mode,"
            " heartbeat=excluded.heartbeat,"
            " started=CASE WHEN scheduler_lease.owner=excluded.owner"
            " THEN scheduler_lease.started ELSE excluded.started END",
            (me.owner, me.pid, me.host, me.mode, me.heartbeat, me.heartbeat))
        return me


def release(conn: sqlite3.Connection, owner: str) -> None:
    """Give the lease back if ``owner`` holds it."""
    with write_tx(conn):
        conn.execute("DELETE FROM scheduler_lease WHERE owner=?", (owner,))
