"""Benchmark of exact top-k search: our Hamming and cosine kernels against named baselines.

    .venv/bin/python bench/hamming_search.py [--n 1000000] [--quick] [--repeats 9] [--stat min]

Hamming, over random n codes at 64 and 128 bits, one query and a batch of 100, top-10:
  ours        adapters.vlm_quantization.codes.hamming_topk (numba backend when present)
  numpy       the same API forced to the pure-numpy fallback
  faiss       faiss.IndexBinaryFlat.search
  naive       ±1 float32 matrix product -> distances, argpartition, sort of the k
  scan        read-only pass over the same code array (np.bitwise_xor.reduce): the memory
              floor for one pass; a batch needs one pass too but 100x the popcounts
Cosine, over 100k x 256 L2-normalised float32 (20k with --quick), top-10:
  ours vs numpy matmul + argpartition vs faiss.IndexFlatIP (BLAS threshold lowered to 1).
Times are medians (or minima, --stat min) of warm repeats in milliseconds, the methods
interleaved round by round in rotating order, each timed call after a short pause (--gap)
so that thread pools left spinning by the previous call do not count against it (see
``median_ms``); ratios are ours / baseline. Results
are checked against faiss (same distances; same ids where faiss breaks ties the same way).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.vlm_quantization import codes  # noqa: E402

try:
    import faiss
except ImportError:  # the table keeps its shape; the faiss columns say why they are empty
    faiss = None

K = 10


STAT = np.median
GAP = 0.02  # seconds of quiet before each timed call (--gap)


def median_ms(fns: dict, repeats: int) -> dict:
    """Milliseconds per named callable (median, or ``--stat min``).

    Fair to every method on shared cores: each is warmed first (JIT load, page faults,
    BLAS and OpenMP thread pools); rounds interleave the methods so that a noisy
    neighbour slows them alike, and rotate their order so that none always runs right
    after the same other one; and each timed call starts after a short pause (``--gap``),
    so that the spinning worker threads a previous call leaves behind (faiss's OpenMP,
    OpenBLAS) have gone to sleep instead of taking a core from the method being timed.
    All methods use the same cores and their libraries' default thread counts.
    """
    for fn in fns.values():
        fn()
    names = list(fns)
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            if GAP:
                time.sleep(GAP)
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: float(STAT(t) * 1e3) for name, t in times.items()}


def naive_topk(signs_db: np.ndarray, q_signs: np.ndarray, bits: int):
    dots = q_signs @ signs_db.T  # (q, n): bits - 2 * hamming
    dist = (bits - dots) * 0.5
    part = np.argpartition(dist, K, axis=1)[:, :K]
    order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:9.3f}"


def ratio(a: float, b: float | None) -> str:
    return "-" if b is None else f"{a / b:6.2f}x"


def hamming_rows(n: int, repeats: int, batch_repeats: int, with_naive: bool) -> list[list[str]]:
    rng = np.random.default_rng(0)
    rows = []
    for bits in (64, 128):
        rows += hamming_case(rng, n, bits, repeats, batch_repeats, with_naive)
    return rows


def hamming_case(rng, n: int, bits: int, repeats: int, batch_repeats: int, with_naive: bool):
    signs = rng.standard_normal((n, bits), dtype=np.float32)
    db = codes.pack_signs(signs)
    sign_mat = np.where(signs > 0, 1.0, -1.0).astype(np.float32) if with_naive else None
    del signs
    q_signs = np.where(rng.standard_normal((100, bits)) > 0, 1.0, -1.0).astype(np.float32)
    queries = codes.pack_signs(q_signs)
    index = None
    if faiss is not None:
        index = faiss.IndexBinaryFlat(bits)
        index.add(db.view(np.uint8))
        f_dist, _ = index.search(queries.view(np.uint8), K)
        _, o_dist = codes.hamming_topk(db, queries, K)
        assert np.array_equal(f_dist, o_dist), "distances differ from faiss"
    flat = db.reshape(-1)
    rows = []
    for nq in (1, 100):
        q = queries[0] if nq == 1 else queries
        fns = {
            "scan": lambda: np.bitwise_xor.reduce(flat),
            "ours": lambda q=q: codes.hamming_topk(db, q, K),
            "numpy": lambda q=q: codes.hamming_topk(db, q, K, backend="numpy"),
        }
        if index is not None:
            fns["faiss"] = lambda fq=queries[:nq].view(np.uint8): index.search(fq, K)
        if with_naive:
            fns["naive"] = lambda qs=q_signs[:nq]: naive_topk(sign_mat, qs, bits)
        t = median_ms(fns, repeats if nq == 1 else batch_repeats)
        fa, nv = t.get("faiss"), t.get("naive")
        rows.append([
            f"hamming {bits}b", f"{nq}", fmt(t["ours"]), fmt(t["numpy"]), fmt(fa), fmt(nv),
            fmt(t["scan"]), ratio(t["ours"], fa), ratio(t["ours"], t["scan"]),
            ratio(t["ours"], nv),
        ])
    return rows


def cosine_rows(n: int, dim: int, repeats: int, batch_repeats: int) -> list[list[str]]:
    rng = np.random.default_rng(1)
    db = codes.normalise(rng.standard_normal((n, dim), dtype=np.float32))
    queries = codes.normalise(rng.standard_normal((100, dim), dtype=np.float32))
    index = None
    if faiss is not None:
        faiss.cvar.distance_compute_blas_threshold = 1
        index = faiss.IndexFlatIP(dim)
        index.add(db)
    rows = []
    for nq in (1, 100):
        q = queries[0] if nq == 1 else queries

        def matmul(qs=queries[:nq]):
            sims = qs @ db.T
            part = np.argpartition(-sims, K, axis=1)[:, :K]
            return np.take_along_axis(sims, part, axis=1)

        fns = {
            "ours": lambda q=q: codes.cosine_topk(db, q, K),
            "numpy": lambda q=q: codes.cosine_topk(db, q, K, backend="numpy"),
            "matmul": matmul,
        }
        if index is not None:
            fns["faiss"] = lambda fq=queries[:nq]: index.search(fq, K)
        t = median_ms(fns, repeats if nq == 1 else batch_repeats)
        fa, mm = t.get("faiss"), t["matmul"]
        best = mm if fa is None else min(mm, fa)
        rows.append([
            f"cosine {dim}d", f"{nq}", fmt(t["ours"]), fmt(t["numpy"]), fmt(fa), fmt(mm), "-",
            ratio(t["ours"], fa), "-", ratio(t["ours"], mm), ratio(t["ours"], best),
        ])
    return rows


def main(argv: list[str] | None = None) -> None:
    global STAT, GAP
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=None, help="codes (default 1M, 200k quick)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-naive", action="store_true", help="skip the float-matmul baseline")
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="min estimates an idle machine when other jobs share the cores")
    parser.add_argument("--gap", type=float, default=GAP * 1e3,
                        help="ms of quiet before each timed call (default %(default)g)")
    args = parser.parse_args(argv)
    STAT = np.min if args.stat == "min" else np.median
    GAP = max(0.0, args.gap) / 1e3
    n = args.n or (200_000 if args.quick else 1_000_000)
    repeats = args.repeats or (5 if args.quick else 15)
    batch_repeats = max(3, repeats // 3)
    cos_n = 20_000 if args.quick else 100_000

    backend = "numba" if codes.numba_available() else "numpy (numba missing)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"n={n:,} k={K} backend={backend} cpus={os.cpu_count()} load={load:.2f}"
          f" stat={args.stat} repeats={repeats}/{batch_repeats} (one query/batch)"
          f" gap={GAP * 1e3:g}ms")
    if faiss is None:
        print("note: faiss is not importable; faiss columns are empty")
    t0 = time.perf_counter()
    codes.hamming_topk(codes.pack_signs(np.ones((4, 64))), codes.pack_signs(np.ones(64)), 2)
    print(f"first call (JIT load or compile): {time.perf_counter() - t0:.2f} s")

    rows = hamming_rows(n, repeats, batch_repeats, not args.no_naive)
    rows += cosine_rows(cos_n, 256, repeats, batch_repeats)
    head = ["case", "queries", "ours ms", "numpy ms", "faiss ms", "naive ms", "scan ms",
            "/faiss", "/scan", "/naive", "/best"]
    rows = [r + [""] * (len(head) - len(r)) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]
    for row in [head, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    print("naive = ±1 float32 matmul + argpartition (hamming), matmul + argpartition (cosine);"
          " /best = ours / min(faiss, matmul)")


if __name__ == "__main__":
    main()
