"""SQL on what eval and index-build jobs leave: ``eval_results`` (generic JSON and the view
type that shows it) and ``indexes`` (one per run and checkpoint, pointing at its files)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from ..models import EvalRecord, IndexRecord
from ..records import dumps_safe, loads
from ..schema import write_tx
from .rows import fetch_all, inserted_id


def add_eval_result(conn: sqlite3.Connection, run_id: int, job_id: int, checkpoint: str,
                    view_type: str, data: Any, summary: Any) -> int:
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO eval_results(run_id, job_id, checkpoint, view_type, data, summary,"
            " created) VALUES (?,?,?,?,?,?,?)",
            (run_id, job_id, checkpoint, view_type, dumps_safe(data), dumps_safe(summary),
             time.time()))
    return inserted_id(cur)


def list_eval_results(conn: sqlite3.Connection, run_id: int | None = None) -> list[EvalRecord]:
    """Newest first; all runs' or one run's."""
    sql = ("SELECT v.id, v.run_id, v.job_id, v.checkpoint, v.view_type, v.data, v.summary,"
           " v.created, e.name AS experiment, r.number AS run_number FROM eval_results v"
           " JOIN runs r ON r.id=v.run_id JOIN experiments e ON e.id=r.experiment_id")
    params: tuple = ()
    if run_id is not None:
        sql += " WHERE v.run_id=?"
        params = (run_id,)
    return [EvalRecord(id=r["id"], run_id=r["run_id"], job_id=r["job_id"],
                       checkpoint=r["checkpoint"], view_type=r["view_type"],
                       data=loads(r["data"], {}), summary=loads(r["summary"], {}),
                       created=r["created"], experiment=r["experiment"],
                       run_number=r["run_number"])
            for r in fetch_all(conn, sql + " ORDER BY v.id DESC", params)]


def replace_index(conn: sqlite3.Connection, run_id: int, checkpoint: str, path: str,
                  job_id: int, info: Mapping[str, Any]) -> int:
    """Record the index built from a run's checkpoint, replacing an earlier one of it."""
    with write_tx(conn):
        conn.execute("DELETE FROM indexes WHERE run_id=? AND checkpoint=?", (run_id, checkpoint))
        cur = conn.execute(
            "INSERT INTO indexes(run_id, checkpoint, path, job_id, info, created)"
            " VALUES (?,?,?,?,?,?)", (run_id, checkpoint, path, job_id, dumps_safe(info),
                                      time.time()))
    return inserted_id(cur)


def list_indexes(conn: sqlite3.Connection, run_id: int | None = None) -> list[IndexRecord]:
    """Newest first; all runs' or one run's."""
    sql = "SELECT id, run_id, checkpoint, path, job_id, info, created FROM indexes"
    params: tuple = ()
    if run_id is not None:
        sql += " WHERE run_id=?"
        params = (run_id,)
    return [IndexRecord(id=r["id"], run_id=r["run_id"], checkpoint=r["checkpoint"],
                        path=r["path"], job_id=r["job_id"], info=loads(r["info"], {}),
                        created=r["created"])
            for r in fetch_all(conn, sql + " ORDER BY id DESC", params)]
