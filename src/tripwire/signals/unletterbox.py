"""Find and trim solid-colour padding (letterbox, pillarbox, frames) so the content can be hashed alone.

Padding is the cheapest way to change an image's PDQ hash completely: 20% black bars move the whole 64x64
luminance grid PDQ is computed from, and the hash ends up ~100 bits away. Trimming the bands first and
hashing what is left restores a near-copy of the original hash. The matcher hashes *both* the image and,
when there is padding, the trimmed image, so trimming a band that was really part of the picture (a white
studio background, a clear sky) costs one extra hash, never a missed match.

A band is a run of lines (rows or columns) from an edge inward in which almost every pixel lies within a
tolerance of one colour, the colour of the outermost line. "Almost every" (``coverage``) and a tolerance
instead of equality make it robust to JPEG noise and chroma bleeding; a short run of noisy lines inside a
band (ringing around a logo, a compression block) is skipped over. Sides are trimmed independently, so a
letterbox (top/bottom), a pillarbox (left/right) or a frame on all four sides, in any colour, are found;
each side loses only its outermost band, so a border that is part of the picture survives a pad of another
colour around it.
"""

from __future__ import annotations

import numpy as np

#: a pixel is the band's colour if no channel differs from it by more than this (0-255 scale)
DEFAULT_TOLERANCE = 24
#: a band must be at least this fraction of the image's side (and at least 2 pixels) to count
DEFAULT_MIN_BAND = 0.02
#: fraction of a line's pixels that must be the band's colour
DEFAULT_COVERAGE = 0.98
#: what is left must keep at least this fraction of each side; otherwise the image is "mostly uniform",
#: not padded, and nothing is trimmed
DEFAULT_MIN_KEEP = 0.25
#: the pixels of a band line must average within this of the band's colour (rules out smooth gradients)
MAX_DRIFT = 3.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: noisy lines tolerated inside a band when band lines follow within this many lines (a JPEG block)
LOOKAHEAD = 8


def _as_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (h, w), (h, w, 3) or (h, w, 4) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected 8-bit pixels (uint8), got {arr.dtype}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return arr


def _close(lines: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """(L, M) bool: pixels whose every channel is within ``tolerance`` of ``colour`` (uint8 compares)."""
    out: np.ndarray | None = None
    for c in range(lines.shape[2]):  # per channel: much faster than .all(axis=2) over a length-3 axis
        lo = max(0, int(colour[c]) - tolerance)
        hi = min(255, int(colour[c]) + tolerance)
        ch = lines[:, :, c]
        ok = (ch >= lo) & (ch <= hi)
        out = ok if out is None else (out & ok)
    assert out is not None
    return out


def _band_length(lines: np.ndarray, limit: int, tolerance: int, coverage: float) -> int:
    """Number of lines, from index 0 inward, that belong to a band of the first line's colour.

    ``lines`` is (L, M, C): L lines from the edge inward, M pixels each. Returns ``limit`` when the band
    reaches it (the caller treats that as "uniform image"). Lines are examined in growing chunks, so an
    image without a band costs one line per side.
    """
    total = min(limit + LOOKAHEAD, lines.shape[0])
    if total == 0 or lines.shape[1] == 0:
        return 0
    colour = np.median(lines[0], axis=0).astype(np.uint8)
    frac = np.empty(total)
    state = {"done": 0, "chunk": 1}

    def examine(upto: int) -> None:
        upto = min(upto, total)
        while state["done"] < upto:
            start = state["done"]
            stop = min(total, start + max(state["chunk"], upto - start))
            frac[start:stop] = _close(lines[start:stop], colour, tolerance).mean(axis=1)
            state["done"] = stop
            state["chunk"] = min(state["chunk"] * 2, 64)

    length = 0
    i = 0
    while i < total and length < limit:
        examine(i + 1)
        if frac[i] >= coverage:
            length = i + 1
            i += 1
            continue
        if i == 0:
            return 0
        examine(i + LOOKAHEAD)  # noisy lines inside a band: is there more band just after?
        ahead = np.flatnonzero(frac[i : i + LOOKAHEAD] >= coverage)
        if ahead.size == 0:
            break
        i += int(ahead[0])
    # A band is flat: its pixels average to the edge's colour. Noise averages out, a gradient does not (each
    # column of a horizontal gradient is "one colour", close to its neighbours, but drifts away from the
    # edge's colour). Measured on luminance, and not on the 16 lines next to the picture: JPEG's chroma
    # subsampling (16x16 blocks) and ringing shift those.
    if length > 2 * LOOKAHEAD:
        inner = lines[: length - 2 * LOOKAHEAD]
        close = _close(inner, colour, tolerance)
        diff = inner.astype(np.float32) - colour
        luma = diff @ _LUMA if diff.shape[2] == 3 else diff.mean(axis=2)
        shift = np.abs((luma * close).sum(axis=1) / np.maximum(close.sum(axis=1), 1))
        drifting = np.flatnonzero(shift > MAX_DRIFT)
        if drifting.size:
            return int(drifting[0])
    # The line where band meets picture is a blend after resampling or JPEG (ringing, chroma bleed). A
    # leftover band line is a strong edge that moves the hash more than losing one picture line, so the
    # transition line goes with the band when at least half of it is still close to the band's colour and
    # clearly more of it than of the line after (else it is picture that happens to share the colour).
    if 0 < length < min(limit, lines.shape[0] - 1):
        mixed = _close(lines[length : length + 2], colour, 2 * tolerance).mean(axis=1)
        if mixed[0] >= 0.5 and mixed[0] >= mixed[1] + 0.25:
            length += 1
    return min(length, limit)


def find_uniform_borders(
    rgb: np.ndarray,
    tolerance: int = DEFAULT_TOLERANCE,
    min_band: float = DEFAULT_MIN_BAND,
    coverage: float = DEFAULT_COVERAGE,
    min_keep: float = DEFAULT_MIN_KEEP,
) -> tuple[int, int, int, int] | None:
    """The content box ``(top, bottom, left, right)`` (slice bounds: ``rgb[top:bottom, left:right]``)
    inside solid-colour bands, or None when there is no band (or the image is nearly all one colour)."""
    img = _as_rgb(rgb)
    h, w = img.shape[:2]
    if h < 8 or w < 8:
        return None
    keep_h = max(1, int(np.ceil(min_keep * h)))
    keep_w = max(1, int(np.ceil(min_keep * w)))
    need_h = max(2, int(np.ceil(min_band * h)))
    need_w = max(2, int(np.ceil(min_band * w)))
    # One pass, each side at its outermost band only. Peeling further layers (or looking again once the
    # pillars are gone) would also strip borders that belong to the picture itself - a scanned frame, a
    # video frame that was already letterboxed - and the bank's hash was taken with those borders on.
    room_h, room_w = h - keep_h, w - keep_w  # lines that may go without leaving a sliver
    cols = img.transpose(1, 0, 2)
    views = (img, img[::-1], cols, cols[::-1])
    rooms = (room_h, room_h, room_w, room_w)
    needs = (need_h, need_h, need_w, need_w)
    cut = [0, 0, 0, 0]
    for side in range(4):
        if rooms[side] <= 0:
            continue
        n = _band_length(views[side], rooms[side], tolerance, coverage)
        if n >= rooms[side]:
            return None  # a "band" running into the minimum kept size: a nearly uniform image
        cut[side] = n if n >= needs[side] else 0
    if cut[0] + cut[1] > room_h or cut[2] + cut[3] > room_w:
        return None
    top, bottom, left, right = cut[0], h - cut[1], cut[2], w - cut[3]
    if (top, bottom, left, right) == (0, h, 0, w):
        return None
    return top, bottom, left, right


def trim_uniform_borders(
    rgb: np.ndarray,
    tolerance: int = DEFAULT_TOLERANCE,
    min_band: float = DEFAULT_MIN_BAND,
    coverage: float = DEFAULT_COVERAGE,
    min_keep: float = DEFAULT_MIN_KEEP,
) -> np.ndarray | None:
    """The image without its solid-colour bands (a view into ``rgb``), or None when it has none.

    ``tolerance``: per-channel difference still counted as the band's colour (JPEG noise);
    ``min_band``: smallest band worth trimming, as a fraction of the side (at least 2 pixels);
    ``coverage``: fraction of a line that must be the band's colour; ``min_keep``: the result keeps at
    least this fraction of each side, otherwise None (the image is mostly one colour, not padded).
    """
    box = find_uniform_borders(rgb, tolerance, min_band, coverage, min_keep)
    if box is None:
        return None
    top, bottom, left, right = box
    return np.asarray(rgb)[top:bottom, left:right]
