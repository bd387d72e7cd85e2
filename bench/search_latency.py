"""Latency of one retrieval-demo query, warm: encode the text + search the index + render the
top-12 thumbnails (what the Search area does per query), over a 10k-item index.

    .venv/bin/python bench/search_latency.py [--n 10000] [--queries 30] [--home DIR]

It trains a small vlm_quantization model and builds a real index with the engine's own
worker processes (kept in --home to reuse: a second run skips both), then measures through
the engine's public ``Engine.search`` (the call the TUI makes, in its thread) and renders the
hits with the same textual-image half-cell renderables ``tui.thumbnails`` uses.

Baselines measured in the same run:
  cold     the first query of a fresh engine: loads the model and the index, then answers
  float    brute-force float search: the full float32 matrix product over the index's
           continuous features, then a full argsort (no binary codes, no top-k selection)
Ratios printed: cold / warm total, and float brute force / our search at the same bits.
Times are medians (p95 beside them) in milliseconds. Target: warm total under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.api import Engine  # noqa: E402

QUERIES = ("a red circle", "a small blue square on the left", "빨간 원", "노란 별 그림",
           "a big green triangle at the top", "purple star", "주황색 십자가", "an orange diamond")
K = 12


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]


async def ensure_index(engine: Engine, n: int) -> int:
    name = f"bench-search-{n}"
    if name not in {e.name for e in await engine.list_experiments()}:
        await engine.create_experiment(name, "vlm_quantization", {
            "dataset": "synthetic", "n_train": 1024, "n_query": 16, "n_database": n, "image_size": 32, "epochs": 1,
            "width": 16, "seed": 0})
    runs = [r for r in await engine.list_runs(name) if r.status == "completed"]
    await engine.ensure_scheduler()
    if not runs:
        print(f"training {name} (once) ...", flush=True)
        run_id, job = await engine.start_run(name)
        assert (await engine.wait_job(job)).status == "completed"
    else:
        run_id = runs[0].id
    if not await engine.list_indexes(run_id):
        print(f"building the {n:,}-item index (once) ...", flush=True)
        job = await engine.start_index_build(run_id)
        done = await engine.wait_job(job)
        assert done.status == "completed", done.error
    return run_id


def render(hits, cell: int = 16) -> float:
    from rich.console import Console

    from tui.thumbnails import thumbnail_grid

    t0 = time.perf_counter()
    console = Console(file=io.StringIO(), width=120, color_system="truecolor")
    console.print(thumbnail_grid(hits, width=120, cell=cell, mode="halfcell"))
    return (time.perf_counter() - t0) * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="database items in the index")
    ap.add_argument("--queries", type=int, default=30, help="warm queries per setting")
    ap.add_argument("--home", default=os.path.join(tempfile.gettempdir(), "labdeck-bench-search"))
    args = ap.parse_args()

    async with Engine.session(args.home) as engine:
        run_id = await ensure_index(engine, args.n)
    # a fresh engine: nothing loaded, so the first query is the cold one
    async with Engine.session(args.home) as engine:
        t0 = time.perf_counter()
        res = await engine.search(run_id, "text", QUERIES[0], k=K)
        cold = (time.perf_counter() - t0) * 1000 + render(res["hits"])
        n_items = res["index"].info.get("n_items")
        adapter, index, _ = await engine._loaded_index(run_id, None)
        options = adapter.search_options()
        bits_opt = options[0] if options else None
        method_opt = options[1] if len(options) > 1 else None
        print(f"index: {n_items:,} items · top-{K} · {args.queries} warm queries per row · "
              f"{os.cpu_count()} CPUs\n")
        print(f"{'setting':<22}{'engine.search':>16}{'render':>12}{'total':>12}{'p95':>10}")
        every: list[float] = []
        for method in (method_opt.choices if method_opt else (None,)):
            for bits in (bits_opt.choices if bits_opt else (None,)):
                opts = {k: v for k, v in ((getattr(bits_opt, "name", ""), bits),
                                          (getattr(method_opt, "name", ""), method)) if k}
                search_ms, render_ms, total_ms = [], [], []
                for i in range(args.queries):
                    t0 = time.perf_counter()
                    res = await engine.search(run_id, "text", QUERIES[i % len(QUERIES)], k=K,
                                              **opts)
                    s = (time.perf_counter() - t0) * 1000
                    r = render(res["hits"])
                    search_ms.append(s)
                    render_ms.append(r)
                    total_ms.append(s + r)
                label = " ".join(str(v) for v in opts.values())
                med = statistics.median(total_ms)
                every += total_ms
                print(f"{label:<22}{statistics.median(search_ms):>13.1f} ms"
                      f"{statistics.median(render_ms):>9.1f} ms{med:>9.1f} ms{p95(total_ms):>7.1f} ms")

        # baseline: brute-force float search (full matmul + full argsort), search only
        feats = np.ascontiguousarray(index.img_feats, dtype=np.float32)
        q = feats[0].copy()
        ms = []
        for _ in range(args.queries):
            t0 = time.perf_counter()
            np.argsort(-(feats @ q))[:K]
            ms.append((time.perf_counter() - t0) * 1000)
        brute = statistics.median(ms)
        # our search alone at the full bit length, same query vector (no text encoding)
        from adapters.vlm_quantization import kernels

        full = max(bits_opt.choices) if bits_opt else feats.shape[1]
        packed_db = index.packed("img", full)
        q_packed = kernels.pack(np.where(q[None, :full] >= 0, 1, -1))[0]
        ours = []
        for _ in range(args.queries):
            t0 = time.perf_counter()
            kernels.hamming_topk(packed_db, q_packed, K)
            ours.append((time.perf_counter() - t0) * 1000)
        ham = statistics.median(ours)
        warm, warm95 = statistics.median(every), p95(every)

    print(f"\ncold first query (load model + index, encode, search, render): {cold:.1f} ms")
    print(f"warm query, all settings (encode + search + render): median {warm:.1f} ms,"
          f" p95 {warm95:.1f} ms   -> cold / warm = {cold / warm:.0f}x  (target < 100 ms: "
          f"{'met' if warm < 100 else 'NOT met'})")
    print(f"search only, {feats.shape[1]}-d float brute force (matmul + argsort): {brute:.3f} ms"
          f"  vs our packed Hamming top-{K} at {full} bits: {ham:.3f} ms"
          f"   -> float / ours = {brute / ham:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
