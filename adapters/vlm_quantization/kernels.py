"""Thin bridge to the packed-code kernels in :mod:`.codes`, with a small numpy fallback.

``codes`` (packed Hamming / cosine top-k) is owned elsewhere; this module pins down the few
calls the index makes, and keeps working when ``codes`` is absent or lacks a function.
Signs are {-1, +1} (n, L) matrices; ``pack`` returns the kernels' packed layout.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - depends on the sibling module being present
    from . import codes as _codes
except ImportError:  # pragma: no cover
    _codes = None


def _has(name: str) -> bool:
    return _codes is not None and hasattr(_codes, name)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def pack(signs: np.ndarray) -> np.ndarray:
    signs = np.asarray(signs)
    if _has("pack_signs"):
        return _codes.pack_signs(signs)
    return np.packbits(signs > 0, axis=1)


def unpack(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: (n, n_bits) in {-1, +1} (int8).

    The bit order within the packed bytes is read off a probe code rather than assumed, so
    this stays right whatever layout ``codes.pack_signs`` picks.
    """
    packed = np.ascontiguousarray(packed)
    as_bytes = packed.view(np.uint8).reshape(packed.shape[0], -1)
    probe = -np.ones((1, n_bits), dtype=np.int8)
    probe[0, 0] = 1
    ref = np.ascontiguousarray(pack(probe)).view(np.uint8).reshape(1, -1)
    order = "big" if np.unpackbits(ref, axis=1, bitorder="big")[0, 0] == 1 else "little"
    bits = np.unpackbits(as_bytes, axis=1, bitorder=order)
    return np.where(bits[:, :n_bits] > 0, 1, -1).astype(np.int8)


def hamming_topk(db_packed: np.ndarray, q_packed: np.ndarray, k: int):
    if _has("hamming_topk"):
        return _codes.hamming_topk(db_packed, q_packed, k)
    x = np.bitwise_xor(db_packed, q_packed[None, :])
    dist = np.unpackbits(x.view(np.uint8), axis=1).sum(1)
    idx = np.argsort(dist, kind="stable")[:k]
    return idx, dist[idx]


def cosine_topk(db_feats: np.ndarray, q_feats: np.ndarray, k: int):
    if _has("cosine_topk"):
        return _codes.cosine_topk(db_feats, q_feats, k)
    sim = db_feats @ q_feats
    idx = np.argsort(-sim, kind="stable")[:k]
    return idx, sim[idx]
