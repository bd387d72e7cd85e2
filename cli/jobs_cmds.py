"""`labdeck jobs ...`: list, show and cancel jobs of every type."""

from __future__ import annotations

from engine.api import Engine

from .job_control import (
    cancel_and_wait,
    devices_text,
    resources_text,
    stalled_for,
    with_stall,
)
from .output import (
    add_paging_options,
    clean,
    emit_json,
    fmt_age,
    fmt_duration,
    print_listing,
    say,
)


def add_parsers(sub, add) -> None:
    jobs = add(sub, "jobs", "jobs").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add(jobs, "list", "list jobs, newest first")
    p.add_argument("--status")
    p.add_argument("--type")
    add_paging_options(p, "jobs")
    p.set_defaults(func=jobs_list)
    p = add(jobs, "show", "show a job")
    p.add_argument("job", type=int)
    p.set_defaults(func=jobs_show)
    p = add(jobs, "cancel", "cancel a job")
    p.add_argument("job", type=int)
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=jobs_cancel)


async def jobs_list(args) -> int:
    async with Engine.session(args.home) as engine:
        return await print_listing(
            args, engine.iter_jobs(status=args.status, type=args.type, offset=args.offset,
                                   limit=args.limit),
            headers=["id", "type", "target", "status", "devices", "progress", "elapsed",
                     "message"],
            row=lambda j: [str(j.id), j.type, j.target,
                           with_stall(j.status, stalled_for(engine, j)), devices_text(j),
                           f"{j.progress * 100:.0f}%", fmt_duration(j.elapsed),
                           (j.error or j.message or j.wait_reason or "")[:60]],
            as_json=lambda j: {**j.to_json(), "stalled_s": stalled_for(engine, j)},
            count=lambda: engine.count_jobs(status=args.status, type=args.type), noun="job")


async def jobs_show(args) -> int:
    async with Engine.session(args.home) as engine:
        job = await engine.get_job(args.job)
        log = await engine.log_tail(job_id=job.id, lines=20)
    if args.json:
        emit_json({**job.to_json(), "elapsed": job.elapsed, "eta": job.eta, "log_tail": log,
                   "stalled_s": stalled_for(engine, job)})
        return 0
    status = with_stall(job.status, stalled_for(engine, job))
    say(f"job {job.id}  {job.type}  {job.target}  {status}"
        f"  {job.progress * 100:.0f}%")
    say(f"message: {clean(job.message)}")
    got = ""
    if job.devices:
        got = "; given GPU " + ", ".join(str(i) for i in job.devices)
    elif job.devices is not None:
        got = "; given the CPU only (CUDA_VISIBLE_DEVICES empty)"
    when = f" ({fmt_age(job.devices_at)})" if job.devices_at else ""
    say(f"resources: asks {resources_text(job.gpus, job.gpu_mem_mb)}{got}{when}")
    if job.resource_note:
        say(clean(job.resource_note) if job.status == "queued"
            else f"note: {clean(job.resource_note)}")
    if job.executor == "slurm":
        opts = " ".join(f"{k}={v}" for k, v in (job.params.get("slurm") or {}).items())
        say(f"slurm: job {job.slurm_id or '(not submitted)'}"
            + (f"  {clean(job.slurm_state)}" if job.slurm_state and job.status == "running"
               else "")
            + (f"  ({clean(opts)})" if opts else ""))
    if job.error:
        say(f"error: {job.error}")
    if job.result is not None:
        import json

        say("result: " + json.dumps(job.result, default=str)[:2000])
    for line in log:
        say("  | " + line)
    return 0


async def jobs_cancel(args) -> int:
    async with Engine.session(args.home) as engine:
        job = await cancel_and_wait(engine, args.job, not args.no_wait)
    if args.json:
        emit_json(job.to_json())
    else:
        say(f"job {job.id}: {job.status}")
    return 0
