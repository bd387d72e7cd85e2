"""A study worker's per-trial bookkeeping, on both of the Optuna tuner's paths: the two short
SQL transactions on Optuna's tables (claim; worker attributes + first heartbeat + token end)
and the public storage API it falls back to. Either way: exactly n_trials, each slot token
COMPLETE with the trial's number, the worker's pid/host on each trial, a heartbeat per trial,
one labdeck run per trial with its own metrics and summary, and the mirror in line."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapters.base import BaseAdapter, ConfigSchema, Field, SearchRange
from engine.api import Engine
from engine.records import HOST
from engine.settings import load_settings
from engine.studies.optuna_tuner import OptunaTuner
from engine.studies.runner import StudyWorker


class Quadratic(BaseAdapter):
    name = "bookkeeping_quadratic"
    epochs_key = "epochs"
    default_objective = ("val/loss", "minimize")
    fail = False

    @classmethod
    def config_schema(cls) -> ConfigSchema:
        return ConfigSchema((Field("x", "float", 0.5), Field("epochs", "int", 3, min=1)))

    @classmethod
    def get_search_ranges(cls) -> dict[str, SearchRange]:
        return {"x": SearchRange("float", 0.0, 1.0)}

    def train(self, config: dict[str, Any], reporter: Any, resume_from: Any = None) -> dict:
        if self.fail:
            raise RuntimeError("boom")
        for epoch in range(config["epochs"]):
            if reporter.should_stop():
                break
            reporter.log({"val/loss": (config["x"] - 0.3) ** 2 + 1.0 / (epoch + 1),
                          "train/x": config["x"]}, step=epoch, epoch=epoch)
        return {}


class Failing(Quadratic):
    name = "bookkeeping_failing"
    fail = True


def run_study(home: Path, adapter: type[BaseAdapter], n: int) -> tuple[dict, str]:
    import asyncio

    async def setup() -> str:
        async with Engine.session(home) as engine:
            await engine.create_experiment("q", adapter.name, {"epochs": 3})
            study = await engine.create_study("s", "q", n_trials=n, seed=1, search_epochs=3,
                                              pruner="median")
            return study.storage

    storage = asyncio.run(setup())
    out = StudyWorker(load_settings(home), "s").run()
    return out, storage


@pytest.fixture(autouse=True)
def _adapters_of_this_module(monkeypatch):
    """This module's adapters as entry points of the adapters group, for this module's tests
    only (the studies here run in-process; a worker process would need an installed one)."""
    from importlib.metadata import EntryPoint

    import engine.registry as registry

    installed = registry._entry_points()
    mine = {cls.name: EntryPoint(cls.name, f"{__name__}:{cls.__name__}", registry.GROUP)
            for cls in (Quadratic, Failing)}
    monkeypatch.setattr(registry, "_entry_points", lambda: {**installed, **mine})
    registry._load.cache_clear()
    yield
    registry._load.cache_clear()


@pytest.fixture(params=["sql", "api"])
def path(request, monkeypatch) -> str:
    """Which path the tuner must take: the other one's methods raise."""
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unexpected schema")

    def not_here(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the SQL path fell back to the storage API")

    if request.param == "api":
        monkeypatch.setattr(OptunaTuner, "_claim_slot_sql", broken)
        monkeypatch.setattr(OptunaTuner, "_started_sql", broken)
    else:
        monkeypatch.setattr(OptunaTuner, "_claim_slot_api", not_here)
        monkeypatch.setattr(OptunaTuner, "_started_api", not_here)
    return request.param


def test_each_trial_fully_recorded(home: Path, path: str, capsys) -> None:
    import optuna

    n = 6
    out, storage = run_study(home, Quadratic, n)
    assert sorted(out["trials_run"]) == list(range(n)) and out["status"] == "completed"

    ostorage = optuna.storages.RDBStorage(storage)
    trials = optuna.load_study(study_name="s", storage=ostorage).trials
    assert [t.number for t in trials] == list(range(n))
    for t in trials:
        assert t.user_attrs["labdeck"]["pid"] == os.getpid()
        assert t.user_attrs["labdeck"]["host"] == HOST
    tokens = optuna.load_study(study_name="s:labdeck-slots", storage=ostorage).trials
    assert {t.state.name for t in tokens} == {"COMPLETE"}
    assert sorted(t.value for t in tokens) == list(range(n))  # each token names its trial
    odb = sqlite3.connect(storage.removeprefix("sqlite:///"))
    beats = {r[0] for r in odb.execute("SELECT trial_id FROM trial_heartbeats")}
    assert beats == {t._trial_id for t in trials}
    odb.close()

    db = sqlite3.connect(str(home / "labdeck.db"))
    mirror = db.execute("SELECT number, state, run_id, intermediate, pid FROM trials"
                        " ORDER BY number").fetchall()
    assert [m[0] for m in mirror] == list(range(n))
    assert [m[1] for m in mirror] == [t.state.name.lower() for t in trials]
    assert len({m[2] for m in mirror}) == n and {m[4] for m in mirror} == {os.getpid()}
    for number, state, run_id, intermediate, _ in mirror:
        status, summary = db.execute("SELECT status, summary FROM runs WHERE id=?",
                                     (run_id,)).fetchone()
        assert status == ("completed" if state == "complete" else "cancelled")
        summary = json.loads(summary)
        steps = [s for s, _ in json.loads(intermediate)]
        assert summary["val/loss"]["count"] == len(steps) == summary["train/x"]["count"]
        # the worker's one metric writer put this trial's points in this trial's run
        got = db.execute("SELECT m.step FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
                         " WHERE k.run_id=? AND k.key='val/loss' ORDER BY m.step",
                         (run_id,)).fetchall()
        assert [g[0] for g in got] == steps
        assert trials[number].intermediate_values == dict(json.loads(intermediate))
    db.close()


def test_failed_trial_keeps_worker_attrs(home: Path, path: str, capsys) -> None:
    import optuna

    out, storage = run_study(home, Failing, 2)
    assert sorted(out["trials_run"]) == [0, 1]
    for t in optuna.load_study(study_name="s", storage=storage).trials:
        attrs = t.user_attrs["labdeck"]
        assert t.state.name == "FAIL"
        assert attrs["error"] == "RuntimeError: boom"
        assert attrs["pid"] == os.getpid() and attrs["host"] == HOST
