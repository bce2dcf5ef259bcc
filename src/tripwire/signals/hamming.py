"""Hamming distance between hex-coded bit strings: the one implementation every distance type uses.

Perceptual hashes (PDQ and any other bit-string signal type) are written as hex and compared by the
number of differing bits. :func:`hamming_hex` compares two values; the vectorised helpers turn many
values into byte codes or 64-bit words and count bits with numpy (``np.bitwise_count`` where available),
for the indexes and for the trade graph's near-duplicate check.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming_hex(a: str, b: str) -> int:
    """Bits that differ between two equal-length hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hex_to_codes(hexes: Iterable[str], nbytes: int = 32) -> np.ndarray:
    """Hex strings of ``2 * nbytes`` characters (either case) -> an (n, nbytes) uint8 array.

    Raises ``ValueError`` naming the first bad row, so a caller can report it by position.
    """
    items = [h.strip() for h in hexes]
    if not items:
        return np.empty((0, nbytes), dtype=np.uint8)
    try:
        if any(len(h) != 2 * nbytes for h in items):
            raise ValueError
        raw = bytes.fromhex("".join(items))
    except ValueError:
        for row, h in enumerate(items):
            try:
                if len(h) != 2 * nbytes:
                    raise ValueError(f"{len(h)} characters, expected {2 * nbytes}")
                bytes.fromhex(h)
            except ValueError as exc:
                raise ValueError(f"row {row}: not a {2 * nbytes}-hex-digit hash ({exc}): {h[:80]!r}") from None
        raise
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(items), nbytes).copy()


def hex_to_words(hexes: Iterable[str]) -> np.ndarray:
    """Hex strings (a multiple of 16 characters) as an (n, k) uint64 array of big-endian words."""
    items = list(hexes)
    raw = b"".join(bytes.fromhex(h) for h in items)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(items), -1)


def popcount(a: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array (numpy's bitwise_count where available)."""
    out: np.ndarray
    if hasattr(np, "bitwise_count"):
        out = np.bitwise_count(a)
    else:
        arr = np.ascontiguousarray(a)  # numpy < 2.0
        out = _POP8[arr.view(np.uint8)].reshape(*arr.shape, arr.dtype.itemsize).sum(axis=-1)
    return out


def code_distances(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance of every row of ``codes`` (n, k) to ``query`` (k,): an (n,) int32 array."""
    out: np.ndarray = popcount(codes ^ query).sum(axis=-1, dtype=np.int32)
    return out
