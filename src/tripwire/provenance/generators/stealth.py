"""Read the "stealth" copies of generation parameters hidden in pixel least-significant bits.

The stealth-pnginfo extension for AUTOMATIC1111/Forge (and NovelAI, for its own metadata) writes the parameters
a second time into the pixels, so they survive re-saving that strips text chunks. Layout (column-major: for
each x, every y):

- alpha variants: one bit per pixel, the alpha channel's LSB; signature ``stealth_pnginfo`` (UTF-8 text) or
  ``stealth_pngcomp`` (gzip);
- RGB variants: three bits per pixel, the R, G, B LSBs in that order; ``stealth_rgbinfo`` / ``stealth_rgbcomp``.

After the 15-byte signature, a 32-bit big-endian length in *bits*, then the payload. This module only reads;
it never writes or strips such data.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

SIGNATURES = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}
_SIG_BITS = 15 * 8
_HEAD_BITS = _SIG_BITS + 32
#: payloads above this many bytes are not read (a real parameter block is a few KiB)
MAX_PAYLOAD = 4 * 1024 * 1024


def _bits(arr: np.ndarray, channels: slice | int, count: int) -> np.ndarray:
    """The first ``count`` LSBs in column-major order, decoding only the columns needed."""
    height = arr.shape[0]
    per_col = height * (3 if isinstance(channels, slice) else 1)
    cols = min(arr.shape[1], -(-count // per_col))
    block = arr[:, :cols, channels]
    if isinstance(channels, slice):
        flat = np.ascontiguousarray(block.transpose(1, 0, 2)).reshape(-1)
    else:
        flat = np.ascontiguousarray(block.T).reshape(-1)
    return (flat[:count] & 1).astype(np.uint8)


def _gunzip(raw: bytes) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    return d.decompress(raw, MAX_PAYLOAD)


def read_stealth(arr: Any) -> dict[str, Any] | None:
    """Find and decode a stealth payload in an ``H x W x C`` uint8 array.

    Returns ``{"signature", "mode", "compressed", "payload": bytes}`` or None when there is none; a damaged
    payload (bad length, bad gzip) is returned with ``error`` instead of ``payload``.
    """
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] < 3:
        return None
    candidates: list[tuple[slice | int, int]] = []
    if arr.shape[2] >= 4:
        candidates.append((3, 1))
    candidates.append((slice(0, 3), 3))
    for channels, per_pixel in candidates:
        capacity = arr.shape[0] * arr.shape[1] * per_pixel
        if capacity < _HEAD_BITS:
            continue
        head = np.packbits(_bits(arr, channels, _HEAD_BITS)).tobytes()
        sig = head[:15]
        if sig not in SIGNATURES:
            continue
        mode, compressed = SIGNATURES[sig]
        if (mode == "alpha") != (per_pixel == 1):
            continue
        result: dict[str, Any] = {"signature": sig.decode(), "mode": mode, "compressed": compressed}
        nbits = int.from_bytes(head[15:19], "big")
        if nbits <= 0 or nbits > capacity - _HEAD_BITS or nbits > MAX_PAYLOAD * 8:
            result["error"] = f"declared payload length {nbits} bits does not fit the image"
            return result
        bits = _bits(arr, channels, _HEAD_BITS + nbits)[_HEAD_BITS:]
        raw = np.packbits(bits).tobytes()
        try:
            result["payload"] = _gunzip(raw) if compressed else raw
        except zlib.error as exc:
            result["error"] = f"payload does not decompress ({exc})"
        return result
    return None
