"""Exact search over binary codes (Hamming) and float features (cosine) for the reference adapter.

Why this module exists: the adapter evaluates hash codes by exact retrieval over up to
millions of database items, many times per study, so the kernels must be exact,
deterministic and faster than FAISS's flat indexes without a compiled extension of our own.

Packed codes: the layout, ``pack_signs``, ``prefix_codes`` and ``normalise`` live in
:mod:`.codes_pack` and are re-exported here; the thread runner lives in :mod:`.codes_threads`.

Backends, chosen by measurement (``bench/hamming_search.py``; 2 cores, 1M codes):

* ``numba`` (default when importable). Hamming: a fused XOR + popcount + running-radius
  selection (``codes_jit``). Distances are integers in ``0..bits``, so selecting the k
  nearest needs a histogram and a threshold, not a sort or ``argpartition``, and most
  blocks of codes are rejected after one vectorised pass. Pure numpy cannot fuse those
  steps: ``bitwise_count`` alone writes the whole distance array, and it is 3-10x slower.
  Cosine: BLAS matrix products, each similarity block folded into per-query top-k buffers
  by a vectorised compare against the running k-th best (no ``argpartition``).
  Work is split into ~2 MB database slices (Hamming) or query groups (cosine) run on plain
  threads by ``_run_tasks``, never numba ``parallel=True`` (its OpenMP pool collapses on
  shared cores and next to torch's or faiss's own pools; see ``_run_tasks``).
  numba is imported on the first search, not on import; kernels compile then (~1-2 s per
  code dtype, ~4 s for cosine) and are cached on disk, so later processes load them in
  ~0.1 s.
* ``numpy``: the fallback when numba is missing or ``LABDECK_NO_NUMBA=1``: XOR +
  ``bitwise_count``, then the same counting selection with ``bincount``; cosine with one
  ``partition`` per query. Exact, with the same tie order, several times slower.

Ordering contract (both backends, both metrics): results are sorted by (distance asc,
index asc) for Hamming and (similarity desc, index asc) for cosine; ``k > n`` gives ``n``
results. Indices are ``int64``, Hamming distances ``int32``, similarities ``float32``.
NaN features are not supported.
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np

from .codes_pack import normalise, pack_signs, packed_dtype, prefix_codes
from .codes_threads import _run_tasks, _threads

__all__ = [
    "cosine_topk", "hamming_distances", "hamming_topk", "normalise", "numba_available",
    "pack_signs", "packed_dtype", "prefix_codes",
]

_BACKENDS = ("auto", "numba", "numpy")
_POPCOUNT_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# ----------------------------------------------------------------------------- backends


@cache
def _jit():
    """The numba kernels module, or None where numba is missing or disabled."""
    if os.environ.get("LABDECK_NO_NUMBA", "") not in ("", "0"):
        return None
    try:
        import adapters.vlm_quantization.codes_jit as codes_jit
    except ImportError:
        return None
    return codes_jit


def numba_available() -> bool:
    return _jit() is not None


_TASK_BYTES = 2 << 20  # database bytes per task: a few tasks per thread, ~10 us dispatch each
_TASK_MIN_ROWS = 4096


def _task_bounds(n: int, row_bytes: int) -> list[tuple[int, int]]:
    rows = max(_TASK_MIN_ROWS, _TASK_BYTES // row_bytes)
    if _threads() == 1:
        rows = n
    return [(lo, min(n, lo + rows)) for lo in range(0, max(n, 1), max(rows, 1))]


def _kernels(backend: str):
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return None
    jit = _jit()
    if jit is None and backend == "numba":
        raise RuntimeError("numba backend requested but numba is not available")
    return jit


# ----------------------------------------------------------------------------- Hamming


def _as_codes(db: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    db = np.asarray(db)
    if db.ndim == 1:
        db = db[:, None]
    if db.ndim != 2 or db.dtype.kind != "u":
        raise ValueError(f"db must be packed codes (n, words) unsigned, got {db.dtype}{db.shape}")
    db = np.ascontiguousarray(db)
    query = np.asarray(query)
    if query.dtype.kind == "u" and query.dtype != db.dtype:
        raise ValueError(f"query dtype {query.dtype} does not match db dtype {db.dtype}")
    single = query.ndim == 1
    queries = np.ascontiguousarray(query[None, :] if single else query, dtype=db.dtype)
    if queries.ndim != 2 or queries.shape[1] != db.shape[1]:
        raise ValueError(f"query shape {query.shape} does not match db words {db.shape[1]}")
    return db, queries, single


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    per_byte = _POPCOUNT_LUT[x.view(np.uint8)].reshape(*x.shape, x.dtype.itemsize)
    return per_byte.sum(axis=-1, dtype=np.uint8)


def _distances_numpy(db: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n,) uint16 distances of every code to one packed query."""
    dist = _popcount(db[:, 0] ^ q[0]).astype(np.uint16)
    for t in range(1, db.shape[1]):
        dist += _popcount(db[:, t] ^ q[t])
    return dist


def hamming_distances(db: np.ndarray, query: np.ndarray, *, backend: str = "auto") -> np.ndarray:
    """Hamming distances, ``(n,)`` int32 for a ``(words,)`` query, ``(q, n)`` for ``(q, words)``."""
    db, queries, single = _as_codes(db, query)
    jit = _kernels(backend)
    out = np.empty((queries.shape[0], db.shape[0]), np.int32)
    if jit is not None:
        bounds = _task_bounds(db.shape[0], db.shape[1] * db.itemsize)
        _run_tasks(lambda i: jit.hamming_distances(db, queries, *bounds[i], out), len(bounds))
    else:
        for qi, q in enumerate(queries):
            out[qi] = _distances_numpy(db, q)
    return out[0] if single else out


def _topk_numpy(db: np.ndarray, queries: np.ndarray, k: int, bits: int):
    kk = min(k, db.shape[0])
    out_idx = np.empty((queries.shape[0], kk), np.int64)
    out_d = np.empty((queries.shape[0], kk), np.int32)
    for qi, q in enumerate(queries):
        dist = _distances_numpy(db, q)
        # smallest radius holding kk codes: all codes below it plus the first ones on it
        thr = int(np.searchsorted(np.cumsum(np.bincount(dist, minlength=bits + 1)), kk))
        below = np.flatnonzero(dist < thr)
        on = np.flatnonzero(dist == thr)[: kk - below.size]
        cand = np.sort(np.concatenate([below, on]))
        order = np.argsort(dist[cand], kind="stable")
        out_idx[qi] = cand[order]
        out_d[qi] = dist[cand[order]]
    return out_idx, out_d


def _topk_numba(jit, db: np.ndarray, queries: np.ndarray, k: int, bits: int):
    # One task = every query over one database slice (the kernel walks the slice in
    # L1-sized blocks, each serving all queries); per-slice top-k lists are merged after.
    nq = queries.shape[0]
    bounds = _task_bounds(db.shape[0], db.shape[1] * db.itemsize)
    part_idx = np.empty((len(bounds), nq, k), np.int64)
    part_d = np.empty((len(bounds), nq, k), np.int32)

    def task(i: int) -> None:
        lo, hi = bounds[i]
        jit.hamming_topk_task(db, queries, k, bits, 0, nq, lo, hi, part_idx[i], part_d[i])

    _run_tasks(task, len(bounds))
    if len(bounds) == 1:
        return part_idx[0], part_d[0]
    out_idx = np.empty((nq, k), np.int64)
    out_d = np.empty((nq, k), np.int32)
    jit.merge_slices(part_idx, part_d, k, out_idx, out_d)
    return out_idx, out_d


def hamming_topk(
    db: np.ndarray, query: np.ndarray, k: int, *, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest packed codes by Hamming distance.

    ``query`` ``(words,)`` gives ``(idx (k,), dist (k,))``; ``(q, words)`` gives ``(q, k)``
    arrays. Sorted by (distance, index): equal distances put the lower database index
    first. ``k > n`` returns ``n`` results. ``backend`` is "auto", "numba" or "numpy".
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    db, queries, single = _as_codes(db, query)
    bits = db.shape[1] * db.dtype.itemsize * 8
    kk = min(k, db.shape[0])
    if kk == 0:
        idx = np.empty((queries.shape[0], 0), np.int64)
        dist = np.empty((queries.shape[0], 0), np.int32)
    else:
        jit = _kernels(backend)
        if jit is None:
            idx, dist = _topk_numpy(db, queries, kk, bits)
        else:
            idx, dist = _topk_numba(jit, db, queries, kk, bits)
    return (idx[0], dist[0]) if single else (idx, dist)


# ----------------------------------------------------------------------------- cosine

# Similarities per BLAS call. Large on purpose: each BLAS call is a sync point of its
# thread pool, and on cores shared with other jobs every extra sync point costs more
# than the cache misses of a large similarity block.
_CHUNK_BYTES = 64 << 20


def _select_desc_numpy(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.empty(k, np.int64)
    kth = np.partition(sims, sims.size - k)[sims.size - k]
    above = np.flatnonzero(sims > kth)
    on = np.flatnonzero(sims == kth)[: k - above.size]
    cand = np.sort(np.concatenate([above, on]))
    order = np.argsort(-sims[cand], kind="stable")
    idx[:] = cand[order]
    return idx, sims[idx]


def _cosine_numba(jit, db, queries, k, out_idx, out_s) -> None:
    # BLAS on row chunks, each folded into per-query candidate buffers that carry the
    # running top-k from chunk to chunk; the fold is split into query-group tasks.
    n, nq = db.shape[0], queries.shape[0]
    cap = 2 * k + 64
    buf_idx = np.empty((nq, cap), np.int64)
    buf_s = np.empty((nq, cap), np.float32)
    count = np.zeros(nq, np.int64)
    full = np.zeros(nq, np.bool_)
    chunk = min(n, max(1024, _CHUNK_BYTES // (4 * nq)))
    q_rows = max(1, _TASK_BYTES // (4 * chunk))
    groups = [slice(a, min(nq, a + q_rows)) for a in range(0, nq, q_rows)]
    for lo in range(0, n, chunk):
        block = db[lo : lo + chunk]
        if nq == 1:  # matrix-vector product: BLAS gemv streams the rows once
            sims = (block @ queries[0])[None, :]
        else:
            sims = queries @ block.T

        def task(i: int, sims=sims, lo=lo) -> None:
            g = groups[i]
            jit.select_desc(sims[g], lo, k, buf_idx[g], buf_s[g], count[g], full[g])

        _run_tasks(task, len(groups))
    jit.finish_desc(buf_idx, buf_s, count, k, out_idx, out_s)


def cosine_topk(
    db_feats: np.ndarray, query_feats: np.ndarray, k: int, *, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by inner product (cosine for L2-normalised rows, see ``normalise``).

    ``db_feats`` ``(n, d)`` float32; ``query_feats`` ``(d,)`` or ``(q, d)``. Returns
    ``(idx, similarity)`` shaped like ``hamming_topk``'s, sorted by similarity descending,
    ties to the lower index.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    db = np.ascontiguousarray(db_feats, dtype=np.float32)
    query = np.asarray(query_feats, dtype=np.float32)
    single = query.ndim == 1
    queries = np.ascontiguousarray(query[None, :] if single else query)
    if db.ndim != 2 or queries.ndim != 2 or queries.shape[1] != db.shape[1]:
        raise ValueError(f"shapes do not match: db {db.shape}, query {query.shape}")
    n, nq = db.shape[0], queries.shape[0]
    kk = min(k, n)
    out_idx = np.full((nq, kk), -1, np.int64)
    out_s = np.zeros((nq, kk), np.float32)
    jit = _kernels(backend) if kk else None
    if kk and jit is None:
        sims = queries @ db.T
        for qi in range(nq):
            out_idx[qi], out_s[qi] = _select_desc_numpy(sims[qi], kk)
    elif kk:
        _cosine_numba(jit, db, queries, kk, out_idx, out_s)
    return (out_idx[0], out_s[0]) if single else (out_idx, out_s)
