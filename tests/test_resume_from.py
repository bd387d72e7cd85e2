"""`labdeck run start EXP --resume-from ...` names a checkpoint of an earlier run (RUN:NAME, or a
bare NAME: the latest run of the experiment that has it), never a path; the new run really
continues from the checkpoint's epoch. Real workers, real SQLite, real (tiny) training."""

import json
import sqlite3
import subprocess
import sys

import pytest
from helpers import labdeck_env

QUICK = ["dataset=synthetic", "n_train=64", "n_query=8", "n_database=32", "image_size=16", "batch_size=32",
         "width=8", "log_every=1", "num_threads=1"]


def cli(home, *args, check=True):
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def vlm_exp(home, name: str, epochs: int) -> None:
    sets = [a for kv in [*QUICK, f"epochs={epochs}"] for a in ("--set", kv)]
    cli(home, "exp", "create", name, "--adapter", "vlm_quantization", *sets)


def run_count(home) -> int:
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


def log_of(home, run: str) -> str:
    return cli(home, "run", "logs", run, "-n", "400").stdout


@pytest.mark.slow
def test_resume_from_an_earlier_runs_checkpoint(home):
    vlm_exp(home, "short", epochs=1)
    vlm_exp(home, "long", epochs=2)
    cli(home, "run", "start", "short", "--wait")
    # RUN:NAME, RUN as every command takes it: short/1 or the run id
    out = json.loads(cli(home, "run", "start", "long", "--resume-from", "short/1:last.pt",
                         "--wait", "--json").stdout)
    assert out["status"] == "completed", out
    assert out["resume_from"] == {"run_id": 1, "run": "short/1", "checkpoint": "last.pt"}
    log = log_of(home, "long/1")
    assert "resumed from" in log and "at epoch 1" in log, log
    show = json.loads(cli(home, "run", "show", "long/1", "--json").stdout)
    assert show["epochs"] == 2
    # the resumed run trained epoch 2 only: one validation point
    assert show["summary"]["val/loss"]["count"] == 1
    # a bare NAME: the latest earlier run of the same experiment that has it, said out loud
    res = cli(home, "run", "start", "long", "--resume-from", "last.pt", "--wait")
    assert "resuming from long/1:last.pt" in res.stdout + res.stderr
    assert "at epoch 2" in log_of(home, "long/2")
    # by run id too
    res = cli(home, "run", "start", "short", "--resume-from", "1:best.pt", "--json")
    assert json.loads(res.stdout)["resume_from"]["run"] == "short/1"


def test_resume_refuses_paths_and_unknown_checkpoints(home):
    cli(home, "exp", "create", "s", "--adapter", "script", "--set", "command=true")
    vlm_exp(home, "v", epochs=1)
    # an earlier run with a checkpoint (no training needed to name it)
    ck = home / "runs" / "1" / "checkpoints"
    conn = sqlite3.connect(str(home / "labdeck.db"))
    with conn:
        conn.execute("INSERT INTO runs(experiment_id, number, status, config, source, created)"
                     " SELECT id, 1, 'completed', config, 'job', 0 FROM experiments"
                     " WHERE name='v'")
    conn.close()
    ck.mkdir(parents=True)
    (ck / "last.pt").write_bytes(b"x")
    (home / "runs" / "1" / "job-1.log").write_text("secret")
    before = run_count(home)
    for ref, words in [("/etc/passwd", "absolute"), ("../../labdeck.db", "traversal"),
                       ("v/1:../job-1.log", "traversal"), ("1:/etc/passwd", "absolute"),
                       ("v/1:", "empty")]:
        res = cli(home, "run", "start", "v", "--resume-from", ref, check=False)
        assert res.returncode == 1 and words in res.stderr, (ref, res.stderr)
        assert res.stderr.count("\n") == 1
    res = cli(home, "run", "start", "v", "--resume-from", "best.pt", check=False)
    assert res.returncode == 1 and "best.pt" in res.stderr and "v/1: last.pt" in res.stderr
    res = cli(home, "run", "start", "v", "--resume-from", "v/1:best.pt", check=False)
    assert res.returncode == 1 and "available: last.pt" in res.stderr
    res = cli(home, "run", "start", "v", "--resume-from", "v/9:last.pt", check=False)
    assert res.returncode == 1 and "no run" in res.stderr
    # an adapter that cannot resume says so
    res = cli(home, "run", "start", "s", "--resume-from", "v/1:last.pt", check=False)
    assert res.returncode == 1 and "cannot resume" in res.stderr
    assert run_count(home) == before  # nothing was queued
    assert "RUN:NAME" in cli(home, "run", "start", "--help").stdout
