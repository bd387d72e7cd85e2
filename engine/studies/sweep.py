"""The scheduler's cheap sweep for study trials whose worker died on this host.

One indexed query per reconcile; the tuner (and so Optuna) is opened only when a
mirrored running trial's worker pid is dead, so an idle scheduler pays nothing for studies.
"""

from __future__ import annotations

import sqlite3

from ..data import studies as data
from ..records import HOST, pid_alive
from ..settings import Settings


def dead_trial_studies(conn: sqlite3.Connection) -> list[str]:
    return sorted({t.study for t in data.running_trials_on(conn, HOST)
                   if t.pid and not pid_alive(t.pid)})


def sweep_dead_trials(conn: sqlite3.Connection, settings: Settings) -> list[str]:
    """Fail (in the tuner and the mirror) trials whose worker died; returns study names."""
    names = dead_trial_studies(conn)
    if names:
        from .mirror import open_tuner, sweep

        for name in names:
            row = data.get_study(conn, name)
            tuner = open_tuner(row, settings.home)
            try:
                sweep(conn, row, tuner, settings.home)
            finally:
                tuner.close()
    return names
