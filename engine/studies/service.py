"""Study operations as plain synchronous functions on a sqlite3 connection, and the ``Study``
record the API returns. The async ``StudiesMixin`` runs them in a thread (they may open a
tuner's storage, which is blocking); their SQL is in engine/data/studies.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import ConfigError

from ..data import experiments
from ..data import studies as data
from ..data.studies import StudyRow, Trial
from ..directions import is_system_key
from ..experiments import ConflictError, NotFoundError
from ..models import Record
from ..records import now
from ..registry import get_adapter_class
from ..schema import write_tx
from ..settings import Settings
from .mirror import open_tuner, sweep
from .space import ParamSpec, default_space, parse_param, space_to_json, validate_space
from .spec import StudySettings
from .tuner_registry import get_tuner, tuner_names

ParamInput = str | ParamSpec | Mapping[str, Any]


def _field_type(cls: Any, name: str, base: Mapping[str, Any]) -> str | None:
    try:
        return cls.config_schema().field(name).type
    except KeyError:
        v = base.get(name)
        if isinstance(v, bool):
            return None
        return "int" if isinstance(v, int) else ("float" if isinstance(v, float) else None)


def build_space(cls: Any, base: Mapping[str, Any],
                params: Mapping[str, ParamInput] | Sequence[str] | None) -> dict[str, ParamSpec]:
    """No params: every adapter default range. Otherwise only the params given; a bare
    ``NAME`` (or ``{NAME: None}``) takes the adapter's default range for it."""
    defaults = default_space(cls)
    if not params:
        return defaults
    space: dict[str, ParamSpec] = {}
    items = params.items() if isinstance(params, Mapping) else [(None, p) for p in params]
    for name, p in items:
        bare = p if isinstance(p, str) and name is None and "=" not in p else None
        if p is None or bare is not None:
            key = str(bare if bare is not None else name).strip()
            if key not in defaults:
                from .space import SpaceError

                raise SpaceError({key: f"adapter {cls.name} has no default range for it;"
                                       " give NAME=MIN:MAX[:log] or NAME=a,b,c"})
            space[key] = defaults[key]
            continue
        if isinstance(p, str):
            text = p if name is None else f"{name}={p}"
            key = text.partition("=")[0].strip()
            name, spec = parse_param(text, _field_type(cls, key, base))
        elif isinstance(p, ParamSpec):
            spec = p
        else:
            spec = ParamSpec.from_json(p)
        space[str(name)] = spec
    return space

def create_study(conn: sqlite3.Connection, settings: Settings, name: str, experiment: str,
                 params: Mapping[str, ParamInput] | Sequence[str] | None = None,
                 **opts: Any) -> StudyRow:
    name = (name or "").strip()
    if not name or any(c in name for c in "\n\r\t"):
        raise ConfigError({"name": "a study needs a one-line, non-empty name"})
    if data.study_exists(conn, name):
        raise ConflictError(f"a study named {name!r} already exists")
    exp = experiments.get_experiment(conn, experiment)
    if exp is None:
        raise NotFoundError(f"no experiment {experiment!r}")
    if "engine" in opts:  # the tuner's name before it had one of its own (deprecated)
        legacy = opts.pop("engine")
        opts.setdefault("tuner", legacy)
    cls = get_adapter_class(exp.adapter)
    base = exp.config
    space = build_space(cls, base, params)
    reserved = {}
    pruner_options = opts.pop("pruner_options", None) or {}
    asked = opts.pop("objective", None)
    objective = asked or exp.objective or (
        cls.default_objective[0] if cls.default_objective else None)
    if objective and not asked and is_system_key(objective):
        raise ConfigError({"objective": f"{objective!r} (the experiment's) is a system metric;"
                           " a study optimises one only when told so (--objective)"})
    direction = opts.pop("direction", None) or (exp.direction if objective == exp.objective
                                                else None)
    if direction is None:
        from ..directions import direction_for

        direction = (cls.default_objective[1] if cls.default_objective
                     and cls.default_objective[0] == objective else direction_for(objective or ""))
    if "search_epochs" not in opts:
        opts["search_epochs"] = 1 if cls.epochs_key else None
    if cls.epochs_key and opts.get("search_epochs") is not None:
        reserved[cls.epochs_key] = "search_epochs"
    if cls.subset_key and opts.get("subset_ratio") is not None:
        reserved[cls.subset_key] = "subset_ratio"
    unknown = set(opts) - set(StudySettings.__dataclass_fields__)
    if unknown:
        raise ConfigError({k: "unknown study setting" for k in sorted(unknown)})
    nullable = ("search_epochs", "subset_ratio", "timeout_s", "storage", "seed")
    st = StudySettings(objective=objective or "", direction=direction,
                       **{k: v for k, v in opts.items()
                          if v is not None or k in nullable}).validate()
    tuner_cls = get_tuner(st.tuner)
    if st.pruner != "none" and not tuner_cls.supports_pruning:
        raise ConfigError({"pruner": f"the {st.tuner} tuner does not prune; use --pruner none"})
    validate_space(space, cls, base, reserved)
    storage = st.storage or tuner_cls.default_storage(settings.home)
    try:
        existing = tuner_cls.load_definition(storage, name)
    except (KeyError, LookupError):
        existing = None
    if existing is not None:
        raise ConflictError(f"storage {storage} already holds a study named {name!r}; choose"
                            " another name (or `labdeck study worker` to join it)")
    trials_exp = f"{name}/trials"
    t = now()
    settings_json = {**st.to_json(), "storage": storage, "pruner_options": pruner_options,
                     "trials_experiment": trials_exp}
    with write_tx(conn):
        if experiments.name_taken(conn, trials_exp):
            raise ConflictError(f"an experiment named {trials_exp!r} already exists")
        trials_exp_id = data.insert_trials_experiment(
            conn, name=trials_exp, adapter=exp.adapter, base_config=base,
            objective=st.objective, direction=st.direction,
            notes=f"trial runs of study {name}", study=name, t=t)
        study_id = data.insert_study(
            conn, name=name, experiment_id=exp.id, trials_experiment_id=trials_exp_id,
            adapter=exp.adapter, base_config=base, space=space_to_json(space),
            settings=settings_json, tuner=st.tuner, storage=storage, status="created", t=t)
    row = data.get_study(conn, study_id)
    tuner = open_tuner(row, settings.home)
    try:
        tuner.create()
    except BaseException:
        data.delete_study(conn, study_id)
        raise
    finally:
        tuner.close()
    return data.get_study(conn, study_id)


def join_study(conn: sqlite3.Connection, settings: Settings, name: str, storage: str,
               tuner: str | None = None) -> StudyRow:
    """Make a study that lives in ``storage`` (created from another home or machine) known to
    this home, from the definition stored with it, so ``study worker`` can run its trials."""
    if data.study_exists(conn, name):
        return data.get_study(conn, name)
    found, errors = None, []
    for candidate in [tuner] if tuner else tuner_names():
        try:
            found = get_tuner(candidate).load_definition(storage, name)
        except Exception as exc:  # noqa: BLE001 - try the next tuner
            errors.append(f"{candidate}: {exc}")
            continue
        if found:
            found["tuner"] = candidate
            break
    if not found:
        raise NotFoundError(f"no labdeck study {name!r} in {storage}"
                            + (f" ({'; '.join(errors)})" if errors else ""))
    get_adapter_class(found["adapter"])  # the adapter must be installed here
    st = {**found["settings"], "storage": storage,
          "pruner_options": (found.get("extra") or {}).get("pruner_options") or {},
          "trials_experiment": found.get("trials_experiment") or f"{name}/trials"}
    t = now()
    with write_tx(conn):
        known = experiments.get_experiment(conn, st["trials_experiment"])
        exp_id = known.id if known is not None else None
        if exp_id is None:
            exp_id = data.insert_trials_experiment(
                conn, name=st["trials_experiment"], adapter=found["adapter"],
                base_config=found["base_config"], objective=st["objective"],
                direction=st["direction"],
                notes=f"trial runs of study {name} (joined from {storage})", study=name, t=t)
        data.insert_study(
            conn, name=name, experiment_id=None, trials_experiment_id=exp_id,
            adapter=found["adapter"], base_config=found["base_config"], space=found["space"],
            settings=st, tuner=found["tuner"], storage=storage, status="running", t=t)
    return data.get_study(conn, name)


def active_job(row: StudyRow) -> int | None:
    return row.job_id if row.job_status in ("queued", "running") else None


def start_study(conn: sqlite3.Connection, settings: Settings, name: str,
                n_trials: int | None = None) -> int:
    row = data.get_study(conn, name)
    if active_job(row):
        raise ConflictError(f"study {name!r} is already running (job {row.job_id})")
    if n_trials is not None:
        if not isinstance(n_trials, int) or n_trials < 1:
            raise ConfigError({"n_trials": f"must be an integer >= 1, got {n_trials!r}"})
        data.set_settings(conn, row.id, {**row.settings, "n_trials": n_trials})
        row = data.get_study(conn, name)
    tuner = open_tuner(row, settings.home)
    try:
        tuner.set_stop(False)
        sweep(conn, row, tuner, settings.home)
        tuner.ensure_slots(row.settings["n_trials"])
        waiting = tuner.waiting_slots()
    finally:
        tuner.close()
    if not waiting:
        raise ConflictError(f"study {name!r} already has its {row.settings['n_trials']}"
                            " trials; raise n_trials (--n-trials) to run more")
    return data.queue_study_job(conn, row.id, name)


def cancel_study(conn: sqlite3.Connection, settings: Settings, name: str) -> int | None:
    """Flag the study stopped (every worker, even remote ones, sees it) and return the active
    job id for the caller to cancel through the job system."""
    row = data.get_study(conn, name)
    data.request_cancel(conn, row.id)
    tuner = open_tuner(row, settings.home)
    try:
        tuner.set_stop(True)
        _, trials = sweep(conn, row, tuner, settings.home)
    finally:
        tuner.close()
    job = active_job(data.get_study(conn, row.id))
    if not any(t.state == "running" for t in trials) and row.status != "completed":
        data.set_status(conn, row.id, "cancelled")
    return job


def refresh(conn: sqlite3.Connection, settings: Settings, name: str) -> None:
    """Sweep dead workers' trials and mirror the tuner's trials into labdeck's table."""
    row = data.get_study(conn, name)
    tuner = open_tuner(row, settings.home)
    try:
        _, trials = sweep(conn, row, tuner, settings.home)
        running = any(t.state == "running" for t in trials)
        if (trials and not running and row.status not in ("completed", "queued")
                and row.importance is None and not tuner.waiting_slots()):
            data.set_status(conn, row.id, "completed", importance=tuner.importance(trials))
    finally:
        tuner.close()


def compute_importance(conn: sqlite3.Connection, settings: Settings,
                       name: str) -> dict[str, float]:
    row = data.get_study(conn, name)
    if row.importance is not None:
        return row.importance
    tuner = open_tuner(row, settings.home)
    try:
        return tuner.importance()
    finally:
        tuner.close()


# ------------------------------------------------------------------ reading (labdeck tables)


@dataclass
class Study(Record):
    """A study as the API returns it: its row, with trial counts and the best trial from the
    trials mirror (tuner-agnostic: labdeck's own tables only)."""

    id: int
    name: str
    adapter: str
    experiment: str | None  # the base experiment
    trials_experiment: str | None  # where each trial's run lives
    status: str  # created | queued | running | completed | cancelled | stopped | failed
    tuner: str
    storage: str
    tuner_study: str  # the study's name inside the storage (optuna.load_study's study_name)
    settings: dict[str, Any]
    space: dict[str, Any]
    base_config: dict[str, Any]
    job_id: int | None
    n_trials: int
    counts: dict[str, int] = field(default_factory=dict)  # per trial state, plus "left"
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] | None = None
    importance: dict[str, float] | None = None
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0


def best_trial(ts: list[Trial], direction: str) -> Trial | None:
    done = [t for t in ts if t.state == "complete" and t.value is not None]
    if not done:
        return None
    sign = 1 if direction == "minimize" else -1
    return min(done, key=lambda t: (sign * (t.value or 0.0), t.number))  # None filtered above


def study_record(conn: sqlite3.Connection, row: StudyRow) -> Study:
    ts = data.trials(conn, row.id)
    st = row.settings
    counts = {s: 0 for s in ("running", "complete", "pruned", "failed", "cancelled")}
    for t in ts:
        counts[t.state] += 1
    slots = len(ts) - counts["cancelled"]  # a cancelled trial used no slot
    counts["left"] = max(0, int(st["n_trials"]) - slots)
    best = best_trial(ts, st["direction"])
    status = row.status
    if status in ("queued", "running") and not counts["running"]:
        job = row.job_status
        if job in ("failed", "cancelled"):
            status = job
        elif job == "completed":
            status = "completed" if counts["left"] == 0 else "stopped"
    return Study(
        id=row.id, name=row.name, adapter=row.adapter,
        experiment=row.experiment, trials_experiment=row.trials_experiment, status=status, tuner=row.tuner, storage=row.storage, tuner_study=row.tuner_study,
        settings=st, space=row.space, base_config=row.base_config, job_id=row.job_id,
        n_trials=int(st["n_trials"]), counts=counts,
        best_trial=best.number if best else None, best_value=best.value if best else None,
        best_params=best.params if best else None, importance=row.importance,
        error=row.error, created=row.created, updated=row.updated)


def list_studies(conn: sqlite3.Connection) -> list[Study]:
    return [study_record(conn, row) for row in data.list_studies(conn)]
