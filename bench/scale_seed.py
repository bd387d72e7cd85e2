"""Seeding bench/scale.py's homes: the big one (10,000 experiments, 100,000 runs, a 10M-point
metric, a 1,000-trial study at ``--scale 1``) and the baseline, cheaply (no training) and
through labdeck's own code. bench/scale.py's docstring says which part goes through the
public API, ``engine.tracking``, the data layer and Optuna's ``add_trials``; ``big_home`` keeps
a seeded home (``scale-bench.json`` in it) for the next run."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER = "scale-bench.json"
BIG_EXP, LONG_EXP, BASE_EXP, STUDY = "scale-runs", "scale-long", "scale-base", "scale-study"
FAMILIES = ("resnet", "vit", "bert", "gpt2", "unet", "yolo", "clip", "t5")
BATCH = 5_000
TRACKED_POINTS = 10_000  # the long run's points logged through engine.tracking
EPOCHS = 3  # points per key of a run of the big experiment
CURVE_STEPS = 50  # points per key of a compared run
SPACE = {"lr": "1e-5:1e-1:log", "wd": "1e-6:1e-2:log", "dropout": "0:0.5", "layers": "1:12",
         "opt": "adam,adamw,sgd,rmsprop", "batch": "16,32,64,128"}
BASE_CONFIG = {"command": "python train.py --lr {lr} --wd {wd} --dropout {dropout}"
                          " --layers {layers} --opt {opt} --batch {batch}",
               "objective": "val/loss", "direction": "minimize", "lr": 1e-3, "wd": 1e-4,
               "dropout": 0.1, "layers": 4, "opt": "adam", "batch": 32}


@dataclass(frozen=True)
class Counts:
    experiments: int
    runs: int
    big_runs: int  # runs of the big experiment
    points: int  # points of the long run's metric
    trials: int
    compared: int  # runs of the big experiment compared

    @classmethod
    def baseline(cls) -> Counts:
        return cls(experiments=5, runs=14, big_runs=2, points=10, trials=10, compared=2)

    @classmethod
    def scaled(cls, f: float) -> Counts:
        b = cls.baseline()
        big = max(b.big_runs, round(10_000 * f))
        trials = max(b.trials, round(1_000 * f))
        return cls(experiments=max(b.experiments, round(10_000 * f)),
                   runs=max(big + trials + 2, round(100_000 * f)), big_runs=big,
                   points=max(b.points, round(10_000_000 * f)), trials=trials,
                   compared=min(big, max(b.compared, round(100 * f))))

    def describe(self) -> str:
        return (f"{self.experiments:,} experiments, {self.runs:,} runs ({self.big_runs:,} in"
                f" {BIG_EXP}), a {self.points:,}-point metric, a {self.trials:,}-trial study,"
                f" {self.compared:,} runs compared")


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ seeding


def curve(step: int, total: int, rng: random.Random) -> float:
    return 2 * math.exp(-5 * step / max(1, total)) + 0.1 * rng.random()


def seed_bulk(home: Path, c: Counts, big_id: int) -> dict[str, Any]:
    """The other experiments, every run but the long one's and the trials', their points."""
    from engine.data import experiments, metrics, runs
    from engine.schema import connect_sync, write_tx

    rng = random.Random(0)
    conn = connect_sync(home / "labdeck.db")
    try:
        t = time.perf_counter()
        others = []
        for i in range(c.experiments - 4):
            family = FAMILIES[i % len(FAMILIES)]
            config = {"command": "python train.py --lr {lr}", "lr": 10 ** -(1 + i % 4),
                      "objective": "val/loss", "direction": "minimize", "cwd": str(home)}
            others.append(experiments.create(conn, f"{family}-{i:05d}", "script", config,
                                             "val/loss", "minimize", [family], "", None))
            if (i + 1) % 2_000 == 0:
                say(f"  {i + 1:,} experiments ({time.perf_counter() - t:.0f} s)")
        say(f"  {len(others):,} experiments through engine.data.experiments.create in"
            f" {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        big = []  # (run id, points per key)
        for start in range(0, c.big_runs, BATCH):
            with write_tx(conn):
                for i in range(start, min(c.big_runs, start + BATCH)):
                    config = {"lr": 10 ** rng.uniform(-5, -1), "batch": 32, "seed": i}
                    run_id, _ = runs.insert_run(conn, big_id, config, "running", "tracking")
                    big.append(run_id)
        compared = set(big[-c.compared:])
        for k, run_id in enumerate(big):
            steps = CURVE_STEPS if run_id in compared else EPOCHS
            buf = [({"train/loss": curve(s, steps, rng), "val/loss": curve(s, steps, rng) + 0.1},
                    s, time.time(), s / max(1, steps - 1) * EPOCHS) for s in range(steps)]
            metrics.append(conn, run_id, {}, buf)
            runs.finish_run(conn, run_id, "completed")
            if (k + 1) % 2_000 == 0:
                say(f"  {k + 1:,} runs of {BIG_EXP} with points"
                    f" ({time.perf_counter() - t:.0f} s)")
        say(f"  {len(big):,} runs of {BIG_EXP} (train/loss, val/loss: {EPOCHS} points each,"
            f" {CURVE_STEPS} for the {len(compared)} compared) in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        n_other = c.runs - c.big_runs - c.trials - 1
        for start in range(0, n_other, BATCH):
            with write_tx(conn):
                for i in range(start, min(n_other, start + BATCH)):
                    config = {"lr": 10 ** -(1 + i % 4), "batch": 32, "seed": i}
                    run_id, _ = runs.insert_run(conn, others[i % len(others)], config,
                                                "running", "tracking")
                    failed = i % 20 == 0
                    runs.finish_run(conn, run_id, "failed" if failed else "completed",
                                    "exit code 1" if failed else None, tx=False)
            if (start // BATCH + 1) % 4 == 0:
                say(f"  {min(n_other, start + BATCH):,} other runs"
                    f" ({time.perf_counter() - t:.0f} s)")
        say(f"  {n_other:,} other runs (no points) over {len(others):,} experiments in"
            f" {time.perf_counter() - t:.1f} s")
        return {"compared": sorted(compared)}
    finally:
        conn.close()


def seed_long(home: Path, n: int) -> int:
    """The long run: started, its first points logged and ended through engine.tracking; the
    rest of its points appended through the data layer in between."""
    from chart_redraw import KEY
    from chart_redraw import curve as long_curve

    from engine import tracking
    from engine.data import metrics
    from engine.schema import connect_sync

    t = time.perf_counter()
    run = tracking.start_run(LONG_EXP, {"lr": 3e-4, "steps": n}, home=str(home))
    head = min(n, TRACKED_POINTS)
    for s in range(head):
        run.log({KEY: long_curve(s, n)}, step=s)
    run.flush()
    conn = connect_sync(home / "labdeck.db")
    try:
        known, heads = metrics.key_ids(conn, run.id), {}
        wall = time.time()
        for start in range(head, n, 200_000):
            buf = [({KEY: long_curve(s, n)}, s, wall + s / 1000, None)
                   for s in range(start, min(n, start + 200_000))]
            _, new_keys, new_heads = metrics.append(conn, run.id, known, buf, heads)
            known.update(new_keys)
            heads.update(new_heads)
            if (start // 200_000 + 1) % 10 == 0:
                say(f"  {start + len(buf):,} points ({time.perf_counter() - t:.0f} s)")
    finally:
        conn.close()
    run.finish()
    say(f"  {n:,} points of {KEY} ({head:,} through engine.tracking, the rest through"
        f" engine.data.metrics.append) in {time.perf_counter() - t:.1f} s")
    return run.id


def seed_trials(engine_home: str, db: Path, study: Any, n: int) -> None:
    """The study's finished trials in its Optuna storage, each with its labdeck run."""
    import warnings
    from datetime import datetime, timedelta

    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import FrozenTrial, TrialState

    from engine.data import experiments, metrics, runs
    from engine.records import HOST
    from engine.schema import connect_sync, write_tx
    from engine.studies.optuna_storage import TRIAL_ATTR, open_storage
    from engine.studies.optuna_tuner import SLOTS_SUFFIX
    from engine.studies.space import space_from_json

    space = space_from_json(study.space)
    dists = {}
    for name, p in space.items():
        if p.kind == "categorical":
            dists[name] = CategoricalDistribution(list(p.choices or ()))
        elif p.kind == "int":
            lo, hi = p.bounds()
            dists[name] = IntDistribution(int(lo), int(hi), log=p.log)
        elif p.kind == "float":
            lo, hi = p.bounds()
            dists[name] = FloatDistribution(float(lo), float(hi), log=p.log)
    rng = random.Random(1)
    conn = connect_sync(db)
    try:
        exp_id = experiments.get_experiment(conn, study.trials_experiment).id
        frozen = []
        begin = datetime.now() - timedelta(minutes=n)
        for number in range(n):
            params = {}
            for name, d in dists.items():
                if isinstance(d, CategoricalDistribution):
                    params[name] = rng.choice(d.choices)
                elif isinstance(d, IntDistribution):
                    params[name] = rng.randint(d.low, d.high)
                elif d.log:
                    params[name] = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
                else:
                    params[name] = rng.uniform(d.low, d.high)
            final = (0.1 + 0.05 * (math.log10(params["lr"]) + 3) ** 2
                     + abs(params["dropout"] - 0.2) + 0.01 * params["layers"]
                     + (0.1 if params["opt"] == "sgd" else 0.0) + 0.05 * rng.random())
            inter = {e: final + 0.5 / (e + 1) for e in range(EPOCHS)}
            with write_tx(conn):
                run_id, _ = runs.insert_run(conn, exp_id, {**study.base_config, **params},
                                            "running", "study")
            metrics.append(conn, run_id, {}, [({"val/loss": v}, e, time.time(), float(e))
                                              for e, v in inter.items()])
            runs.finish_run(conn, run_id, "completed")
            start = begin + timedelta(seconds=60 * number)
            attrs = {"pid": 1000 + number, "host": HOST, "home": engine_home, "run_id": run_id}
            frozen.append(FrozenTrial(
                number=number, state=TrialState.COMPLETE, value=inter[EPOCHS - 1],
                datetime_start=start, datetime_complete=start + timedelta(seconds=50),
                params=params, distributions=dists, user_attrs={TRIAL_ATTR: attrs},
                system_attrs={}, intermediate_values=inter, trial_id=number))
    finally:
        conn.close()
    storage = open_storage(study.storage)
    with warnings.catch_warnings():  # heartbeat storage outside optimize()
        warnings.simplefilter("ignore")
        optuna.load_study(study_name=study.tuner_study, storage=storage).add_trials(frozen)
        slots = storage.get_study_id_from_name(study.tuner_study + SLOTS_SUFFIX)
        tokens = storage.get_all_trials(slots, deepcopy=False, states=(TrialState.WAITING,))
        for number, token in enumerate(tokens):  # claimed, then used by trial `number`
            storage.set_trial_state_values(token._trial_id, state=TrialState.RUNNING)
            storage.set_trial_state_values(token._trial_id, state=TrialState.COMPLETE,
                                           values=[float(number)])
    remove = getattr(storage, "remove_session", None)
    if remove:
        remove()


async def seed(home: Path, c: Counts) -> dict[str, Any]:
    from engine.api import Engine

    t_all = time.perf_counter()
    say(f"seeding {home}: {c.describe()}")
    async with Engine.session(home) as engine:
        t = time.perf_counter()
        big = await engine.create_experiment(BIG_EXP, "script", {
            "command": "python train.py --lr {lr}", "lr": 1e-3, "objective": "val/loss",
            "direction": "minimize"}, tags=["scale"])
        await engine.create_experiment(BASE_EXP, "script", BASE_CONFIG, tags=["scale"])
        study = await engine.create_study(STUDY, BASE_EXP, SPACE, n_trials=c.trials,
                                          tuner="optuna", pruner="none", seed=0)
        say(f"  {BIG_EXP}, {BASE_EXP} and study {STUDY} ({c.trials:,} slots) through the"
            f" public API in {time.perf_counter() - t:.1f} s")
        engine_home = str(engine.home)
    bulk = await asyncio.to_thread(seed_bulk, home, c, big.id)
    long_id = await asyncio.to_thread(seed_long, home, c.points)
    t = time.perf_counter()
    await asyncio.to_thread(seed_trials, engine_home, home / "labdeck.db", study, c.trials)
    async with Engine.session(home) as engine:
        done = await engine.get_study(STUDY, refresh=True)  # mirrored; importance stored
        if done.status != "completed" or done.counts.get("complete") != c.trials:
            raise SystemExit(f"the seeded study is {done.status} with {done.counts}")
    say(f"  {c.trials:,} trials with their runs (Optuna add_trials, then get_study(refresh="
        f"True)) in {time.perf_counter() - t:.1f} s")
    n_exps, n_runs = await asyncio.to_thread(count_rows, home)
    if (n_runs, n_exps) != (c.runs, c.experiments):
        raise SystemExit(f"seeded {n_exps} experiments and {n_runs} runs, meant"
                         f" {c.experiments} and {c.runs}")
    seeded = time.perf_counter() - t_all
    info = {"counts": asdict(c), "long_run": long_id, "seed_s": seeded,
            "compare": [f"{BIG_EXP}/{n}" for n in await run_numbers(home, bulk["compared"])]}
    (home / MARKER).write_text(json.dumps(info, indent=1) + "\n")
    size = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    say(f"seeded in {seeded:.1f} s ({size / 2**20:,.0f} MiB on disk)")
    return info


def count_rows(home: Path) -> tuple[int, int]:
    from engine.data import experiments, runs
    from engine.schema import connect_sync

    conn = connect_sync(home / "labdeck.db")
    try:
        return experiments.count_experiments(conn), runs.count_runs(conn)
    finally:
        conn.close()


async def run_numbers(home: Path, run_ids: list[int]) -> list[int]:
    from engine.api import Engine

    async with Engine.session(home) as engine:
        return [(await engine.get_run(r)).number for r in run_ids]


async def big_home(path: Path, c: Counts) -> dict[str, Any]:
    marker = path / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if info["counts"] != asdict(c):
            raise SystemExit(f"{path} was seeded with {info['counts']}, not {asdict(c)}:"
                             " another --scale, or another --home")
        say(f"reusing {path} (seeded in {info['seed_s']:.0f} s): {c.describe()}")
        return info
    if path.exists() and any(path.iterdir()):
        raise SystemExit(f"{path} is neither empty nor a home this bench seeded")
    return await seed(path, c)
