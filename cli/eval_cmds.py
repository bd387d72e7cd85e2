"""`labdeck eval` and `labdeck index build`: the jobs that read a run's checkpoint (an
evaluation, a search index), for adapters that declare those capabilities."""

from __future__ import annotations

from engine.api import Engine

from .job_control import add_executor_options, executor_args, kick, wait_jobs
from .output import clean, emit_json, fmt_num, say, table


def add_parsers(sub, add) -> None:
    p = add(sub, "eval", "evaluate a run's checkpoint")
    p.add_argument("run")
    p.add_argument("--checkpoint")
    p.add_argument("--wait", action="store_true")
    add_executor_options(p)
    p.set_defaults(func=eval_run)
    idx = add(sub, "index", "search indexes").add_subparsers(dest="sub", metavar="ACTION",
                                                              required=True)
    p = add(idx, "build", "build a search index from a run's checkpoint")
    p.add_argument("run")
    p.add_argument("--checkpoint")
    p.add_argument("--wait", action="store_true")
    add_executor_options(p)
    p.set_defaults(func=index_build)


async def _job_cmd(args, start) -> int:
    """Queue the job ``start(engine, run, checkpoint)`` makes; wait for it with --wait."""
    async with Engine.session(args.home) as engine:
        job_id = await start(engine, args.run, args.checkpoint, **executor_args(args))
        if not args.wait:
            await kick(engine)
            if args.json:
                emit_json({"job_id": job_id})
            else:
                say(f"job {job_id} queued")
            return 0
        (job,) = await wait_jobs(engine, [job_id], quiet=args.json)
    if args.json:
        emit_json(job.to_json())
    else:
        say(f"job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
        res = job.result or {}
        if res.get("view_type") == "retrieval_table" or "data" in res:
            _print_rows(res.get("data", {}))
        elif res:
            for k, v in res.items():
                say(f"  {clean(k)}: {clean(v)}")
    return 0 if job.status == "completed" else 1


def _print_rows(data: dict) -> None:
    rows = data.get("rows") or []
    if not rows:
        return
    cols = list(rows[0].keys())
    say(table(cols, [[fmt_num(r.get(c)) if not isinstance(r.get(c), str) else r.get(c)
                      for c in cols] for r in rows]))


async def eval_run(args) -> int:
    return await _job_cmd(args, Engine.start_eval)


async def index_build(args) -> int:
    return await _job_cmd(args, Engine.start_index_build)
