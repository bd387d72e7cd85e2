"""What sampling system metrics costs a job, against the baseline "sampling off", measured in
the same run.

The same short training job (a tiny ``vlm_quantization`` config on the CPU, where torch keeps
every core busy and a sampler would show) runs as a real worker process (``python -m
engine.worker``, as the scheduler starts it) with ``LABDECK_SYS_METRICS_S=1`` (a sample every
second, five times the default rate) and with ``LABDECK_SYS_METRICS_S=0`` (off), interleaved,
the side that goes first alternating. It prints each job's wall time (process start to exit)
and its training time (the adapter's own ``seconds``), the best (minimum) and median of each
side, and the ratios on / off; then what one sample costs by itself (the job's process tree
and, where there are any, its GPUs).

    .venv/bin/python bench/sys_metrics_overhead.py [--repeat 7] [--epochs 2] [--threads 1]
    .venv/bin/python bench/sys_metrics_overhead.py --quick      # 3 rounds of a smaller job
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.api import Engine  # noqa: E402


def job_config(epochs: int, threads: int, quick: bool) -> dict:
    return {"dataset": "synthetic", "n_train": 800 if quick else 2000, "n_query": 20, "n_database": 100,
            "image_size": 32, "width": 16, "batch_size": 64, "epochs": epochs,
            "num_threads": threads, "log_every": 5}


async def create(home: Path, config: dict) -> None:
    async with Engine.session(home) as engine:
        await engine.create_experiment("bench", "vlm_quantization", config)


async def queue(home: Path) -> tuple[int, int]:
    async with Engine.session(home) as engine:
        return await engine.start_run("bench")


async def outcome(home: Path, job_id: int, run_id: int) -> tuple[float, int]:
    """(the adapter's training seconds, system samples stored)."""
    async with Engine.session(home) as engine:
        job = await engine.get_job(job_id)
        if job.status != "completed":
            raise SystemExit(f"bench job {job_id} {job.status}: {job.error}")
        samples = len(await engine.all_metrics(run_id, "sys/cpu_pct"))
        return float(job.result["seconds"]), samples


def run_job(home: Path, interval: str) -> tuple[float, float, float, int]:
    """(job wall seconds, training seconds, job CPU seconds, samples) of one training job."""
    run_id, job_id = asyncio.run(queue(home))
    env = dict(os.environ, LABDECK_HOME=str(home), PYTHONPATH=str(ROOT),
               LABDECK_SYS_METRICS_S=interval)
    env.pop("LABDECK_GPU_INDICES", None)  # a CPU job
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine.worker", "--home", str(home), str(job_id)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    train_s, samples = asyncio.run(outcome(home, job_id, run_id))
    return wall, train_s, cpu, samples


def sample_cost(n: int = 200) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) per sample of this process's tree (found by a /proc
    scan, as the worker finds its job's) and its GPUs."""
    from engine.process_tree import ProcessTree
    from engine.resources import GpuReader, assigned_gpus
    from engine.system_metrics import ProcessSampler, gpu_metrics

    procs = ProcessSampler(ProcessTree(root=os.getpid()).refresh)
    gpus = GpuReader(assigned_gpus() or tuple(range(_gpu_count())))
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        procs.sample()
        gpu_metrics(gpus)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    gpus.close()
    return 1000 * wall / n, 1000 * cpu / n


def _gpu_count() -> int:
    from engine.resources import probe_gpus

    return len(probe_gpus().gpus)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="rounds (one job per side each)")
    p.add_argument("--epochs", type=int, default=2)
    # one torch thread: with more, threads spinning against other load on a shared machine
    # make the job's own time swing by tens of percent from run to run
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of the job")
    p.add_argument("--quick", action="store_true", help="3 rounds of a smaller job")
    args = p.parse_args()
    repeat = 3 if args.quick else args.repeat
    epochs = 1 if args.quick else args.epochs
    sides = {"sampling off": "0", "sampling on (1 s)": "1"}
    got: dict[str, list[tuple[float, float, float, int]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="labdeck-bench-") as tmp:
        home = Path(tmp) / "home"
        asyncio.run(create(home, job_config(epochs, args.threads, args.quick)))
        run_job(home, "0")  # warm-up: file caches, the first imports
        for r in range(repeat):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for side in order:
                got[side].append(run_job(home, sides[side]))
                wall, train, cpu, n = got[side][-1]
                print(f"round {r + 1}  {side:<18} job {wall:6.2f} s  training {train:6.2f} s"
                      f"  job CPU {cpu:6.2f} s  samples {n}", flush=True)
    base, on = got["sampling off"], got["sampling on (1 s)"]
    print(f"\n{'':<18} {'job wall':>9} {'median':>8} {'training':>9} {'median':>8}"
          f" {'job CPU':>8} {'median':>8}")
    for side, rows in got.items():
        cols = [[row[i] for row in rows] for i in range(3)]
        print(f"{side:<18}" + "".join(f" {min(c):8.2f}s {statistics.median(c):7.2f}s"
                                      for c in cols))
    print("\nratio sampling on / sampling off (best, median, median of the per-round ratios:"
          " each round's two jobs ran back to back under the same load)")
    for label, i in (("job wall", 0), ("training", 1), ("job CPU", 2)):
        best = min(r[i] for r in on) / min(r[i] for r in base)
        med = statistics.median(r[i] for r in on) / statistics.median(r[i] for r in base)
        paired = statistics.median(a[i] / b[i] for a, b in zip(on, base, strict=True))
        print(f"  {label:<9} best {best:.3f}   median {med:.3f}   per round {paired:.3f}")
    wall_ms, cpu_ms = sample_cost()
    print(f"one sample (process tree + GPUs): {wall_ms:.2f} ms wall, {cpu_ms:.2f} ms CPU;"
          f" at the default 5 s interval {cpu_ms / 50:.4f}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
