"""The Optuna storage labdeck opens, and what labdeck adds to it around Optuna's ask/tell:
the slot tokens (see optuna_tuner's docstring), the trial's start writes and the heartbeat.

Per trial, on an RDB storage, labdeck adds two short transactions to what Optuna's own
ask/tell does: the claim (the first waiting token -> RUNNING) and, once the trial exists, its
worker attributes, its first heartbeat and the token's end (COMPLETE, value = the trial
number) together. Both are SQLAlchemy Core statements on Optuna's own tables (a fraction of
the ORM's cost); should they fail (an unexpected schema) the public storage API does the same
writes. Later heartbeats come from one thread per worker, every ``HEARTBEAT_S``.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

TRIAL_ATTR = "labdeck"
HEARTBEAT_S = 5
GRACE_S = 20


def open_storage(url: str) -> Any:
    """An Optuna storage for a URL: RDB (sqlite/postgresql/mysql, with heartbeat) or a journal
    file (``journal:///path`` or a path ending in .log / .jsonl)."""
    if url.startswith("journal://") or url.endswith((".log", ".jsonl")):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = url.removeprefix("journal://")
        Path(journal).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(journal))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # WAL is a property of the file: readers never block the writers of other workers
            conn = sqlite3.connect(str(path))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.close()
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                                             grace_period=GRACE_S, **kwargs)
    if storage.engine.name == "sqlite":  # storage.engine: Optuna's SQLAlchemy engine
        serialize_sqlite(storage.engine)
    return storage


def serialize_sqlite(sa_engine: Any) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` (and commits cheap, see below).

    Optuna claims a WAITING trial with SELECT ... FOR UPDATE, then UPDATE. SQLite has no row
    locks and Python's sqlite3 driver starts its transaction only at the UPDATE, so two
    workers could both read WAITING and both run the trial (seen in tests). Taking the write
    lock at BEGIN makes the read-check-write atomic (SQLAlchemy's documented pysqlite recipe).
    """
    from sqlalchemy import event

    @event.listens_for(sa_engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:  # noqa: ARG001
        dbapi_conn.isolation_level = None  # the driver must not issue its own BEGIN
        # WAL + NORMAL, as labdeck's own database: no fsync per commit, still crash-safe
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(sa_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    sa_engine.dispose()  # pooled connections made before the listeners existed


@functools.cache
def _statements() -> dict[str, Any]:
    """SQLAlchemy Core statements on Optuna's tables, built once (then only their compiled
    form is looked up per execution)."""
    from optuna.storages._rdb.models import (
        TrialHeartbeatModel,
        TrialModel,
        TrialUserAttributeModel,
        TrialValueModel,
    )
    from sqlalchemy import bindparam, insert, select, update

    t = TrialModel.__table__
    waiting = (select(t.c.trial_id)
               .where(t.c.study_id == bindparam("sid"), t.c.state == TrialState.WAITING)
               .order_by(t.c.number))
    return {
        "waiting_all": waiting,
        "waiting": waiting.limit(16),
        "claim": update(t)
        .where(t.c.trial_id == bindparam("tid"), t.c.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=bindparam("now")),
        "token_done": update(t)
        .where(t.c.trial_id == bindparam("tid"), t.c.state == TrialState.RUNNING)
        .values(state=TrialState.COMPLETE, datetime_complete=bindparam("now")),
        "token_value": insert(TrialValueModel.__table__),
        "stored_value": TrialValueModel.value_to_stored_repr,
        "user_attr": insert(TrialUserAttributeModel.__table__),
        # the column's default is the database's current time, as Optuna's own beat
        "heartbeat": insert(TrialHeartbeatModel.__table__),
    }


class SlotTokens:
    """The WAITING "token" trials of a study's companion slots study, in ``storage``.

    ``claim`` and ``started`` come in two forms: ``*_sql`` (Core SQL on Optuna's tables, RDB
    storages only) and ``*_api`` (the public storage API, which the tuner falls back to
    should the SQL fail on an unexpected schema)."""

    def __init__(self, storage: Any, study_id: Callable[[], int]):
        self.storage = storage
        self._study_id = study_id  # resolved on first use (the study may not exist yet)
        self.rdb = getattr(storage, "engine", None) is not None

    def add(self, n: int) -> None:
        for _ in range(n):
            self.storage.create_new_trial(
                self._study_id(), template_trial=optuna.trial.create_trial(
                    state=TrialState.WAITING, system_attrs={"fixed_params": {}}))

    def waiting(self, limit: int | None = 16) -> list[int]:
        """Waiting tokens. On an RDB storage one indexed query on Optuna's ``trials``
        table; elsewhere the public API (which loads each token with its attributes)."""
        if self.rdb:
            try:
                sql = _statements()["waiting" if limit else "waiting_all"]
                with self.storage.engine.connect() as conn:
                    return [int(r) for r in conn.execute(
                        sql, {"sid": self._study_id()}).scalars().all()]
            except Exception:  # noqa: BLE001 - an unexpected schema: use the public API
                pass
        return [t._trial_id for t in self.storage.get_all_trials(
            self._study_id(), deepcopy=False, states=(TrialState.WAITING,))]

    def claim_api(self) -> int | None:
        """The first waiting token -> RUNNING; its id, or None when none is left."""
        from optuna.exceptions import UpdateFinishedTrialError

        for token_id in self.waiting():
            try:
                if self.storage.set_trial_state_values(token_id, state=TrialState.RUNNING):
                    return token_id
            except UpdateFinishedTrialError:
                continue
        return None

    def claim_sql(self) -> int | None:
        """``claim_api`` in one transaction. ``BEGIN IMMEDIATE`` on SQLite; elsewhere the conditional UPDATE
        re-checks the state under the row lock, so two workers never both see rowcount 1
        for one token."""
        sql = _statements()
        sid = self._study_id()
        with self.storage.engine.begin() as conn:
            while True:
                ids = conn.execute(sql["waiting"], {"sid": sid}).scalars().all()
                if not ids:
                    return None
                for token_id in ids:
                    claimed = conn.execute(sql["claim"], {"tid": token_id,
                                                          "now": datetime.now()})
                    if claimed.rowcount == 1:
                        return int(token_id)

    def started_api(self, trial_id: int, number: int, token_id: int, attrs: dict[str, Any],
                    beat: bool) -> None:
        """Store the worker's attributes on the trial, beat its heartbeat once (``beat``)
        and mark the token used (its value is the trial number)."""
        self.storage.set_trial_user_attr(trial_id, TRIAL_ATTR, attrs)
        self.storage.set_trial_state_values(token_id, state=TrialState.COMPLETE,
                                            values=[float(number)])
        if beat:
            self.storage.record_heartbeat(trial_id)

    def started_sql(self, trial_id: int, number: int, token_id: int, attrs: dict[str, Any],
                    beat: bool) -> None:
        """``started_api`` in one transaction."""
        sql = _statements()
        stored, value_type = sql["stored_value"](float(number))
        with self.storage.engine.begin() as conn:
            conn.execute(sql["user_attr"], {"trial_id": trial_id, "key": TRIAL_ATTR,
                                            "value_json": json.dumps(attrs)})
            if beat:
                conn.execute(sql["heartbeat"], {"trial_id": trial_id})
            conn.execute(sql["token_done"], {"tid": token_id, "now": datetime.now()})
            conn.execute(sql["token_value"], {"trial_id": token_id, "objective": 0,
                                              "value": stored, "value_type": value_type})


class Heartbeat:
    """One thread per worker that beats its running trials every ``interval`` seconds
    (Study.optimize beats itself; labdeck runs trials by ask/tell)."""

    def __init__(self, storage: Any, interval: float):
        self.storage = storage
        self.interval = interval
        self._beating: set[int] = set()  # trial ids the thread beats
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._beating.add(trial_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, daemon=True,
                                                name="labdeck-heartbeat")
                self._thread.start()

    def discard(self, trial_id: int) -> None:
        """No more beats for a trial (one already under way may still land: harmless, the
        heartbeat only counts while the trial is RUNNING)."""
        with self._lock:
            self._beating.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = sorted(self._beating)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            self._beating.clear()
            self._thread, self._stop = None, threading.Event()
