"""SQL on the metric tables (``metric_keys``, ``metrics``, ``metric_seq``): appending a writer's
batches, reading points (incremental from a cursor, one key, all of a key) and a run's per-key
summary.

Storage encoding lives here too: NaN is stored as NULL (SQLite would store it so anyway) and
read back as NaN; point ids come from ``metric_seq``, so they grow in commit order and serve as
the cursor of incremental reads. Point reads return plain tuples, their columns named where the
statement is: a live chart reads hundreds of thousands of them.

System metrics (``sys/`` keys) are stored and read like any other, but they are no output of
the job: they neither count as its activity, nor move the run's step, nor enter its summary
(unless one is the experiment's objective).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..directions import SYSTEM_PREFIX, direction_for, is_system_key
from ..models import MetricBatch
from ..records import decode_value
from ..schema import write_tx
from .rows import fetch_all, fetch_one, scalar

# one point as a writer buffers it: ({key: value}, step, wall time, epoch)
Buffered = tuple[dict[str, float], int, float, "float | None"]

# SQL conditions on a metric_keys row ``k``: a system metric (sys/..., case-sensitive as the
# prefix is; LIKE would not be) or not
_SYSTEM = f"substr(k.key, 1, {len(SYSTEM_PREFIX)}) = '{SYSTEM_PREFIX}'"
_NOT_SYSTEM = f"substr(k.key, 1, {len(SYSTEM_PREFIX)}) <> '{SYSTEM_PREFIX}'"


def last_output_sql(run_id: str, *times: str) -> str:
    """An SQL expression: the latest of ``times`` (columns such as a job's ``activity`` and
    ``started``) and the wall time of the run's newest metric point; one index probe per
    metric key. Heartbeats are not output and never count."""
    newest_point = (f"(SELECT MAX((SELECT m.wall FROM metrics m WHERE m.key_id=k.id"
                    f" ORDER BY m.id DESC LIMIT 1)) FROM metric_keys k WHERE k.run_id={run_id}"
                    f" AND {_NOT_SYSTEM})")
    parts = [f"COALESCE({t}, 0)" for t in (*times, newest_point)]
    return f"NULLIF(MAX({', '.join(parts)}), 0)"


# ------------------------------------------------------------------ writing


def key_ids(conn: sqlite3.Connection, run_id: int) -> dict[str, int]:
    """The run's metric keys and their ids."""
    return {r["key"]: r["id"] for r in fetch_all(
        conn, "SELECT id, key FROM metric_keys WHERE run_id=?", (run_id,))}


def last_step(conn: sqlite3.Connection, run_id: int, system: bool = False) -> int:
    """The run's highest step so far; -1 before its first point. Its own metrics' steps, or
    with ``system`` its ``sys/`` samples' (their steps count samples, not training)."""
    which = _SYSTEM if system else _NOT_SYSTEM
    return int(scalar(conn, "SELECT COALESCE(MAX(m.step), -1) FROM metrics m JOIN metric_keys k"
                            f" ON k.id=m.key_id WHERE k.run_id=? AND {which}", (run_id,)))


def append(conn: sqlite3.Connection, run_id: int, known: dict[str, int],
           buf: list[Buffered]) -> tuple[int, dict[str, int]]:
    """Store buffered points in one IMMEDIATE transaction. ``known``: key -> id of the run's
    keys (read, not changed). Returns (points stored, ids of the keys created for them); a
    caller caches those only now: a rollback would have undone them."""
    new_keys: dict[str, int] = {}
    with write_tx(conn):
        n = conn.execute("SELECT last + 1 FROM metric_seq WHERE id=1").fetchone()[0]
        rows = []
        for metrics, step, wall, epoch in buf:
            for key, value in metrics.items():
                kid = known.get(key) or new_keys.get(key)
                if kid is None:
                    kid = new_keys[key] = _add_key(conn, run_id, key)
                rows.append((kid, n, step, None if value != value else value, wall, epoch))
                n += 1
        if rows:
            conn.executemany("INSERT INTO metrics(key_id, id, step, value, wall, epoch)"
                             " VALUES (?,?,?,?,?,?)", rows)
            conn.execute("UPDATE metric_seq SET last=? WHERE id=1", (rows[-1][1],))
    return len(rows), new_keys


def _add_key(conn: sqlite3.Connection, run_id: int, key: str) -> int:
    conn.execute("INSERT OR IGNORE INTO metric_keys(run_id, key) VALUES (?,?)", (run_id, key))
    return scalar(conn, "SELECT id FROM metric_keys WHERE run_id=? AND key=?", (run_id, key))


# ------------------------------------------------------------------ reading


def key_names(conn: sqlite3.Connection, run_id: int) -> list[str]:
    return [r["key"] for r in fetch_all(
        conn, "SELECT key FROM metric_keys WHERE run_id=? ORDER BY key", (run_id,))]


def key_id(conn: sqlite3.Connection, run_id: int, key: str) -> int | None:
    return scalar(conn, "SELECT id FROM metric_keys WHERE run_id=? AND key=?", (run_id, key))


def read_since(conn: sqlite3.Connection, run_id: int, cursor: int, keys: list[str] | None,
               limit: int) -> MetricBatch:
    """The run's points newer than ``cursor`` (a point id), oldest first, at most ``limit``;
    the batch's cursor is the last one's id."""
    sql = ("SELECT m.id, k.key, m.step, m.value, m.wall, m.epoch FROM metrics m"
           " JOIN metric_keys k ON k.id = m.key_id WHERE k.run_id=? AND m.id > ?")
    params: list[Any] = [run_id, cursor]
    if keys:
        sql += f" AND k.key IN ({','.join('?' * len(keys))})"
        params += keys
    sql += " ORDER BY m.id LIMIT ?"
    params.append(limit)
    batch = MetricBatch(cursor=cursor)
    for point_id, key, step, value, wall, epoch in conn.execute(sql, params).fetchall():
        batch.points.setdefault(key, []).append((step, decode_value(value), wall, epoch))
        batch.cursor = point_id
    return batch


def key_points_after(conn: sqlite3.Connection, key_id: int, after: int,
                     limit: int) -> list[tuple[int, int, float | None, float, float | None]]:
    """(id, step, value, wall, epoch) of one key's points with id > ``after``, oldest first;
    value as stored (NULL for NaN)."""
    return conn.execute(
        "SELECT id, step, value, wall, epoch FROM metrics WHERE key_id=? AND id > ?"
        " ORDER BY id LIMIT ?", (key_id, after, limit)).fetchall()


def all_points(conn: sqlite3.Connection, run_id: int, key: str) -> list[tuple[int, float]]:
    """(step, value) of every point of one key, by step."""
    rows = conn.execute(
        "SELECT m.step, m.value FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
        " WHERE k.run_id=? AND k.key=? ORDER BY m.step, m.id", (run_id, key)).fetchall()
    return [(step, decode_value(value)) for step, value in rows]


def last_epoch(conn: sqlite3.Connection, run_id: int) -> float | None:
    return scalar(conn, "SELECT MAX(m.epoch) FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
                        " WHERE k.run_id=?", (run_id,))


def summarize_run(conn: sqlite3.Connection, run_id: int) -> dict[str, dict[str, Any]]:
    """Per key: last, min, max, best (by direction), step of best, count, nan count. System
    metrics (``sys/``) are left out, but for one that is the experiment's objective."""
    exp = fetch_one(conn, "SELECT e.objective, e.direction FROM runs r JOIN experiments e"
                          " ON e.id=r.experiment_id WHERE r.id=?", (run_id,))
    objective, obj_dir = (exp["objective"], exp["direction"]) if exp else (None, None)
    out: dict[str, dict[str, Any]] = {}
    for k in fetch_all(conn, "SELECT id, key FROM metric_keys WHERE run_id=?", (run_id,)):
        key_id, key = k["id"], k["key"]
        if is_system_key(key) and key != objective:
            continue
        agg = fetch_one(conn, "SELECT COUNT(*) AS count, SUM(value IS NULL) AS nans,"
                              " MIN(value) AS vmin, MAX(value) AS vmax, MAX(step) AS last_step"
                              " FROM metrics WHERE key_id=?", (key_id,))
        if agg is None or not agg["count"]:
            continue
        last = scalar(conn, "SELECT value FROM metrics WHERE key_id=? ORDER BY step DESC, id DESC"
                            " LIMIT 1", (key_id,))
        direction = direction_for(key, objective, obj_dir)
        best = agg["vmin"] if direction == "minimize" else agg["vmax"]
        best_step = None
        if best is not None:
            best_step = scalar(conn, "SELECT step FROM metrics WHERE key_id=? AND value=?"
                                     " ORDER BY step LIMIT 1", (key_id, best))
        out[key] = {
            "last": decode_value(last), "min": decode_value(agg["vmin"]),
            "max": decode_value(agg["vmax"]), "best": decode_value(best),
            "best_step": best_step, "direction": direction, "count": agg["count"],
            "nan_count": agg["nans"] or 0, "last_step": agg["last_step"],
        }
    return out
