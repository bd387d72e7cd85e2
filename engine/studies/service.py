"""Study operations as plain synchronous functions on a sqlite3 connection. The async
``StudiesMixin`` runs them in a thread (they may open an Optuna storage, which is blocking)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import ConfigError

from ..experiments import ConflictError, NotFoundError
from ..records import decode_value, now
from ..registry import get_adapter_class
from ..schema import write_tx
from ..settings import Settings
from .models import Study, Trial
from .records import load_row, open_engine, set_status, sweep
from .registry import get_engine
from .space import ParamSpec, default_space, parse_param, space_to_json, validate_space
from .spec import StudySettings

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
                 **opts: Any) -> dict[str, Any]:
    name = (name or "").strip()
    if not name or any(c in name for c in "\n\r\t"):
        raise ConfigError({"name": "a study needs a one-line, non-empty name"})
    if conn.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
        raise ConflictError(f"a study named {name!r} already exists")
    exp = conn.execute("SELECT id, adapter, config, objective, direction FROM experiments"
                       " WHERE name=?", (experiment,)).fetchone()
    if exp is None:
        raise NotFoundError(f"no experiment {experiment!r}")
    exp_id, adapter, config_text, exp_objective, exp_direction = exp
    cls = get_adapter_class(adapter)
    base = json.loads(config_text or "{}")
    space = build_space(cls, base, params)
    reserved = {}
    pruner_options = opts.pop("pruner_options", None) or {}
    objective = opts.pop("objective", None) or exp_objective or (
        cls.default_objective[0] if cls.default_objective else None)
    direction = opts.pop("direction", None) or (exp_direction if objective == exp_objective
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
    engine_cls = get_engine(st.engine)
    if st.pruner != "none" and not engine_cls.supports_pruning:
        raise ConfigError({"pruner": f"the {st.engine} engine does not prune; use --pruner none"})
    validate_space(space, cls, base, reserved)
    storage = st.storage or engine_cls.default_storage(settings.home)
    try:
        existing = engine_cls.load_definition(storage, name)
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
        if conn.execute("SELECT 1 FROM experiments WHERE name=?", (trials_exp,)).fetchone():
            raise ConflictError(f"an experiment named {trials_exp!r} already exists")
        trials_exp_id = _insert_trials_experiment(
            conn, trials_exp, adapter, base, st.objective, st.direction,
            f"trial runs of study {name}", name, t)
        study_id = _insert_study(conn, name, exp_id, trials_exp_id, adapter, base,
                                 space_to_json(space), settings_json, st.engine, storage,
                                 "created", t)
    row = load_row(conn, study_id)
    engine = open_engine(row, settings.home)
    try:
        engine.create()
    except BaseException:
        delete_rows(conn, study_id)
        raise
    finally:
        engine.close()
    return load_row(conn, study_id)


def join_study(conn: sqlite3.Connection, settings: Settings, name: str, storage: str,
               engine: str | None = None) -> dict[str, Any]:
    """Make a study that lives in ``storage`` (created from another home or machine) known to
    this home, from the definition stored with it, so ``study worker`` can run its trials."""
    from .registry import list_engines

    if conn.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
        return load_row(conn, name)
    found, errors = None, []
    for eng in [engine] if engine else list_engines():
        try:
            found = get_engine(eng).load_definition(storage, name)
        except Exception as exc:  # noqa: BLE001 - try the next engine
            errors.append(f"{eng}: {exc}")
            continue
        if found:
            found["engine"] = eng
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
        exp = conn.execute("SELECT id FROM experiments WHERE name=?",
                           (st["trials_experiment"],)).fetchone()
        if exp is None:
            exp = (_insert_trials_experiment(
                conn, st["trials_experiment"], found["adapter"], found["base_config"],
                st["objective"], st["direction"],
                f"trial runs of study {name} (joined from {storage})", name, t),)
        _insert_study(conn, name, None, exp[0], found["adapter"], found["base_config"],
                      found["space"], st, found["engine"], storage, "running", t)
    return load_row(conn, name)


def _insert_trials_experiment(conn: sqlite3.Connection, name: str, adapter: str,
                              base: Mapping[str, Any], objective: str, direction: str,
                              notes: str, study: str, t: float) -> int:
    """The experiment a study's trial runs live in (inside the caller's transaction)."""
    cur = conn.execute(
        "INSERT INTO experiments(name, adapter, config, objective, direction, tags, notes,"
        " origin, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (name, adapter, json.dumps(base), objective, direction, json.dumps(["study-trials"]),
         notes, f"study {study}", t, t))
    return int(cur.lastrowid)


def _insert_study(conn: sqlite3.Connection, name: str, experiment_id: int | None,
                  trials_experiment_id: int, adapter: str, base: Mapping[str, Any],
                  space: Mapping[str, Any], settings: Mapping[str, Any], engine: str,
                  storage: str, status: str, t: float) -> int:
    """The ``studies`` row (inside the caller's transaction); its engine_study is its name."""
    cur = conn.execute(
        "INSERT INTO studies(name, experiment_id, trials_experiment_id, adapter, base_config,"
        " space, settings, engine, storage, engine_study, status, created, updated)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (name, experiment_id, trials_experiment_id, adapter, json.dumps(base),
         json.dumps(space), json.dumps(settings), engine, storage, name, status, t, t))
    return int(cur.lastrowid)


def delete_rows(conn: sqlite3.Connection, study_id: int) -> None:
    with write_tx(conn):
        row = conn.execute("SELECT trials_experiment_id FROM studies WHERE id=?",
                           (study_id,)).fetchone()
        conn.execute("DELETE FROM studies WHERE id=?", (study_id,))
        if row and row[0]:
            conn.execute("DELETE FROM experiments WHERE id=?", (row[0],))


def active_job(conn: sqlite3.Connection, row: dict[str, Any]) -> int | None:
    if not row["job_id"]:
        return None
    r = conn.execute("SELECT status FROM jobs WHERE id=?", (row["job_id"],)).fetchone()
    return row["job_id"] if r and r[0] in ("queued", "running") else None


def start_study(conn: sqlite3.Connection, settings: Settings, name: str,
                n_trials: int | None = None) -> int:
    row = load_row(conn, name)
    if active_job(conn, row):
        raise ConflictError(f"study {name!r} is already running (job {row['job_id']})")
    if n_trials is not None:
        if not isinstance(n_trials, int) or n_trials < 1:
            raise ConfigError({"n_trials": f"must be an integer >= 1, got {n_trials!r}"})
        st = dict(row["settings"])
        st["n_trials"] = n_trials
        with write_tx(conn):
            conn.execute("UPDATE studies SET settings=? WHERE id=?", (json.dumps(st), row["id"]))
        row = load_row(conn, name)
    engine = open_engine(row, settings.home)
    try:
        engine.set_stop(False)
        _, trials = sweep(conn, row, engine, settings.home)
        engine.ensure_slots(row["settings"]["n_trials"])
        waiting = engine.waiting_slots()
    finally:
        engine.close()
    if not waiting:
        raise ConflictError(f"study {name!r} already has its {row['settings']['n_trials']}"
                            " trials; raise n_trials (--n-trials) to run more")
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO jobs(type, status, target, params, created) VALUES (?,?,?,?,?)",
            ("study", "queued", f"study {name}", json.dumps({"study": name}), now()))
        job_id = int(cur.lastrowid)
        conn.execute("UPDATE studies SET status='queued', job_id=?, cancel_requested=0,"
                     " error=NULL, updated=? WHERE id=?", (job_id, now(), row["id"]))
    return job_id


def cancel_study(conn: sqlite3.Connection, settings: Settings, name: str) -> int | None:
    """Flag the study stopped (every worker, even remote ones, sees it) and return the active
    job id for the caller to cancel through the job system."""
    row = load_row(conn, name)
    with write_tx(conn):
        conn.execute("UPDATE studies SET cancel_requested=1, updated=? WHERE id=?",
                     (now(), row["id"]))
    engine = open_engine(row, settings.home)
    try:
        engine.set_stop(True)
        _, trials = sweep(conn, row, engine, settings.home)
    finally:
        engine.close()
    job = active_job(conn, row)
    if not any(t.state == "running" for t in trials) and row["status"] != "completed":
        set_status(conn, row["id"], "cancelled")
    return job


def refresh(conn: sqlite3.Connection, settings: Settings, name: str) -> None:
    """Sweep dead workers' trials and mirror the engine's trials into labdeck's table."""
    row = load_row(conn, name)
    engine = open_engine(row, settings.home)
    try:
        _, trials = sweep(conn, row, engine, settings.home)
        running = any(t.state == "running" for t in trials)
        if (trials and not running and row["status"] not in ("completed", "queued")
                and row["importance"] is None and not engine.waiting_slots()):
            set_status(conn, row["id"], "completed",
                       importance=json.dumps(engine.importance(trials)))
    finally:
        engine.close()


def compute_importance(conn: sqlite3.Connection, settings: Settings,
                       name: str) -> dict[str, float]:
    row = load_row(conn, name)
    if row["importance"] is not None:
        return row["importance"]
    engine = open_engine(row, settings.home)
    try:
        return engine.importance()
    finally:
        engine.close()


# ------------------------------------------------------------------ reading (labdeck tables)

_TRIAL_COLS = ("number, state, params, value, intermediate, run_id, pid, host, started,"
               " finished, error")


def trials(conn: sqlite3.Connection, study_id: int) -> list[Trial]:
    rows = conn.execute(f"SELECT {_TRIAL_COLS} FROM trials WHERE study_id=? ORDER BY number",
                        (study_id,)).fetchall()
    return [Trial(number=r[0], state=r[1], params=json.loads(r[2]),
                  value=None if r[3] is None else decode_value(r[3]),
                  intermediate=[(int(s), float(v)) for s, v in json.loads(r[4] or "[]")],
                  run_id=r[5], pid=r[6], host=r[7], started=r[8], finished=r[9], error=r[10])
            for r in rows]


def best_trial(ts: list[Trial], direction: str) -> Trial | None:
    done = [t for t in ts if t.state == "complete" and t.value is not None]
    if not done:
        return None
    sign = 1 if direction == "minimize" else -1
    return min(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]


def study_record(conn: sqlite3.Connection, row: dict[str, Any]) -> Study:
    ts = trials(conn, row["id"])
    st = row["settings"]
    counts = {s: 0 for s in ("running", "complete", "pruned", "failed")}
    for t in ts:
        counts[t.state] += 1
    slots = sum(1 for t in ts if not (t.state == "failed" and t.error == "cancelled"))
    counts["left"] = max(0, int(st["n_trials"]) - slots)
    best = best_trial(ts, st["direction"])
    names = dict(conn.execute("SELECT id, name FROM experiments WHERE id IN (?,?)",
                              (row["experiment_id"] or -1,
                               row["trials_experiment_id"] or -1)).fetchall())
    status = row["status"]
    if status in ("queued", "running") and not counts["running"]:
        job = conn.execute("SELECT status FROM jobs WHERE id=?", (row["job_id"] or -1,)
                           ).fetchone()
        if job and job[0] in ("failed", "cancelled"):
            status = job[0]
        elif job and job[0] == "completed":
            status = "completed" if counts["left"] == 0 else "stopped"
    return Study(
        id=row["id"], name=row["name"], adapter=row["adapter"],
        experiment=names.get(row["experiment_id"]),
        trials_experiment=names.get(row["trials_experiment_id"]), status=status,
        engine=row["engine"], storage=row["storage"], engine_study=row["engine_study"],
        settings=st, space=row["space"], base_config=row["base_config"], job_id=row["job_id"],
        n_trials=int(st["n_trials"]), counts=counts,
        best_trial=best.number if best else None, best_value=best.value if best else None,
        best_params=best.params if best else None, importance=row["importance"],
        error=row["error"], created=row["created"], updated=row["updated"])


def list_studies(conn: sqlite3.Connection) -> list[Study]:
    names = [r[0] for r in conn.execute("SELECT name FROM studies ORDER BY updated DESC")]
    return [study_record(conn, load_row(conn, n)) for n in names]
