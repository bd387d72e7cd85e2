"""Packed binary codes: the layout, packing sign columns, bit prefixes, L2 normalisation.

``pack_signs`` turns sign columns into bits, LSB first: column ``j`` is bit ``j % 64`` of
word ``j // 64``. Code lengths up to 32 bits use one word of the smallest unsigned dtype that
holds them (``uint8`` up to 8, ``uint16`` up to 16, ``uint32`` up to 32); longer codes use
``ceil(bits / 64)`` ``uint64`` words. Unused high bits are zero, so they never add distance.
``prefix_codes`` takes a bit prefix of an already packed array. Re-exported by :mod:`.codes`.
"""

from __future__ import annotations

import numpy as np

_SMALL_DTYPES = ((8, np.uint8), (16, np.uint16), (32, np.uint32))


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
