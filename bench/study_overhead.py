"""labdeck's per-trial study overhead against a bare Optuna loop, measured in the same run.

Both sides optimise the same cheap objective (no training: a quadratic in two params,
reported for E "epochs" so the pruner path runs) with TPE (seed 0), a median pruner and an
SQLite storage file.

The baseline is a bare ``study.optimize`` loop on an Optuna RDBStorage set up as labdeck sets
up its own (WAL journal, ``synchronous=NORMAL``, ``BEGIN IMMEDIATE`` transactions), with no
heartbeat. labdeck's side is a whole in-process study worker (``StudyWorker.run``: its start
and end sweeps included) doing what a real study does around each trial: claiming a slot (so
k workers make exactly n_trials), the worker's attributes and heartbeat on the trial, a
labdeck run with its metrics and end-of-run summary, the objective reported for the pruner,
and the trial mirrored into labdeck's tables.

    .venv/bin/python bench/study_overhead.py [--trials 60] [--epochs 3] [--repeat 3]
    .venv/bin/python bench/study_overhead.py --quick [--check]   # ~10 s, for a gate

Runs the sides interleaved and keeps the best (minimum) of each; prints wall-clock and CPU
time (the whole process, all its threads) per trial and the ratios labdeck / bare (target:
within 1.2x). ``--check`` exits 1 when the wall-clock ratio is over the target. Not --quick, it
also times Optuna's default SQLite storage and Optuna's own heartbeat, for context.
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


TARGET = 1.2


def timed(fn: Any) -> tuple[float, float]:
    """(wall s, process CPU s: every thread of this process) of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bare(tmp: Path, n_trials: int, epochs: int, same_storage: bool,
         heartbeat: bool = False) -> tuple[float, float]:
    """same_storage: the SQLite file set up as labdeck sets up its own (WAL journal,
    BEGIN IMMEDIATE transactions) but without labdeck's heartbeat (``heartbeat``: with
    Optuna's, as labdeck's storage has: Study.optimize then checks for stale trials and
    beats from a thread, each trial); otherwise Optuna's default RDBStorage on a fresh file
    (rollback journal: an fsync per commit)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp / 'bare.db'}"
    if same_storage:
        from engine.studies.optuna_storage import GRACE_S, HEARTBEAT_S, serialize_sqlite

        hb = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S} if heartbeat else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage: Any = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {
                "timeout": 60}}, **hb)
        storage.engine.dispose()
        import sqlite3

        conn = sqlite3.connect(str(tmp / "bare.db"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        serialize_sqlite(storage.engine)
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

    wall, cpu = timed(lambda: study.optimize(objective, n_trials=n_trials))
    assert len(study.trials) == n_trials
    return wall / n_trials, cpu / n_trials


def labdeck(tmp: Path, n_trials: int, epochs: int) -> tuple[float, float]:
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

    out: dict[str, Any] = {}

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the per-trial log lines
            out.update(worker.run())

    wall, cpu = timed(run)
    assert sorted(out["trials_run"]) == list(range(n_trials)), out
    assert out["status"] == "completed", out
    return wall / n_trials, cpu / n_trials


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=None, help="default 60 (--quick: 40)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true",
                   help="only labdeck and the same-storage baseline (about 10 s)")
    p.add_argument("--check", action="store_true",
                   help=f"exit 1 when labdeck / bare (wall) is over {TARGET}x")
    args = p.parse_args()
    n = args.trials or (40 if args.quick else 60)
    import optuna

    sides: dict[str, Any] = {
        "bare": lambda d: bare(d, n, args.epochs, same_storage=True),
        "labdeck": lambda d: labdeck(d, n, args.epochs),
    }
    if not args.quick:
        sides["bare_hb"] = lambda d: bare(d, n, args.epochs, same_storage=True, heartbeat=True)
        sides["bare_default"] = lambda d: bare(d, n, args.epochs, same_storage=False)
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for _ in range(args.repeat):  # interleaved; the best of each below
        for key, fn in sides.items():
            with tempfile.TemporaryDirectory() as d:
                got[key].append(fn(Path(d)))
    wall = {k: min(w for w, _ in v) for k, v in got.items()}
    cpu = {k: min(c for _, c in v) for k, v in got.items()}

    def line(label: str, key: str) -> str:
        return f"{label:44s} {wall[key] * 1000:7.1f} ms/trial  (CPU {cpu[key] * 1000:5.1f} ms)"

    print(f"optuna {optuna.__version__}, {n} trials x {args.epochs} epochs, TPE + median pruner,"
          f" SQLite storage, best of {args.repeat} interleaved runs")
    print(line("bare optuna, labdeck's storage setup (BASE)", "bare"))
    if "bare_hb" in wall:
        print(line("bare optuna, same + optuna's heartbeat", "bare_hb"))
    if "bare_default" in wall:
        print(line("bare optuna, default sqlite storage", "bare_default"))
    print(line("labdeck study (in-process worker)", "labdeck")
          + f"  overhead {(wall['labdeck'] - wall['bare']) * 1000:+.1f} ms/trial")
    ratio, cpu_ratio = wall["labdeck"] / wall["bare"], cpu["labdeck"] / cpu["bare"]
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"ratio labdeck/BASE: wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x  (target <= {TARGET}x:"
          f" {verdict})")
    if "bare_hb" in wall:
        print(f"ratio labdeck/bare with optuna's heartbeat: {wall['labdeck'] / wall['bare_hb']:.2f}x")
    if "bare_default" in wall:
        print(f"ratio labdeck/bare on optuna's default storage: "
              f"{wall['labdeck'] / wall['bare_default']:.2f}x")
    if args.check and ratio > TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
