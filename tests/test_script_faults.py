"""Script jobs under faults: bad output lines, a failing reporter, cancel of a slow or
escaping command. Nothing may hang, nothing may be lost, nothing may leak."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import labdeck_env, wait_for

from adapters.conformance import RecordingReporter
from adapters.script import ScriptAdapter
from engine.api import Engine
from engine.paths import job_log_path
from engine.records import pid_alive
from engine.settings import load_settings

FILL = 3000  # ~60 bytes each: far more than a pipe holds, so a dead reader blocks the command


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path}"


def _emitter(tmp_path: Path, bad: list[bytes], tail: str = "") -> str:
    """A command that prints ``bad`` lines (raw bytes), then FILL good metric lines."""
    return _script(tmp_path, "emit.py", f"""
        import json, os, sys, time
        out = sys.stdout.buffer
        for line in {bad!r}:
            out.write(line + b"\\n")
        for step in range({FILL}):
            out.write(json.dumps({{"step": step, "loss": 1.0 / (step + 1), "pad": "x" * 20}})
                      .encode() + b"\\n")
        out.flush()
        {tail}
    """)


def _train(config: dict, reporter, timeout: float = 30.0) -> dict:
    """Train in a thread; fail (instead of hanging the suite) if it never returns."""
    box: dict = {}

    def go() -> None:
        try:
            box["result"] = ScriptAdapter().train(ScriptAdapter.validate_config(config), reporter)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    wait_for(lambda: not thread.is_alive(), timeout=timeout,
             what="train to return (a dead output reader leaves the command blocked)")
    return box


def _bad_reports(reporter: RecordingReporter) -> list[str]:
    return [ln for ln in reporter.lines if re.search(r"bad metric line \d+:", ln)]


# ----------------------------------------------------------------- bad lines (unit level)


def test_non_utf8_output_does_not_stop_ingestion(tmp_path):
    rep = RecordingReporter(tmp_path / "run")
    box = _train({"command": _emitter(tmp_path, [b"\xff\xfe not utf-8 \x80",
                                                 b'{"step": 0, "lo\xffss": 2.0}'])}, rep)
    assert "error" not in box, box
    assert [s for s, m in rep.metrics if "loss" in m] == list(range(FILL))
    assert rep.metrics[0] == (0, {"lo\ufffdss": 2.0})  # decoded with a replacement char
    assert box["result"]["ingested_points"] == FILL + 1


BIG = "1" + "0" * 400  # an integer literal beyond float range


@pytest.mark.parametrize("bad, reason", [
    (f'{{"step": 1, "x": {BIG}}}', "overflows"),
    (f'{{"step": 1, "x": -{BIG}}}', "overflows"),
    ('{"step": 1e400, "x": 1}', "step"),
    ('{"step": NaN, "x": 1}', "step"),
    ('{"step": 1000000000000000000000000000000, "x": 1}', "step"),
    ('{"step": -9223372036854775809, "x": 1}', "step"),
    ('{"step": 9223372036854775808, "x": 1}', "step"),
    ('{"step": 1.5, "x": 1}', "step"),
    ('{"step": true, "x": 1}', "step"),
    (f'{{"step": 1, "epoch": {BIG}, "x": 1}}', "epoch"),
], ids=["int-value", "neg-int-value", "step-inf", "step-nan", "step-1e30", "step-below-int64",
        "step-above-int64", "step-fraction", "step-bool", "epoch-overflow"])
def test_bad_line_is_skipped_and_reported(tmp_path, bad, reason):
    rep = RecordingReporter(tmp_path / "run")
    box = _train({"command": _emitter(tmp_path, [bad.encode()])}, rep)
    assert "error" not in box, box
    assert [s for s, _ in rep.metrics] == list(range(FILL)), "the bad line must be skipped"
    assert not any("x" in m for _, m in rep.metrics)
    (report,) = _bad_reports(rep)
    assert "bad metric line 1" in report and reason in report, report
    assert box["result"]["bad_lines"] == 1


def test_largest_int64_step_is_fine(tmp_path):
    rep = RecordingReporter(tmp_path / "run")
    box = _train({"command": _emitter(tmp_path, [
        b'{"step": 9223372036854775807, "x": 1}', b'{"step": -9223372036854775808, "x": 2}',
        b'{"step": 3.0, "x": 3}'])}, rep)
    assert "error" not in box, box
    assert rep.metrics[:3] == [(2**63 - 1, {"x": 1.0}), (-(2**63), {"x": 2.0}), (3, {"x": 3.0})]
    assert box["result"]["bad_lines"] == 0


def test_bad_line_reports_are_capped_with_a_summary(tmp_path):
    rep = RecordingReporter(tmp_path / "run")
    box = _train({"command": _emitter(tmp_path, [b'{"step": NaN, "x": 1}'] * 30)}, rep)
    assert "error" not in box, box
    reports = _bad_reports(rep)
    assert len(reports) == 20, reports
    assert [ln for ln in rep.lines if "10 more bad metric lines" in ln], rep.lines
    assert box["result"]["bad_lines"] == 30
    assert [s for s, _ in rep.metrics] == list(range(FILL))


# ----------------------------------------------------------------- a failing reporter


class FailingReporter(RecordingReporter):
    def __init__(self, run_dir: Path, exc: BaseException):
        super().__init__(run_dir)
        self.exc = exc

    def log(self, metrics, step=None, epoch=None) -> None:
        raise self.exc


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"),
                                 SystemExit("reporter gave up")], ids=["disk-full", "base-exc"])
def test_failing_reporter_fails_the_job_instead_of_hanging(tmp_path, exc):
    pid_file = tmp_path / "pid"
    # the command would run for 10 minutes after its output: the adapter must end it
    cmd = _emitter(tmp_path, [], tail=f"open({str(pid_file)!r}, 'w').write(str(os.getpid()));"
                                      " time.sleep(600)")
    rep = FailingReporter(tmp_path / "run", exc)
    box = _train({"command": cmd}, rep)
    assert isinstance(box.get("error"), RuntimeError), box
    assert str(exc) in str(box["error"])
    if pid_file.exists():
        pid = int(pid_file.read_text())
        wait_for(lambda: not pid_alive(pid), timeout=10, what="the command to be ended")


# ----------------------------------------------------------------- bad lines through the engine


async def test_step_beyond_int64_does_not_crash_the_worker(home, tmp_path):
    cmd = _script(tmp_path, "steps.py", """
        import json
        print(json.dumps({"step": 0, "loss": 1.0}))
        print('{"step": 1000000000000000000000000000000, "loss": 2.0}')
        print('{"step": -9223372036854775809, "loss": 3.0}')
        print(json.dumps({"step": 1, "loss": 0.5}), flush=True)
    """)
    async with Engine.session(home) as engine:
        await engine.create_experiment("big-step", "script", {"command": cmd})
        run_id, job_id = await engine.start_run("big-step")
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=60)
        log = await engine.log_tail(run_id, 100)
        assert job.status == "completed", (job.error, log)
        assert await engine.all_metrics(run_id, "loss") == [(0, 1.0), (1, 0.5)]
        assert job.result["bad_lines"] == 2
        assert sum(bool(re.search(r"bad metric line \d+:", ln)) for ln in log) == 2, log


# ----------------------------------------------------------------- cancel


async def _wait_log(engine: Engine, run_id: int, needle: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in await engine.log_tail(run_id, 200):
            if needle in line:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in the log")


async def _wait_final(engine: Engine, job_id: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await engine.get_job(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status}")


async def test_cancel_sends_one_sigterm_and_waits_the_configured_grace(home, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("LABDECK_CANCEL_GRACE", "12")
    cmd = _script(tmp_path, "slow_exit.py", """
        import json, os, signal, time
        terms = 0
        def on_term(signum, frame):
            global terms
            terms += 1
            os.write(1, f"SIGTERM number {terms}\\n".encode())
        signal.signal(signal.SIGTERM, on_term)
        print("READY", flush=True)
        step = 0
        while not terms:
            print(json.dumps({"step": step, "loss": 1.0}), flush=True)
            step += 1
            time.sleep(0.05)
        time.sleep(7.0)  # a slow clean shutdown: more than 5 s, well inside the 12 s grace
        print(f"CLEANED terms={terms}", flush=True)
    """)
    async with Engine.session(home) as engine:
        assert engine.settings.cancel_grace_s == 12
        await engine.create_experiment("slow-exit", "script", {"command": cmd})
        run_id, job_id = await engine.start_run("slow-exit")
        await engine.ensure_scheduler()
        await _wait_log(engine, run_id, "READY")
        await engine.cancel_job(job_id)
        job = await _wait_final(engine, job_id)
        log = await engine.log_tail(run_id, 200)
        assert job.status == "cancelled", (job, log)
        assert [ln for ln in log if ln.startswith("SIGTERM number")] == ["SIGTERM number 1"], log
        assert "CLEANED terms=1" in log, log


async def test_cancel_kills_a_descendant_that_left_the_process_group(home, tmp_path):
    # an intermediate starts a grandchild in its own session, then exits: the grandchild is
    # re-parented and outside every group labdeck knows
    cmd = _script(tmp_path, "escape.py", """
        import json, subprocess, sys, time
        code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c',"
                " 'import time; time.sleep(600)'], start_new_session=True);"
                " print(f'GRANDCHILD_PID={p.pid}', flush=True)")
        subprocess.run([sys.executable, "-c", code], check=True)
        step = 0
        while True:
            print(json.dumps({"step": step, "loss": 1.0}), flush=True)
            step += 1
            time.sleep(0.05)
    """)
    grandchild = None
    try:
        async with Engine.session(home) as engine:
            await engine.create_experiment("escape", "script", {"command": cmd})
            run_id, job_id = await engine.start_run("escape")
            await engine.ensure_scheduler()
            line = await _wait_log(engine, run_id, "GRANDCHILD_PID=")
            grandchild = int(line.split("=", 1)[1])
            assert pid_alive(grandchild)
            await engine.cancel_job(job_id)
            job = await _wait_final(engine, job_id)
            assert job.status == "cancelled", job
            wait_for(lambda: not pid_alive(grandchild), timeout=15, what="grandchild killed")
    finally:
        if grandchild and pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


async def test_finished_job_leaves_no_descendant_behind(home, tmp_path):
    cmd = _script(tmp_path, "daemon.py", """
        import json, subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True, stdout=subprocess.DEVNULL)
        print(f"DAEMON_PID={p.pid}")
        print(json.dumps({"step": 0, "loss": 1.0}), flush=True)
    """)
    daemon = None
    try:
        async with Engine.session(home) as engine:
            await engine.create_experiment("daemon", "script", {"command": cmd})
            run_id, job_id = await engine.start_run("daemon")
            await engine.ensure_scheduler()
            job = await _wait_final(engine, job_id)
            assert job.status == "completed", job
            line = await _wait_log(engine, run_id, "DAEMON_PID=")
            daemon = int(line.split("=", 1)[1])
            wait_for(lambda: not pid_alive(daemon), timeout=15, what="daemon killed")
    finally:
        if daemon and pid_alive(daemon):
            os.kill(daemon, signal.SIGKILL)


def test_command_dies_with_its_worker(home, tmp_path):
    """Nothing watches the job (``run start`` without --wait) and its worker is killed with
    SIGKILL: the command runs in a group of its own, and must not outlive the worker."""
    cmd = _script(tmp_path, "orphan.py", """
        import json, os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"PIDS={os.getpid()},{child.pid}", flush=True)
        step = 0
        while True:
            print(json.dumps({"step": step, "loss": 1.0}), flush=True)
            step += 1
            time.sleep(0.05)
    """)

    def cli(*args: str) -> dict:
        res = subprocess.run([sys.executable, "-m", "cli", *args, "--json"],
                             env=labdeck_env(home), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, (args, res.stderr)
        return json.loads(res.stdout)

    cli("exp", "create", "orphan", "--adapter", "script", "--set", f"command={cmd}")
    started = cli("run", "start", "orphan")
    log = job_log_path(load_settings(home), started["job_id"], started["run_id"])

    def pids() -> list[int] | None:
        lines = log.read_text().splitlines() if log.exists() else []
        found = [ln.split("=", 1)[1] for ln in lines if ln.startswith("PIDS=")]
        return [int(p) for p in found[0].split(",")] if found else None

    command_pids = wait_for(pids, timeout=60, what="the command's pids")
    try:
        conn = sqlite3.connect(str(home / "labdeck.db"), timeout=30)
        try:
            (worker,) = conn.execute("SELECT pid FROM jobs WHERE id=?",
                                     (started["job_id"],)).fetchone()
        finally:
            conn.close()
        os.kill(worker, signal.SIGKILL)
        for pid in command_pids:
            wait_for(lambda p=pid: not pid_alive(p), timeout=15, what=f"pid {pid} to die")
    finally:
        for pid in command_pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_killed_worker_leaves_no_descendant_behind(home, tmp_path):
    """The worker dies with SIGKILL while the scheduler watches: the descendant that left every
    group is found by the job's environment and killed when the scheduler reaps the worker."""
    cmd = _script(tmp_path, "escape2.py", """
        import json, subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True, stdout=subprocess.DEVNULL)
        print(f"ESCAPED_PID={p.pid}", flush=True)
        step = 0
        while True:
            print(json.dumps({"step": step, "loss": 1.0}), flush=True)
            step += 1
            time.sleep(0.05)
    """)
    escaped = None
    try:
        async with Engine.session(home) as engine:
            await engine.create_experiment("escape2", "script", {"command": cmd})
            run_id, job_id = await engine.start_run("escape2")
            await engine.ensure_scheduler()
            line = await _wait_log(engine, run_id, "ESCAPED_PID=")
            escaped = int(line.split("=", 1)[1])
            os.kill((await engine.get_job(job_id)).pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while pid_alive(escaped):  # the scheduler ticks in this event loop meanwhile
                assert time.monotonic() < deadline, "the escaped descendant survived"
                await asyncio.sleep(0.1)
    finally:
        if escaped and pid_alive(escaped):
            os.kill(escaped, signal.SIGKILL)


def test_timeout_ends_the_command_and_fails(tmp_path):
    pid_file = tmp_path / "pid"
    cmd = _script(tmp_path, "sleeper.py", f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(600)
    """)
    rep = RecordingReporter(tmp_path / "run")
    box = _train({"command": cmd, "timeout_s": 1.0}, rep)
    assert isinstance(box.get("error"), RuntimeError) and "timed out" in str(box["error"])
    if pid_file.exists():  # a slow machine may time the command out before it wrote it
        assert not pid_alive(int(pid_file.read_text()))
