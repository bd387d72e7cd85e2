"""GPUs in the scheduler, on a machine without one: the fake ``pynvml`` (tests/fake_nvml)
describes several devices, foreign processes or no library at all, for the scheduler in this
process and for the workers and commands it starts. Real worker processes, a real SQLite
file; each job's command prints the devices it was given and waits for a file of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import FAKE_NVML, ROOT, SCRIPTS, labdeck_env, wait_for, with_fake_nvml

from engine.api import Engine
from engine.placement import Request, annotate, place
from engine.resources import GpuProcess, GpuState
from engine.settings import Settings

PY = sys.executable
SEEN = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "LABDECK_GPU_INDICES", "SCRIPT_PID")


def device(i: int, total_mb: int = 40960, used_mb: int = 0, processes=()) -> dict:
    return {"uuid": f"GPU-{i}", "name": "Fake A100", "total_mb": total_mb, "used_mb": used_mb,
            "util": 10 * i, "temp": 40, "power_w": 60, "processes": list(processes)}


@pytest.fixture
def machine(tmp_path: Path, monkeypatch):
    """Describe the machine (rewritable); this process and what it starts see it."""
    spec = tmp_path / "nvml.json"

    def describe(devices: list[dict] | None = None, library: bool = True) -> Path:
        spec.write_text(json.dumps({"library": library, "devices": devices or []}))
        return spec

    describe()
    monkeypatch.setenv("FAKE_NVML_SPEC", str(spec))
    monkeypatch.setenv("PYTHONPATH", with_fake_nvml(dict(os.environ), spec)["PYTHONPATH"])
    monkeypatch.syspath_prepend(str(FAKE_NVML))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    for name in ("LABDECK_GPUS", "LABDECK_GPU_SHARE", "LABDECK_GPU_FOREIGN_MAX",
                 "LABDECK_MAX_CONCURRENCY", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    yield describe
    sys.modules.pop("pynvml", None)


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A job's command ends once a file named after its job id appears here."""
    d = tmp_path / "release"
    d.mkdir()
    return d


def gpu_job(release: Path) -> dict:
    return {"command": f"{PY} {SCRIPTS / 'gpu_job.py'} {{release}}", "release": str(release)}


async def until(probe, what: str, timeout: float = 30.0):
    """``await probe()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def seen_by(engine: Engine, job_id: int) -> dict[str, str]:
    """What the job's command printed about its devices (once it did)."""
    async def look():
        lines = await engine.log_tail(job_id=job_id, lines=200)
        env = dict(ln.split("=", 1) for ln in lines if ln.split("=", 1)[0] in SEEN)
        return env if "SCRIPT_PID" in env else None

    return await until(look, f"job {job_id}'s command to start")


async def waiting(engine: Engine, job_id: int):
    async def look():
        job = await engine.get_job(job_id)
        return job if job.status == "queued" and job.wait_reason else None

    return await until(look, f"job {job_id} to say why it waits")


async def finished(engine: Engine, release: Path, *job_ids: int) -> None:
    for job_id in job_ids:
        (release / str(job_id)).touch()
    for job_id in job_ids:
        job = await engine.wait_job(job_id, timeout=60)
        assert job.status == "completed", (job.error, await engine.log_tail(job_id=job_id))


# ------------------------------------------------------------------ real workers


async def test_jobs_get_distinct_gpus_a_third_waits_a_cpu_job_passes_and_an_end_frees(
        home, machine, release) -> None:
    machine([device(0), device(1)])
    async with Engine.session(home) as engine:
        await engine.create_experiment("g", "script", gpu_job(release), gpus=1)
        await engine.create_experiment("c", "script", gpu_job(release))
        a, b, c = [(await engine.start_run("g"))[1] for _ in range(3)]
        _, cpu = await engine.start_run("c")  # behind a GPU job that must wait
        await engine.ensure_scheduler()
        env_a, env_b = await seen_by(engine, a), await seen_by(engine, b)
        assert {env_a["CUDA_VISIBLE_DEVICES"], env_b["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
        for job_id, env in ((a, env_a), (b, env_b)):
            assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
            assert env["LABDECK_GPU_INDICES"] == env["CUDA_VISIBLE_DEVICES"]
            job = await engine.get_job(job_id)
            assert job.devices == [int(env["CUDA_VISIBLE_DEVICES"])] and job.devices_at
            assert job.gpus == 1
        # the CPU job was not held back by the waiting GPU job, nor by the global limit of
        # one (GPU jobs take GPUs, not CPU slots), and it can see no GPU
        env_cpu = await seen_by(engine, cpu)
        assert env_cpu["CUDA_VISIBLE_DEVICES"] == "" and env_cpu["LABDECK_GPU_INDICES"] == ""
        assert (await engine.get_job(cpu)).devices == []
        third = await waiting(engine, c)
        assert third.wait_reason == f"waiting for 1 free GPU; 0 free (2 held by job {a}, {b})"

        # the Resources view: who holds what, whose processes are on the GPUs
        gpu_a = int(env_a["CUDA_VISIBLE_DEVICES"])
        devices = [device(0), device(1)]
        devices[gpu_a] = device(gpu_a, used_mb=3000, processes=[
            {"pid": int(env_a["SCRIPT_PID"]), "used_mb": 2000},
            {"pid": os.getpid(), "used_mb": 1000}])  # this test process: foreign
        machine(devices)
        res = await engine.resources()
        assert res.nvml == "ok" and (res.total, res.busy) == (2, 2)
        assert {g.index: g.held_by for g in res.gpus} == {gpu_a: (a,), 1 - gpu_a: (b,)}
        procs = {p.pid: p.job_id for p in res.gpus[gpu_a].processes}
        assert procs == {int(env_a["SCRIPT_PID"]): a, os.getpid(): None}
        assert res.gpus[gpu_a].foreign_mb() == pytest.approx(1000)
        assert not any(g.usable for g in res.gpus)
        assert [(w.job_id, w.gpus, w.reason) for w in res.waiting] == [
            (c, 1, third.wait_reason)]

        # a job that ends frees its GPU, and the waiting job gets exactly that one
        await finished(engine, release, a)
        assert (await seen_by(engine, c))["CUDA_VISIBLE_DEVICES"] == str(gpu_a)
        assert (await engine.get_job(c)).resource_note is None
        await finished(engine, release, b, c, cpu)
        run_a = (await engine.get_job(a)).run_id
        assert await engine.all_metrics(run_a, "seen") == [(0, 1.0)]


def _serve(home: Path, spec: Path) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "cli", "serve"], cwd=str(ROOT),
                            env=with_fake_nvml(labdeck_env(home), spec),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_restarted_scheduler_rebuilds_from_running_jobs_and_a_dead_job_frees(
        home, machine, release) -> None:
    spec = machine([device(0)])
    first = _serve(home, spec)
    second = None
    try:
        async with Engine.session(home) as engine:  # no scheduler of its own: serve's
            await engine.create_experiment("g", "script", gpu_job(release), gpus=1)
            _, a = await engine.start_run("g")
            assert (await seen_by(engine, a))["CUDA_VISIBLE_DEVICES"] == "0"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            _, b = await engine.start_run("g")
            second = _serve(home, spec)  # knows only the database
            job_b = await waiting(engine, b)
            assert job_b.wait_reason == f"waiting for 1 free GPU; 0 free (1 held by job {a})"
            assert (await engine.get_job(a)).status == "running"

            os.kill((await engine.get_job(a)).pid, signal.SIGKILL)
            job_a = await engine.wait_job(a, timeout=30)
            assert job_a.status == "failed" and job_a.devices == [0]
            assert (await seen_by(engine, b))["CUDA_VISIBLE_DEVICES"] == "0"
            (release / str(b)).touch()
            assert (await engine.wait_job(b, timeout=60)).status == "completed"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


async def test_gpus_allowed_foreign_threshold_and_a_two_gpu_job(
        home, machine, release, monkeypatch) -> None:
    # GPU 0: other processes fill 60% of it; GPU 2: not labdeck's (LABDECK_GPUS)
    machine([device(0, used_mb=24576, processes=[{"pid": 1, "used_mb": 24576}]),
             device(1), device(2), device(3)])
    monkeypatch.setenv("LABDECK_GPUS", "GPU-0,1,3")
    async with Engine.session(home) as engine:
        await engine.create_experiment("two", "script", gpu_job(release), gpus=2)
        await engine.create_experiment("one", "script", gpu_job(release), gpus=1)
        _, pair = await engine.start_run("two")
        _, single = await engine.start_run("one")
        await engine.ensure_scheduler()
        env = await seen_by(engine, pair)
        assert env["CUDA_VISIBLE_DEVICES"] == env["LABDECK_GPU_INDICES"] == "1,3"
        assert (await engine.get_job(pair)).devices == [1, 3]
        job = await waiting(engine, single)
        assert job.wait_reason == (f"waiting for 1 free GPU; 0 free (2 held by job {pair};"
                                   " 1 used by other processes)")
        res = await engine.resources()
        notes = {g.index: (g.usable, g.note) for g in res.gpus}
        assert notes[0] == (False, "other processes use 60% of its memory (limit 50%,"
                                   " LABDECK_GPU_FOREIGN_MAX)")
        assert notes[2] == (False, "excluded by LABDECK_GPUS")

    # a scheduler that tolerates more foreign use gives GPU 0 to the waiting job
    monkeypatch.setenv("LABDECK_GPU_FOREIGN_MAX", "70%")
    async with Engine.session(home) as engine:
        await engine.ensure_scheduler()
        assert (await seen_by(engine, single))["CUDA_VISIBLE_DEVICES"] == "0"
        await finished(engine, release, pair, single)


async def test_sharing_allowed_and_a_request_that_cannot_be_met(
        home, machine, release, monkeypatch) -> None:
    machine([device(0)])
    monkeypatch.setenv("LABDECK_GPU_SHARE", "1")
    async with Engine.session(home) as engine:
        await engine.create_experiment("g", "script", gpu_job(release), gpus=1)
        a, b = [(await engine.start_run("g"))[1] for _ in range(2)]
        _, big = await engine.start_run("g", gpus=2)
        await engine.ensure_scheduler()
        assert (await seen_by(engine, a))["CUDA_VISIBLE_DEVICES"] == "0"
        assert (await seen_by(engine, b))["CUDA_VISIBLE_DEVICES"] == "0"
        res = await engine.resources()
        assert res.gpus[0].held_by == (a, b) and res.gpus[0].usable
        assert res.gpus[0].note == "shared (LABDECK_GPU_SHARE)"
        job = await engine.wait_job(big, timeout=30)
        assert job.status == "failed"
        assert job.error == "needs 2 GPUs, but labdeck may use 1 here"
        await finished(engine, release, a, b)


async def test_no_nvml_library_is_todays_behaviour(home, machine, release) -> None:
    machine(library=False)
    async with Engine.session(home) as engine:
        await engine.create_experiment("c", "script", gpu_job(release))
        await engine.create_experiment("g", "script", gpu_job(release), gpus=1)
        _, cpu = await engine.start_run("c")
        _, gpu = await engine.start_run("g")
        await engine.ensure_scheduler()
        env = await seen_by(engine, cpu)
        assert env["CUDA_VISIBLE_DEVICES"] == env["LABDECK_GPU_INDICES"] == "<unset>"
        assert env["CUDA_DEVICE_ORDER"] == "<unset>"
        assert (await engine.get_job(cpu)).devices is None
        # one job at a time, as always: a job that asks for a GPU is a CPU job here
        job = await waiting(engine, gpu)
        assert job.wait_reason == ("waiting for a CPU slot; 1 of 1 in use"
                                   " (LABDECK_MAX_CONCURRENCY)")
        res = await engine.resources()
        assert res.gpus == () and res.nvml == "NVML library not found"
        assert [w.job_id for w in res.waiting] == [gpu]
        await finished(engine, release, cpu)
        assert (await seen_by(engine, gpu))["CUDA_VISIBLE_DEVICES"] == "<unset>"
        job = await engine.get_job(gpu)
        assert job.devices is None and job.resource_note == (
            "asked for 1 GPU; this machine has none (NVML library not found): runs on the CPU")
        await finished(engine, release, gpu)


# ------------------------------------------------------------------ requests and inheritance


async def test_requests_are_stored_and_inherited(home, machine) -> None:
    async with Engine.session(home) as engine:
        exp = await engine.create_experiment(
            "e", "script", {"command": "true {lr}", "lr": 0.1}, objective="loss",
            direction="minimize", gpus=2, gpu_mem_mb=1000)
        assert (exp.gpus, exp.gpu_mem_mb) == (2, 1000)
        run_id, train = await engine.start_run("e", gpus=1)
        assert ((await engine.get_job(train)).gpus,
                (await engine.get_job(train)).gpu_mem_mb) == (1, 1000)
        # an eval job asks what its run's training job asked
        ev = await engine.submit_job("eval", run_id, {}, "e › run 1")
        assert (await engine.get_job(ev)).gpus == 1
        # a study job what its experiment asks
        await engine.create_study("s", "e", ["lr=0.001:0.1"], tuner="random", n_trials=1)
        study_job = await engine.start_study("s")
        assert (await engine.get_job(study_job)).gpus == 2
        exp = await engine.update_experiment("e", gpus=0, gpu_mem_mb=0)
        assert (exp.gpus, exp.gpu_mem_mb) == (0, None)
        assert (await engine.duplicate_experiment("e")).gpus == 0
        with pytest.raises(Exception, match="gpus"):
            await engine.create_experiment("bad", "script", {"command": "true"}, gpus=-1)
        with pytest.raises(Exception, match="gpu_mem_mb"):
            await engine.start_run("e", gpus=1, gpu_mem_mb=-5)


def _cli(home: Path, spec: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "cli", *args], cwd=str(ROOT), capture_output=True,
                          text=True, timeout=60, env=with_fake_nvml(labdeck_env(home), spec))


def test_cli_exp_run_jobs_and_gpus(home, machine, release) -> None:
    spec = machine([device(0), device(1, used_mb=30000,
                                       processes=[{"pid": 1, "used_mb": 30000}])])
    cmd = gpu_job(release)["command"]
    r = _cli(home, spec, "exp", "create", "g", "--adapter", "script", "--set",
             f"command={cmd}", "--set", f"release={release}", "--gpus", "2", "--gpu-mem", "500")
    assert r.returncode == 0, r.stderr
    r = _cli(home, spec, "exp", "edit", "g", "--gpus", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)["gpus"], json.loads(r.stdout)["gpu_mem_mb"]) == (1, 500)
    assert "resources: 1 GPU (>= 500 MB free each)" in _cli(home, spec, "exp", "show", "g").stdout
    r = _cli(home, spec, "run", "start", "g", "--json")  # launched at once (one tick)
    assert r.returncode == 0, r.stderr
    job_id = json.loads(r.stdout)["job_id"]

    def shown():
        out = _cli(home, spec, "jobs", "show", str(job_id), "--json")
        job = json.loads(out.stdout)
        return job if job["devices"] is not None else None

    job = wait_for(shown, timeout=30, what="the job to be placed")
    assert (job["gpus"], job["gpu_mem_mb"], job["devices"]) == (1, 500, [0])
    assert job["devices_at"] is not None
    assert "gpu 0" in _cli(home, spec, "jobs", "list").stdout

    r = _cli(home, spec, "gpus", "--json")
    out = json.loads(r.stdout)
    assert (out["nvml"], out["total"], out["busy"]) == ("ok", 2, 1)
    assert [g["held_by"] for g in out["gpus"]] == [[job_id], []]
    assert out["gpus"][1]["usable"] is False and out["gpus"][1]["foreign_mb"] == 30000
    text = _cli(home, spec, "gpus").stdout
    assert "GPUs: 1 of 2 busy" in text and f"job {job_id}" in text
    assert "pid 1 29.3 GiB" in text and "░" in text

    (release / str(job_id)).touch()
    wait_for(lambda: json.loads(_cli(home, spec, "jobs", "show", str(job_id), "--json").stdout
                                )["status"] == "completed", timeout=30, what="the job's end")
    r = _cli(home, spec, "run", "show", "g/1")
    assert "resources: asks 1 GPU (>= 500 MB free each); on gpu 0" in r.stdout


# ------------------------------------------------------------------ the policy alone


def gpu(i: int, *, total: float = 40960, used: float = 0, held: tuple[int, ...] = (),
        foreign: float = 0, uuid: str | None = None) -> GpuState:
    procs = (GpuProcess(pid=9000 + i, used_mb=foreign),) if foreign else ()
    return GpuState(index=i, uuid=uuid or f"GPU-{i}", name="Fake", mem_total_mb=total,
                    mem_used_mb=used + foreign, util_pct=0, temp_c=None, power_w=None,
                    processes=procs)


def decide(queue, gpus, cpu_running: int = 0, **settings) -> list[tuple]:
    s = Settings(home=Path("/nonexistent"), **settings)
    holders = {g.index: list(g.held_by) for g in gpus}
    gpus = annotate([g for g in gpus], holders, {}, s)
    return [(d.job_id, d.action, d.devices, d.note) for d in place(queue, gpus, cpu_running, s)]


def held(g: GpuState, *jobs: int) -> GpuState:
    return replace(g, held_by=jobs)


def test_a_big_waiting_job_keeps_the_free_gpus_small_ones_use_only_others() -> None:
    # GPU 0 is held; GPU 1 free; job 1 needs 2: it waits and keeps GPU 1 from job 2, while
    # the CPU job behind both starts
    out = decide([Request(1, 2), Request(2, 1), Request(3, 0)], [held(gpu(0), 7), gpu(1)])
    assert out == [
        (1, "wait", None, "waiting for 2 free GPUs; 1 free (1 held by job 7)"),
        (2, "wait", None, "waiting for 1 free GPU; 0 free (1 held by job 7; 1 kept for job 1)"),
        (3, "start", (), "")]
    # a GPU the big job could not use (too little memory for it) a small one may take
    out = decide([Request(1, 2, gpu_mem_mb=20000), Request(2, 1)],
                 [gpu(0, total=16384), gpu(1), held(gpu(2), 7)])
    assert out == [
        (1, "wait", None, "waiting for 2 free GPUs with 20000 MB free; 1 free (1 held by"
                          " job 7; 1 with less free memory)"),
        (2, "start", (0,), "")]


def test_the_emptiest_gpus_go_first_and_memory_minimums_hold() -> None:
    out = decide([Request(1, 1), Request(2, 2)], [gpu(0, used=5000), gpu(1), gpu(2)])
    assert [o[2] for o in out] == [(1,), (0, 2)]
    out = decide([Request(1, 1, gpu_mem_mb=39000)], [gpu(0, used=5000), gpu(1, used=2000)])
    assert out == [(1, "wait", None, "waiting for 1 free GPU with 39000 MB free; 0 free"
                    " (2 with less free memory)")]


def test_requests_that_can_never_be_met_fail() -> None:
    assert decide([Request(1, 3)], [gpu(0), gpu(1)], gpus_allowed=("0", "1"))[0][1:] == (
        "fail", None, "needs 3 GPUs, but labdeck may use 2 here (LABDECK_GPUS)")
    assert decide([Request(1, 1, gpu_mem_mb=50000)], [gpu(0)])[0][3] == (
        "needs 1 GPU with 50000 MB free, but 0 that labdeck may use here have 50000 MB")


def test_allowed_by_uuid_sharing_and_a_container_without_process_lists() -> None:
    out = decide([Request(1, 1)], [gpu(0), gpu(1, uuid="GPU-b")], gpus_allowed=("GPU-b",))
    assert out[0][2] == (1,)
    assert decide([Request(1, 1)], [held(gpu(0), 4)], gpu_share=True)[0][2] == (0,)
    # memory used with no process listed, on a device no labdeck job holds: foreign
    blind = gpu(0, used=30000)
    out = decide([Request(1, 1)], [blind])
    assert out[0][3] == "waiting for 1 free GPU; 0 free (1 used by other processes)"
    assert decide([Request(1, 1)], [blind], gpu_foreign_max=0.8)[0][2] == (0,)


def test_no_gpu_runs_every_job_on_the_cpu_within_the_limit() -> None:
    out = decide([Request(1, 2), Request(2, 0)], [], cpu_running=0, max_concurrency=1)
    assert out[0][1:3] == ("start", None) and "runs on the CPU" in out[0][3]
    assert out[1][1] == "wait"
