"""labdeck's per-trial study overhead against a bare Optuna loop, measured in the same run.

Both sides optimise the same cheap objective (no training: a quadratic in two params,
reported for E "epochs" so the pruner path runs) with TPE, a median pruner and an SQLite
storage file. labdeck adds what a real study does around each trial: claiming a slot, a
labdeck run with its metrics, the objective read back for the pruner, Optuna heartbeat and
user attributes, and mirroring the trial into labdeck's tables.

    .venv/bin/python bench/study_overhead.py [--trials 60] [--epochs 3] [--repeat 2]

Prints ms per trial for each side and the ratio labdeck / bare (target: within 1.2x).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.base import BaseAdapter, ConfigSchema, Field, SearchRange  # noqa: E402


def cheap(x: float, y: int, epoch: int) -> float:
    return (x - 0.3) ** 2 + 0.01 * (y - 3) ** 2 + 1.0 / (epoch + 1)


class CheapAdapter(BaseAdapter):
    """An in-process adapter whose "training" is the cheap objective."""

    name = "bench_cheap"
    epochs_key = "epochs"
    default_objective = ("val/loss", "minimize")

    @classmethod
    def config_schema(cls) -> ConfigSchema:
        return ConfigSchema((Field("x", "float", 0.5), Field("y", "int", 1),
                             Field("epochs", "int", 3, min=1)))

    @classmethod
    def get_search_ranges(cls) -> dict[str, SearchRange]:
        return {"x": SearchRange("float", 0.0, 1.0), "y": SearchRange("int", 0, 6)}

    def train(self, config: dict[str, Any], reporter: Any, resume_from: Any = None) -> dict:
        for epoch in range(config["epochs"]):
            if reporter.should_stop():
                break
            reporter.log({"val/loss": cheap(config["x"], config["y"], epoch)}, step=epoch,
                         epoch=epoch)
        return {}


def bare(tmp: Path, n_trials: int, epochs: int, same_storage: bool) -> float:
    """same_storage: the SQLite file set up as labdeck sets up its own (WAL journal,
    BEGIN IMMEDIATE transactions) but without labdeck's heartbeat; otherwise Optuna's
    default RDBStorage on a fresh file (rollback journal: an fsync per commit)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp / 'bare.db'}"
    if same_storage:
        from engine.studies.optuna_engine import _serialize_sqlite

        storage: Any = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {
            "timeout": 60}})
        storage.engine.dispose()
        import sqlite3

        conn = sqlite3.connect(str(tmp / "bare.db"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        _serialize_sqlite(storage.engine)
    else:
        storage = url
    study = optuna.create_study(storage=storage, study_name="bare",
                                sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_int("y", 0, 6)
        value = 0.0
        for epoch in range(epochs):
            value = cheap(x, y, epoch)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return (time.perf_counter() - t0) / n_trials


def labdeck(tmp: Path, n_trials: int, epochs: int) -> float:
    from engine.api import Engine
    from engine.registry import register_adapter
    from engine.settings import load_settings
    from engine.studies.runner import StudyWorker

    register_adapter(CheapAdapter)
    home = tmp / "home"

    async def setup() -> None:
        async with Engine.session(home) as engine:
            await engine.create_experiment("cheap", "bench_cheap", {"epochs": epochs})
            await engine.create_study("bench", "cheap", n_trials=n_trials, seed=0,
                                      search_epochs=epochs, pruner="median")

    asyncio.run(setup())
    worker = StudyWorker(load_settings(home), "bench")
    import contextlib
    import io

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the per-trial log lines
        out = worker.run()
    elapsed = time.perf_counter() - t0
    assert len(out["trials_run"]) == n_trials, out
    return elapsed / n_trials


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    import optuna

    b, d0, lab = [], [], []
    for _ in range(args.repeat):  # interleaved, best of each
        with tempfile.TemporaryDirectory() as d:
            b.append(bare(Path(d), args.trials, args.epochs, same_storage=True))
        with tempfile.TemporaryDirectory() as d:
            d0.append(bare(Path(d), args.trials, args.epochs, same_storage=False))
        with tempfile.TemporaryDirectory() as d:
            lab.append(labdeck(Path(d), args.trials, args.epochs))
    bb, dd, ll = min(b), min(d0), min(lab)
    print(f"optuna {optuna.__version__}, {args.trials} trials x {args.epochs} epochs, TPE +"
          f" median pruner, SQLite storage, best of {args.repeat}")
    print(f"bare optuna, labdeck's storage setup : {bb * 1000:7.1f} ms/trial")
    print(f"bare optuna, default sqlite storage  : {dd * 1000:7.1f} ms/trial")
    print(f"labdeck study (in-process worker)    : {ll * 1000:7.1f} ms/trial"
          f"  (overhead {(ll - bb) * 1000:+.1f} ms/trial)")
    print(f"ratio labdeck/bare (same storage setup): {ll / bb:.2f}x  (target <= 1.2x)")
    print(f"ratio labdeck/bare (optuna default)    : {ll / dd:.2f}x")


if __name__ == "__main__":
    main()
