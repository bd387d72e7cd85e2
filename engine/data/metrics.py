"""SQL on the metric tables (``metric_keys``, ``metrics``, ``metric_seq``): appending a writer's
batches (with their rollup buckets, engine/data/metric_rollup.py), reading points (incremental
from a cursor, one key, all of a key) and a run's per-key summary.

Storage encoding lives here too: NaN is stored as NULL (SQLite would store it so anyway) and
read back as NaN; point ids come from ``metric_seq``, so they grow in commit order and serve as
the cursor of incremental reads. Point reads return plain tuples, their columns named where the
statement is: a live chart reads hundreds of thousands of them.

Rollup buckets (engine/metric_rollup.py) are written in the transaction that stores their
points, so they never lag behind them, and a crash loses both or neither.

System metrics (``sys/`` keys) are stored and read like any other, but they are no output of
the job: they neither count as its activity, nor move the run's step, nor enter its summary
(unless one is the experiment's objective).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from ..directions import SYSTEM_PREFIX, direction_for, is_system_key
from ..metric_rollup import Columns, Heads
from ..models import MetricBatch
from ..records import decode_value
from ..schema import write_tx
from .metric_rollup import TOP_BUCKETS, key_stats, roll_up
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
    return int(scalar(conn, f"SELECT COALESCE(MAX(s.step_hi), -1) {TOP_BUCKETS}"
                            f" WHERE k.run_id=? AND {which}", (run_id,)))


def append(conn: sqlite3.Connection, run_id: int, known: dict[str, int], buf: list[Buffered],
           heads: dict[int, Heads] | None = None) -> tuple[int, dict[str, int], dict[int, Heads]]:
    """Store buffered points and their rollup buckets in one IMMEDIATE transaction.
    ``known``: key -> id of the run's keys; ``heads``: key id -> its rollup's open buckets
    as a caller last saw them (both read, not changed; a head another writer has moved since
    is read again). Returns (points stored, ids of the keys created for them, the heads of the
    keys written); a caller caches those only now: a rollback would have undone them.

    A batch's points get ids key by key (one key's points consecutive, in the order logged):
    ids still grow from batch to batch, which is all a cursor needs."""
    new_keys: dict[str, int] = {}
    new_heads: dict[int, Heads] = {}
    created: set[int] = set()  # keys with no point before: no rollup to read
    if not buf:
        return 0, new_keys, new_heads
    with write_tx(conn):
        n = first = conn.execute("SELECT last + 1 FROM metric_seq WHERE id=1").fetchone()[0]
        per_key: list[tuple[int, Columns]] = []
        for key, (steps, values, walls, epochs) in _by_key(buf).items():
            kid = known.get(key) or new_keys.get(key)
            if kid is None:
                kid = new_keys[key] = _add_key(conn, run_id, key, created)
            ids = range(n, n + len(steps))
            n += len(steps)
            per_key.append((kid, (ids, steps, values, walls, epochs)))
        if n > first:
            # NaN binds as NULL (SQLite stores no NaN)
            conn.executemany("INSERT INTO metrics(key_id, id, step, value, wall, epoch)"
                             " VALUES (?,?,?,?,?,?)",
                             chain.from_iterable(zip(repeat(kid), *cols) for kid, cols in per_key))
            conn.execute("UPDATE metric_seq SET last=? WHERE id=1", (n - 1,))
            new_heads = roll_up(conn, per_key, heads or {}, created)
    return n - first, new_keys, new_heads


def _by_key(buf: list[Buffered]) -> dict[str, tuple[Sequence, Sequence, Sequence, Sequence]]:
    """key -> its (steps, values, walls, epochs) in the batch, in the order logged. Where every
    entry logged the same keys (a training loop's usual call) the columns are cut out in C."""
    metrics, steps, walls, epochs = zip(*buf, strict=True)
    keysets = set(map(tuple, metrics))
    if len(keysets) == 1:
        return {key: (steps, list(map(itemgetter(key), metrics)), walls, epochs)
                for key in keysets.pop()}
    out: dict[str, tuple[list, list, list, list]] = {}
    for entry, step, wall, epoch in buf:
        for key, value in entry.items():
            cols = out.get(key)
            if cols is None:
                cols = out[key] = ([], [], [], [])
            cols[0].append(step)
            cols[1].append(value)
            cols[2].append(wall)
            cols[3].append(epoch)
    return out  # type: ignore[return-value]


def _add_key(conn: sqlite3.Connection, run_id: int, key: str, created: set[int]) -> int:
    """The key's id, the key added if missing (and its id put in ``created``); another writer
    of the run may have added it since this one read the run's keys."""
    cur = conn.execute("INSERT OR IGNORE INTO metric_keys(run_id, key) VALUES (?,?)",
                       (run_id, key))
    kid = scalar(conn, "SELECT id FROM metric_keys WHERE run_id=? AND key=?", (run_id, key))
    if cur.rowcount:
        created.add(kid)
    return kid


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
    return scalar(conn, f"SELECT MAX(s.epoch_hi) {TOP_BUCKETS} WHERE k.run_id=?", (run_id,))


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
        direction = direction_for(key, objective, obj_dir)
        stats = key_stats(conn, key_id, direction == "minimize")  # from the rollup
        if stats is None:
            continue
        out[key] = {
            "last": decode_value(stats["last"]), "min": decode_value(stats["min"]),
            "max": decode_value(stats["max"]), "best": decode_value(stats["best"]),
            "best_step": stats["best_step"], "direction": direction, "count": stats["count"],
            "nan_count": stats["nan_count"], "last_step": stats["last_step"],
        }
    return out
