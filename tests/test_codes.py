"""Exactness of the Hamming and cosine top-k kernels against brute-force references.

Every search test runs on each backend present (numba kernels and the numpy fallback), on
codes with many ties, because tie order is where fast selection goes wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from adapters.vlm_quantization import codes

BACKENDS = [
    "numpy",
    pytest.param(
        "numba",
        marks=pytest.mark.skipif(not codes.numba_available(), reason="numba not installed"),
    ),
]
BITS = [8, 16, 32, 64, 128, 12, 100]


def tied_signs(rng: np.random.Generator, n: int, bits: int, distinct: int = 6) -> np.ndarray:
    """±1 codes drawn from a few base patterns with rare flips: many equal distances."""
    base = rng.choice([-1.0, 1.0], size=(distinct, bits))
    signs = base[rng.integers(0, distinct, size=n)]
    flips = rng.random((n, bits)) < 0.03
    return np.where(flips, -signs, signs)


def brute_hamming(db_signs: np.ndarray, q_signs: np.ndarray) -> np.ndarray:
    return ((db_signs[None, :, :] > 0) != (q_signs[:, None, :] > 0)).sum(axis=2)


def brute_topk(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (distance, index), first k."""
    idx = np.stack([np.lexsort((np.arange(row.size), row))[:k] for row in dist])
    return idx, np.take_along_axis(dist, idx, axis=1)


# ----------------------------------------------------------------------------- packing


@pytest.mark.parametrize(
    ("bits", "dtype", "words"),
    [(8, np.uint8, 1), (12, np.uint16, 1), (16, np.uint16, 1), (32, np.uint32, 1),
     (33, np.uint64, 1), (64, np.uint64, 1), (100, np.uint64, 2), (128, np.uint64, 2)],
)
def test_pack_dtype_and_shape(bits, dtype, words):
    signs = np.random.default_rng(0).choice([-1, 1], size=(5, 128))
    packed = codes.pack_signs(signs, bits)
    assert packed.dtype == dtype and packed.shape == (5, words)
    assert packed.flags.c_contiguous
    assert codes.pack_signs(signs[0], bits).shape == (words,)


def test_pack_bit_layout_and_input_kinds():
    signs = np.zeros((1, 70), dtype=np.int8) - 1
    signs[0, [0, 3, 64, 69]] = 1
    packed = codes.pack_signs(signs)
    assert packed.tolist() == [[(1 << 0) | (1 << 3), (1 << 0) | (1 << 5)]]
    pos = signs > 0
    for same in (pos, pos.astype(np.uint8), pos.astype(np.float32) - 0.5, signs.astype(float)):
        assert np.array_equal(codes.pack_signs(same), packed)


@pytest.mark.parametrize("bits", [8, 16, 32, 64, 12, 100, 127, 128])
def test_prefix_equals_packing_sliced_signs(bits):
    signs = np.random.default_rng(bits).standard_normal((40, 128))
    expect = codes.pack_signs(signs[:, :bits])
    assert np.array_equal(codes.pack_signs(signs, bits), expect)
    got = codes.prefix_codes(codes.pack_signs(signs), bits)
    assert got.dtype == expect.dtype and np.array_equal(got, expect)
    assert np.array_equal(codes.prefix_codes(codes.pack_signs(signs[3]), bits), expect[3])


@pytest.mark.parametrize(("source", "bits"), [(32, 8), (32, 20), (16, 9), (100, 64), (100, 33)])
def test_prefix_of_shorter_sources(source, bits):
    signs = np.random.default_rng(source + bits).standard_normal((30, source))
    got = codes.prefix_codes(codes.pack_signs(signs), bits)
    assert np.array_equal(got, codes.pack_signs(signs, bits))
    assert got.dtype == codes.packed_dtype(bits)


def test_pack_rejects_bad_bits():
    with pytest.raises(ValueError):
        codes.pack_signs(np.ones((2, 16)), 17)
    with pytest.raises(ValueError):
        codes.prefix_codes(codes.pack_signs(np.ones((2, 16))), 17)


# ----------------------------------------------------------------------------- Hamming


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", BITS)
def test_hamming_distances_match_brute_force(backend, bits):
    rng = np.random.default_rng(bits)
    db_s, q_s = tied_signs(rng, 300, bits), tied_signs(rng, 4, bits)
    db, q = codes.pack_signs(db_s), codes.pack_signs(q_s)
    expect = brute_hamming(db_s, q_s)
    got = codes.hamming_distances(db, q, backend=backend)
    assert got.shape == (4, 300) and np.array_equal(got, expect)
    assert np.array_equal(codes.hamming_distances(db, q[1], backend=backend), expect[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("k", [1, 10, 257, 300, 400])
def test_hamming_topk_matches_brute_force_with_ties(backend, bits, k):
    rng = np.random.default_rng(1000 + bits)
    n = 300
    db_s, q_s = tied_signs(rng, n, bits), tied_signs(rng, 5, bits)
    db, q = codes.pack_signs(db_s), codes.pack_signs(q_s)
    exp_idx, exp_d = brute_topk(brute_hamming(db_s, q_s), k)
    idx, dist = codes.hamming_topk(db, q, k, backend=backend)
    assert idx.shape == (5, min(k, n)) and idx.dtype == np.int64 and dist.dtype == np.int32
    assert np.array_equal(dist, exp_d)
    assert np.array_equal(idx, exp_idx)
    one_idx, one_d = codes.hamming_topk(db, q[2], k, backend=backend)
    assert np.array_equal(one_idx, exp_idx[2]) and np.array_equal(one_d, exp_d[2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_hamming_tie_break_is_by_index(backend):
    signs = np.ones((8, 64))
    signs[[1, 4, 6], 0] = -1  # distance 1 to the all-ones query; the rest distance 0
    db = codes.pack_signs(signs)
    idx, dist = codes.hamming_topk(db, codes.pack_signs(np.ones(64)), 7, backend=backend)
    assert idx.tolist() == [0, 2, 3, 5, 7, 1, 4]
    assert dist.tolist() == [0, 0, 0, 0, 0, 1, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hamming_worst_case_order_every_code_improves(backend):
    # Distances fall along the index, so a running selection accepts every code and must
    # compact its candidate buffer many times.
    bits, n = 128, 2000
    signs = -np.ones((n, bits))
    for i in range(n):
        signs[i, : bits - (i * bits) // n] = 1
    db = codes.pack_signs(signs)
    q = codes.pack_signs(-np.ones(bits))
    exp_idx, exp_d = brute_topk(brute_hamming(signs, -np.ones((1, bits))), 5)
    idx, dist = codes.hamming_topk(db, q, 5, backend=backend)
    assert np.array_equal(idx, exp_idx[0]) and np.array_equal(dist, exp_d[0])


@pytest.mark.skipif(not codes.numba_available(), reason="numba not installed")
@pytest.mark.parametrize("nq", [1, 3])
def test_numba_database_split_merges_exactly(monkeypatch, nq):
    # Force many database slices (normally ~1 MB of codes each) and their merge.
    monkeypatch.setattr(codes, "_TASK_BYTES", 800)
    monkeypatch.setattr(codes, "_TASK_MIN_ROWS", 1)
    rng = np.random.default_rng(7)
    db_s, q_s = tied_signs(rng, 999, 64, distinct=3), tied_signs(rng, nq, 64)
    exp_idx, exp_d = brute_topk(brute_hamming(db_s, q_s), 50)
    idx, dist = codes.hamming_topk(codes.pack_signs(db_s), codes.pack_signs(q_s), 50)
    assert np.array_equal(idx, exp_idx) and np.array_equal(dist, exp_d)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", [8, 32, 64, 128, 192])
@pytest.mark.parametrize("nq", [1, 4, 7])
def test_hamming_topk_many_blocks_and_query_groups(backend, bits, nq):
    # n spans many 256-row blocks and a partial last one; 7 queries are one group of four
    # plus three single ones; ties everywhere (few base patterns).
    rng = np.random.default_rng(bits * 10 + nq)
    n = 3 * 256 * 4 + 77
    db_s, q_s = tied_signs(rng, n, bits, distinct=5), tied_signs(rng, nq, bits)
    exp_idx, exp_d = brute_topk(brute_hamming(db_s, q_s), 25)
    idx, dist = codes.hamming_topk(codes.pack_signs(db_s), codes.pack_signs(q_s), 25, backend=backend)
    assert np.array_equal(dist, exp_d) and np.array_equal(idx, exp_idx)


@pytest.mark.skipif(not codes.numba_available(), reason="numba not installed")
@pytest.mark.parametrize("bits", [64, 128])
def test_numba_random_codes_match_numpy(bits):
    # Random codes: the radius settles early and most blocks are rejected by their minimum.
    rng = np.random.default_rng(bits)
    db = codes.pack_signs(rng.standard_normal((20_000, bits)))
    q = codes.pack_signs(rng.standard_normal((9, bits)))
    got = codes.hamming_topk(db, q, 10, backend="numba")
    expect = codes.hamming_topk(db, q, 10, backend="numpy")
    assert np.array_equal(got[0], expect[0]) and np.array_equal(got[1], expect[1])


def test_hamming_topk_edge_cases():
    db = codes.pack_signs(np.ones((3, 16)))
    idx, dist = codes.hamming_topk(db, db[0], 0)
    assert idx.shape == (0,) and dist.shape == (0,)
    with pytest.raises(ValueError):
        codes.hamming_topk(db, codes.pack_signs(np.ones(64)), 1)
    with pytest.raises(ValueError):
        codes.hamming_topk(db, db[0], -1)
    with pytest.raises(ValueError):
        codes.hamming_topk(db, db[0], 1, backend="gpu")


# ----------------------------------------------------------------------------- cosine


def brute_cosine(db: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = q @ db.T
    idx = np.stack([np.lexsort((np.arange(row.size), -row))[:k] for row in sims])
    return idx, np.take_along_axis(sims, idx, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 10, 2500, 3000, 3100])
def test_cosine_topk_matches_brute_force_with_ties(monkeypatch, backend, k):
    monkeypatch.setattr(codes, "_CHUNK_BYTES", 4096)  # several chunks even for small n
    monkeypatch.setattr(codes, "_TASK_BYTES", 4096)  # several query groups per chunk
    rng = np.random.default_rng(k)
    # Small integer features: dot products are exact, duplicates give exact ties.
    base = rng.integers(-2, 3, size=(12, 8)).astype(np.float32)
    db = base[rng.integers(0, 12, size=3000)]
    q = rng.integers(-2, 3, size=(4, 8)).astype(np.float32)
    exp_idx, exp_s = brute_cosine(db, q, k)
    idx, sims = codes.cosine_topk(db, q, k, backend=backend)
    assert idx.shape == (4, min(k, 3000)) and sims.dtype == np.float32
    assert np.array_equal(idx, exp_idx) and np.array_equal(sims, exp_s)
    one_idx, one_s = codes.cosine_topk(db, q[3], k, backend=backend)
    assert np.array_equal(one_idx, exp_idx[3]) and np.array_equal(one_s, exp_s[3])


def test_normalise():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = codes.normalise(x)
    assert out.dtype == np.float32
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_importing_codes_does_not_import_numba_or_torch():
    import subprocess
    import sys

    check = (
        "import sys, adapters.vlm_quantization; before = set(sys.modules); "
        "import adapters.vlm_quantization.codes; new = set(sys.modules) - before; "
        "assert not {'numba', 'torch'} & new, new"
    )
    subprocess.run([sys.executable, "-c", check], check=True)
