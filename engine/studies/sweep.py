"""The scheduler's cheap sweep for study trials whose worker died on this host.

One indexed query per reconcile; the search engine (and so Optuna) is opened only when a
mirrored running trial's worker pid is dead, so an idle scheduler pays nothing for studies.
"""

from __future__ import annotations

import sqlite3

from ..records import HOST, pid_alive
from ..settings import Settings


def dead_trial_studies(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT s.name, t.pid FROM trials t JOIN studies s ON s.id=t.study_id"
        " WHERE t.state='running' AND t.host=?", (HOST,)).fetchall()
    return sorted({name for name, pid in rows if pid and not pid_alive(pid)})


def sweep_dead_trials(conn: sqlite3.Connection, settings: Settings) -> list[str]:
    """Fail (in the engine and the mirror) trials whose worker died; returns study names."""
    names = dead_trial_studies(conn)
    if names:
        from .records import load_row, open_engine, sweep

        for name in names:
            row = load_row(conn, name)
            engine = open_engine(row, settings.home)
            try:
                sweep(conn, row, engine, settings.home)
            finally:
                engine.close()
    return names
