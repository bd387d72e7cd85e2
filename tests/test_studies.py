"""Studies: tuner registry, space validation, real Optuna studies run as labdeck jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, labdeck_env

from adapters.base import ConfigError
from engine.api import Engine
from engine.studies.space import ParamSpec, SpaceError, parse_param
from engine.studies.tuner import BaseTuner
from engine.studies.tuner_registry import UnknownTunerError, get_tuner, tuner_names

PY = sys.executable


def toy_config(steps: int = 60, sleep: float = 0.0) -> dict:
    return {"command": f"{PY} -m engine.examples.toy_train --lr {{lr}} --steps {{steps}}"
                       f" --sleep {sleep}",
            "lr": 0.01, "steps": steps, "cwd": str(ROOT)}


async def make_toy(engine: Engine, name: str = "toy", **kw) -> None:
    await engine.create_experiment(name, "script", toy_config(**kw), objective="val/loss",
                                   direction="minimize")


# ------------------------------------------------------------------ registry and space


def test_tuner_registry() -> None:
    """Built-in tuners come from the labdeck.tuners entry points, like a plugin's (a plugin
    run end to end: test_studies_plugin.py)."""
    assert {"optuna", "random"} <= set(tuner_names())
    assert get_tuner("random").name == "random"
    assert issubclass(get_tuner("optuna"), BaseTuner)
    with pytest.raises(UnknownTunerError, match="unknown tuner 'nope'"):
        get_tuner("nope")


def test_parse_param_forms() -> None:
    assert parse_param("lr=1e-4:1e-1:log") == ("lr", ParamSpec("float", 1e-4, 1e-1, True))
    assert parse_param("layers=1:4") == ("layers", ParamSpec("int", 1, 4))
    assert parse_param("x=1:4", "float") == ("x", ParamSpec("float", 1.0, 4.0))
    assert parse_param("opt=adam,sgd") == ("opt", ParamSpec("categorical", choices=("adam", "sgd")))
    assert parse_param("bs=32,64")[1].choices == (32, 64)
    assert parse_param("steps=3") == ("steps", ParamSpec("fixed", value=3))
    with pytest.raises(SpaceError, match="lr"):
        parse_param("lr=a:b")


@pytest.mark.parametrize("param, message", [
    ("lr=0.5:0.1", "lr: min (0.5) must be < max (0.1)"),
    ("lr=0.1:0.1", "lr: min (0.1) must be < max (0.1)"),
    ("lr=0:0.1:log", "lr: log scale needs min > 0"),
    ("lr=-1:0.1:log", "lr: log scale needs min > 0"),
    ("nope=1:2", "nope: unknown parameter for adapter script"),
])
async def test_invalid_space_refused_before_anything_runs(home: Path, param: str,
                                                          message: str) -> None:
    async with Engine.session(home) as engine:
        await make_toy(engine)
        with pytest.raises(SpaceError) as err:
            await engine.create_study("bad", "toy", [param])
        assert message in str(err.value)
        assert await engine.list_studies() == []
        assert not (home / "studies").exists()  # no storage was touched


async def test_empty_choices_and_empty_space_refused(home: Path) -> None:
    async with Engine.session(home) as engine:
        await make_toy(engine)
        with pytest.raises(SpaceError, match="steps: empty choices"):
            await engine.create_study("bad", "toy", {"steps": {"kind": "categorical",
                                                               "choices": []}})
        with pytest.raises(SpaceError, match="no parameter is searched"):
            await engine.create_study("bad", "toy", ["lr=0.1"])
        with pytest.raises(ConfigError, match="subset_ratio"):
            await engine.create_study("bad", "toy", ["lr=0.001:0.1"], subset_ratio=1.5)
        with pytest.raises(ConfigError, match="does not prune"):
            await engine.create_study("bad", "toy", ["lr=0.001:0.1"], tuner="random",
                                      pruner="median")


# ------------------------------------------------------------------ real studies


async def run_study(engine: Engine, name: str, timeout: float = 120):
    job_id = await engine.start_study(name)
    await engine.ensure_scheduler()
    job = await engine.wait_job(job_id, timeout=timeout)
    assert job.status == "completed", (job.error, await engine.log_tail(job_id=job_id))
    return job


async def test_tpe_study_best_matches_trials_and_optuna_storage(home: Path) -> None:
    import optuna

    async with Engine.session(home) as engine:
        await make_toy(engine)
        study = await engine.create_study("tpe", "toy", ["lr=1e-4:0.3:log", "steps=40,60"],
                                          n_trials=6, search_epochs=1, seed=3)
        assert study.storage == f"sqlite:///{home / 'studies' / 'optuna.db'}"
        assert study.counts["left"] == 6 and study.status == "created"
        await run_study(engine, "tpe")
        study = await engine.get_study("tpe", refresh=True)
        trials = await engine.study_trials("tpe")
        assert study.status == "completed"
        assert [t.number for t in trials] == list(range(6))
        complete = [t for t in trials if t.state == "complete"]
        assert len(complete) == 6
        assert study.best_value == min(t.value for t in complete)
        assert study.best_params == next(t.params for t in complete
                                         if t.number == study.best_trial)
        assert set(study.importance or {}) == {"lr", "steps"}
        # each trial is a labdeck run of the study's trials experiment, with its params
        runs = {r.id: r for r in await engine.list_runs("tpe/trials")}
        for t in trials:
            run = runs[t.run_id]
            assert run.status == "completed" and run.config["lr"] == t.params["lr"]
            assert run.config["steps"] == t.params["steps"]
            pts = await engine.all_metrics(run.id, "val/loss")
            assert pts[-1][1] == pytest.approx(t.value)
            assert [v for _, v in t.intermediate] == pytest.approx([v for _, v in pts])
        # Optuna's own view of the same storage
        ostudy = optuna.load_study(study_name=study.tuner_study, storage=study.storage)
        assert [(t.number, t.state.name, t.params) for t in ostudy.trials] == [
            (t.number, "COMPLETE", t.params) for t in trials]
        assert ostudy.best_value == pytest.approx(study.best_value)
        assert ostudy.best_trial.number == study.best_trial

        # promote: a new experiment that trains with the best params
        exp = await engine.promote_best("tpe")
        assert exp.origin == f"from study tpe trial {study.best_trial}"
        assert exp.config["lr"] == study.best_params["lr"]
        run_id, job_id = await engine.start_run(exp.name)
        job = await engine.wait_job(job_id, timeout=60)
        assert job.status == "completed"
        run = await engine.get_run(run_id)
        assert run.config["lr"] == study.best_params["lr"]
        assert run.config["steps"] == study.best_params["steps"]
        assert run.summary["val/loss"]["last"] == pytest.approx(study.best_value)

        # resume semantics: nothing left to run unless n_trials is raised
        with pytest.raises(ValueError, match="already has its 6 trials"):
            await engine.start_study("tpe")


async def test_median_pruner_prunes_bad_trials(home: Path) -> None:
    async with Engine.session(home) as engine:
        await make_toy(engine, steps=100)
        # lr 1e-5 barely moves the loss; 0.2 converges: the median pruner must stop some
        await engine.create_study("prune", "toy", ["lr=0.00001,0.2"], n_trials=8,
                                  pruner="median", seed=0,
                                  pruner_options={"n_startup_trials": 2, "n_warmup_steps": 1})
        await run_study(engine, "prune")
        study = await engine.get_study("prune", refresh=True)
        trials = await engine.study_trials("prune")
        pruned_runs = {t.number: await engine.get_run(t.run_id) for t in trials
                       if t.state == "pruned"}
    pruned = [t for t in trials if t.state == "pruned"]
    assert pruned, [(t.params, t.state) for t in trials]
    assert study.status == "completed"
    for t in pruned:
        assert t.params["lr"] == 0.00001
        assert len(t.intermediate) < 10  # stopped before the end (10 reports when complete)
        # the note survives the end-of-study re-mirror from Optuna (which has no note)
        assert t.error and t.error.startswith("pruned at step"), t
        run = pruned_runs[t.number]
        assert (run.status, run.error) == ("cancelled", t.error)
    assert study.counts["pruned"] == len(pruned)
    assert study.best_params == {"lr": 0.2}


async def test_cancel_then_resume_keeps_finished_trials(home: Path) -> None:
    import asyncio

    async with Engine.session(home) as engine:
        await make_toy(engine, steps=150, sleep=0.02)  # ~3 s per trial
        await engine.create_study("cr", "toy", ["lr=0.01:0.2"], n_trials=3)
        job_id = await engine.start_study("cr")
        await engine.ensure_scheduler()
        for _ in range(400):  # until trial 1 is running
            ts = await engine.study_trials("cr")
            if any(t.number == 1 and t.state == "running" for t in ts):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("trial 1 never started")
        study = await engine.cancel_study("cr")
        job = await engine.wait_job(job_id, timeout=60)
        assert job.status == "cancelled"
        study = await engine.get_study("cr", refresh=True)
        trials = await engine.study_trials("cr")
        assert study.status == "cancelled"
        assert [(t.number, t.state) for t in trials] == [(0, "complete"), (1, "cancelled")]
        assert trials[1].error == "cancelled"
        assert study.counts["cancelled"] == 1 and study.counts["failed"] == 0
        assert (await engine.get_run(trials[1].run_id)).status == "cancelled"
        assert study.counts["left"] == 2  # the cancelled trial does not use up a slot
        await run_study(engine, "cr")
        study = await engine.get_study("cr", refresh=True)
        trials = await engine.study_trials("cr")
    assert study.status == "completed"
    assert [t.state for t in trials] == ["complete", "cancelled", "complete", "complete"]


# ------------------------------------------------------------------ random engine, no optuna


RANDOM_WITHOUT_OPTUNA = r"""
import asyncio, sys
sys.modules["optuna"] = None  # any `import optuna` now raises ImportError
from engine.api import Engine
from engine.studies.runner import StudyWorker
from engine.settings import load_settings

async def main(home):
    async with Engine.session(home) as e:
        await e.create_experiment("toy", "script", CONFIG, objective="val/loss")
        s = await e.create_study("r", "toy", ["lr=0.001:0.3:log", "steps=20,40"],
                                 tuner="random", n_trials=4, seed=7)
        assert s.storage.endswith("studies/random.db"), s.storage
    out = StudyWorker(load_settings(home), "r").run()
    async with Engine.session(home) as e:
        s = await e.get_study("r", refresh=True)
        print(s.status, s.counts["complete"], sorted(s.importance), out["trials_run"])
    assert "optuna" not in [m for m in sys.modules if sys.modules[m] is not None]

asyncio.run(main(sys.argv[1]))
"""


def test_random_tuner_runs_without_optuna(home: Path) -> None:
    code = RANDOM_WITHOUT_OPTUNA.replace("CONFIG", repr(toy_config(steps=40)))
    proc = subprocess.run([PY, "-c", code, str(home)], env=labdeck_env(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "completed 4 ['lr', 'steps'] [0, 1, 2, 3]"


def test_import_engine_does_not_import_optuna() -> None:
    code = ("import sys, engine.api, engine.studies.studies_mixin, cli.study_cmds;"
            " print('optuna' in sys.modules)")
    out = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ CLI


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "cli", "--home", str(home), *args],
                          env=labdeck_env(home), cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cli_json_shapes(home: Path) -> None:
    cfg = toy_config(steps=40)
    cli(home, "exp", "create", "toy", "--adapter", "script", "--objective", "val/loss",
        *[x for k, v in cfg.items() for x in ("--set", f"{k}={v}")])
    bad = cli(home, "study", "create", "x", "--from", "toy", "--param", "lr=1:0.1",
              check=False)
    assert bad.returncode == 1 and "lr: min (1.0) must be < max (0.1)" in bad.stderr
    created = json.loads(cli(home, "--json", "study", "create", "s", "--from", "toy",
                             "--param", "lr=0.001:0.3:log", "--param", "steps=20",
                             "--n-trials", "3", "--workers", "2", "--pruner", "median",
                             "--json").stdout)
    assert created["space"] == {"lr": {"kind": "float", "low": 0.001, "high": 0.3,
                                       "log": True},
                                "steps": {"kind": "fixed", "value": 20}}
    assert created["settings"]["workers"] == 2 and created["status"] == "created"
    started = json.loads(cli(home, "study", "start", "s", "--wait", "--json").stdout)
    assert started["job_status"] == "completed" and started["status"] == "completed"
    shown = json.loads(cli(home, "study", "show", "s", "--json").stdout)
    assert {"name", "status", "settings", "storage", "tuner_study", "trials", "best_trial",
            "best_value", "best_params", "importance", "counts"} <= set(shown)
    assert len(shown["trials"]) == 3
    assert {t["state"] for t in shown["trials"]} <= {"complete", "pruned"}
    assert {t["pid"] for t in shown["trials"]}.__len__() >= 1
    assert {"number", "state", "params", "value", "intermediate", "run_id", "duration",
            "error"} <= set(shown["trials"][0])
    listed = json.loads(cli(home, "study", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["s"]
    promoted = json.loads(cli(home, "study", "promote", "s", "--json").stdout)
    assert promoted["origin"] == f"from study s trial {shown['best_trial']}"
    assert promoted["config"]["lr"] == shown["best_params"]["lr"]
    assert promoted["config"]["steps"] == 20  # the fixed param travels with the best ones
    text = cli(home, "study", "show", "s").stdout
    assert "storage sqlite:///" in text and "best: trial" in text
    # --engine, the former name of --tuner, is hidden but still accepted; so are the JSON keys
    legacy = json.loads(cli(home, "study", "create", "r", "--from", "toy", "--param",
                            "lr=0.001:0.3:log", "--engine", "random", "--json").stdout)
    assert legacy["tuner"] == legacy["engine"] == "random"
    assert legacy["tuner_study"] == legacy["engine_study"] == "r"
    assert "--engine" not in cli(home, "study", "create", "--help").stdout
