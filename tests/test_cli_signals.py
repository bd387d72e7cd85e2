"""The CLI ends the way a shell user expects: a closed pipe ends it quietly, Ctrl-C during a
wait or a follow ends it with one line and exit 130 and leaves the job running, and nothing a
user can cause prints a Python traceback. Real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import labdeck_env, script_command, wait_for


def cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args],
                          env=env or labdeck_env(home), capture_output=True, text=True,
                          timeout=120)


def popen(home: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args],
                            env=env or labdeck_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def make_slow(home: Path, name: str = "slow") -> None:
    # about 60 s of logging unless interrupted: long enough that the job is still running
    # when the test looks, on any machine
    res = cli(home, "exp", "create", name, "--adapter", "script", "--set",
              "command=" + script_command("--steps {steps} --sleep 0.05"), "--set", "steps=1200")
    assert res.returncode == 0, res.stderr


def job_of(home: Path, job_id: int) -> dict:
    return json.loads(cli(home, "jobs", "show", str(job_id), "--json").stdout)


def interrupt(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return out, err


def assert_no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error:" not in err.replace("labdeck: error:", ""), err


def cancel_all(home: Path) -> None:
    for job in json.loads(cli(home, "jobs", "list", "--json").stdout):
        if job["status"] in ("queued", "running"):
            cli(home, "jobs", "cancel", str(job["id"]))


def test_closed_pipe_ends_quietly(home: Path) -> None:
    res = cli(home, "exp", "create", "many", "--adapter", "script", "--set",
              "command=" + script_command("--steps {steps} --sleep 0"), "--set", "steps=3000")
    assert res.returncode == 0, res.stderr
    assert cli(home, "run", "start", "many", "--wait").returncode == 0
    # `labdeck run metrics many/1 | head -1`: the reader leaves after one line
    proc = popen(home, "run", "metrics", "many/1")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first
    proc.stdout.close()
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait(timeout=60)
    assert proc.returncode == 141, err  # like a process ended by SIGPIPE
    assert err == "", err
    # and through a real shell pipeline, as a user types it
    sh = subprocess.run(["bash", "-c", f"{sys.executable} -m cli run metrics many/1 "
                                       "| head -1; echo rc=${PIPESTATUS[0]}"],
                        env=labdeck_env(home), capture_output=True, text=True, timeout=60)
    assert sh.stdout.strip().endswith("rc=141") and sh.stderr == "", (sh.stdout, sh.stderr)


@pytest.mark.parametrize("command", [("run", "start", "slow", "--wait"),
                                     ("run", "start", "slow", "--wait", "--json")])
def test_ctrl_c_during_wait_leaves_the_job_running(home: Path, command: tuple) -> None:
    make_slow(home)
    proc = popen(home, *command)
    try:
        wait_for(lambda: cli(home, "jobs", "list", "--json").stdout.count('"running"'),
                 timeout=60, what="job running")
        out, err = interrupt(proc)
        assert proc.returncode == 130, (out, err)
        assert err.endswith("labdeck: interrupted\n") and err.count("\n") <= 2, err
        assert_no_traceback(err)
        job = job_of(home, 1)
        assert job["status"] == "running", job  # Ctrl-C stops waiting, not the job
        assert job["pid"] and os.path.exists(f"/proc/{job['pid']}")
    finally:
        cancel_all(home)


def test_ctrl_c_during_follow(home: Path) -> None:
    make_slow(home)
    assert cli(home, "run", "start", "slow").returncode == 0
    proc = popen(home, "run", "logs", "slow/1", "--follow")
    assert proc.stdout is not None
    try:
        wait_for(lambda: proc.stdout.readline(), timeout=60, what="a followed log line")
        out, err = interrupt(proc)
        assert proc.returncode == 130 and err == "labdeck: interrupted\n", err
        assert job_of(home, 1)["status"] == "running"
    finally:
        cancel_all(home)


def test_ctrl_c_during_study_wait(home: Path) -> None:
    make_slow(home)
    res = cli(home, "study", "create", "st", "--from", "slow", "--param", "steps=1200,1300",
              "--objective", "train/loss", "--n-trials", "2")
    assert res.returncode == 0, res.stderr
    proc = popen(home, "study", "start", "st", "--wait")
    assert proc.stderr is not None
    try:
        assert "waiting" in proc.stderr.readline()
        wait_for(lambda: any(j["status"] == "running" and j["type"] == "study" for j in
                             json.loads(cli(home, "jobs", "list", "--json").stdout)),
                 timeout=60, what="study job running")
        out, err = interrupt(proc)
        assert proc.returncode == 130 and err == "labdeck: interrupted\n", err
        jobs = json.loads(cli(home, "jobs", "list", "--json").stdout)
        assert any(j["type"] == "study" and j["status"] == "running" for j in jobs), jobs
    finally:
        cancel_all(home)


def test_demo_honours_labdeck_home(tmp_path: Path) -> None:
    home = tmp_path / "from-env"
    env = labdeck_env(home)
    env["HOME"] = str(tmp_path / "user")  # where ~/.labdeck-demo would go
    proc = popen(home, "demo", "--headless", env=env)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("created experiment")
        out, err = interrupt(proc)
        assert proc.returncode == 130 and err.endswith("labdeck: interrupted\n"), err
        assert (home / "labdeck.db").is_file()
        assert not (tmp_path / "user" / ".labdeck-demo").exists()
        names = {e["name"] for e in json.loads(cli(home, "exp", "list", "--json").stdout)}
        assert {"toy-lr-1e-2", "toy-lr-3e-2"} <= names
    finally:
        cancel_all(home)


def test_help_says_where_the_demo_lives(home: Path) -> None:
    out = cli(home, "demo", "--help").stdout
    assert "LABDECK_HOME" in out


def test_unexpected_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for args in (("--home", str(not_a_dir), "exp", "list"),
                 ("--home", str(not_a_dir / "sub"), "exp", "list")):
        res = cli(home, *args)
        assert res.returncode == 1, res
        assert res.stderr.startswith("labdeck: ") and res.stderr.count("\n") == 1, res.stderr
        assert "Traceback" not in res.stderr
