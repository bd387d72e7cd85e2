"""Compare (engine and `labdeck compare`) on a first hour's home: an experiment stands for its
latest run with metrics and the comparison says which; only results get a ★; keys sort
naturally; long config values are cut in the CLI table, whole in --json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from compare_home import BITS, CANCELLED, COMMAND, EXPERIMENTS, seed_compare_home
from helpers import labdeck_env

from engine.api import Engine
from engine.compare import is_ranked, natural_key

NAMES = [name for name, _ in EXPERIMENTS]


@pytest.fixture
def cmp_home(home):
    return seed_compare_home(home)


def cli(home, *args):
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res.stdout


async def test_an_experiment_stands_for_its_latest_run_with_metrics(cmp_home):
    async with Engine.session(cmp_home) as engine:
        runs = await engine.list_runs(CANCELLED)
        assert [(r.number, r.status) for r in runs] == [(2, "cancelled"), (1, "completed")]
        c = await engine.compare(NAMES)
    assert c.columns == [f"{name} › run 1" for name in NAMES]
    assert all(v is not None for v in c.metrics["val/loss"]["last"])
    assert c.metrics["val/loss"]["best_last"] == 2  # lr 0.1 learns fastest
    assert c.notes == [f"{CANCELLED}: run 1, its latest with metrics (run 2 cancelled has none)"]


async def test_a_run_named_is_taken_as_named(cmp_home):
    async with Engine.session(cmp_home) as engine:
        c = await engine.compare([f"{CANCELLED}/2", NAMES[1]])
    assert c.columns == [f"{CANCELLED} › run 2", f"{NAMES[1]} › run 1"]
    assert c.metrics["val/loss"]["last"][0] is None and not c.notes


async def test_only_results_get_a_best_and_keys_sort_naturally(cmp_home):
    async with Engine.session(cmp_home) as engine:
        c = await engine.compare(NAMES)
    for key in ("train/lr", "epoch"):
        m = c.metrics[key]
        assert not m["ranked"] and m["direction"] is None
        assert m["best_last"] is None and m["best_best"] is None
    assert c.metrics["train/loss"]["ranked"] and c.metrics["val/map_8"]["best_last"] == 2
    assert [k for k in c.metrics if k.startswith("val/map")] == [f"val/map_{b}" for b in BITS]


def test_ranked_and_natural_order():
    assert not any(is_ranked(k) for k in ("train/lr", "lr", "optim/learning_rate",
                                            "lr_group0", "epoch", "step", "global_step",
                                            "progress", "sys/cpu_pct"))
    assert all(is_ranked(k) for k in ("val/loss", "val/acc", "map_8", "steps_per_sec"))
    assert is_ranked("train/lr", objective="train/lr")  # what the user said is the objective
    assert sorted(["map_128", "map_16", "map_8", "map_32"], key=natural_key) == [
        "map_8", "map_16", "map_32", "map_128"]


def test_cli_compare_takes_the_run_with_metrics_and_cuts_long_values(cmp_home):
    text = cli(cmp_home, "compare", *NAMES)
    assert f"{CANCELLED}: run 1, its latest with metrics (run 2 cancelled has none)" in text
    assert f"{CANCELLED} › run 2" not in text
    metrics = text[text.index("\nmetrics"):]
    rows = {line.split()[0]: line for line in metrics.splitlines()[3:]}
    assert "-" not in rows["val/loss"].split()[2:]  # every run has a value
    assert rows["val/loss"].count("★") == 1
    assert "★" not in rows["train/lr"] and "★" not in rows["epoch"]
    assert [k for k in rows if k.startswith("val/map")] == [f"val/map_{b}" for b in BITS]
    assert COMMAND not in text and COMMAND[:20] in text and "…" in text
    assert max(len(line) for line in text.splitlines()) < 160
    data = json.loads(cli(cmp_home, "--json", "compare", *NAMES))
    assert data["config"]["command"] == [COMMAND] * 3  # whole in --json
    assert data["notes"] and data["columns"][0] == f"{CANCELLED} › run 1"
