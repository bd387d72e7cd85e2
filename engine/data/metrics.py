"""SQL on the metric tables (``metric_keys``, ``metrics``, ``metric_seq``, ``metric_rollup``):
appending a writer's batches with their rollup buckets, reading points (incremental from a
cursor, one key, all of a key), a chart's series (rollup buckets, the points only for a short
range) and a run's per-key summary.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from ..directions import SYSTEM_PREFIX, direction_for, is_system_key
from ..metric_rollup import (
    EMPTY,
    FANOUT_BITS,
    MAX_LEVEL,
    STEP_MAX,
    STEP_MIN,
    Bucket,
    Columns,
    Heads,
    bucket_size,
    finite_sum,
    fold,
    overlaps,
    read_sum,
)
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


# the top-level rollup buckets of each metric key ``k`` (one per key unless it is huge): the
# key's extremes without reading its points
_TOP_BUCKETS = ("FROM metric_keys k JOIN metric_rollup s ON s.key_id=k.id AND s.level="
                "(SELECT MAX(level) FROM metric_rollup WHERE key_id=k.id)")


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
    return int(scalar(conn, f"SELECT COALESCE(MAX(s.step_hi), -1) {_TOP_BUCKETS}"
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
            new_heads = _roll_up(conn, per_key, heads or {}, created)
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


_ROLLUP_COLUMNS = ("n, nans, vmin, vmax, vsum, step_lo, step_hi, wall_lo, wall_hi, epoch_lo,"
                    " epoch_hi, id_lo, id_hi")


def _roll_up(conn: sqlite3.Connection, per_key: list[tuple[int, Columns]],
               heads: dict[int, Heads], created: set[int]) -> dict[int, Heads]:
    """Fold each key's just-inserted points (columns, in id order) into its rollup buckets."""
    out: list[tuple] = []
    new_heads: dict[int, Heads] = {}
    for kid, cols in per_key:
        if kid in created:
            head = EMPTY
        else:
            head = heads.get(kid)  # type: ignore[assignment]
            if head is None or head[0] != _stored_count(conn, kid):
                head = rollup_heads(conn, kid)
        changed, new_heads[kid] = fold(head, cols)
        out.extend((kid, level, idx, b.n, b.nans, b.vmin, b.vmax, finite_sum(b.vsum),
                    b.step_lo, b.step_hi, b.wall_lo, b.wall_hi, b.epoch_lo, b.epoch_hi,
                    b.id_lo, b.id_hi) for level, idx, b in changed)
    conn.executemany(f"INSERT OR REPLACE INTO metric_rollup(key_id, level, idx, {_ROLLUP_COLUMNS})"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", out)
    return new_heads


def _stored_count(conn: sqlite3.Connection, key_id: int) -> int:
    """The key's points, as its rollup counts them: its last level-0 bucket's place and size."""
    row = conn.execute("SELECT idx, n FROM metric_rollup WHERE key_id=? AND level=0"
                       " ORDER BY idx DESC LIMIT 1", (key_id,)).fetchone()
    return 0 if row is None else row[0] * bucket_size(0) + row[1]


def _bucket(row: tuple) -> Bucket:
    """A Bucket from the rollup columns (``_ROLLUP_COLUMNS``, in order)."""
    n, nans, vmin, vmax, vsum, *rest = row
    return Bucket(n, nans, vmin, vmax, read_sum(vsum, n, nans), *rest)


def rollup_heads(conn: sqlite3.Connection, key_id: int) -> Heads:
    """A key's point count and the last bucket of each of its rollup levels."""
    open_buckets: dict[int, tuple[int, Bucket]] = {}
    for level in range(MAX_LEVEL + 1):
        row = conn.execute(f"SELECT idx, {_ROLLUP_COLUMNS} FROM metric_rollup"
                           " WHERE key_id=? AND level=? ORDER BY idx DESC LIMIT 1",
                           (key_id, level)).fetchone()
        if row is None:
            break
        open_buckets[level] = (row[0], _bucket(row[1:]))
    if not open_buckets:
        return EMPTY
    idx, last = open_buckets[0]
    return idx * bucket_size(0) + last.n, open_buckets


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


@dataclass
class SeriesRead:
    """What a chart reads of one key for a step range: rollup buckets of one level (``level``
    not None, oldest first) or, for a range of few points, the points themselves (id, step,
    value as stored, wall, epoch; id order)."""

    level: int | None = None
    buckets: list[Bucket] = field(default_factory=list)
    points: list[tuple] = field(default_factory=list)
    count: int = 0  # points of the key
    cursor: int = 0  # id of its newest point when read
    lo: int = STEP_MIN  # the step range read
    hi: int = STEP_MAX
    fetched: int = 0  # rows fetched from SQLite, all statements together


def read_series(conn: sqlite3.Connection, key_id: int, want: int, raw_limit: int,
                lo: int | None = None, hi: int | None = None,
                last_n: int | None = None) -> SeriesRead:
    """One key's points with a step in [lo, hi] (both None: all; ``last_n``: its last steps),
    as the coarsest rollup level with at least ``want`` buckets there, or as the points when
    there are at most ``raw_limit``. Walks down from the top level, each level reading only
    the children of the buckets that overlap the range, so the rows fetched stay a small
    multiple of ``want`` (or ``raw_limit``) however long the series; one read transaction."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        return _read_series(conn, key_id, want, raw_limit, lo, hi, last_n)
    finally:
        if began:
            conn.execute("COMMIT")


def _read_series(conn: sqlite3.Connection, key_id: int, want: int, raw_limit: int,
                 lo: int | None, hi: int | None, last_n: int | None) -> SeriesRead:
    level = scalar(conn, "SELECT MAX(level) FROM metric_rollup WHERE key_id=?", (key_id,))
    if level is None:
        return SeriesRead(fetched=1)
    found = _buckets(conn, key_id, level, STEP_MIN, STEP_MAX, 0, None)
    out = SeriesRead(count=sum(b.n for _, b in found), cursor=max(b.id_hi for _, b in found),
                     fetched=1 + len(found))
    out.lo = STEP_MIN if lo is None else max(STEP_MIN, lo)
    out.hi = STEP_MAX if hi is None else min(STEP_MAX, hi)
    if last_n is not None:
        out.lo = max(out.lo, max(b.step_hi for _, b in found) - last_n + 1)
    found = [(i, b) for i, b in found if overlaps(b, out.lo, out.hi)]
    fan = 1 << FANOUT_BITS
    while found:
        if sum(b.n for _, b in found) <= raw_limit:
            out.points = conn.execute(
                "SELECT id, step, value, wall, epoch FROM metrics WHERE key_id=?"
                " AND id BETWEEN ? AND ? AND step BETWEEN ? AND ? ORDER BY id",
                (key_id, min(b.id_lo for _, b in found), max(b.id_hi for _, b in found),
                 out.lo, out.hi)).fetchall()
            out.fetched += len(out.points)
            return out
        if len(found) >= want or level == 0:
            out.level, out.buckets = level, [b for _, b in found]
            return out
        level -= 1
        found = _buckets(conn, key_id, level, out.lo, out.hi, found[0][0] * fan,
                         max(i for i, _ in found) * fan + fan - 1)
        out.fetched += len(found)
    return out


def _buckets(conn: sqlite3.Connection, key_id: int, level: int, lo: int, hi: int,
             first: int, last: int | None) -> list[tuple[int, Bucket]]:
    """(index, bucket) of a level's buckets first..last (None: all) overlapping steps lo..hi."""
    rows = conn.execute(
        f"SELECT idx, {_ROLLUP_COLUMNS} FROM metric_rollup WHERE key_id=? AND level=?"
        " AND idx BETWEEN ? AND ? AND step_hi >= ? AND step_lo <= ? ORDER BY idx",
        (key_id, level, first, STEP_MAX if last is None else last, lo, hi)).fetchall()
    return [(r[0], _bucket(r[1:])) for r in rows]


def all_points(conn: sqlite3.Connection, run_id: int, key: str) -> list[tuple[int, float]]:
    """(step, value) of every point of one key, by step."""
    rows = conn.execute(
        "SELECT m.step, m.value FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
        " WHERE k.run_id=? AND k.key=? ORDER BY m.step, m.id", (run_id, key)).fetchall()
    return [(step, decode_value(value)) for step, value in rows]


def last_epoch(conn: sqlite3.Connection, run_id: int) -> float | None:
    return scalar(conn, f"SELECT MAX(s.epoch_hi) {_TOP_BUCKETS} WHERE k.run_id=?", (run_id,))


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
        top = _top_buckets(conn, key_id)
        if top is None:
            continue
        buckets = [b for _, b in top[1]]
        count, last_step = sum(b.n for b in buckets), max(b.step_hi for b in buckets)
        vmin = min((b.vmin for b in buckets if b.vmin is not None), default=None)
        vmax = max((b.vmax for b in buckets if b.vmax is not None), default=None)
        last = _last_value(conn, key_id, top, last_step)
        direction = direction_for(key, objective, obj_dir)
        best = vmin if direction == "minimize" else vmax
        best_step = None if best is None else _first_step_of(conn, key_id, top, best,
                                                              direction == "minimize")
        out[key] = {
            "last": decode_value(last), "min": decode_value(vmin), "max": decode_value(vmax),
            "best": decode_value(best), "best_step": best_step, "direction": direction,
            "count": count, "nan_count": sum(b.nans for b in buckets), "last_step": last_step,
        }
    return out


# A run's summary comes from its keys' rollup buckets: counts and extremes from the top level,
# and the two points it names (the last by step, the first at the best value) found by walking
# down only the buckets that can hold them, then reading one level-0 bucket's points.


# a key's top level and its (index, bucket) pairs
Top = tuple[int, list[tuple[int, Bucket]]]


def _top_buckets(conn: sqlite3.Connection, key_id: int) -> Top | None:
    level = scalar(conn, "SELECT MAX(level) FROM metric_rollup WHERE key_id=?", (key_id,))
    if level is None:
        return None
    return level, _buckets(conn, key_id, level, STEP_MIN, STEP_MAX, 0, None)


def _walk_down(conn: sqlite3.Connection, key_id: int, top: Top,
               keep: Callable[[list[tuple[int, Bucket]]], list[tuple[int, Bucket]]],
               ) -> list[Bucket]:
    """Level-0 buckets under the top ones that ``keep`` keeps at every level (it is handed a
    level's (index, bucket) pairs, by index)."""
    level, found = top[0], keep(top[1])
    fan = 1 << FANOUT_BITS
    while level and found:
        level -= 1
        parents = {i for i, _ in found}
        found = keep([(i, b) for i, b in _buckets(
            conn, key_id, level, STEP_MIN, STEP_MAX, found[0][0] * fan,
            max(i for i, _ in found) * fan + fan - 1) if i >> FANOUT_BITS in parents])
    return [b for _, b in found]


def _last_value(conn: sqlite3.Connection, key_id: int, top: Top,
                last_step: int) -> float | None:
    """The value (as stored) of the last point logged at the key's highest step: it lies in the
    newest bucket reaching that step."""
    def keep(level: list[tuple[int, Bucket]]) -> list[tuple[int, Bucket]]:
        return [p for p in level if p[1].step_hi == last_step][-1:]

    for b in _walk_down(conn, key_id, top, keep):
        return scalar(conn, "SELECT value FROM metrics WHERE key_id=? AND id BETWEEN ? AND ?"
                            " AND step=? ORDER BY id DESC LIMIT 1",
                      (key_id, b.id_lo, b.id_hi, last_step))
    return None


def _first_step_of(conn: sqlite3.Connection, key_id: int, top: Top,
                   best: float, minimize: bool) -> int | None:
    """The lowest step at which the key took the value ``best`` (its min or max): only buckets
    reaching ``best`` hold it, and none starting after the earliest such bucket ends."""
    def keep(level: list[tuple[int, Bucket]]) -> list[tuple[int, Bucket]]:
        hits = [p for p in level if (p[1].vmin if minimize else p[1].vmax) == best]
        bound = min((b.step_hi for _, b in hits), default=None)
        return [p for p in hits if bound is not None and p[1].step_lo <= bound]

    steps = [scalar(conn, "SELECT MIN(step) FROM metrics WHERE key_id=? AND id BETWEEN ? AND ?"
                          " AND value=?", (key_id, b.id_lo, b.id_hi, best))
             for b in _walk_down(conn, key_id, top, keep)]
    return min((s for s in steps if s is not None), default=None)
