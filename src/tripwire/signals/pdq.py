"""PDQ (Meta's perceptual hash) of every image's stored pixels, and of its 8 rotations/flips, from one buffer.

**Which pixels.** ``pdq`` is the hash of the pixel grid as stored in the file, *without* the EXIF orientation
applied: what python-threatexchange's ``PdqSignal.hash_from_file``, HMA and Meta's reference hasher compute,
so the hash tripwire reports, exports and shares is the one partners compute for the same file (for EXIF-
rotated photos the displayed image's hash is 98-154 bits away). The displayed image's hash is kept among the
variants (:mod:`tripwire.signals.pdq_variants`, label ``original``), and matching queries all 8 orientations.

**Decode size.** The stored grid is decoded at full resolution, so ``pdq`` equals threatexchange's hash bit
for bit (tests/test_pdq_interop.py), and all the hashing work after the decode is a few multiply-adds per
pixel (below) instead of pdqhash's float copies and four filter passes, which is where threatexchange
spends most of its time on large photos. ``[scan] pdq_decode = "draft"`` (``tripwire scan --pdq-decode
draft``, :class:`~tripwire.config.ScanSettings`; ``PdqExtractor(decode_size=DRAFT_DECODE_SIZE)``) instead drafts
JPEGs (DCT scaling) to at least 512 px a side: 2-4x faster on large JPEGs, within 10 bits of the exact
hash (bench/hashing.py and tests/test_pdq_draft.py check the distance), but no longer the hash partners
compute, so such a hash is marked ``pdq_decode: "draft"`` in the record; images the draft left at full
size (PNGs, JPEGs under 1024 px a side) get the exact hash and no mark. Images above the memory budget
(``limits.max_decode_pixels``) are decoded reduced either way (:mod:`tripwire.media.image`).

**Eight orientations from one luminance buffer.** PDQ is linear up to the DCT: luminance, two box-filter
passes per axis, decimation to 64x64. Per axis that is one 64 x n matrix ``F`` (:func:`_axis_operators`); the
image turned or mirrored uses ``F`` mirrored along the axes that are reversed, and a quarter turn only swaps
the axes. So ``[F_h; F_h mirrored] @ luminance @ [F_w; F_w mirrored]^T`` (128x128) holds the 64x64 buffers of
the image, its two mirrors and its half turn; the other four orientations are their transposes. Each buffer
is exactly what pdqhash computes for the really transformed image (box filters, edge normalisation and
sample positions included), so all 8 hashes are the exact ones, equal to pdqhash's bit for bit on the
fixtures (tests), for less than pdqhash's one hash costs (one core, decoded pixels: 640x480 3.2 ms for all 8
vs 7.8 ms for ``pdqhash.compute``; 2048x1536 10 vs 118 ms; 4000x3000 32 vs 703 ms). pdqhash's own ``compute_dihedral`` derives the 8
from one DCT instead, and 6 of them come out up to ~40 bits off (its box filter is one-sided).
Hashes are 64 lowercase hex characters, as ThreatExchange and HMA write them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..media.image import load_stored
from ..media.item import Item
from ..media.sniff import is_image
from ..records import PDQ_DRAFT

#: the default decode: full resolution (the hash threatexchange and HMA compute)
PDQ_DECODE_SIZE: int | None = None
#: the fast option: both sides of a JPEG are drafted to at least this many pixels (or full size when smaller)
DRAFT_DECODE_SIZE = 512
#: the decode size of each ``[scan] pdq_decode`` choice (:data:`tripwire.config.PDQ_DECODES`)
DECODE_SIZES: dict[str, int | None] = {"exact": PDQ_DECODE_SIZE, "draft": DRAFT_DECODE_SIZE}
#: pdqhash hashes nothing smaller (zero hash, quality 0)
_MIN_HASHABLE_DIM = 5
#: pdqhash's luminance weights, in float32 as it computes them
_LUMA = (np.float32(0.299), np.float32(0.587), np.float32(0.114))
#: pdqhash's DCT matrix (rows 1..16 of the 64-point DCT-II)
_DCT = (np.sqrt(2.0 / 64) * np.cos((np.pi / 128) * np.outer(np.arange(1, 17), 2 * np.arange(64) + 1))).astype(np.float32)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 bits (most significant first) as ThreatExchange's 64-char hex string."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def pdq_of_array(rgb: np.ndarray) -> tuple[str, int]:
    """pdqhash's hash and quality of an (h, w, 3) uint8 array (the reference the tests compare with)."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(bits), int(quality)


def pdq_dihedral_of_array(rgb: np.ndarray) -> tuple[list[str], int]:
    """pdqhash's single-DCT 8 rotation/flip variants (its order: original, rot90, rot180, rot270, flipX, flipY,
    flipPlus1, flipMinus1) and the quality. Six of them are approximations, see the module docstring."""
    import pdqhash

    variants, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [bits_to_hex(v) for v in variants], int(quality)


def _box_transposed(rows: np.ndarray, window: int) -> np.ndarray:
    """``rows @ B`` for pdqhash's box filter ``B`` (``box1DFloat``) of ``window`` along an axis of length n.

    pdqhash's output ``o`` is the mean of ``in[o - left .. o + right]`` clipped to the axis (left =
    ``window - half``, right = ``half - 1``, ``half = (window + 2) // 2``: one-sided for even windows).
    """
    n = rows.shape[1]
    half = (window + 2) // 2
    left, right = window - half, half - 1
    o = np.arange(n)
    count = np.minimum(n - 1, o + right) - np.maximum(0, o - left) + 1
    scaled = rows / count
    cum = np.zeros((rows.shape[0], n + 1))
    np.cumsum(scaled, axis=1, out=cum[:, 1:])
    # column x of rows @ B sums scaled[o] over the outputs o whose window holds x: o in [x - right, x + left]
    return cum[:, np.minimum(n, o + left + 1)] - cum[:, np.maximum(0, o - right)]


@lru_cache(maxsize=16)
def _axis_operators(n: int) -> np.ndarray:
    """pdqhash's filtering and decimation along one axis of length ``n`` as a (64, n) matrix ``F``, stacked
    over ``F`` mirrored (the same axis reversed): (128, n) float32, 512 bytes per pixel of side. Cached for the
    few sizes a batch repeats (16 of them: ~2 MB each at 4000 px)."""
    window = (n + 2 * 64 - 1) // (2 * 64)  # computeJaroszFilterWindowSize
    samples = ((np.arange(64) + 0.5) * n / 64).astype(np.int64)  # decimateFloat: target centres
    select = np.zeros((64, n))
    select[np.arange(64), samples] = 1.0
    op = _box_transposed(_box_transposed(select, window), window)  # S B B: two passes (PDQ_NUM_JAROSZ_XY_PASSES)
    both = np.concatenate([op, op[:, ::-1]]).astype(np.float32)
    both.flags.writeable = False
    return both


#: rows of luminance computed at a time (bounded memory: never a full-size float copy of a large image)
_CHUNK_PIXELS = 1 << 18


def _rows_filtered(rgb: np.ndarray) -> np.ndarray:
    """``[F_h; F_h mirrored] @ luminance(rgb)``: (128, w), computed strip by strip.

    Each strip's luminance (pdqhash's float formula) is multiplied only into the rows of the operator that
    touch it (a sample's filter spans ~h/64 rows), so the work is a few multiply-adds per pixel.
    """
    h, w = rgb.shape[:2]
    op = _axis_operators(h)
    out = np.zeros((128, w), dtype=np.float32)
    step = max(1, _CHUNK_PIXELS // w)
    for top in range(0, h, step):
        strip = rgb[top : top + step]
        luma = strip[:, :, 0] * _LUMA[0]
        luma += strip[:, :, 1] * _LUMA[1]
        luma += strip[:, :, 2] * _LUMA[2]
        cols = op[:, top : top + step]
        touched = np.flatnonzero(cols.any(axis=1))
        out[touched] += cols[touched] @ luma
    return out


def dihedral_buffers(rgb: np.ndarray) -> np.ndarray:
    """The 64x64 PDQ buffers of the image with its rows reversed or not and its columns reversed or not:
    ``out[flip_rows, flip_cols]`` (shape (2, 2, 64, 64)); transposed, they are the 4 quarter-turned images'.
    None of the 8 transformed images is ever built."""
    both: np.ndarray = _rows_filtered(rgb) @ _axis_operators(rgb.shape[1]).T  # (128, 128)
    return both.reshape(2, 64, 2, 64).transpose(0, 2, 1, 3)


def quality_of_buffer(buf: np.ndarray) -> int:
    """pdqhash's quality metric (``pdqImageDomainQualityMetric``) of a 64x64 buffer."""
    down = np.trunc((buf[:-1, :] - buf[1:, :]) * np.float32(100) / np.float32(255))
    across = np.trunc((buf[:, :-1] - buf[:, 1:]) * np.float32(100) / np.float32(255))
    gradient = int(np.abs(down).sum(dtype=np.int64)) + int(np.abs(across).sum(dtype=np.int64))
    return min(100, gradient // 90)


def dct_of_buffer(buf: np.ndarray) -> np.ndarray:
    """The 16x16 DCT block PDQ's bits come from."""
    block: np.ndarray = _DCT @ buf @ _DCT.T
    return block


def dct_median(block: np.ndarray) -> float:
    """The median PDQ's bits are taken against (pdqhash's torben median: the 128th smallest coefficient)."""
    return float(np.partition(block.ravel(), 127)[127])


def hex_of_dct(block: np.ndarray, median: float | None = None) -> str:
    """The 64-hex PDQ of a 16x16 DCT block: bit set where above the median (:func:`dct_median`, when not given;
    pdqhash's bit order: coefficient (i, j) is bit ``i * 16 + j`` counted from the least significant end)."""
    flat = block.ravel()
    return np.packbits((flat > (dct_median(block) if median is None else median))[::-1]).tobytes().hex()


#: coefficients this close to the median (relative to the block's largest; 3 of the 163 fixture images) may order differently in pdqhash's
#: float arithmetic than in the matrix form: a synthetic picture (a checkerboard, HMA's own test images) has
#: exact ties there, which the two computations break differently
TIE_TOLERANCE = 1e-5


def near_median_tie(block: np.ndarray, median: float) -> bool:
    """Whether a bit of the hash depends on rounding: another coefficient within :data:`TIE_TOLERANCE` of the
    median. Then ``pdq`` is recomputed by pdqhash itself, so that it stays the hash partners compute."""
    flat = block.ravel()
    tol = TIE_TOLERANCE * float(np.abs(flat).max()) + 1e-12
    return int(np.count_nonzero(np.abs(flat - median) <= tol)) > 1


#: the hash of an image too small to hash (pdqhash returns all zeros, quality 0)
ZERO_HASH = "0" * 64

#: (transpose, flip rows, flip cols) -> DCT block of that view of the stored grid
Dihedral = dict[tuple[bool, bool, bool], np.ndarray]


def dihedral_dcts(rgb: np.ndarray) -> tuple[Dihedral, int]:
    """The 16x16 DCT block of each of the 8 rotations/flips of ``rgb``, keyed by (transpose, flip rows, flip
    cols) applied to ``rgb`` (flips first), and the quality of ``rgb``; empty when it is too small to hash."""
    if min(rgb.shape[:2]) < _MIN_HASHABLE_DIM:
        return {}, 0
    buffers = dihedral_buffers(rgb)
    out: Dihedral = {}
    for fr in (False, True):
        for fc in (False, True):
            block = dct_of_buffer(np.ascontiguousarray(buffers[int(fr), int(fc)]))
            out[(False, fr, fc)] = block
            out[(True, fr, fc)] = block.T  # the DCT of a transposed buffer is the transposed DCT
    return out, quality_of_buffer(buffers[0, 0])


def stored_array(item: Item, decode_size: int | None = PDQ_DECODE_SIZE) -> np.ndarray:
    """The item's stored pixels (:func:`load_stored`) as an (h, w, 3) uint8 array, converted once per item and
    decode size (``np.asarray`` of a Pillow image copies every pixel through its encoder)."""
    if decode_size not in item._stored_arrays:
        item._stored_arrays[decode_size] = np.asarray(load_stored(item, min_size=decode_size))
    arr: np.ndarray = item._stored_arrays[decode_size]
    return arr


def dihedral_item(item: Item, decode_size: int | None = PDQ_DECODE_SIZE) -> tuple[Dihedral, int]:
    """:func:`dihedral_dcts` of the item's stored pixels (decoded as :func:`load_stored` decodes), once per item
    and decode size: ``pdq`` and the matcher's variants share it."""
    if decode_size not in item._pdq_passes:
        item._pdq_passes[decode_size] = dihedral_dcts(stored_array(item, decode_size))
    return item._pdq_passes[decode_size]


def drafted(item: Item, decode_size: int | None) -> bool:
    """Whether the item's stored grid at ``decode_size`` has fewer pixels than the file stores (a JPEG the
    draft scaled down), i.e. whether its hash may differ from the exact one. Only asked in draft mode: the
    header is parsed again, the decode is the cached one."""
    h, w = stored_array(item, decode_size).shape[:2]
    return (w, h) != item.open_image().size


class PdqExtractor:
    name = "pdq"
    version = "2"  # 2: the stored pixels (no EXIF orientation), as threatexchange and HMA hash them
    produces = ("pdq", "pdq_quality", "pdq_decode")

    def __init__(self, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size

    def extract(self, item: Item) -> dict[str, object]:
        if not is_image(item.media_type):
            return {}
        dcts, quality = dihedral_item(item, self.decode_size)
        block = dcts.get((False, False, False))
        facts: dict[str, object] = {"pdq": ZERO_HASH, "pdq_quality": quality}
        if block is not None:
            median = dct_median(block)
            if near_median_tie(block, median):  # bits that float rounding decides: take pdqhash's own (the partners')
                facts["pdq"] = pdq_of_array(stored_array(item, self.decode_size))[0]
            else:
                facts["pdq"] = hex_of_dct(block, median)
        if self.decode_size is not None and drafted(item, self.decode_size):
            facts["pdq_decode"] = PDQ_DRAFT  # not the hash partners compute for this file: say so
        return facts
