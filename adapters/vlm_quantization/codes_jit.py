"""Numba kernels behind :mod:`adapters.vlm_quantization.codes` (imported lazily, on first use).

Kept apart from ``codes.py`` so that importing ``codes`` never imports numba (~0.3 s) and so
that the pure-numpy path works where numba is missing. Every function is compiled on its
first call for the dtypes it sees and cached on disk (``cache=True``), so a later process
loads machine code instead of compiling again.

Hamming top-k is one fused pass per (query, database slice): XOR, popcount and a running
radius. Distances are small integers, so the state is a histogram of the accepted
distances, a candidate buffer in index order and a threshold ``thr`` such that fewer than
``k`` accepted codes lie strictly below it. A code is accepted only when its distance is
``< thr``; once ``k`` accepted codes lie below ``thr`` it drops to the smallest radius
holding ``k`` of them. Ties resolve to the lower index for free: a later code at the
threshold distance is never needed. At most ``k`` buffered codes lie within ``thr`` at any
time, so compacting a full buffer of ``2k + 64`` always frees room (numba does not bounds-
check: this invariant is what keeps the writes in bounds). The database is walked in
small blocks (256 rows, L1-resident); a vectorised loop computes only the minimum distance
of a block (XOR, ``vpopcntq``, min; no distance array is written), and the branchy accept
loop, which recomputes the distances, runs only for blocks whose minimum beats the
threshold, which after the first few blocks is rare. In a batch each block serves every
query before the next loads, four queries per pass: each code word is loaded (and for
two-word codes de-interleaved) once for four XOR + popcounts. Blocks are sliced before
they are indexed, so that loop indices are provably non-negative: indexing ``db[start +
j]`` directly made numba's negative-index wraparound turn the loads into gathers.

Cosine selection folds similarity rows into the same kind of buffer: a block of 128 values
is skipped by one vectorised compare against the current k-th best.

No kernel uses ``parallel=True``: ``codes`` runs these GIL-free (``nogil``) kernels on its
own threads (see ``codes._run_tasks`` for why).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# Database rows per block: every query group passes over a block before the next loads.
# Small on purpose: measured single-threaded (100 queries x 250k codes), 256-row blocks
# beat 16 KB ones (1024-2048 rows) by 1.2-1.5x at 64 and 128 bits; 128 rows or fewer lose.
_BLOCK_ROWS = 256
_BLOCK_BYTES = 2 * 1024  # short codes: more rows, so that a block is still worth a pass


@intrinsic
def _popcount(typingctx, x):
    """LLVM ``ctpop``: one ``popcnt`` (or ``vpopcntq`` when vectorised) per word."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


_QGROUP = 4  # queries per pass over a block: each loaded code word serves four queries


@njit(cache=True, inline="always")
def _dist_at(blk, j, q):
    """Distance of ``blk[j]`` to ``q`` (scalar; the accept path)."""
    d = np.int64(0)
    for t in range(blk.shape[1]):
        d += np.int64(_popcount(blk[j, t] ^ q[t]))
    return d


@njit(cache=True, inline="always")
def _min1(blk, q):
    """Smallest distance of a block's codes to one query: a vectorised XOR, popcount, min."""
    m, words = blk.shape
    mn = np.int64(1 << 30)
    if words == 1:
        q0 = q[0]
        for j in range(m):
            mn = min(mn, np.int64(_popcount(blk[j, 0] ^ q0)))
    elif words == 2:
        q0, q1 = q[0], q[1]
        for j in range(m):
            d = np.int64(_popcount(blk[j, 0] ^ q0)) + np.int64(_popcount(blk[j, 1] ^ q1))
            mn = min(mn, d)
    else:
        for j in range(m):
            mn = min(mn, _dist_at(blk, j, q))
    return mn


@njit(cache=True, inline="always")
def _min4(blk, qs, a, mins):
    """``_min1`` for queries ``qs[a:a+4]`` into ``mins[:4]``: each code word is loaded once
    for four queries (one- and two-word codes; longer ones go query by query)."""
    m, words = blk.shape
    m0 = m1 = m2 = m3 = np.int64(1 << 30)
    if words == 1:
        q0, q1, q2, q3 = qs[a, 0], qs[a + 1, 0], qs[a + 2, 0], qs[a + 3, 0]
        for j in range(m):
            w = blk[j, 0]
            m0 = min(m0, np.int64(_popcount(w ^ q0)))
            m1 = min(m1, np.int64(_popcount(w ^ q1)))
            m2 = min(m2, np.int64(_popcount(w ^ q2)))
            m3 = min(m3, np.int64(_popcount(w ^ q3)))
    elif words == 2:
        q00, q01, q10, q11 = qs[a, 0], qs[a, 1], qs[a + 1, 0], qs[a + 1, 1]
        q20, q21, q30, q31 = qs[a + 2, 0], qs[a + 2, 1], qs[a + 3, 0], qs[a + 3, 1]
        for j in range(m):
            w0 = blk[j, 0]
            w1 = blk[j, 1]
            m0 = min(m0, np.int64(_popcount(w0 ^ q00)) + np.int64(_popcount(w1 ^ q01)))
            m1 = min(m1, np.int64(_popcount(w0 ^ q10)) + np.int64(_popcount(w1 ^ q11)))
            m2 = min(m2, np.int64(_popcount(w0 ^ q20)) + np.int64(_popcount(w1 ^ q21)))
            m3 = min(m3, np.int64(_popcount(w0 ^ q30)) + np.int64(_popcount(w1 ^ q31)))
    else:
        m0 = _min1(blk, qs[a])
        m1 = _min1(blk, qs[a + 1])
        m2 = _min1(blk, qs[a + 2])
        m3 = _min1(blk, qs[a + 3])
    mins[0] = m0
    mins[1] = m1
    mins[2] = m2
    mins[3] = m3


@njit(cache=True, nogil=True)
def _order(primary, secondary, m):
    """Permutation sorting items ``:m`` by (primary, secondary) ascending.

    A bottom-up merge sort written out: ``np.argsort`` costs seconds of compile per dtype.
    """
    a = np.arange(m)
    b = np.empty(m, np.int64)
    width = 1
    while width < m:
        lo = 0
        while lo < m:
            mid = min(lo + width, m)
            hi = min(lo + 2 * width, m)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                x, y = a[i], a[j]
                if primary[y] < primary[x] or (
                    primary[y] == primary[x] and secondary[y] < secondary[x]
                ):
                    b[o] = y
                    j += 1
                else:
                    b[o] = x
                    i += 1
                o += 1
            while i < mid:
                b[o] = a[i]
                i += 1
                o += 1
            while j < hi:
                b[o] = a[j]
                j += 1
                o += 1
            lo = hi
        a, b = b, a
        width *= 2
    return a


@njit(cache=True, nogil=True)
def _finish(buf_idx, buf_d, count, thr, k, out_idx, out_d):
    """Write the best ``k`` of a candidate buffer (index order) sorted by (distance, index)."""
    keep = 0
    for e in range(count):
        if buf_d[e] <= thr:
            buf_idx[keep] = buf_idx[e]
            buf_d[keep] = buf_d[e]
            keep += 1
    order = _order(buf_d, buf_idx, keep)
    m = min(k, keep)
    for r in range(m):
        out_idx[r] = buf_idx[order[r]]
        out_d[r] = buf_d[order[r]]
    for r in range(m, k):
        out_idx[r] = -1
        out_d[r] = -1


@njit(cache=True, nogil=True)
def _accept(blk, q, start, k, bits, qi, thr, hist, buf_idx, buf_d, count, below):
    """Fold the codes of one block that beat query ``qi``'s radius into its state."""
    cap = buf_idx.shape[1]
    th = thr[qi]
    for j in range(blk.shape[0]):
        d = _dist_at(blk, j, q)
        if d >= th:
            continue
        c = count[qi]
        if c == cap:  # compact: at most k codes lie within the threshold
            keep = 0
            for e in range(c):
                if buf_d[qi, e] <= th:
                    buf_idx[qi, keep] = buf_idx[qi, e]
                    buf_d[qi, keep] = buf_d[qi, e]
                    keep += 1
            c = keep
        buf_idx[qi, c] = start + j
        buf_d[qi, c] = d
        count[qi] = c + 1
        hist[qi, d] += 1
        below[qi] += 1
        if below[qi] >= k:
            cum = 0
            t = 0
            while t <= bits:
                cum += hist[qi, t]
                if cum >= k:
                    break
                t += 1
            th = t
            below[qi] = cum - hist[qi, t]
    thr[qi] = th


@njit(cache=True, nogil=True)
def hamming_topk_task(db, queries, k, bits, q_lo, q_hi, r_lo, r_hi, out_idx, out_d):
    """Top-``k`` of ``queries[q_lo:q_hi]`` over ``db[r_lo:r_hi]`` into ``out_*[q, :k]``.

    Rows are sorted by (distance, index) and padded with -1 where the slice holds fewer
    than ``k`` codes. One task of ``codes.hamming_topk``: all queries, one database slice.
    """
    block = max(_BLOCK_ROWS, _BLOCK_BYTES // (db.shape[1] * db.itemsize))
    cap = 2 * k + 64
    gq = max(0, q_hi - q_lo)
    hist = np.zeros((gq, bits + 2), np.int64)
    buf_idx = np.empty((gq, cap), np.int64)
    buf_d = np.empty((gq, cap), np.int32)
    count = np.zeros(gq, np.int64)
    below = np.zeros(gq, np.int64)  # accepted codes with distance < thr
    thr = np.full(gq, bits + 1, np.int64)
    mins = np.empty(_QGROUP, np.int64)
    for start in range(r_lo, r_hi, block):
        blk = db[start : min(start + block, r_hi)]
        qi = 0
        while qi + _QGROUP <= gq:
            _min4(blk, queries, q_lo + qi, mins)
            for g in range(_QGROUP):
                if mins[g] < thr[qi + g]:  # rare once the radius has settled
                    q = queries[q_lo + qi + g]
                    _accept(blk, q, start, k, bits, qi + g, thr, hist, buf_idx, buf_d, count, below)
            qi += _QGROUP
        while qi < gq:
            q = queries[q_lo + qi]
            if _min1(blk, q) < thr[qi]:
                _accept(blk, q, start, k, bits, qi, thr, hist, buf_idx, buf_d, count, below)
            qi += 1
    for qi in range(gq):
        _finish(
            buf_idx[qi], buf_d[qi], count[qi], thr[qi], k, out_idx[q_lo + qi], out_d[q_lo + qi]
        )


@njit(cache=True, nogil=True)
def merge_slices(part_idx, part_d, k, out_idx, out_d):
    """Merge per-slice results (slices in index order) into one top-``k`` per query."""
    n_slices, nq, kk = part_idx.shape
    for qi in range(nq):
        total = n_slices * kk
        key_d = np.empty(total, np.int64)
        key_i = np.empty(total, np.int64)
        m = 0
        for s in range(n_slices):
            for r in range(kk):
                if part_idx[s, qi, r] >= 0:
                    key_d[m] = part_d[s, qi, r]
                    key_i[m] = part_idx[s, qi, r]
                    m += 1
        order = _order(key_d, key_i, m)
        for r in range(min(k, m)):
            out_idx[qi, r] = key_i[order[r]]
            out_d[qi, r] = key_d[order[r]]


@njit(cache=True, nogil=True)
def hamming_distances(db, queries, lo, hi, out):
    """Distances of rows ``lo:hi`` to every query into ``out[q, lo:hi]``."""
    words = db.shape[1]
    for i in range(lo, hi):
        for qi in range(queries.shape[0]):
            d = 0
            for t in range(words):
                d += np.int64(_popcount(db[i, t] ^ queries[qi, t]))
            out[qi, i] = d


@njit(cache=True, nogil=True)
def _compact_desc(buf_idx, buf_s, count, k):
    """Sort a candidate buffer by (similarity desc, index asc) in place; return kept count."""
    neg = np.empty(count, np.float32)
    for e in range(count):
        neg[e] = -buf_s[e]
    order = _order(neg, buf_idx, count)
    m = min(k, count)
    tmp_i = np.empty(m, np.int64)
    tmp_s = np.empty(m, buf_s.dtype)
    for r in range(m):
        tmp_i[r] = buf_idx[order[r]]
        tmp_s[r] = buf_s[order[r]]
    buf_idx[:m] = tmp_i
    buf_s[:m] = tmp_s
    return m


_SELECT_BLOCK = 128


@njit(cache=True, nogil=True, inline="always")
def _any_above(row, j0, j1, th):
    """Whether any of ``row[j0:j1]`` exceeds ``th``: an OR of compares, which LLVM
    vectorises (a float max reduction it does not, even with fastmath). The slice comes
    first so that the loop index is provably non-negative: ``row[j]`` with ``j`` from
    ``j0`` keeps numba's negative-index wraparound and no longer vectorises (3x slower)."""
    blk = row[j0:j1]
    hit = False
    for j in range(blk.shape[0]):
        hit |= blk[j] > th
    return hit


@njit(cache=True, nogil=True)
def select_desc(sims, offset, k, buf_idx, buf_s, count, full):
    """Fold a chunk ``sims[q, :]`` (database rows ``offset...``) into running top-k buffers.

    ``buf_*[q, :count[q]]`` hold the candidates; once ``full[q]`` the first ``k`` are the
    best so far, sorted, and only a strictly better similarity than the k-th is accepted
    (an equal one arrives later, so its index is higher and it loses the tie).
    """
    cap = buf_idx.shape[1]
    for qi in range(sims.shape[0]):
        c = count[qi]
        is_full = full[qi]
        th = buf_s[qi, k - 1]  # meaningless until full
        row = sims[qi]
        m = row.shape[0]
        for j0 in range(0, m, _SELECT_BLOCK):
            j1 = min(m, j0 + _SELECT_BLOCK)
            if is_full and not _any_above(row, j0, j1, th):
                continue  # the common case once the buffer is full: one vectorised pass
            for j in range(j0, j1):
                v = row[j]
                if is_full and not v > th:
                    continue
                if c == cap:
                    c = _compact_desc(buf_idx[qi], buf_s[qi], c, k)
                    is_full = True
                    th = buf_s[qi, k - 1]
                    if not v > th:
                        continue
                buf_idx[qi, c] = offset + j
                buf_s[qi, c] = v
                c += 1
        count[qi] = c
        full[qi] = is_full


@njit(cache=True, nogil=True)
def finish_desc(buf_idx, buf_s, count, k, out_idx, out_s):
    for qi in range(buf_idx.shape[0]):
        m = _compact_desc(buf_idx[qi], buf_s[qi], count[qi], k)
        for r in range(m):
            out_idx[qi, r] = buf_idx[qi, r]
            out_s[qi, r] = buf_s[qi, r]
