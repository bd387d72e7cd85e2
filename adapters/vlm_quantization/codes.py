"""Exact search over binary codes (Hamming) and float features (cosine) for the reference adapter.

Why this module exists: the adapter evaluates hash codes by exact retrieval over up to
millions of database items, many times per study, so the kernels must be exact,
deterministic and faster than FAISS's flat indexes without a compiled extension of our own.

Packed codes. ``pack_signs`` turns sign columns into bits, LSB first: column ``j`` is bit
``j % 64`` of word ``j // 64``. Code lengths up to 32 bits use one word of the smallest
unsigned dtype that holds them (``uint8`` up to 8, ``uint16`` up to 16, ``uint32`` up to
32); longer codes use ``ceil(bits / 64)`` ``uint64`` words. Unused high bits are zero, so
they never add distance. ``prefix_codes`` takes a bit prefix of an already packed array.

Backends, chosen by measurement (``bench/hamming_search.py``, 2 cores, 1M codes):

* ``numba`` (default when importable) — a fused XOR + popcount + running-radius selection
  (see ``codes_jit``). Distances are integers in ``0..bits``, so selection needs a histogram
  and a threshold, not a sort or ``argpartition``; most blocks of codes are rejected after
  one vectorised pass. One query takes about 1.3x the time of a read-only scan of the code
  array, about half of FAISS ``IndexBinaryFlat``; a batch splits queries across threads
  and walks the database in L1-sized blocks so each block serves every query of a group.
  Cosine search runs BLAS on row chunks and folds each chunk into per-query top-k buffers.
  Kernels compile on first call (a few seconds; see the report in the bench) and are cached
  on disk, so later processes start warm. numba is imported on first call, not on import.
* ``numpy`` — the fallback when numba is missing (or ``LABDECK_NO_NUMBA=1``): XOR +
  ``bitwise_count`` then the same counting selection with ``bincount``; about 3-10x slower
  than numba, still exact and with the same tie order.

Ordering contract (both backends, both metrics): results are sorted by (distance asc,
index asc) for Hamming and (similarity desc, index asc) for cosine; ``k > n`` gives ``n``
results. Indices are ``int64``, Hamming distances ``int32``, similarities ``float32``.
NaN features are not supported.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

_BACKENDS = ("auto", "numba", "numpy")
_SPLIT_MIN_CODES = 65536  # per thread; below this a database split costs more than it saves
_SMALL_DTYPES = ((8, np.uint8), (16, np.uint16), (32, np.uint32))
_POPCOUNT_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# ----------------------------------------------------------------------------- packing


def packed_dtype(bits: int) -> np.dtype:
    """dtype of one packed word for ``bits``-bit codes (see the module docstring)."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    for limit, dtype in _SMALL_DTYPES:
        if bits <= limit:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def pack_signs(signs: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Pack the first ``bits`` columns of ``signs`` (positive -> 1) into binary codes.

    ``signs`` is ``(n, L)`` (or ``(L,)`` for one code) of ±1, {0, 1}, bool or float.
    Returns a C-contiguous ``(n, words)`` array (``(words,)`` for 1-D input): one word of
    uint8/uint16/uint32 for ``bits`` <= 8/16/32, else ``ceil(bits / 64)`` uint64 words.
    """
    signs = np.asarray(signs)
    one = signs.ndim == 1
    if one:
        signs = signs[None, :]
    if signs.ndim != 2:
        raise ValueError(f"signs must be 1-D or 2-D, got shape {signs.shape}")
    total = signs.shape[1]
    bits = total if bits is None else int(bits)
    if not 1 <= bits <= total:
        raise ValueError(f"bits must be in 1..{total}, got {bits}")
    dtype = packed_dtype(bits)
    word_bytes = dtype.itemsize
    n_bytes = -(-bits // (8 * word_bytes)) * word_bytes
    raw = np.packbits(signs[:, :bits] > 0, axis=1, bitorder="little")
    if raw.shape[1] < n_bytes:
        raw = np.pad(raw, ((0, 0), (0, n_bytes - raw.shape[1])))
    packed = np.ascontiguousarray(raw).view(dtype.newbyteorder("<"))
    packed = np.ascontiguousarray(packed, dtype=dtype)  # no-op on little-endian hosts
    return packed[0] if one else packed


def prefix_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """The first ``bits`` bits of packed codes, packed as ``pack_signs(signs, bits)`` would.

    Equal to packing the sliced signs, so a 128-bit index serves 16/32/64-bit evaluation
    without the original signs. Returns a new C-contiguous array (1-D in, 1-D out).
    """
    packed = np.asarray(packed)
    one = packed.ndim == 1
    codes = packed[None, :] if one else packed
    src_bits = codes.shape[1] * codes.dtype.itemsize * 8
    if not 1 <= bits <= src_bits:
        raise ValueError(f"bits must be in 1..{src_bits}, got {bits}")
    dtype = packed_dtype(bits)
    word_bits = 8 * codes.dtype.itemsize
    words = -(-bits // word_bits)
    out = codes[:, :words].astype(np.uint64 if dtype == np.uint64 else codes.dtype)
    rem = bits - (words - 1) * word_bits
    if rem < word_bits:
        out[:, -1] &= out.dtype.type((1 << rem) - 1)
    out = np.ascontiguousarray(out.astype(dtype))
    return out[0] if one else out


def normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows (or one vector) as float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, np.float32(1e-12)))


# ----------------------------------------------------------------------------- backends


@cache
def _jit():
    """The numba kernels module, or None where numba is missing or disabled."""
    if os.environ.get("LABDECK_NO_NUMBA", "") not in ("", "0"):
        return None
    try:
        from adapters.vlm_quantization import codes_jit
    except ImportError:
        return None
    return codes_jit


def numba_available() -> bool:
    return _jit() is not None


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _run_all(calls: list[tuple]) -> None:
    """Run ``(fn, *args)`` calls of GIL-free kernels, the first here, the rest on a pool.

    Plain Python threads instead of numba's ``parallel=True``: numba's OpenMP pool spins
    at barriers, which collapses (10-50x slower) when the cores are shared with another
    process or with the OpenMP pools of torch or faiss in this process; its workqueue
    pool may not be entered from two threads at once. Idle pool threads here just sleep.
    """
    global _pool
    if len(calls) > 1:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_threads(), thread_name_prefix="labdeck-codes")
        futures = [_pool.submit(*call) for call in calls[1:]]
    calls[0][0](*calls[0][1:])
    if len(calls) > 1:
        for future in futures:
            future.result()


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
        n, parts = db.shape[0], _threads() if db.shape[0] >= _SPLIT_MIN_CODES else 1
        bounds = [n * p // parts for p in range(parts + 1)]
        _run_all([(jit.hamming_distances, db, queries, lo, hi, out)
                  for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
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
    n, nq = db.shape[0], queries.shape[0]
    threads = _threads()
    # Split queries across threads; split the database too when there are fewer queries
    # than threads and enough codes for the split to pay for its merge.
    n_groups = min(nq, threads)
    n_slices = max(1, threads // nq) if n >= _SPLIT_MIN_CODES * threads else 1
    part_idx = np.empty((n_slices, nq, k), np.int64)
    part_d = np.empty((n_slices, nq, k), np.int32)
    calls = []
    for g in range(n_groups):
        q_lo, q_hi = nq * g // n_groups, nq * (g + 1) // n_groups
        for s in range(n_slices):
            r_lo, r_hi = n * s // n_slices, n * (s + 1) // n_slices
            calls.append((jit.hamming_topk_task, db, queries, k, bits, q_lo, q_hi, r_lo, r_hi,
                          part_idx[s], part_d[s]))
    _run_all(calls)
    if n_slices == 1:
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

_CHUNK_BYTES = 4 << 20  # similarity chunk per BLAS call: big enough for BLAS, cache-friendly


def _select_desc_numpy(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.empty(k, np.int64)
    kth = np.partition(sims, sims.size - k)[sims.size - k]
    above = np.flatnonzero(sims > kth)
    on = np.flatnonzero(sims == kth)[: k - above.size]
    cand = np.sort(np.concatenate([above, on]))
    order = np.argsort(-sims[cand], kind="stable")
    idx[:] = cand[order]
    return idx, sims[idx]


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
        cap = 2 * kk + 64
        buf_idx = np.empty((nq, cap), np.int64)
        buf_s = np.empty((nq, cap), np.float32)
        count = np.zeros(nq, np.int64)
        full = np.zeros(nq, np.bool_)
        chunk = max(1024, _CHUNK_BYTES // (4 * nq))
        scratch = np.empty((nq, min(chunk, n)), np.float32)
        parts = min(nq, _threads()) if nq * n >= _SPLIT_MIN_CODES else 1
        bounds = [nq * p // parts for p in range(parts + 1)]
        groups = list(zip(bounds[:-1], bounds[1:], strict=True))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            sims = scratch if hi - lo == scratch.shape[1] else np.empty((nq, hi - lo), np.float32)
            np.matmul(queries, db[lo:hi].T, out=sims)
            _run_all([(jit.select_desc, sims[a:b], lo, kk, buf_idx[a:b], buf_s[a:b], count[a:b],
                       full[a:b]) for a, b in groups])
        jit.finish_desc(buf_idx, buf_s, count, kk, out_idx, out_s)
    return (out_idx[0], out_s[0]) if single else (out_idx, out_s)
