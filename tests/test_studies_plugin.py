"""A tuner from another package: declared in the ``labdeck.tuners`` entry-point group of a tiny
installed distribution (its module and ``.dist-info`` in a directory on the path, the layout
pip installs), a study created with it through the CLI and run to completion by a study job
with two workers: the job's worker process and the extra worker process it starts. Nothing
registers the tuner in any process; each finds it the way it finds the built-in ones."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, labdeck_env

from engine.studies.tuner_registry import tuner_names

PY = sys.executable

PLUGIN = '''"""A third-party tuner: random search that keeps its trials in its own file."""

from pathlib import Path

from engine.studies.random_tuner import RandomTuner


class CoinTuner(RandomTuner):
    name = "coin"
    description = "test plugin"

    @classmethod
    def default_storage(cls, home):
        return f"sqlite:///{Path(home) / 'studies' / 'coin.db'}"
'''


def install_plugin(site: Path) -> None:
    site.mkdir(parents=True)
    (site / "labdeck_coin_tuner.py").write_text(PLUGIN)
    info = site / "labdeck_coin_tuner-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labdeck-coin-tuner\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[labdeck.tuners]\ncoin = labdeck_coin_tuner:CoinTuner\n")


def cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_plugin_tuner_runs_a_study_in_worker_processes(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    install_plugin(site)
    plain = labdeck_env(home)
    env = {**plain, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    assert "coin" not in tuner_names()  # this process does not have the package
    # ~2 s a trial, so both workers get trials even on a loaded machine
    command = f"{PY} -m engine.examples.toy_train --lr {{lr}} --steps {{steps}} --sleep 0.05"
    cli(env, "exp", "create", "toy", "--adapter", "script", "--objective", "val/loss",
        "--set", f"command={command}", "--set", f"cwd={ROOT}", "--set", "lr=0.01",
        "--set", "steps=40")
    created = json.loads(cli(env, "study", "create", "c", "--from", "toy", "--tuner", "coin",
                             "--param", "lr=0.001:0.3:log", "--n-trials", "4",
                             "--workers", "2", "--seed", "3", "--json").stdout)
    assert created["tuner"] == "coin"
    assert created["storage"] == f"sqlite:///{home / 'studies' / 'coin.db'}"

    # without the package a process cannot open the study's tuner, and says why
    missing = cli(plain, "study", "start", "c", check=False)
    assert missing.returncode == 1 and "unknown tuner 'coin'" in missing.stderr

    started = json.loads(cli(env, "study", "start", "c", "--wait", "--json").stdout)
    assert started["job_status"] == "completed", started["error"]
    assert started["status"] == "completed" and started["counts"]["complete"] == 4
    shown = json.loads(cli(env, "study", "show", "c", "--json").stdout)
    assert [t["state"] for t in shown["trials"]] == ["complete"] * 4
    pids = {t["pid"] for t in shown["trials"]}
    assert len(pids) == 2  # the job's worker and the extra worker both ran trials
    # ... through the plugin: its own storage holds the trials, with those workers' pids
    conn = sqlite3.connect(home / "studies" / "coin.db")
    try:
        rows = conn.execute("SELECT state, attrs FROM rtrials WHERE study='c'").fetchall()
    finally:
        conn.close()
    assert sorted(state for state, _ in rows) == ["complete"] * 4
    assert {json.loads(attrs)["pid"] for _, attrs in rows} == pids
