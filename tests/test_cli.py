"""The headless CLI: exit codes, one-line errors, --json shapes."""

import json
import subprocess
import sys

from helpers import labdeck_env, script_command


def cli(home, *args, check=True):
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def test_full_loop_with_json(home, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"command": script_command("--steps {steps}"), "steps": 50}))
    out = json.loads(cli(home, "exp", "create", "a", "--adapter", "script", "--config", str(cfg),
                         "--objective", "train/loss", "--json").stdout)
    assert out["name"] == "a" and out["config"]["steps"] == 50
    cli(home, "exp", "create", "b", "--adapter", "script", "--config", str(cfg),
        "--set", "steps=60")
    started = json.loads(cli(home, "run", "start", "a", "--wait", "--json").stdout)
    assert set(started) >= {"run_id", "job_id", "status"} and started["status"] == "completed"
    cli(home, "run", "start", "b", "--wait")
    show = json.loads(cli(home, "run", "show", str(started["run_id"]), "--json").stdout)
    assert show["status"] == "completed" and show["summary"]["train/loss"]["count"] == 50
    assert show["worker_pid"] is None
    metrics = json.loads(cli(home, "run", "metrics", "a/1", "--key", "train/acc", "--json").stdout)
    assert len(metrics["metrics"]["train/acc"]) == 50
    jobs = json.loads(cli(home, "jobs", "list", "--json").stdout)
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    job = json.loads(cli(home, "jobs", "show", str(started["job_id"]), "--json").stdout)
    assert job["exit_code"] == 0 and job["log_tail"]
    comp = json.loads(cli(home, "compare", "a", "b", "--diff-only", "--json").stdout)
    assert comp["differing"] == ["steps"] and comp["rows"]
    text = cli(home, "compare", "a", "b").stdout
    assert "★" in text
    exps = json.loads(cli(home, "exp", "list", "--json").stdout)
    assert {e["name"] for e in exps} == {"a", "b"}
    assert cli(home, "run", "logs", "a/1").stdout
    cli(home, "exp", "delete", "b", "--yes")
    assert len(json.loads(cli(home, "exp", "list", "--json").stdout)) == 1


def test_errors_are_one_line_and_nonzero(home):
    res = cli(home, "exp", "create", "x", "--adapter", "script", "--set", "command=run {lr}",
              "--set", "timeout_s=-3", check=False)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "timeout_s" in res.stderr and "lr" in res.stderr
    res = cli(home, "exp", "create", "x", "--adapter", "nope", check=False)
    assert res.returncode == 1 and "unknown adapter" in res.stderr
    res = cli(home, "run", "show", "999", check=False)
    assert res.returncode == 1 and "no run" in res.stderr
    assert json.loads(cli(home, "exp", "list", "--json").stdout) == []


def test_checkpoint_delete_traversal_refused(home):
    cli(home, "exp", "create", "c", "--adapter", "script", "--set", "command=true")
    cli(home, "run", "start", "c", "--wait")
    ck = home / "runs" / "1" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "a.pt").write_text("x")
    res = cli(home, "run", "checkpoints", "1", "--delete", "../job-1.log", check=False)
    assert res.returncode == 1 and "refused" in res.stderr
    assert (home / "runs" / "1" / "job-1.log").exists()
    listed = json.loads(cli(home, "run", "checkpoints", "1", "--json").stdout)
    assert [c["name"] for c in listed] == ["a.pt"]
    listed = json.loads(cli(home, "run", "checkpoints", "1", "--delete", "a.pt", "--json").stdout)
    assert listed == []


def test_run_cancel_via_cli(home):
    cli(home, "exp", "create", "s", "--adapter", "script", "--set",
        "command=" + script_command("--steps 100000 --sleep 0.01"))
    started = json.loads(cli(home, "run", "start", "s", "--json").stdout)
    res = json.loads(cli(home, "run", "cancel", str(started["run_id"]), "--json").stdout)
    assert res["status"] == "cancelled"


def test_home_and_json_before_or_after_the_subcommand(home, tmp_path):
    other = tmp_path / "other"
    res = subprocess.run([sys.executable, "-m", "cli", "--home", str(other), "--json",
                          "exp", "list"], env=labdeck_env(home), capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout) == []
    assert (other / "labdeck.db").exists() and not (home / "labdeck.db").exists()
    res = subprocess.run([sys.executable, "-m", "cli", "exp", "list", "--home", str(other),
                          "--json"], env=labdeck_env(home), capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout) == []
