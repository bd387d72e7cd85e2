"""Numbered schema migrations and connection setup shared by the async store and workers.

The schema version lives in ``PRAGMA user_version``. A database newer than this code knows is
refused, never silently used.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Migration 8's backfill, written out for the sizes engine/metric_rollup.py had then (64
# points a level-0 bucket, 4 buckets of a level in one above, levels 0-11); a key has level L
# when level L-1 has more than one bucket. A sum that is NaN (inf - inf) is NULL, as NaN is.
_ROLLUP_BACKFILL = """
    INSERT INTO metric_rollup SELECT key_id, 0, ord / 64 AS idx, COUNT(*), SUM(value IS NULL),
        MIN(value), MAX(value), SUM(value), MIN(step), MAX(step), MIN(wall), MAX(wall),
        MIN(epoch), MAX(epoch), MIN(id), MAX(id)
    FROM (SELECT key_id, id, step, value, wall, epoch,
                 ROW_NUMBER() OVER (PARTITION BY key_id ORDER BY id) - 1 AS ord FROM metrics)
    GROUP BY key_id, idx;
""" + "".join(f"""
    INSERT INTO metric_rollup SELECT key_id, {level}, idx / 4 AS up, SUM(n), SUM(nans),
        MIN(vmin), MAX(vmax),
        CASE WHEN SUM(vsum IS NULL AND n > nans) THEN NULL ELSE SUM(vsum) END,
        MIN(step_lo), MAX(step_hi), MIN(wall_lo), MAX(wall_hi), MIN(epoch_lo), MAX(epoch_hi),
        MIN(id_lo), MAX(id_hi)
    FROM metric_rollup
    WHERE level = {level - 1} AND key_id IN (
        SELECT k.id FROM metric_keys k WHERE EXISTS (SELECT 1 FROM metric_rollup s
            WHERE s.key_id = k.id AND s.level = {level - 1} AND s.idx = 1))
    GROUP BY key_id, up;
""" for level in range(1, 12))

MIGRATIONS: list[str] = [
    # 1: core tables
    """
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        adapter TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        objective TEXT,
        direction TEXT CHECK (direction IN ('minimize', 'maximize')),
        tags TEXT NOT NULL DEFAULT '[]',
        notes TEXT NOT NULL DEFAULT '',
        origin TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        source TEXT NOT NULL DEFAULT 'job',
        pid INTEGER,
        host TEXT,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        summary TEXT,
        steps INTEGER,
        epochs REAL,
        error TEXT,
        UNIQUE (experiment_id, number)
    );
    CREATE TABLE metric_keys (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        UNIQUE (run_id, key)
    );
    -- value NULL encodes NaN (SQLite stores NaN as NULL); +-inf are stored as REAL.
    -- Clustered by (key, id): appends stay cheap with no secondary index, and reading one
    -- key is a range scan. ids come from the metric_seq counter, so they grow in commit
    -- order and serve as the cursor of incremental reads.
    CREATE TABLE metrics (
        key_id INTEGER NOT NULL REFERENCES metric_keys(id) ON DELETE CASCADE,
        id INTEGER NOT NULL,
        step INTEGER NOT NULL,
        value REAL,
        wall REAL NOT NULL,
        epoch REAL,
        PRIMARY KEY (key_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE metric_seq (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    );
    INSERT INTO metric_seq(id, last) VALUES (1, 0);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued','running','completed','failed','cancelled')),
        run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        target TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL DEFAULT '{}',
        progress REAL NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        result TEXT,
        error TEXT,
        exit_code INTEGER,
        pid INTEGER,
        host TEXT,
        heartbeat REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        started REAL,
        finished REAL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE TABLE eval_results (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        checkpoint TEXT,
        view_type TEXT NOT NULL,
        data TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE TABLE indexes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        checkpoint TEXT NOT NULL,
        path TEXT NOT NULL,
        job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        info TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE TABLE scheduler_lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        mode TEXT NOT NULL,
        heartbeat REAL NOT NULL,
        started REAL NOT NULL
    );
    """,
    # 2: hyperparameter studies (engine/studies) and their trials mirrored from the search engine
    """
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
        trials_experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
        adapter TEXT NOT NULL,
        base_config TEXT NOT NULL DEFAULT '{}',
        space TEXT NOT NULL DEFAULT '{}',
        settings TEXT NOT NULL DEFAULT '{}',
        engine TEXT NOT NULL,
        storage TEXT NOT NULL,
        engine_study TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'created',
        job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        importance TEXT,
        error TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running','complete','pruned','failed')),
        params TEXT NOT NULL DEFAULT '{}',
        value REAL,
        intermediate TEXT NOT NULL DEFAULT '[]',
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        pid INTEGER,
        host TEXT,
        started REAL,
        finished REAL,
        error TEXT,
        UNIQUE (study_id, number)
    );
    CREATE INDEX trials_state ON trials(state);
    """,
    # 3: liveness: the start time of the process behind a pid (a reused pid is not the
    # worker), and a job's last output other than its heartbeat (stall detection)
    """
    ALTER TABLE jobs ADD COLUMN pid_started REAL;
    ALTER TABLE jobs ADD COLUMN activity REAL;
    ALTER TABLE runs ADD COLUMN pid_started REAL;
    """,
    # 4: a study's search back end is its "tuner" (the word "engine" names the Engine class)
    """
    ALTER TABLE studies RENAME COLUMN engine TO tuner;
    ALTER TABLE studies RENAME COLUMN engine_study TO tuner_study;
    """,
    # 5: resources (engine/placement.py): what an experiment's jobs ask for (GPUs, a minimum
    # of free memory per GPU); what a job asked for (NULL: inherited, resolved when claimed),
    # the devices it was given and when, and why a queued job waits
    """
    ALTER TABLE experiments ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE experiments ADD COLUMN gpu_mem_mb INTEGER;
    ALTER TABLE jobs ADD COLUMN gpus INTEGER;
    ALTER TABLE jobs ADD COLUMN gpu_mem_mb INTEGER;
    ALTER TABLE jobs ADD COLUMN devices TEXT;
    ALTER TABLE jobs ADD COLUMN devices_at REAL;
    ALTER TABLE jobs ADD COLUMN resource_note TEXT;
    """,
    # 6: a trial stopped by a cancel is "cancelled", not "failed" (it used no slot and says
    # nothing about its params). SQLite cannot change a CHECK: the table is rebuilt, and the
    # trials mirrored before as failed with the note "cancelled" become cancelled.
    """
    CREATE TABLE trials_new (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('running','complete','pruned','failed','cancelled')),
        params TEXT NOT NULL DEFAULT '{}',
        value REAL,
        intermediate TEXT NOT NULL DEFAULT '[]',
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        pid INTEGER,
        host TEXT,
        started REAL,
        finished REAL,
        error TEXT,
        UNIQUE (study_id, number)
    );
    INSERT INTO trials_new SELECT id, study_id, number,
        CASE WHEN state = 'failed' AND error = 'cancelled' THEN 'cancelled' ELSE state END,
        params, value, intermediate, run_id, pid, host, started, finished, error FROM trials;
    DROP TABLE trials;
    ALTER TABLE trials_new RENAME TO trials;
    CREATE INDEX trials_state ON trials(state);
    """,
    # 7: lists at scale (issue 14). A run row shows its newest training job: without an index
    # on jobs(run_id) each run scanned the jobs table (listing 10,000 runs took 6 s, 100,000
    # would take ten minutes), as did deleting a run's jobs with it. Experiments are listed by
    # their last change, a page at a time (keyset on (updated, id)).
    """
    CREATE INDEX jobs_run ON jobs(run_id, type);
    CREATE INDEX experiments_updated ON experiments(updated);
    """,
    # 8: metric rollups (issue 14, engine/metric_rollup.py): a chart of a 10M-point metric
    # reads a few hundred buckets, not the points. The metric writer keeps them in the
    # transaction that stores the points; this backfills the points stored before.
    """
    CREATE TABLE metric_rollup (
        key_id INTEGER NOT NULL REFERENCES metric_keys(id) ON DELETE CASCADE,
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        n INTEGER NOT NULL,
        nans INTEGER NOT NULL,
        vmin REAL,
        vmax REAL,
        vsum REAL,
        step_lo INTEGER NOT NULL,
        step_hi INTEGER NOT NULL,
        wall_lo REAL NOT NULL,
        wall_hi REAL NOT NULL,
        epoch_lo REAL,
        epoch_hi REAL,
        id_lo INTEGER NOT NULL,
        id_hi INTEGER NOT NULL,
        PRIMARY KEY (key_id, level, idx)
    ) WITHOUT ROWID;
    """ + _ROLLUP_BACKFILL,
    # 9: jobs on Slurm (issue 16, engine/slurm.py): the Slurm job id, what Slurm last said of
    # it ("PENDING (Resources)", "RUNNING on node1"), and how far the scheduler has applied
    # the job's spool (engine/spool.py): the byte offset and the last record's number, stored
    # in the transaction that applies the records, so each is applied exactly once.
    """
    ALTER TABLE jobs ADD COLUMN slurm_id TEXT;
    ALTER TABLE jobs ADD COLUMN slurm_state TEXT;
    ALTER TABLE jobs ADD COLUMN spool_offset INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN spool_seq INTEGER NOT NULL DEFAULT 0;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


class SchemaTooNewError(RuntimeError):
    pass


def check_version(found: int, path: Path | str) -> None:
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path} has schema version {found}, but this labdeck knows only up to "
            f"{SCHEMA_VERSION}; upgrade labdeck (refusing to open it)"
        )


def migrate_sync(conn: sqlite3.Connection, path: Path | str) -> int:
    """Apply pending migrations on a plain sqlite3 connection (autocommit mode)."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    check_version(found, path)
    for number in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # re-check under the write lock: another process may have migrated
            now = conn.execute("PRAGMA user_version").fetchone()[0]
            if now > number:
                conn.execute("COMMIT")
                continue
            for stmt in _split(MIGRATIONS[number]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _split(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if line.rstrip().endswith(";") and sqlite3.complete_statement(joined):
            out.append(joined.strip())
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out


def connect_sync(path: Path | str, migrate: bool = True) -> sqlite3.Connection:
    """A sqlite3 connection configured like the engine's (workers, tracking, CLI helpers)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    for p in PRAGMAS:
        conn.execute(p)
    if migrate:
        migrate_sync(conn, path)
    else:
        check_version(conn.execute("PRAGMA user_version").fetchone()[0], path)
    return conn


def set_busy_timeout(conn: sqlite3.Connection, ms: int) -> None:
    """How long this connection waits for another's write lock before "database is locked"."""
    conn.execute(f"PRAGMA busy_timeout={int(ms)}")


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits: a cheap "anything new?" probe."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


class write_tx:
    """``with write_tx(conn):`` -> BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error). Inside a
    transaction already open on ``conn`` it joins that one: the outer block commits or rolls
    back everything (the scheduler applies a spool's records and its offset together)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.joined = False

    def __enter__(self) -> sqlite3.Connection:
        if self.conn.in_transaction:
            self.joined = True
            return self.conn
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.joined:
            return  # the outer transaction's: an error propagates and rolls it back
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                if self.conn.in_transaction:  # a failed COMMIT may leave it open
                    self.conn.execute("ROLLBACK")
                raise
        # SQLite rolls some errors back by itself (SQLITE_FULL, SQLITE_IOERR, ...): a second
        # ROLLBACK would fail and hide the error that matters
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
