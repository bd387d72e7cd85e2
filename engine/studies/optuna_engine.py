"""Optuna as a labdeck search engine: TPE sampling, median / hyperband pruning, any Optuna
storage (labdeck's default: ``sqlite:///<home>/studies/optuna.db``), so ``optuna-dashboard``
and ``optuna.load_study`` see exactly the trials labdeck ran.

Trial slots are enqueued WAITING trials; ``ask`` pops one with the storage's atomic
WAITING -> RUNNING transition and never creates a trial, which keeps k workers at exactly
``n_trials``. RDB storages get Optuna's trial heartbeat, so a trial whose worker died on any
machine is failed by ``fail_stale`` after the grace period (labdeck's pid rule fails same-host
ones at once).
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
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
    """Make every SQLite transaction ``BEGIN IMMEDIATE``.

    Optuna claims a WAITING trial with SELECT ... FOR UPDATE, then UPDATE. SQLite has no row
    locks and Python's sqlite3 driver starts its transaction only at the UPDATE, so two
    workers could both read WAITING and both run the trial (seen in tests). Taking the write
    lock at BEGIN makes the read-check-write atomic (SQLAlchemy's documented pysqlite recipe).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:  # noqa: ARG001
        dbapi_conn.isolation_level = None  # the driver must not issue its own BEGIN

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
        self._hb: dict[int, threading.Event] = {}
        self._sid: int | None = None

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

    def create(self) -> None:
        self._study = optuna.create_study(
            study_name=self.engine_study, storage=self._storage, sampler=self._sampler(),
            pruner=self._pruner(), direction=self.definition.settings.direction,
            load_if_exists=True)
        self._study.set_user_attr(DEF_ATTR, {**self.definition.to_json(),
                                             "extra": self.definition.extra})
        self.ensure_slots(self.definition.settings.n_trials)

    def ensure_slots(self, n_trials: int) -> int:
        missing = n_trials - count_slots(self.trials())
        for _ in range(max(0, missing)):
            self.study.enqueue_trial({})
        return max(0, missing)

    # -- trials --------------------------------------------------------------------------

    def _pop_waiting(self) -> int | None:
        from optuna.exceptions import UpdateFinishedTrialError

        for t in self._storage.get_all_trials(self._study_id, deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if self._storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                    return t._trial_id
            except UpdateFinishedTrialError:
                continue
        return None

    def ask(self, attrs: dict[str, Any]) -> TrialHandle | None:
        trial_id = self._pop_waiting()
        if trial_id is None:
            return None
        self._storage.set_trial_user_attr(trial_id, TRIAL_ATTR, attrs)
        self._start_heartbeat(trial_id)
        trial = optuna.Trial(self.study, trial_id)
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
        try:
            if attrs:
                merged = {**(trial.user_attrs.get(TRIAL_ATTR) or {}), **attrs}
                trial.set_user_attr(TRIAL_ATTR, merged)
            if state == "complete":
                self.study.tell(trial, float(value))  # type: ignore[arg-type]
            else:
                self.study.tell(trial, state=_TO_OPTUNA[state])
        finally:
            self._stop_heartbeat(trial._trial_id)

    def trials(self) -> list[EngineTrial]:
        out = []
        for t in self._storage.get_all_trials(self._study_id, deepcopy=False):
            out.append(EngineTrial(
                number=t.number, state=_STATE[t.state], params=dict(t.params),
                value=t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
                intermediate=sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
                started=t.datetime_start.timestamp() if t.datetime_start else None,
                finished=t.datetime_complete.timestamp() if t.datetime_complete else None,
                attrs=dict(t.user_attrs.get(TRIAL_ATTR) or {})))
        return out

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

    def fail_stale(self) -> list[int]:
        failed = super().fail_stale()
        if getattr(self._storage, "get_heartbeat_interval", lambda: None)():
            before = {t.number for t in self.trials() if t.state == "running"}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
            after = {t.number for t in self.trials() if t.state == "running"}
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

    # -- heartbeat (Study.optimize does this itself; we run trials through ask/tell) ------

    def _start_heartbeat(self, trial_id: int) -> None:
        interval = getattr(self._storage, "get_heartbeat_interval", lambda: None)()
        if not interval:
            return
        stop = threading.Event()
        self._hb[trial_id] = stop
        self._storage.record_heartbeat(trial_id)

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

        threading.Thread(target=beat, name="labdeck-trial-heartbeat", daemon=True).start()

    def _stop_heartbeat(self, trial_id: int) -> None:
        stop = self._hb.pop(trial_id, None)
        if stop is not None:
            stop.set()

    def close(self) -> None:
        for stop in self._hb.values():
            stop.set()
        self._hb.clear()
        remove = getattr(self._storage, "remove_session", None)
        if remove:
            remove()
