"""Handlers for runs, jobs, compare, eval, index and search."""

from __future__ import annotations

import asyncio
import sys
import time

from ..api import Engine
from ..jobs import FINAL
from ..liveness import fmt_stalled, stalled_seconds
from ..paths import UnsafePathError
from ..runs import tail_lines
from .commands import kick, wait_jobs
from .main import handler
from .output import clean, emit_json, fmt_age, fmt_duration, fmt_num, say, table


@handler("run_start")
async def run_start(args) -> int:
    async with Engine.session(args.home) as engine:
        run_id, job_id = await engine.start_run(args.experiment, resume_from=args.resume_from)
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


def _stalled(engine: Engine, item) -> float | None:
    """Seconds a running job or run has said nothing, once that passes LABDECK_STALL_WARN_S."""
    return stalled_seconds(item.last_output, engine.settings.stall_warn_s, time.time())


def _status(status: str, stalled: float | None) -> str:
    return f"{status} ({fmt_stalled(stalled)})" if stalled is not None else status


@handler("run_show")
async def run_show(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        summary = await engine.run_summary(run.id)
    if args.json:
        d = run.to_json()
        d["summary"] = summary
        d["duration"] = run.duration
        d["worker_pid"] = run.pid if run.status == "running" else None
        d["stalled_s"] = _stalled(engine, run)
        emit_json(d)
        return 0
    say(f"{run.label}  (run id {run.id})  {run.status}"
        + (f"  pid {run.pid}" if run.status == "running" and run.pid else ""))
    if (stalled := _stalled(engine, run)) is not None:
        say(f"{fmt_stalled(stalled)}: no metric, progress or log output for"
            f" {fmt_duration(stalled)}")
    if run.status == "running" and run.progress is not None:
        say(f"progress {run.progress * 100:.0f}%  {clean(run.message)}")
    say(f"duration {fmt_duration(run.duration)}  steps {fmt_num(run.steps)}"
        f"  epochs {fmt_num(run.epochs)}")
    if run.error:
        say(f"error: {run.error}")
    _print_summary(summary)
    return 0


@handler("run_list")
async def run_list(args) -> int:
    async with Engine.session(args.home) as engine:
        runs = await engine.list_runs(args.experiment)
    if args.json:
        emit_json([{**r.to_json(), "stalled_s": _stalled(engine, r)} for r in runs])
    else:
        say(table(["id", "run", "status", "steps", "duration"],
                  [[str(r.id), r.label, _status(r.status, _stalled(engine, r)),
                    fmt_num(r.steps), fmt_duration(r.duration)] for r in runs]))
    return 0


@handler("run_metrics")
async def run_metrics(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        keys = args.key or await engine.metric_keys(run.id)
        out = {}
        for key in keys:
            if args.max_points:
                pts = await engine.read_metric(run.id, key, max_points=args.max_points)
                out[key] = [[x, y] for x, y in zip(pts.x, pts.y, strict=True)]
            else:
                out[key] = [[s, v] for s, v in await engine.all_metrics(run.id, key)]
    if args.json:
        emit_json({"run_id": run.id, "metrics": out})
    else:
        for key, pts in out.items():
            say(f"{clean(key)} ({len(pts)} points)")
            for s, v in pts:
                say(f"  {fmt_num(s)}\t{fmt_num(v)}")
    return 0


@handler("run_logs")
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


async def _cancel_and_wait(engine: Engine, job_id: int, wait: bool) -> object:
    job = await engine.cancel_job(job_id)
    if wait and job.status not in FINAL:
        (job,) = await wait_jobs(engine, [job_id], quiet=True)
    return job


@handler("run_cancel")
async def run_cancel(args) -> int:
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        job_id = await engine.cancel_run(run.id)
        if job_id is None:
            raise LookupError(f"run {run.label} has no active job (status {run.status})")
        job = await _cancel_and_wait(engine, job_id, not args.no_wait)
    if args.json:
        emit_json(job.to_json())
    else:
        say(f"job {job.id} of {run.label}: {job.status}")
    return 0


@handler("run_checkpoints")
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


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@handler("jobs_list")
async def jobs_list(args) -> int:
    async with Engine.session(args.home) as engine:
        jobs = await engine.list_jobs(status=args.status, type=args.type)
    if args.json:
        emit_json([{**j.to_json(), "stalled_s": _stalled(engine, j)} for j in jobs])
    else:
        say(table(["id", "type", "target", "status", "progress", "elapsed", "message"],
                  [[str(j.id), j.type, j.target, _status(j.status, _stalled(engine, j)),
                    f"{j.progress * 100:.0f}%",
                    fmt_duration(j.elapsed), (j.error or j.message)[:50]] for j in jobs]))
    return 0


@handler("jobs_show")
async def jobs_show(args) -> int:
    async with Engine.session(args.home) as engine:
        job = await engine.get_job(args.job)
        log = await engine.log_tail(job_id=job.id, lines=20)
    if args.json:
        emit_json({**job.to_json(), "elapsed": job.elapsed, "eta": job.eta, "log_tail": log,
                   "stalled_s": _stalled(engine, job)})
        return 0
    say(f"job {job.id}  {job.type}  {job.target}  {_status(job.status, _stalled(engine, job))}"
        f"  {job.progress * 100:.0f}%")
    say(f"message: {clean(job.message)}")
    if job.error:
        say(f"error: {job.error}")
    if job.result is not None:
        import json

        say("result: " + json.dumps(job.result, default=str)[:2000])
    for line in log:
        say("  | " + line)
    return 0


@handler("jobs_cancel")
async def jobs_cancel(args) -> int:
    async with Engine.session(args.home) as engine:
        job = await _cancel_and_wait(engine, args.job, not args.no_wait)
    if args.json:
        emit_json(job.to_json())
    else:
        say(f"job {job.id}: {job.status}")
    return 0
