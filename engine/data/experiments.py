"""SQL on the ``experiments`` table: the list row (with its runs count, last run and best
objective value), create, edit (config, objective, the resources its jobs ask for), delete,
and what a run's change stamps on its experiment."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from ..models import Experiment
from ..records import dumps_safe, loads
from ..schema import write_tx
from .rows import Page, fetch_all, fetch_one, inserted_id, page_of, scalar

_POINTS = ("FROM metrics m JOIN metric_keys k ON k.id = m.key_id JOIN runs r"
           " ON r.id = k.run_id WHERE r.experiment_id = e.id AND k.key = e.objective"
           " AND m.value IS NOT NULL")
_LIST_SQL = f"""
SELECT e.id, e.name, e.adapter, e.config, e.objective, e.direction, e.tags, e.notes, e.origin,
       e.created, e.updated, e.gpus, e.gpu_mem_mb,
       (SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.id) AS runs,
       lr.id AS last_run_id, lr.number AS last_run_number, lr.status AS last_status,
       j.progress AS last_progress, j.message AS last_message, lr.error AS last_error,
       CASE WHEN e.direction = 'minimize' THEN (SELECT MIN(m.value) {_POINTS})
            ELSE (SELECT MAX(m.value) {_POINTS}) END AS best_value,
       CASE WHEN e.direction = 'minimize'
            THEN (SELECT r.number {_POINTS} ORDER BY m.value, r.number LIMIT 1)
            ELSE (SELECT r.number {_POINTS} ORDER BY m.value DESC, r.number LIMIT 1) END
            AS best_run_number
FROM experiments e
LEFT JOIN runs lr ON lr.id = (SELECT MAX(id) FROM runs WHERE experiment_id = e.id)
LEFT JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE run_id = lr.id AND type = 'train')
"""


def _experiment(r: sqlite3.Row) -> Experiment:
    return Experiment(
        id=r["id"], name=r["name"], adapter=r["adapter"], config=loads(r["config"], {}),
        objective=r["objective"], direction=r["direction"], tags=json.loads(r["tags"] or "[]"),
        notes=r["notes"], origin=r["origin"], created=r["created"], updated=r["updated"],
        runs=r["runs"], last_run_id=r["last_run_id"], last_run_number=r["last_run_number"],
        last_status=r["last_status"], last_progress=r["last_progress"],
        last_message=r["last_message"] or "", last_error=r["last_error"],
        best_value=r["best_value"], best_run_number=r["best_run_number"], gpus=r["gpus"],
        gpu_mem_mb=r["gpu_mem_mb"])


def list_experiments(conn: sqlite3.Connection) -> list[Experiment]:
    """Every experiment, the latest changed first."""
    return [_experiment(r) for r in fetch_all(conn, _LIST_SQL + " ORDER BY e.updated DESC")]


def experiments_page(conn: sqlite3.Connection, after: tuple[float, int] | None = None,
                     limit: int = 500, offset: int = 0) -> Page[Experiment]:
    """Up to ``limit`` experiments, the latest changed first (ties: the newest first),
    starting after the one keyed ``after`` ((updated, id): the page before's ``next``) and
    ``offset`` further. The keys are stepped over on an index; the counts and best values are
    computed for the page alone. An experiment changed while later pages are read moves above
    the cursor: it is not listed again (nor, if not listed yet, at all)."""
    keys, params = "SELECT id FROM experiments", []
    if after is not None:
        keys += " WHERE (updated, id) < (?, ?)"
        params += [after[0], after[1]]
    rows = fetch_all(conn, f"{_LIST_SQL} WHERE e.id IN ({keys} ORDER BY updated DESC, id DESC"
                           " LIMIT ? OFFSET ?) ORDER BY e.updated DESC, e.id DESC",
                     [*params, limit, offset])
    return page_of([_experiment(r) for r in rows], limit, lambda e: (e.updated, e.id))


def count_experiments(conn: sqlite3.Connection) -> int:
    return int(scalar(conn, "SELECT COUNT(*) FROM experiments"))


def get_experiment(conn: sqlite3.Connection, ref: str | int) -> Experiment | None:
    """By name, or by id when ``ref`` is a number (a name made of digits matches too)."""
    if isinstance(ref, int) or ref.isdigit():
        row = fetch_one(conn, _LIST_SQL + " WHERE e.id=? OR e.name=?", (int(ref), str(ref)))
    else:
        row = fetch_one(conn, _LIST_SQL + " WHERE e.name=?", (ref,))
    return None if row is None else _experiment(row)


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return bool(scalar(conn, "SELECT 1 FROM experiments WHERE name=?", (name,)))


def create(conn: sqlite3.Connection, name: str, adapter: str, config: Mapping[str, Any],
           objective: str | None, direction: str | None, tags: list[str], notes: str,
           origin: str | None, gpus: int = 0, gpu_mem_mb: int | None = None) -> int | None:
    """Insert an experiment; None (and nothing written) when the name is taken."""
    t = time.time()
    with write_tx(conn):
        if name_taken(conn, name):
            return None
        cur = conn.execute(
            "INSERT INTO experiments(name, adapter, config, objective, direction, tags,"
            " notes, origin, created, updated, gpus, gpu_mem_mb)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (name, adapter, dumps_safe(config), objective, direction, json.dumps(list(tags)),
             notes, origin, t, t, gpus, gpu_mem_mb))
        return inserted_id(cur)


def update(conn: sqlite3.Connection, experiment_id: int, name: str, config: Mapping[str, Any],
           objective: str | None, direction: str | None, tags: list[str], notes: str,
           gpus: int = 0, gpu_mem_mb: int | None = None) -> bool:
    """Rewrite an experiment's editable fields; False (and nothing written) when ``name`` is
    another experiment's."""
    with write_tx(conn):
        if scalar(conn, "SELECT 1 FROM experiments WHERE name=? AND id<>?",
                  (name, experiment_id)):
            return False
        conn.execute(
            "UPDATE experiments SET name=?, config=?, objective=?, direction=?, tags=?,"
            " notes=?, gpus=?, gpu_mem_mb=?, updated=? WHERE id=?",
            (name, dumps_safe(config), objective, direction, json.dumps(list(tags)), notes,
             gpus, gpu_mem_mb, time.time(), experiment_id))
    return True


def delete(conn: sqlite3.Connection, experiment_id: int) -> None:
    """Delete an experiment; its runs, metrics, jobs and results go with it (foreign keys)."""
    with write_tx(conn):
        conn.execute("DELETE FROM experiments WHERE id=?", (experiment_id,))


def get_or_create(conn: sqlite3.Connection, name: str, adapter: str = "script",
                  config: Mapping[str, Any] | None = None) -> int:
    """The id of the experiment named ``name``, created with ``adapter`` and ``config`` when
    missing (a tracking script's, a study's)."""
    found = scalar(conn, "SELECT id FROM experiments WHERE name=?", (name,))
    if found:
        return found
    t = time.time()
    with write_tx(conn):
        found = scalar(conn, "SELECT id FROM experiments WHERE name=?", (name,))
        if found:
            return found
        cur = conn.execute(
            "INSERT INTO experiments(name, adapter, config, created, updated) VALUES (?,?,?,?,?)",
            (name, adapter, json.dumps(dict(config or {})), t, t),
        )
        return inserted_id(cur)


def touch(conn: sqlite3.Connection, experiment_id: int, t: float) -> None:
    """Mark the experiment changed at ``t`` (a run was added); inside the caller's
    transaction."""
    conn.execute("UPDATE experiments SET updated=? WHERE id=?", (t, experiment_id))


def touch_for_run(conn: sqlite3.Connection, run_id: int, t: float) -> None:
    """Mark the experiment of run ``run_id`` changed at ``t`` (the run ended); inside the
    caller's transaction."""
    conn.execute("UPDATE experiments SET updated=? WHERE id=(SELECT experiment_id FROM runs"
                 " WHERE id=?)", (t, run_id))
