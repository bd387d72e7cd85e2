"""The few packed-code calls the search index makes, named for it; the work is in :mod:`.codes`.

Signs are {-1, +1} (n, L) matrices; ``pack`` returns ``codes``' packed layout (LSB first).
"""

from __future__ import annotations

import numpy as np

from .codes import cosine_topk, hamming_topk, normalise
from .codes import pack_signs as pack

__all__ = ["cosine_topk", "hamming_topk", "normalise", "pack", "unpack"]


def unpack(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: (n, n_bits) in {-1, +1} (int8)."""
    packed = np.ascontiguousarray(packed)
    as_bytes = packed.view(np.uint8).reshape(packed.shape[0], -1)
    bits = np.unpackbits(as_bytes, axis=1, count=n_bits, bitorder="little")
    return np.where(bits > 0, 1, -1).astype(np.int8)
