"""`labdeck search text|image`: query a run's search index (built by `labdeck index build`)."""

from __future__ import annotations

from pathlib import Path

from engine.api import Engine

from .output import emit_json, fmt_num, say, table


def add_parsers(sub, add) -> None:
    search = add(sub, "search", "query a run's index").add_subparsers(dest="sub", metavar="KIND",
                                                                       required=True)
    for kind, handler in (("text", search_text), ("image", search_image)):
        p = add(search, kind, f"search by {kind}")
        p.add_argument("query", help="query text" if kind == "text" else "image path")
        p.add_argument("--run", required=True)
        p.add_argument("--checkpoint")
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE",
                       help="adapter search option (e.g. bits=64)")
        p.add_argument("--bits", type=int)
        p.add_argument("--method")
        p.add_argument("--show", action="store_true", help="draw result thumbnails")
        p.set_defaults(func=handler)


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
    for credit in dict.fromkeys(str(h.extra["credit"]) for h in hits if h.extra.get("credit")):
        say(credit)  # the images' licence asks for attribution wherever they appear
    if args.show:  # the terminal rendering lives in tui/; loaded only when asked for
        from tui.thumbnails import show_thumbnails

        show_thumbnails(hits)
    return 0


async def search_text(args) -> int:
    return await _search(args, "text")


async def search_image(args) -> int:
    return await _search(args, "image")
