"""System metrics: a job samples its process tree and its own GPUs (the fake NVML stands in for
nvidia-ml-py) into reserved ``sys/`` keys, which stay out of every "best", every summary and
every default objective, and which users may not log."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, labdeck_env, script_command, wait_for

from adapters.base import ConfigError
from engine.api import Engine
from engine.metric_writer import MetricWriter
from engine.resources import assigned_gpus, job_device
from engine.schema import connect_sync
from engine.system_metrics import (
    ReservedKeyError,
    SystemSampler,
    interval_s,
    refuse_system_keys,
)

FAKE = Path(__file__).resolve().parent / "fake_nvml"
GPU_FIELDS = ("util_pct", "mem_mb", "temp_c", "power_w")
MACHINE = {"library": True, "devices": [
    {"uuid": "GPU-a", "name": "Fake A100", "total_mb": 40960, "used_mb": 100, "util": 3,
     "temp": 30, "power_w": 50},
    {"uuid": "GPU-b", "name": "Fake A100", "total_mb": 40960, "used_mb": 12288, "util": 87,
     "temp": 71, "power_w": 301.5},
]}


def _points(home: Path, run_id: int) -> dict[str, list[tuple[int, float, float]]]:
    """key -> [(step, value, wall)] by point id."""
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        out: dict[str, list[tuple[int, float, float]]] = {}
        for key, step, value, wall in conn.execute(
                "SELECT k.key, m.step, m.value, m.wall FROM metrics m JOIN metric_keys k"
                " ON k.id=m.key_id WHERE k.run_id=? ORDER BY m.id", (run_id,)):
            out.setdefault(key, []).append((step, value, wall))
        return out
    finally:
        conn.close()


# ------------------------------------------------------------------ a job's own devices


def test_job_device_and_gpus_come_from_the_environment() -> None:
    assert (assigned_gpus({}), job_device({})) == ((), "cpu")
    assert (assigned_gpus({"LABDECK_GPU_INDICES": ""}), job_device({"LABDECK_GPU_INDICES": ""})
            ) == ((), "cpu")
    env = {"LABDECK_GPU_INDICES": "1,3", "CUDA_VISIBLE_DEVICES": "1,3"}
    assert (assigned_gpus(env), job_device(env)) == ((1, 3), "cuda")
    with pytest.raises(ValueError, match="LABDECK_GPU_INDICES='a'"):
        assigned_gpus({"LABDECK_GPU_INDICES": "a"})
    assert interval_s({}) == 5.0 and interval_s({"LABDECK_SYS_METRICS_S": "0"}) == 0.0
    with pytest.raises(ValueError, match="LABDECK_SYS_METRICS_S"):
        interval_s({"LABDECK_SYS_METRICS_S": "-1"})


# ------------------------------------------------------------------ sampling


def test_a_job_given_gpu_1_records_gpu_1_and_its_process_tree(home: Path, tmp_path: Path):
    """A real worker process (started as the scheduler starts it) with LABDECK_GPU_INDICES=1 on
    a fake two-GPU machine: its run gets sys/gpu1/* (and no sys/gpu0/*) and the CPU and memory
    of its tree, with wall times and a sample counter for steps, next to the script's own
    metrics, which keep their steps and summary."""
    spec = tmp_path / "nvml.json"
    spec.write_text(json.dumps(MACHINE))

    async def queue() -> tuple[int, int]:
        async with Engine.session(home) as engine:
            await engine.create_experiment(
                "sampled", "script", {"command": script_command("--steps 40 --sleep 0.05")},
                objective="train/loss", direction="minimize")
            return await engine.start_run("sampled")

    run_id, job_id = asyncio.run(queue())
    env = labdeck_env(home)
    env.update(PYTHONPATH=f"{FAKE}{os.pathsep}{ROOT}", FAKE_NVML_SPEC=str(spec),
               LABDECK_GPU_INDICES="1", CUDA_VISIBLE_DEVICES="1", LABDECK_SYS_METRICS_S="0.2")
    done = subprocess.run([sys.executable, "-m", "engine.worker", "--home", str(home),
                           str(job_id)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "device cuda: GPUs 1 (CUDA_VISIBLE_DEVICES=1)" in done.stdout

    points = _points(home, run_id)
    sys_keys = {k for k in points if k.startswith("sys/")}
    assert sys_keys == {"sys/cpu_pct", "sys/rss_mb"} | {f"sys/gpu1/{f}" for f in GPU_FIELDS}
    n = len(points["sys/cpu_pct"])
    assert n >= 2, points["sys/cpu_pct"]  # 40 steps of 50 ms at least, sampled every 0.2 s
    for key in sys_keys:
        steps = [s for s, _, _ in points[key]]
        walls = [w for _, _, w in points[key]]
        assert steps == list(range(n)) and walls == sorted(walls), key
    gpu1 = {f: {v for _, v, _ in points[f"sys/gpu1/{f}"]} for f in GPU_FIELDS}
    assert gpu1 == {"util_pct": {87.0}, "mem_mb": {12288.0}, "temp_c": {71.0},
                    "power_w": {301.5}}
    # the worker, its shell and the Python script: more than a bare interpreter's ~10 MiB
    assert all(v > 20 for _, v, _ in points["sys/rss_mb"]), points["sys/rss_mb"]
    assert all(v >= 0 for _, v, _ in points["sys/cpu_pct"])

    async def check() -> None:
        async with Engine.session(home) as engine:
            run = await engine.get_run(run_id)
            assert run.status == "completed" and run.steps == 39  # the script's, not samples'
            assert set(run.summary) == {"train/loss", "train/acc", "val/score"}
            assert set(await engine.metric_keys(run_id)) >= sys_keys  # listed and chartable

    asyncio.run(check())


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch):
    spec = tmp_path / "nvml.json"
    spec.write_text(json.dumps(MACHINE))
    monkeypatch.setenv("FAKE_NVML_SPEC", str(spec))
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    yield spec
    sys.modules.pop("pynvml", None)


def _run(home: Path, objective: str | None = None) -> int:
    async def go() -> int:
        async with Engine.session(home) as engine:
            name = f"e{time.monotonic_ns()}"
            await engine.create_experiment(name, "script", {"command": "true"},
                                           objective=objective, direction="minimize")
            run_id, _ = await engine.start_run(name)
            return run_id

    return asyncio.run(go())


def test_sampler_counts_a_busy_child_follows_the_run_and_continues_its_count(home, fake_gpus):
    """In process: the sampler measures the CPU of a busy child it is told about, leaves out
    a GPU field the board does not support, writes to whichever run is current, and a second
    sampler on the same run (an eval job after training) continues the sample count."""
    spec = json.loads(fake_gpus.read_text())
    spec["devices"][1]["power_w"] = None  # NotSupported
    fake_gpus.write_text(json.dumps(spec))
    first, second = _run(home), _run(home)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    target = {"run": first}
    try:
        sampler = SystemSampler(home / "labdeck.db", lambda: [os.getpid(), busy.pid], (1,),
                                interval=0.1, run=lambda: target["run"]).start()
        wait_for(lambda: sampler.samples >= 3, timeout=30, what="three samples")
        target["run"] = second
        n = sampler.samples
        wait_for(lambda: sampler.samples >= n + 2, timeout=30, what="samples of the 2nd run")
        sampler.stop()
        again = SystemSampler(home / "labdeck.db", lambda: [os.getpid()], (1,), interval=0.1,
                              run=lambda: first).start()
        wait_for(lambda: again.samples >= 1, timeout=30, what="a sample of the 2nd sampler")
        again.stop()
    finally:
        busy.kill()
        busy.wait()
    a, b = _points(home, first), _points(home, second)
    assert "sys/gpu1/power_w" not in a and {"sys/gpu1/util_pct", "sys/gpu1/temp_c"} <= set(a)
    assert not any(k.startswith("sys/gpu0") for k in a)
    steps = [s for s, _, _ in a["sys/cpu_pct"]]
    assert steps == list(range(len(steps))) and len(steps) >= 4  # continued: 0..n-1, then n..
    assert [s for s, _, _ in b["sys/cpu_pct"]][:2] == [0, 1]
    # a busy loop uses a good part of a core, however loaded the machine: well above zero
    assert max(v for _, v, _ in a["sys/cpu_pct"]) > 10, a["sys/cpu_pct"]


def test_no_nvml_still_samples_the_processes(home, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_NVML_SPEC", str(tmp_path / "none.json"))
    (tmp_path / "none.json").write_text(json.dumps({"library": False}))
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    run_id = _run(home)
    sampler = SystemSampler(home / "labdeck.db", lambda: [os.getpid()], (0,), interval=0.05,
                            run=lambda: run_id).start()
    wait_for(lambda: sampler.samples >= 2, timeout=30, what="two samples")
    sampler.stop()
    sys.modules.pop("pynvml", None)
    assert {k for k in _points(home, run_id)} == {"sys/cpu_pct", "sys/rss_mb"}


# ------------------------------------------------------------------ no best, no objective


def _log(home: Path, run_id: int, points: list[tuple[dict, int]]) -> None:
    w = MetricWriter(connect_sync(home / "labdeck.db"), run_id)
    for metrics, step in points:
        w.log(metrics, step=step)
    w.close()


def test_system_metrics_stay_out_of_bests_summaries_and_steps(home: Path) -> None:
    from engine.data.metrics import last_step
    from engine.data.runs import finish_run

    runs = [_run(home), _run(home)]
    for i, run_id in enumerate(runs):
        _log(home, run_id, [({"train/loss": 1.0 / (s + 1 + i)}, s) for s in range(5)]
             + [({"sys/cpu_pct": 50.0 * i, "sys/gpu0/mem_mb": 100.0 + i}, s) for s in range(40)])
        conn = connect_sync(home / "labdeck.db")
        assert last_step(conn, run_id) == 4 and last_step(conn, run_id, system=True) == 39
        finish_run(conn, run_id, "completed", only_if_running=False)
        conn.close()

    async def check() -> None:
        async with Engine.session(home) as engine:
            run = await engine.get_run(runs[0])
            assert set(run.summary) == {"train/loss"} and run.steps == 4
            assert set(await engine.run_summary(runs[1])) == {"train/loss"}
            cmp = await engine.compare([runs[0], runs[1]])
            assert set(cmp.metrics) == {"train/loss"}
            assert "sys/cpu_pct" in await engine.metric_keys(runs[0])  # still listed
            pts = await engine.all_metrics(runs[1], "sys/cpu_pct")
            assert len(pts) == 40  # still readable for a chart

    asyncio.run(check())


def test_a_system_metric_named_as_the_objective_is_ranked(home: Path) -> None:
    from engine.data.runs import finish_run

    run_id = _run(home, objective="sys/rss_mb")
    _log(home, run_id, [({"sys/rss_mb": v, "sys/cpu_pct": 1.0}, s)
                        for s, v in enumerate([300.0, 200.0, 250.0])])
    conn = connect_sync(home / "labdeck.db")
    finish_run(conn, run_id, "completed", only_if_running=False)
    conn.close()

    async def check() -> None:
        async with Engine.session(home) as engine:
            run = await engine.get_run(run_id)
            assert set(run.summary) == {"sys/rss_mb"}
            assert run.summary["sys/rss_mb"]["best"] == 200.0

    asyncio.run(check())


def test_a_study_takes_a_system_objective_only_when_told(home: Path) -> None:
    async def go() -> None:
        async with Engine.session(home) as engine:
            await engine.create_experiment(
                "lean", "script", {"command": "echo {lr}", "lr": 0.1, "cwd": str(ROOT)},
                objective="sys/rss_mb", direction="minimize")
            with pytest.raises(ConfigError, match="system metric"):
                await engine.create_study("s1", "lean", ["lr=0.01:0.1"])
            study = await engine.create_study("s2", "lean", ["lr=0.01:0.1"],
                                              objective="sys/rss_mb", direction="minimize")
            assert study.settings["objective"] == "sys/rss_mb"

    asyncio.run(go())


# ------------------------------------------------------------------ reserved for labdeck


def test_users_may_not_log_system_keys(home: Path) -> None:
    with pytest.raises(ReservedKeyError, match="'sys/gpu0/util_pct'.*reserved"):
        refuse_system_keys({"loss": 1.0, "sys/gpu0/util_pct": 3.0})
    refuse_system_keys({"system/x": 1.0, "SYS/x": 1.0, "a/sys/x": 1.0})  # only the prefix
    code = ("from engine import tracking\n"
            "run = tracking.init(experiment='mine')\n"
            "try:\n"
            "    tracking.log({'loss': 1.0, 'sys/cpu_pct': 5.0}, step=0)\n"
            "except ValueError as exc:\n"
            "    print('refused:', exc)\n"
            "tracking.log({'loss': 2.0}, step=1)\n"
            "tracking.finish()\n")
    res = subprocess.run([sys.executable, "-c", code], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "refused: metric key 'sys/cpu_pct': the prefix 'sys/' is reserved" in res.stdout
    conn = sqlite3.connect(str(home / "labdeck.db"))
    keys = conn.execute("SELECT key FROM metric_keys").fetchall()
    steps = conn.execute("SELECT step FROM metrics").fetchall()
    conn.close()
    assert keys == [("loss",)] and steps == [(1,)]  # nothing of the refused call was stored
