"""`labdeck run ...`: start a training run, follow it (show, metrics, logs, checkpoints),
cancel it, list runs."""

from __future__ import annotations

import asyncio
import sys

from engine.api import Engine
from engine.jobs import FINAL
from engine.liveness import fmt_stalled
from engine.paths import UnsafePathError
from engine.runs import tail_lines

from .job_control import (
    add_executor_options,
    cancel_and_wait,
    devices_text,
    executor_args,
    kick,
    resources_text,
    stalled_for,
    wait_jobs,
    with_stall,
)
from .output import (
    add_paging_options,
    clean,
    emit_json,
    fmt_age,
    fmt_duration,
    fmt_num,
    print_listing,
    say,
    table,
)


def add_parsers(sub, add) -> None:
    run = add(sub, "run", "runs").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add(run, "start", "launch a training run of an experiment")
    p.add_argument("experiment")
    p.add_argument("--wait", action="store_true", help="wait for the end; exit 1 unless completed")
    p.add_argument("--gpus", type=int, metavar="N",
                   help="GPUs this run asks for (default: the experiment's; 0: the CPU)")
    p.add_argument("--gpu-mem", type=int, metavar="MB", dest="gpu_mem",
                   help="free memory each of its GPUs must have (default: the experiment's)")
    p.add_argument(
        "--resume-from", metavar="RUN:NAME",
        help="continue training from checkpoint NAME of an earlier run; RUN is a run id or"
             " EXPERIMENT/NUMBER (e.g. lr-sweep/3:last.pt). A bare NAME takes the latest run"
             " of this experiment that has it (and says which). Names are file names inside"
             " that run's checkpoints/, never paths. Only adapters that declare the `resume`"
             " capability can resume (see `exp adapters`).")
    add_executor_options(p)
    p.set_defaults(func=run_start)
    p = add(run, "show", "status, summary and worker pid of a run")
    p.add_argument("run")
    p.set_defaults(func=run_show)
    p = add(run, "metrics", "metric points of a run")
    p.add_argument("run")
    p.add_argument("--key", action="append")
    p.add_argument("--max-points", type=int, default=0, help="downsample to at most N per key")
    p.set_defaults(func=run_metrics)
    p = add(run, "logs", "the run's log")
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--lines", "-n", type=int, default=100)
    p.set_defaults(func=run_logs)
    p = add(run, "cancel", "cancel a run's active job")
    p.add_argument("run")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=run_cancel)
    p = add(run, "checkpoints", "list (or delete) a run's checkpoints")
    p.add_argument("run")
    p.add_argument("--delete", metavar="NAME")
    p.set_defaults(func=run_checkpoints)
    p = add(run, "list", "list runs, newest first (an experiment's: highest number first)")
    p.add_argument("--experiment")
    add_paging_options(p, "runs")
    p.set_defaults(func=run_list)


async def run_start(args) -> int:
    async with Engine.session(args.home) as engine:
        run_id, job_id = await engine.start_run(args.experiment, resume_from=args.resume_from,
                                                gpus=args.gpus, gpu_mem_mb=args.gpu_mem,
                                                **executor_args(args))
        run = await engine.get_run(run_id)
        resume = (await engine.get_job(job_id)).params.get("resume_from")
        extra = {"resume_from": resume} if resume else {}
        if resume and not args.json:  # a bare NAME may have picked any earlier run: say which
            print(f"resuming from {resume['run']}:{resume['checkpoint']}", file=sys.stderr)
        if not args.wait:
            await kick(engine)
            if args.json:
                emit_json({"run_id": run_id, "job_id": job_id, "run": run.label, **extra})
            else:
                say(f"run {run_id} ({run.label}) job {job_id} queued")
            return 0
        if not args.json:
            say(f"run {run_id} ({run.label}) job {job_id} started; waiting", file=sys.stderr)
        (job,) = await wait_jobs(engine, [job_id], quiet=args.json)
        run = await engine.get_run(run_id)
    if args.json:
        emit_json({"run_id": run_id, "job_id": job_id, "status": job.status, "error": job.error,
                   "summary": run.summary, **extra})
    else:
        say(f"run {run_id} {job.status}" + (f": {job.error}" if job.error else ""))
        _print_summary(run.summary or {})
    return 0 if job.status == "completed" else 1


def _print_summary(summary: dict) -> None:
    if not summary:
        return
    rows = [[k, fmt_num(s["last"]), fmt_num(s["best"]), fmt_num(s["best_step"]),
             fmt_num(s["min"]), fmt_num(s["max"]), str(s["count"]),
             "↓" if s["direction"] == "minimize" else "↑"] for k, s in sorted(summary.items())]
    say(table(["metric", "last", "best", "@step", "min", "max", "count", "dir"], rows))


async def run_show(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        summary = await engine.run_summary(run.id)
        job = await engine.get_job(run.job_id) if run.job_id else None
    if args.json:
        d = run.to_json()
        d["summary"] = summary
        d["duration"] = run.duration
        d["worker_pid"] = run.pid if run.status == "running" else None
        d["stalled_s"] = stalled_for(engine, run)
        # what its training job asked for and was given (`jobs show` has the same)
        d["gpus"] = job.gpus if job else None
        d["gpu_mem_mb"] = job.gpu_mem_mb if job else None
        d["devices"] = job.devices if job else None
        d["devices_at"] = job.devices_at if job else None
        d["resource_note"] = job.resource_note if job else None
        emit_json(d)
        return 0
    say(f"{run.label}  (run id {run.id})  {run.status}"
        + (f"  pid {run.pid}" if run.status == "running" and run.pid else ""))
    if (stalled := stalled_for(engine, run)) is not None:
        say(f"{fmt_stalled(stalled)}: no metric, progress or log output for"
            f" {fmt_duration(stalled)}")
    if run.status == "running" and run.progress is not None:
        say(f"progress {run.progress * 100:.0f}%  {clean(run.message)}")
    say(f"duration {fmt_duration(run.duration)}  steps {fmt_num(run.steps)}"
        f"  epochs {fmt_num(run.epochs)}")
    if job is not None:
        where = "waiting" if job.status == "queued" else f"on {devices_text(job)}"
        say(f"resources: asks {resources_text(job.gpus, job.gpu_mem_mb)}; {where}"
            + (f"  ({clean(job.resource_note)})" if job.resource_note else ""))
    if run.error:
        say(f"error: {run.error}")
    _print_summary(summary)
    return 0


async def run_list(args) -> int:
    async with Engine.session(args.home) as engine:
        return await print_listing(
            args, engine.iter_runs(args.experiment, offset=args.offset, limit=args.limit),
            headers=["id", "run", "status", "steps", "duration"],
            row=lambda r: [str(r.id), r.label, with_stall(r.status, stalled_for(engine, r)),
                           fmt_num(r.steps), fmt_duration(r.duration)],
            as_json=lambda r: {**r.to_json(), "stalled_s": stalled_for(engine, r)},
            count=lambda: engine.count_runs(args.experiment), noun="run")


async def run_metrics(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        keys = args.key or await engine.metric_keys(run.id)
        out: dict[str, list[list[float]]] = {}
        for key in keys:
            if args.max_points:
                pts = await engine.read_metric(run.id, key, max_points=args.max_points)
                out[key] = [[x, y] for x, y in zip(pts.x, pts.y, strict=True)]
            else:
                out[key] = [[s, v] for s, v in await engine.all_metrics(run.id, key)]
    if args.json:
        emit_json({"run_id": run.id, "metrics": out})
    else:
        for key, points in out.items():
            say(f"{clean(key)} ({len(points)} points)")
            for s, v in points:
                say(f"  {fmt_num(s)}\t{fmt_num(v)}")
    return 0


async def run_logs(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        path = await engine.log_path(run.id)
        if path is None or not path.exists():
            if not args.follow:
                raise LookupError(f"run {run.label} has no log yet")
        else:
            for line in tail_lines(path, args.lines):  # the command's own output, as is
                sys.stdout.write(line + "\n")
        if not args.follow:
            return 0
        pos = path.stat().st_size if path and path.exists() else 0
        while True:
            path = path or await engine.log_path(run.id)
            if path and path.exists():
                with open(path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                    pos += len(chunk)
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                    sys.stdout.flush()
            run = await engine.get_run(run.id)
            if run.status in FINAL and not chunk:
                return 0
            await asyncio.sleep(0.3)


async def run_cancel(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        job_id = await engine.cancel_run(run.id)
        if job_id is None:
            raise LookupError(f"run {run.label} has no active job (status {run.status})")
        job = await cancel_and_wait(engine, job_id, not args.no_wait)
    if args.json:
        emit_json(job.to_json())
    else:
        say(f"job {job.id} of {run.label}: {job.status}")
    return 0


async def run_checkpoints(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        if args.delete:
            try:
                await engine.delete_checkpoint(run.id, args.delete)
            except UnsafePathError as exc:
                raise UnsafePathError(f"refused: {exc}") from None
            if not args.json:
                say(f"deleted {args.delete}")
        ckpts = await engine.list_checkpoints(run.id)
    if args.json:
        emit_json(ckpts)
    elif not args.delete:
        say(table(["name", "size", "step", "modified"],
                  [[c["name"], _size(c["size"]), fmt_num(c["step"]),
                    fmt_age(c["mtime"])] for c in ckpts]))
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
