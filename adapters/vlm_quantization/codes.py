"""Exact search over binary codes (Hamming) and float features (cosine) for the reference adapter.

Why this module exists: the adapter evaluates hash codes by exact retrieval over up to
millions of database items, many times per study, so the kernels must be exact,
deterministic and faster than FAISS's flat indexes without a compiled extension of our own.

Packed codes. ``pack_signs`` turns sign columns into bits, LSB first: column ``j`` is bit
``j % 64`` of word ``j // 64``. Code lengths up to 32 bits use one word of the smallest
unsigned dtype that holds them (``uint8`` up to 8, ``uint16`` up to 16, ``uint32`` up to
32); longer codes use ``ceil(bits / 64)`` ``uint64`` words. Unused high bits are zero, so
they never add distance. ``prefix_codes`` takes a bit prefix of an already packed array.

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
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

_BACKENDS = ("auto", "numba", "numpy")
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


def _forget_pool() -> None:  # a forked child inherits the pool object but not its threads
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
_TASK_BYTES = 2 << 20  # database bytes per task: a few tasks per thread, ~10 us dispatch each
_TASK_MIN_ROWS = 4096


def _task_bounds(n: int, row_bytes: int) -> list[tuple[int, int]]:
    rows = max(_TASK_MIN_ROWS, _TASK_BYTES // row_bytes)
    if _threads() == 1:
        rows = n
    return [(lo, min(n, lo + rows)) for lo in range(0, max(n, 1), max(rows, 1))]


def _run_tasks(task, n_tasks: int) -> None:
    """Run ``task(i)`` for ``i < n_tasks``, GIL-free kernels, on this thread and the pool.

    Tasks are taken from a shared counter and this thread waits only for tasks that were
    taken: on a machine shared with other jobs a pool thread may not be scheduled for
    milliseconds, and then this thread simply does all the work. That is why these are
    plain threads and not numba ``parallel=True``: numba's OpenMP pool spins at barriers
    and collapses (10-50x slower) when its cores are shared with another process or with
    torch's or faiss's own OpenMP pools; its workqueue pool may not be entered from two
    threads at once.
    """
    global _pool
    helpers = min(_threads(), n_tasks) - 1
    if helpers <= 0:
        for i in range(n_tasks):
            task(i)
        return
    lock = threading.Lock()
    done = threading.Event()
    state = {"next": 0, "finished": 0}
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= n_tasks or errors:
                    return
                state["next"] = i + 1
            try:
                task(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
                errors.append(exc)
            with lock:
                state["finished"] += 1
                if state["finished"] == state["next"] and (state["next"] == n_tasks or errors):
                    done.set()

    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads(), thread_name_prefix="labdeck-codes")
    for _ in range(helpers):
        _pool.submit(worker)
    worker()
    done.wait()
    if errors:
        raise errors[0]


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
