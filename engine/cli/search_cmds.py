"""Handlers for compare, eval, index builds and search."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..api import Engine
from ..compare import comparison_rows
from .commands import kick, wait_jobs
from .main import handler
from .output import clean, emit_json, fmt_num, say, table


@handler("compare")
async def compare(args) -> int:
    async with Engine.session(args.home) as engine:
        c = await engine.compare(args.targets)
    which = "best" if args.best else "last"
    if args.json:
        d = c.to_json()
        d["rows"] = comparison_rows(c, which)
        emit_json(d)
        return 0
    keys = c.differing if args.diff_only else c.config_keys
    say("config" + (" (differing only)" if args.diff_only else ""))
    rows = [[("* " if k in c.differing else "  ") + k] + [fmt_num(v) if not isinstance(v, str)
            else v for v in c.config[k]] for k in keys]
    say(table(["key", *c.columns], rows))
    say(f"\nmetrics ({which}; ★ best)")
    rows = []
    for key, m in c.metrics.items():
        bi = m["best_last" if which == "last" else "best_best"]
        rows.append([key + (" ↓" if m["direction"] == "minimize" else " ↑")] + [
            fmt_num(v) + (" ★" if i == bi else "") for i, v in enumerate(m[which])])
    say(table(["metric", *c.columns], rows))
    return 0


async def _job_cmd(args, starter: str) -> int:
    async with Engine.session(args.home) as engine:
        job_id = await getattr(engine, starter)(args.run, args.checkpoint)
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


@handler("eval")
async def eval_cmd(args) -> int:
    return await _job_cmd(args, "start_eval")


@handler("index_build")
async def index_build(args) -> int:
    return await _job_cmd(args, "start_index_build")


async def _search(args, kind: str) -> int:
    options: dict = {}
    for item in args.opt:
        k, _, v = item.partition("=")
        options[k] = int(v) if v.lstrip("-").isdigit() else v
    if args.bits is not None:
        options["bits"] = args.bits
    if args.method is not None:
        options["method"] = args.method
    query = args.query
    if kind == "image":
        p = Path(query).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {query}")
        query = str(p.resolve())
    elif not query.strip():
        raise ValueError("empty query")
    async with Engine.session(args.home) as engine:
        run = await engine.get_run(args.run)
        res = await engine.search(run.id, kind, query, checkpoint=args.checkpoint, k=args.k,
                                  **options)
    hits = res["hits"]
    if args.json:
        emit_json({"run_id": run.id, "query": args.query, "kind": kind, "options": options,
                   "latency_ms": res["latency_ms"], "checkpoint": res["index"].checkpoint,
                   "hits": [{"rank": h.rank, "score": h.score, "item_id": h.item_id,
                             "text": h.text, "image_path": h.image_path, **h.extra}
                            for h in hits]})
        return 0
    say(f"{len(hits)} results in {res['latency_ms']:.1f} ms  ({run.label} ›"
        f" {res['index'].checkpoint})")
    say(table(["rank", "score", "id", "text"],
              [[str(h.rank), fmt_num(h.score), h.item_id, h.text[:70]] for h in hits]))
    if args.show:  # the terminal rendering lives in tui/ (engine never imports rich)
        importlib.import_module("tui.thumbnails").show_thumbnails(hits)
    return 0


@handler("search_text")
async def search_text(args) -> int:
    return await _search(args, "text")


@handler("search_image")
async def search_image(args) -> int:
    return await _search(args, "image")
