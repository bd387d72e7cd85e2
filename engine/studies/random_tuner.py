"""Random search with no dependency beyond the standard library (works without Optuna).

Storage is a small SQLite file (default ``<home>/studies/random.db``; any ``sqlite:///PATH``
is accepted). Workers on one machine (or sharing the file) claim waiting slots with one
``BEGIN IMMEDIATE`` update each. Params of trial N are drawn from ``Random(seed, N)``, so a
seeded study is reproducible whatever worker runs which trial. It does not prune.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from .space import ParamSpec
from .tuner import BaseTuner, TrialHandle, TunerTrial, count_slots

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rstudies (
    name TEXT PRIMARY KEY, definition TEXT NOT NULL, stop INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rtrials (
    study TEXT NOT NULL, number INTEGER NOT NULL, state TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}', value REAL, intermediate TEXT NOT NULL DEFAULT '[]',
    started REAL, finished REAL, attrs TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (study, number));
"""


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _connect(url: str) -> sqlite3.Connection:
    path = _path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.executescript(_SCHEMA)
    return conn


def sample(p: ParamSpec, rng: random.Random) -> Any:
    if p.kind == "categorical":
        return rng.choice(list(p.choices or ()))
    lo, hi = (float(b) for b in p.bounds())
    if p.kind == "int":
        if p.log:
            return min(int(hi), max(int(lo), round(math.exp(rng.uniform(math.log(lo),
                                                                        math.log(hi + 1) - 1e-9)))))
        return rng.randint(int(lo), int(hi))
    if p.log:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


class RandomTuner(BaseTuner):
    name = "random"
    description = "uniform / log-uniform random search; no Optuna needed; no pruning"
    supports_pruning = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.storage.startswith("sqlite:///"):
            raise ValueError(f"the random tuner stores studies in sqlite:///PATH, got "
                             f"{self.storage!r}")
        self._conn = _connect(self.storage)

    @classmethod
    def default_storage(cls, home: Path) -> str:
        return f"sqlite:///{Path(home) / 'studies' / 'random.db'}"

    @classmethod
    def load_definition(cls, storage: str, tuner_study: str) -> dict[str, Any] | None:
        conn = _connect(storage)
        try:
            row = conn.execute("SELECT definition FROM rstudies WHERE name=?",
                               (tuner_study,)).fetchone()
        finally:
            conn.close()
        return json.loads(row[0]) if row else None

    def _tx(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            cur = self._conn.execute(sql, params)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return cur

    def create(self) -> None:
        self._tx("INSERT OR IGNORE INTO rstudies(name, definition) VALUES (?,?)",
                 (self.tuner_study, json.dumps(self.definition.to_json())))
        self.ensure_slots(self.definition.settings.n_trials)

    def ensure_slots(self, n_trials: int) -> int:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            missing = n_trials - count_slots(self.trials())
            top = self._conn.execute("SELECT COALESCE(MAX(number), -1) FROM rtrials WHERE study=?",
                                     (self.tuner_study,)).fetchone()[0]
            for i in range(max(0, missing)):
                self._conn.execute("INSERT INTO rtrials(study, number, state) VALUES (?,?,?)",
                                   (self.tuner_study, top + 1 + i, "waiting"))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return max(0, missing)

    def ask(self, attrs: dict[str, Any]) -> TrialHandle | None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute(
                "SELECT MIN(number) FROM rtrials WHERE study=? AND state='waiting'",
                (self.tuner_study,)).fetchone()
            number = row[0] if row else None
            if number is None:
                self._conn.execute("COMMIT")
                return None
            seed = self.definition.settings.seed
            rng = random.Random(f"{seed}:{number}" if seed is not None else None)
            params = {k: sample(p, rng) for k, p in self.definition.space.items() if p.searched}
            self._conn.execute(
                "UPDATE rtrials SET state='running', params=?, started=?, attrs=?"
                " WHERE study=? AND number=?",
                (json.dumps(params), time.time(), json.dumps(attrs), self.tuner_study, number))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return TrialHandle(number=number, params=params)

    def report(self, handle: TrialHandle, step: int, value: float) -> bool:
        row = self._conn.execute("SELECT intermediate FROM rtrials WHERE study=? AND number=?",
                                 (self.tuner_study, handle.number)).fetchone()
        inter = dict(json.loads(row[0]))
        inter[str(step)] = float(value)
        pairs = sorted((int(k), v) for k, v in inter.items())
        self._tx("UPDATE rtrials SET intermediate=? WHERE study=? AND number=?",
                 (json.dumps(pairs), self.tuner_study, handle.number))
        return False

    def tell(self, handle: TrialHandle, state: str, value: float | None = None,
             attrs: dict[str, Any] | None = None) -> None:
        row = self._conn.execute("SELECT attrs FROM rtrials WHERE study=? AND number=?",
                                 (self.tuner_study, handle.number)).fetchone()
        merged = {**json.loads(row[0] or "{}"), **(attrs or {})}
        self._tx("UPDATE rtrials SET state=?, value=?, finished=?, attrs=?"
                 " WHERE study=? AND number=? AND state='running'",
                 (state, value if state != "failed" else None, time.time(), json.dumps(merged),
                  self.tuner_study, handle.number))

    def trials(self) -> list[TunerTrial]:
        rows = self._conn.execute(
            "SELECT number, state, params, value, intermediate, started, finished, attrs"
            " FROM rtrials WHERE study=? ORDER BY number", (self.tuner_study,)).fetchall()
        return [TunerTrial(number=r[0], state=r[1], params=json.loads(r[2]), value=r[3],
                            intermediate=[(int(s), float(v)) for s, v in json.loads(r[4])],
                            started=r[5], finished=r[6], attrs=json.loads(r[7] or "{}"))
                for r in rows]

    def fail_trial(self, number: int, attrs: dict[str, Any]) -> bool:
        row = self._conn.execute("SELECT attrs FROM rtrials WHERE study=? AND number=?",
                                 (self.tuner_study, number)).fetchone()
        if row is None:
            return False
        merged = {**json.loads(row[0] or "{}"), **attrs}
        cur = self._tx("UPDATE rtrials SET state='failed', finished=?, attrs=?"
                       " WHERE study=? AND number=? AND state='running'",
                       (time.time(), json.dumps(merged), self.tuner_study, number))
        return cur.rowcount > 0

    def set_stop(self, flag: bool) -> None:
        self._tx("UPDATE rstudies SET stop=? WHERE name=?", (int(flag), self.tuner_study))

    def stop_requested(self) -> bool:
        row = self._conn.execute("SELECT stop FROM rstudies WHERE name=?",
                                 (self.tuner_study,)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self._conn.close()
