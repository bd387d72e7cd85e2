"""Optuna as a labdeck tuner: TPE sampling, median / hyperband pruning, any Optuna
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

What labdeck adds to Optuna's own storage writes per trial (slot claim, start writes,
heartbeat) lives in ``optuna_storage``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .optuna_storage import TRIAL_ATTR, Heartbeat, SlotTokens, open_storage
from .space import ParamSpec
from .tuner import BaseTuner, TrialHandle, TunerTrial, count_slots

optuna.logging.set_verbosity(optuna.logging.WARNING)


DEF_ATTR = "labdeck:definition"
STOP_ATTR = "labdeck:stop"
SLOTS_SUFFIX = ":labdeck-slots"

_STATE = {TrialState.WAITING: "waiting", TrialState.RUNNING: "running",
          TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
          TrialState.FAIL: "failed"}
_TO_OPTUNA = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
              "failed": TrialState.FAIL}


def suggest(trial: optuna.Trial, name: str, p: ParamSpec) -> Any:
    if p.kind == "float":
        lo, hi = p.bounds()
        return trial.suggest_float(name, float(lo), float(hi), log=p.log)
    if p.kind == "int":
        lo, hi = p.bounds()
        return trial.suggest_int(name, int(lo), int(hi), log=p.log)
    if p.kind == "categorical":
        return trial.suggest_categorical(name, list(p.choices or ()))
    raise ValueError(f"parameter kind {p.kind!r} is not searched")


class OptunaTuner(BaseTuner):
    name = "optuna"
    description = "Optuna TPE sampler; pruners none / median / hyperband; any Optuna storage"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._storage = open_storage(self.storage)
        self._study: optuna.Study | None = None
        self._sid: int | None = None
        self._slots_sid: int | None = None
        self._tokens = SlotTokens(self._storage, self._slots_id)
        # trial id -> the worker attributes stored on it (merged into the end attributes)
        self._attrs: dict[int, dict[str, Any]] = {}
        interval = getattr(self._storage, "get_heartbeat_interval", lambda: None)()
        self._heartbeat = Heartbeat(self._storage, interval) if interval else None

    @classmethod
    def default_storage(cls, home: Path) -> str:
        return f"sqlite:///{Path(home) / 'studies' / 'optuna.db'}"

    @classmethod
    def load_definition(cls, storage: str, tuner_study: str) -> dict[str, Any] | None:
        study = optuna.load_study(study_name=tuner_study, storage=open_storage(storage))
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
            self._sid = self._storage.get_study_id_from_name(self.tuner_study)
        return self._sid

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = optuna.load_study(study_name=self.tuner_study, storage=self._storage,
                                            sampler=self._sampler(), pruner=self._pruner())
        return self._study

    def _slots_id(self) -> int:
        if self._slots_sid is None:
            self._slots_sid = self._storage.get_study_id_from_name(self.slots_study)
        return self._slots_sid

    @property
    def slots_study(self) -> str:
        return f"{self.tuner_study}{SLOTS_SUFFIX}"

    def create(self) -> None:
        self._study = optuna.create_study(
            study_name=self.tuner_study, storage=self._storage, sampler=self._sampler(),
            pruner=self._pruner(),
            direction="maximize" if self.definition.settings.direction == "maximize" else "minimize",
            load_if_exists=True)
        self._study.set_user_attr(DEF_ATTR, {**self.definition.to_json(),
                                             "extra": self.definition.extra})
        self._study.set_user_attr("labdeck:slots_study", self.slots_study)
        slots = optuna.create_study(study_name=self.slots_study, storage=self._storage,
                                    load_if_exists=True)
        slots.set_user_attr("labdeck:slots_of", self.tuner_study)
        self.ensure_slots(self.definition.settings.n_trials)

    def ensure_slots(self, n_trials: int) -> int:
        missing = max(0, n_trials - count_slots(self.trials()) - self.waiting_slots())
        self._tokens.add(missing)
        return missing

    # -- trials --------------------------------------------------------------------------

    def _claim_slot(self) -> int | None:
        if self._tokens.rdb:
            try:
                return self._claim_slot_sql()
            except Exception:  # noqa: BLE001 - rolled back: claim through the public API
                pass
        return self._claim_slot_api()

    def _claim_slot_sql(self) -> int | None:
        return self._tokens.claim_sql()

    def _claim_slot_api(self) -> int | None:
        return self._tokens.claim_api()

    def waiting_slots(self) -> int:
        return len(self._tokens.waiting(limit=None))

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
        if self._heartbeat is not None:
            self._heartbeat.discard(trial._trial_id)
        started = self._attrs.pop(trial._trial_id, None) or {}
        if attrs:
            merged = {**(trial.user_attrs.get(TRIAL_ATTR) or {}), **started, **attrs}
            trial.set_user_attr(TRIAL_ATTR, merged)
        values = float(value) if state == "complete" and value is not None else None
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

    def trials(self) -> list[TunerTrial]:
        return [self._record(t) for t in self._frozen()]

    @staticmethod
    def _record(t: Any) -> TunerTrial:
        return TunerTrial(
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

    def running_trials(self) -> list[TunerTrial]:
        return [self._record(t) for t in self._frozen((TrialState.RUNNING,))]

    def fail_stale(self) -> list[int]:
        failed = super().fail_stale()
        if self._heartbeat is not None:
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

    def importance(self, trials: list[TunerTrial] | None = None) -> dict[str, float]:
        searched = self.definition.searched
        if trials is None:  # read once, for both the check and the fallback
            trials = self.trials()
        done = [t for t in trials if t.state == "complete"]
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

    def _started(self, trial_id: int, number: int, token_id: int,
                 attrs: dict[str, Any]) -> None:
        """Store the worker's pid/host on the trial, beat its heartbeat once and mark the
        slot token used; then the heartbeat thread beats it every ``HEARTBEAT_S`` until
        ``tell``."""
        self._attrs[trial_id] = dict(attrs)
        done = False
        if self._tokens.rdb:
            try:
                self._started_sql(trial_id, number, token_id, attrs)
                done = True
            except Exception:  # noqa: BLE001 - rolled back: the same writes, public API
                pass
        if not done:
            self._started_api(trial_id, number, token_id, attrs)
        if self._heartbeat is not None:
            self._heartbeat.add(trial_id)

    def _started_sql(self, trial_id: int, number: int, token_id: int,
                     attrs: dict[str, Any]) -> None:
        self._tokens.started_sql(trial_id, number, token_id, attrs, self._heartbeat is not None)

    def _started_api(self, trial_id: int, number: int, token_id: int,
                     attrs: dict[str, Any]) -> None:
        self._tokens.started_api(trial_id, number, token_id, attrs, self._heartbeat is not None)

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.close()
        remove = getattr(self._storage, "remove_session", None)
        if remove:
            remove()
