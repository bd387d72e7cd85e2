"""What commands do with the jobs they start or watch: start queued work now (``kick``),
wait for jobs to end (``wait_jobs``), cancel and wait, and tell how long a running job or
run has been silent. Shared by the command modules; it imports none of them."""

from __future__ import annotations

import asyncio
import sys
import time

from engine.api import Engine
from engine.jobs import FINAL
from engine.liveness import fmt_stalled, stalled_seconds
from engine.models import Job

from .output import clean


async def kick(engine: Engine) -> None:
    """Launch queued work now when no scheduler serves the home: one scheduler tick claims and
    starts workers (detached sessions), then gives the lease back."""
    status = await engine.scheduler_status()
    if status["serving"]:
        return
    from engine.scheduler import Scheduler

    sched = Scheduler(engine.settings, mode="cli")
    try:
        await asyncio.to_thread(sched.tick_once)
    except Exception as exc:  # noqa: BLE001 - the work is queued; any scheduler will start it
        print(f"labdeck: could not start it now ({exc}); it stays queued until a scheduler"
              " runs (labdeck serve, or the TUI)", file=sys.stderr)


async def wait_jobs(engine: Engine, job_ids: list[int], quiet: bool) -> list:
    """Wait for jobs, running an embedded scheduler while no other serves the home."""
    sched = await engine.ensure_scheduler()
    last = ""
    jobs = []
    for jid in job_ids:
        while True:
            job = await engine.get_job(jid)
            if job.status in FINAL:
                jobs.append(job)
                break
            if sched.state.stopped:  # nobody here will start or watch it any more
                raise RuntimeError(f"scheduler stopped: {sched.state.stopped}")
            if not quiet and sys.stderr.isatty():
                line = f"\r job {jid} {job.status} {job.progress * 100:5.1f}% {clean(job.message[:60])}"
                if line != last:
                    sys.stderr.write(line.ljust(90))
                    sys.stderr.flush()
                    last = line
            await asyncio.sleep(0.25)
    if last:
        sys.stderr.write("\n")
    return jobs


async def cancel_and_wait(engine: Engine, job_id: int, wait: bool) -> Job:
    job = await engine.cancel_job(job_id)
    if wait and job.status not in FINAL:
        (job,) = await wait_jobs(engine, [job_id], quiet=True)
    return job


def stalled_for(engine: Engine, item) -> float | None:
    """Seconds a running job or run has said nothing, once that passes LABDECK_STALL_WARN_S."""
    return stalled_seconds(item.last_output, engine.settings.stall_warn_s, time.time())


def resources_text(gpus: int, gpu_mem_mb: int | None) -> str:
    """What a job or an experiment asks for: ``"2 GPUs (>= 20000 MB free each)"``,
    ``"1 GPU"``, ``"CPU"``."""
    if not gpus:
        return "CPU"
    return f"{gpus} GPU{'' if gpus == 1 else 's'}" + (
        f" (>= {gpu_mem_mb} MB free each)" if gpu_mem_mb else "")


def add_executor_options(p) -> None:
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="where the job runs: this machine (default) or a Slurm cluster (sbatch;"
                        " options from the home's home.json \"slurm\" object)")
    p.add_argument("--slurm-opt", action="append", default=[], metavar="KEY=VALUE",
                   dest="slurm_opt",
                   help="an sbatch option for this job over the home's (partition=gpu,"
                        " time=00:30:00, gpus=1, cpus_per_task=4, mem=8G, account=lab,"
                        " extra='#SBATCH --qos=short'); repeatable")


def executor_args(args) -> dict:
    """start_run / start_eval keyword arguments from add_executor_options' flags."""
    from engine.slurm import parse_options

    if args.slurm_opt and args.executor != "slurm":
        raise ValueError("--slurm-opt needs --executor slurm")
    return {"executor": args.executor,
            "slurm": parse_options(args.slurm_opt) if args.slurm_opt else None}


def devices_text(job) -> str:
    """What a job was given, short: ``"gpu 0,2"``, ``"cpu"``; while queued, what it asks
    (``"needs 2"``, ``"cpu"``); a job on Slurm: ``"slurm 123"``."""
    if job.slurm_id:
        return f"slurm {job.slurm_id}"
    if job.executor == "slurm":
        return "slurm"
    if job.devices:
        return "gpu " + ",".join(str(i) for i in job.devices)
    if job.status == "queued":
        return f"needs {job.gpus}" if job.gpus else "cpu"
    return "cpu" if job.started is not None else "-"


def with_stall(status: str, stalled_s: float | None) -> str:
    """A status as a table shows it: ``running (stalled ...)`` once a job went silent."""
    return f"{status} ({fmt_stalled(stalled_s)})" if stalled_s is not None else status
