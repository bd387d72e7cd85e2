"""Optuna as a labdeck search engine: TPE sampling, median / hyperband pruning, any Optuna
storage (labdeck's default: ``sqlite:///<home>/studies/optuna.db``), so ``optuna-dashboard``
and ``optuna.load_study`` see exactly the trials labdeck ran.

Exactly ``n_trials``: the study's slots are WAITING "token" trials in a companion study
(``<name>:labdeck-slots``, same storage). A worker first claims a token with the storage's
atomic WAITING -> RUNNING transition (a row lock on PostgreSQL / MySQL, ``BEGIN IMMEDIATE`` on
SQLite), and only then asks the real study for a trial, so k workers make exactly n_trials
trials, none twice. (Tokens live apart because Optuna's trial cache re-reads every
unfinished trial on each sampler / pruner call: n WAITING trials in the real study would make
every trial O(n) slower.) RDB storages get Optuna's trial heartbeat, so a trial whose worker died on any
machine is failed by ``fail_stale`` after the grace period (labdeck's pid rule fails same-host
ones at once).

Per trial, on an RDB storage, labdeck adds two short transactions to what Optuna's own
ask/tell does: the claim (the first waiting token -> RUNNING) and, once the trial exists, its
worker attributes, its first heartbeat and the token's end (COMPLETE, value = the trial
number) together. Both are SQLAlchemy Core statements on Optuna's own tables (a fraction of
the ORM's cost); should they fail (an unexpected schema) the public storage API does the same
writes. Later heartbeats come from one thread per worker, every ``HEARTBEAT_S``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .base import BaseSearchEngine, EngineTrial, TrialHandle, count_slots
from .space import ParamSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


DEF_ATTR = "labdeck:definition"
STOP_ATTR = "labdeck:stop"
TRIAL_ATTR = "labdeck"
SLOTS_SUFFIX = ":labdeck-slots"
HEARTBEAT_S = 5
GRACE_S = 20

_STATE = {TrialState.WAITING: "waiting", TrialState.RUNNING: "running",
          TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
          TrialState.FAIL: "failed"}
_TO_OPTUNA = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
              "failed": TrialState.FAIL}


def open_storage(url: str) -> Any:
    """An Optuna storage for a URL: RDB (sqlite/postgresql/mysql, with heartbeat) or a journal
    file (``journal:///path`` or a path ending in .log / .jsonl)."""
    if url.startswith("journal://") or url.endswith((".log", ".jsonl")):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal://")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
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
    if storage.engine.name == "sqlite":
        _serialize_sqlite(storage.engine)
    return storage


def _serialize_sqlite(engine: Any) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` (and commits cheap, see below).

    Optuna claims a WAITING trial with SELECT ... FOR UPDATE, then UPDATE. SQLite has no row
    locks and Python's sqlite3 driver starts its transaction only at the UPDATE, so two
    workers could both read WAITING and both run the trial (seen in tests). Taking the write
    lock at BEGIN makes the read-check-write atomic (SQLAlchemy's documented pysqlite recipe).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:  # noqa: ARG001
        dbapi_conn.isolation_level = None  # the driver must not issue its own BEGIN
        # WAL + NORMAL, as labdeck's own database: no fsync per commit, still crash-safe
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # pooled connections made before the listeners existed


def suggest(trial: optuna.Trial, name: str, p: ParamSpec) -> Any:
    if p.kind == "float":
        return trial.suggest_float(name, float(p.low), float(p.high), log=p.log)  # type: ignore[arg-type]
    if p.kind == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), log=p.log)  # type: ignore[arg-type]
    if p.kind == "categorical":
        return trial.suggest_categorical(name, list(p.choices or ()))
    raise ValueError(f"parameter kind {p.kind!r} is not searched")


class OptunaEngine(BaseSearchEngine):
    name = "optuna"
    description = "Optuna TPE sampler; pruners none / median / hyperband; any Optuna storage"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._storage = open_storage(self.storage)
        self._study: optuna.Study | None = None
        self._sid: int | None = None
        self._slots_sid: int | None = None
        # trial id -> the worker attributes stored on it (merged into the end attributes)
        self._attrs: dict[int, dict[str, Any]] = {}
        self._beating: set[int] = set()  # trial ids the heartbeat thread beats
        self._hb_lock = threading.Lock()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._interval = getattr(self._storage, "get_heartbeat_interval", lambda: None)()
        self._sql: dict[str, Any] | None = None

    @classmethod
    def default_storage(cls, home: Path) -> str:
        return f"sqlite:///{Path(home) / 'studies' / 'optuna.db'}"

    @classmethod
    def load_definition(cls, storage: str, engine_study: str) -> dict[str, Any] | None:
        study = optuna.load_study(study_name=engine_study, storage=open_storage(storage))
        return study.user_attrs.get(DEF_ATTR)

    # -- study ---------------------------------------------------------------------------

    def _sampler(self) -> Any:
        seed = self.definition.settings.seed
        if seed is not None:
            seed = int(seed) + self.worker_index  # workers must not draw the same numbers
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self) -> Any:
        s = self.definition.settings
        opts = dict(self.definition.extra.get("pruner_options") or {})
        if s.pruner == "median":
            return optuna.pruners.MedianPruner(**opts)
        if s.pruner == "hyperband":
            opts.setdefault("min_resource", 1)
            return optuna.pruners.HyperbandPruner(**opts)
        return optuna.pruners.NopPruner()

    @property
    def _study_id(self) -> int:
        if self._sid is None:
            self._sid = self._storage.get_study_id_from_name(self.engine_study)
        return self._sid

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = optuna.load_study(study_name=self.engine_study, storage=self._storage,
                                            sampler=self._sampler(), pruner=self._pruner())
        return self._study

    @property
    def _slots_id(self) -> int:
        if self._slots_sid is None:
            self._slots_sid = self._storage.get_study_id_from_name(self.slots_study)
        return self._slots_sid

    @property
    def slots_study(self) -> str:
        return f"{self.engine_study}{SLOTS_SUFFIX}"

    def create(self) -> None:
        self._study = optuna.create_study(
            study_name=self.engine_study, storage=self._storage, sampler=self._sampler(),
            pruner=self._pruner(), direction=self.definition.settings.direction,
            load_if_exists=True)
        self._study.set_user_attr(DEF_ATTR, {**self.definition.to_json(),
                                             "extra": self.definition.extra})
        self._study.set_user_attr("labdeck:slots_study", self.slots_study)
        slots = optuna.create_study(study_name=self.slots_study, storage=self._storage,
                                    load_if_exists=True)
        slots.set_user_attr("labdeck:slots_of", self.engine_study)
        self.ensure_slots(self.definition.settings.n_trials)

    def ensure_slots(self, n_trials: int) -> int:
        waiting = len(self._waiting_ids(limit=None))
        missing = n_trials - count_slots(self.trials()) - waiting
        for _ in range(max(0, missing)):
            self._storage.create_new_trial(
                self._slots_id, template_trial=optuna.trial.create_trial(
                    state=TrialState.WAITING, system_attrs={"fixed_params": {}}))
        return max(0, missing)

    # -- trials --------------------------------------------------------------------------

    def _claim_slot(self) -> int | None:
        if getattr(self._storage, "engine", None) is not None:
            try:
                return self._claim_slot_sql()
            except Exception:  # noqa: BLE001 - rolled back: claim through the public API
                pass
        return self._claim_slot_api()

    def _statements(self) -> dict[str, Any]:
        """SQLAlchemy Core statements on Optuna's tables, built once (then only their
        compiled form is looked up per execution)."""
        if self._sql is None:
            from optuna.storages._rdb.models import (
                TrialHeartbeatModel,
                TrialModel,
                TrialUserAttributeModel,
                TrialValueModel,
            )
            from sqlalchemy import bindparam, insert, select, update

            t = TrialModel.__table__
            self._sql = {
                "waiting": select(t.c.trial_id)
                .where(t.c.study_id == bindparam("sid"), t.c.state == TrialState.WAITING)
                .order_by(t.c.number).limit(16),
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
        return self._sql

    def _claim_slot_sql(self) -> int | None:
        """One transaction: the first waiting token -> RUNNING. ``BEGIN IMMEDIATE`` on
        SQLite; elsewhere the conditional UPDATE re-checks the state under the row lock, so
        two workers never both see rowcount 1 for one token."""
        sql = self._statements()
        sid = self._slots_id
        with self._storage.engine.begin() as conn:
            while True:
                ids = conn.execute(sql["waiting"], {"sid": sid}).scalars().all()
                if not ids:
                    return None
                for token_id in ids:
                    claimed = conn.execute(sql["claim"], {"tid": token_id,
                                                          "now": datetime.now()})
                    if claimed.rowcount == 1:
                        return int(token_id)

    def _claim_slot_api(self) -> int | None:
        from optuna.exceptions import UpdateFinishedTrialError

        for token_id in self._waiting_ids():
            try:
                if self._storage.set_trial_state_values(token_id, state=TrialState.RUNNING):
                    return token_id
            except UpdateFinishedTrialError:
                continue
        return None

    def _waiting_ids(self, limit: int | None = 16) -> list[int]:
        """Waiting slot tokens. On an RDB storage one indexed query on Optuna's ``trials``
        table; elsewhere the public API (which loads each token with its attributes)."""
        engine = getattr(self._storage, "engine", None)
        if engine is not None:
            try:
                from sqlalchemy import text

                sql = ("SELECT trial_id FROM trials WHERE study_id = :sid AND state = 'WAITING'"
                       " ORDER BY number" + (f" LIMIT {int(limit)}" if limit else ""))
                with engine.connect() as conn:
                    rows = conn.execute(text(sql), {"sid": self._slots_id}).fetchall()
                return [int(r[0]) for r in rows]
            except Exception:  # noqa: BLE001 - an unexpected schema: use the public API
                pass
        return [t._trial_id for t in self._storage.get_all_trials(
            self._slots_id, deepcopy=False, states=(TrialState.WAITING,))]

    def waiting_slots(self) -> int:
        return len(self._waiting_ids(limit=None))

    def ask(self, attrs: dict[str, Any]) -> TrialHandle | None:
        token_id = self._claim_slot()
        if token_id is None:
            return None
        with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize"
            warnings.simplefilter("ignore")
            trial = self.study.ask()
        self._started(trial._trial_id, trial.number, token_id, attrs)
        params = {name: suggest(trial, name, p)
                  for name, p in self.definition.space.items() if p.searched}
        return TrialHandle(number=trial.number, params=params, native=trial)

    def report(self, handle: TrialHandle, step: int, value: float) -> bool:
        trial: optuna.Trial = handle.native
        trial.report(float(value), step)
        return self.definition.settings.pruner != "none" and trial.should_prune()

    def tell(self, handle: TrialHandle, state: str, value: float | None = None,
             attrs: dict[str, Any] | None = None) -> None:
        trial: optuna.Trial = handle.native
        self._stop_heartbeat(trial._trial_id)
        started = self._attrs.pop(trial._trial_id, None) or {}
        if attrs:
            merged = {**(trial.user_attrs.get(TRIAL_ATTR) or {}), **started, **attrs}
            trial.set_user_attr(TRIAL_ATTR, merged)
        values = float(value) if state == "complete" else None  # type: ignore[arg-type]
        optuna_state = None if state == "complete" else _TO_OPTUNA[state]
        try:
            from optuna.study._tell import _tell_with_warning
        except ImportError:  # Study.tell, which also reads the finished trial back and copies it
            self.study.tell(trial, values, state=optuna_state)
        else:  # what Study.tell and Study.optimize call, minus the read-back copy
            _tell_with_warning(study=self.study, trial=trial, value_or_values=values,
                               state=optuna_state)

    def _frozen(self, states: tuple[TrialState, ...] | None = None) -> list[Any]:
        """The study's trials. Once this worker has loaded the study, through its cached
        storage: finished trials never change, so only unfinished and new ones are read."""
        if self._study is not None:
            return self._study.get_trials(deepcopy=False, states=states)
        return self._storage.get_all_trials(self._study_id, deepcopy=False, states=states)

    def trials(self) -> list[EngineTrial]:
        return [self._record(t) for t in self._frozen()]

    @staticmethod
    def _record(t: Any) -> EngineTrial:
        return EngineTrial(
            number=t.number, state=_STATE[t.state], params=dict(t.params),
            value=t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            intermediate=sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
            started=t.datetime_start.timestamp() if t.datetime_start else None,
            finished=t.datetime_complete.timestamp() if t.datetime_complete else None,
            attrs=dict(t.user_attrs.get(TRIAL_ATTR) or {}))

    def fail_trial(self, number: int, attrs: dict[str, Any]) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        trial_id = self._storage.get_trial_id_from_study_id_trial_number(
            self._study_id, number)
        frozen = self._storage.get_trial(trial_id)
        if frozen.state != TrialState.RUNNING:
            return False
        merged = {**(frozen.user_attrs.get(TRIAL_ATTR) or {}), **attrs}
        try:
            self._storage.set_trial_user_attr(trial_id, TRIAL_ATTR, merged)
            return bool(self._storage.set_trial_state_values(trial_id, state=TrialState.FAIL))
        except UpdateFinishedTrialError:
            return False

    def running_trials(self) -> list[EngineTrial]:
        return [self._record(t) for t in self._frozen((TrialState.RUNNING,))]

    def fail_stale(self) -> list[int]:
        failed = super().fail_stale()
        if getattr(self._storage, "get_heartbeat_interval", lambda: None)():
            before = {t.number for t in self.running_trials()}
            if before:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
                after = {t.number for t in self.running_trials()}
                failed += sorted(before - after - set(failed))
        return failed

    def set_stop(self, flag: bool) -> None:
        self.study.set_user_attr(STOP_ATTR, bool(flag))

    def stop_requested(self) -> bool:
        return bool(self._storage.get_study_user_attrs(self._study_id).get(STOP_ATTR))

    def importance(self, trials: list[EngineTrial] | None = None) -> dict[str, float]:
        searched = self.definition.searched
        done = [t for t in (trials or self.trials()) if t.state == "complete"]
        if len({tuple(sorted(map(str, t.params.items()))) for t in done}) >= 2:
            try:
                from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

                imp = get_param_importances(self.study, evaluator=PedAnovaImportanceEvaluator(),
                                            params=searched)
                if imp and sum(imp.values()) > 0:
                    return {k: float(v) for k, v in imp.items()}
            except (ValueError, RuntimeError, ZeroDivisionError):
                pass
        return super().importance(trials)

    # -- trial start and heartbeat (Study.optimize beats itself; we run trials by ask/tell) -

    def _started(self, trial_id: int, number: int, token_id: int,
                 attrs: dict[str, Any]) -> None:
        """Store the worker's pid/host on the trial, beat its heartbeat once and mark the
        slot token used (its value is the trial number); then the heartbeat thread beats it
        every ``HEARTBEAT_S`` until ``tell``."""
        self._attrs[trial_id] = dict(attrs)
        done = False
        if getattr(self._storage, "engine", None) is not None:
            try:
                self._started_sql(trial_id, number, token_id, attrs)
                done = True
            except Exception:  # noqa: BLE001 - rolled back: the same writes, public API
                pass
        if not done:
            self._started_api(trial_id, number, token_id, attrs)
        if self._interval:
            with self._hb_lock:
                self._beating.add(trial_id)
                if self._hb_thread is None:
                    self._hb_thread = threading.Thread(target=self._beat, daemon=True,
                                                       name="labdeck-heartbeat")
                    self._hb_thread.start()

    def _started_sql(self, trial_id: int, number: int, token_id: int,
                     attrs: dict[str, Any]) -> None:
        sql = self._statements()
        stored, value_type = sql["stored_value"](float(number))
        with self._storage.engine.begin() as conn:
            conn.execute(sql["user_attr"], {"trial_id": trial_id, "key": TRIAL_ATTR,
                                            "value_json": json.dumps(attrs)})
            if self._interval:
                conn.execute(sql["heartbeat"], {"trial_id": trial_id})
            conn.execute(sql["token_done"], {"tid": token_id, "now": datetime.now()})
            conn.execute(sql["token_value"], {"trial_id": token_id, "objective": 0,
                                              "value": stored, "value_type": value_type})

    def _started_api(self, trial_id: int, number: int, token_id: int,
                     attrs: dict[str, Any]) -> None:
        self._storage.set_trial_user_attr(trial_id, TRIAL_ATTR, attrs)
        self._storage.set_trial_state_values(token_id, state=TrialState.COMPLETE,
                                             values=[float(number)])
        if self._interval:
            self._storage.record_heartbeat(trial_id)

    def _beat(self) -> None:
        while not self._hb_stop.wait(self._interval):
            with self._hb_lock:
                ids = sorted(self._beating)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def _stop_heartbeat(self, trial_id: int) -> None:
        """No more beats for a trial (one already under way may still land: harmless, the
        heartbeat only counts while the trial is RUNNING)."""
        with self._hb_lock:
            self._beating.discard(trial_id)

    def close(self) -> None:
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=30)
        with self._hb_lock:
            self._beating.clear()
            self._hb_thread, self._hb_stop = None, threading.Event()
        remove = getattr(self._storage, "remove_session", None)
        if remove:
            remove()
