"""The PDQ hashes the matcher queries: every rotation/flip of the image, and of the image without padding.

A known image re-posted rotated, mirrored or letterboxed has a PDQ hash ~128 bits from the original, far
beyond any match radius; HMA misses all of these. The query image is hashed in all 8 dihedral orientations
and, when it has solid-colour bands (:mod:`tripwire.signals.unletterbox`), so is the trimmed content; the
matcher searches all of them in one index pass.

**Exact orientations from one buffer.** All 8 hashes are those of the really transformed image, computed
from one luminance buffer (:func:`tripwire.signals.pdq.dihedral_dcts`): no turned copy of the image is made
and no second PDQ pass runs. pdqhash's own ``compute_dihedral`` derives the 8 from one DCT, but PDQ's box
filter is one-sided, so only its ``original`` and ``transpose`` outputs are exact and the other six come out
up to ~40 bits off, which loses ~5% of rotated or mirrored copies at radius 31; ``[banks] variant_passes = 1``
still selects those single-DCT outputs (kept for comparison: it is no longer cheaper).

**Which image.** The hashes are computed on the stored pixel grid (what :class:`~tripwire.signals.pdq.PdqExtractor`
hashes into ``pdq``) and *labelled relative to the displayed image* (EXIF orientation applied): the variant
``original`` is the displayed image's hash, and for an EXIF-rotated photo ``pdq`` (the stored grid) appears
under the label of the turn that maps the displayed image onto the stored one.

Variant names (``pdq_variants`` keys, :data:`tripwire.signals.pdq_labels.DIHEDRAL_VARIANTS`) say what maps the
*query* onto the bank's picture: ``original``, ``rot90``/``rot180``/``rot270`` (counter-clockwise, as
``np.rot90``: a copy turned 90 degrees counter-clockwise matches through ``rot270``), ``flip_horizontal``
(mirrored left-right), ``flip_vertical``, ``transpose``, ``antitranspose``; the trimmed image's are
``unletterbox`` and ``unletterbox:<variant>``. Identical hashes are listed once, under the first name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ..config import BankSettings
from ..media.image import ORIENTATION_OPS
from ..media.item import Item
from ..media.sniff import is_image
from .hamming import hex_to_codes
from .pdq import (PDQ_DECODE_SIZE, ZERO_HASH, Dihedral, dihedral_dcts, dihedral_item, hex_of_dct,
                  pdq_dihedral_of_array, stored_array)
from .pdq_labels import DIHEDRAL_VARIANTS, UNLETTERBOX, trimmed_label
from .unletterbox import find_uniform_borders

__all__ = ["DIHEDRAL_VARIANTS", "OPS", "UNLETTERBOX", "VariantHashes", "dihedral_hashes",
           "variant_facts", "variant_hashes", "PdqVariantsExtractor"]

#: smallest trimmed side worth hashing
_MIN_TRIMMED = 16

#: the pixel operation each variant name stands for
OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip_vertical": lambda a: a[::-1],
    "flip_horizontal": lambda a: a[:, ::-1],
    "transpose": lambda a: a.swapaxes(0, 1),
    "antitranspose": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}


#: the flips and transpose (applied in that order) that each view is, as keys of :data:`~tripwire.signals.pdq.Dihedral`
View = tuple[bool, bool, bool]
_PROBE = np.arange(6).reshape(2, 3)


def _flipped(rows: bool, cols: bool) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: a[::-1 if rows else 1, ::-1 if cols else 1]


def _view_of(*ops: Callable[[np.ndarray], np.ndarray]) -> View:
    """(transpose, flip rows, flip cols) such that applying ``ops`` in turn equals flipping then transposing."""
    out = _PROBE
    for op in ops:
        out = op(out)
    for t in (False, True):
        for fr in (False, True):
            for fc in (False, True):
                view = _PROBE[::-1 if fr else 1, ::-1 if fc else 1]
                view = view.T if t else view
                if view.shape == out.shape and np.array_equal(view, out):
                    return (t, fr, fc)
    raise AssertionError("not a rotation or flip")  # pragma: no cover - OPS holds only the 8


@lru_cache(maxsize=8)
def _labels(orientation: int) -> dict[View, str]:
    """{view of the stored grid: the variant name of that view relative to the displayed image}.

    The displayed image is ``ORIENTATION_OPS[orientation](stored)``; variant ``v`` is ``OPS[v](displayed)``.
    """
    turn = OPS[ORIENTATION_OPS.get(orientation, "original")]
    return {_view_of(turn, OPS[v]): v for v in DIHEDRAL_VARIANTS}


#: pdqhash's single-DCT derivations (``dct16OriginalTo*``): the 8 outputs from one 16x16 block, in
#: DIHEDRAL_VARIANTS order; only ``original`` and ``transpose`` are exact (see the module docstring)
_ALT = np.where(np.arange(16) & 1, 1.0, -1.0).astype(np.float32)
_CHECKER = np.where(np.add.outer(np.arange(16), np.arange(16)) & 1, -1.0, 1.0).astype(np.float32)
_DERIVED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda b: b,
    "rot90": lambda b: (b * _ALT[None, :]).T,
    "rot180": lambda b: b * _CHECKER,
    "rot270": lambda b: (b * _ALT[:, None]).T,
    "flip_vertical": lambda b: b * _ALT[:, None],
    "flip_horizontal": lambda b: b * _ALT[None, :],
    "transpose": lambda b: b.T,
    "antitranspose": lambda b: (b * _CHECKER).T,
}


def _dihedral(arr: np.ndarray, passes: int, orientation: int, all_outputs: bool,
              dcts: tuple[Dihedral, int] | None = None) -> tuple[list[tuple[str, str]], int]:
    """(label, hex) for the 8 orientations in DIHEDRAL_VARIANTS order, then (``all_outputs``) the inexact
    single-DCT outputs of every mirrored view labelled ``<variant>~<view>``; and the quality of ``arr``.

    ``arr`` is the stored grid; labels are relative to it turned by ``orientation`` (1: ``arr`` as given).
    """
    if passes not in (1, 4):
        raise ValueError("passes must be 1 or 4")
    labels = _labels(orientation)
    if passes == 1:  # pdqhash's single DCT, labelled for the displayed image
        hexes, quality = pdq_dihedral_of_array(arr)
        by_view = {_view_of(OPS[v]): h for v, h in zip(DIHEDRAL_VARIANTS, hexes)}
        found = {labels[view]: h for view, h in by_view.items()}
        return [(name, found[name]) for name in DIHEDRAL_VARIANTS], quality
    blocks, quality = dcts if dcts is not None else dihedral_dcts(arr)
    if not blocks:  # too small to hash: pdqhash's zero hash
        return [(name, ZERO_HASH) for name in DIHEDRAL_VARIANTS], 0
    found = {labels[view]: hex_of_dct(block) for view, block in blocks.items()}
    extra: list[tuple[str, str]] = []
    if all_outputs:
        for k, (_, fr, fc) in enumerate(v for v in blocks if not v[0]):
            for name, derive in _DERIVED.items():
                if name not in ("original", "transpose"):  # those two are the exact ones above
                    target = _view_of(_flipped(fr, fc), OPS[name])
                    extra.append((f"{labels[target]}~{k}", hex_of_dct(derive(blocks[(False, fr, fc)]))))
    return [(name, found[name]) for name in DIHEDRAL_VARIANTS] + extra, quality


def dihedral_hashes(rgb: np.ndarray, passes: int = 4) -> tuple[dict[str, str], int]:
    """{variant name: 64-hex PDQ} for the 8 orientations of ``rgb`` (exact with 4 passes), and its quality."""
    pairs, quality = _dihedral(np.asarray(rgb), passes, 1, False)
    return dict(pairs), quality


@dataclass
class VariantHashes:
    """The PDQ hashes to search for one image, each once, under the first label that produced it."""

    hashes: dict[str, str]
    #: PDQ quality of the image as given
    quality: int
    #: (top, bottom, left, right) kept by unletterbox when the trimmed image was hashed
    trim_box: tuple[int, int, int, int] | None = None
    #: the trimmed image's own hash and quality (its hash may equal one above, then it is listed once)
    trimmed: str | None = None
    trimmed_quality: int | None = None

    def codes(self) -> np.ndarray:
        """The hashes as an (n, 32) uint8 array, in label order (what :class:`PdqIndex` searches)."""
        return hex_to_codes(self.hashes.values())


def variant_hashes(rgb: np.ndarray, passes: int = 4, unletterbox: bool = True, all_outputs: bool = False,
                   orientation: int = 1, dcts: tuple[Dihedral, int] | None = None) -> VariantHashes:
    """Every orientation of an (h, w, 3) uint8 image and, when it has solid bands, of the trimmed image.

    ``rgb`` is the stored grid and ``orientation`` its EXIF orientation: labels are relative to the displayed
    image (1: ``rgb`` is what is displayed). ``dcts`` is :func:`~tripwire.signals.pdq.dihedral_dcts` of ``rgb``
    when the caller has it. ``all_outputs`` (with 4 passes) also keeps pdqhash's inexact single-DCT outputs of
    every mirrored view (up to 32 hashes per image): they behave like one-pixel-shifted copies and find a few
    more resized or cropped copies (bench/robustness.py) for 4x the search cost.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {arr.shape} {arr.dtype}")
    pairs, quality = _dihedral(arr, passes, orientation, all_outputs, dcts)
    result = VariantHashes({}, quality)
    box = find_uniform_borders(arr) if unletterbox else None
    if box is not None and min(box[1] - box[0], box[3] - box[2]) >= _MIN_TRIMMED:
        top, bottom, left, right = box
        trimmed, result.trimmed_quality = _dihedral(arr[top:bottom, left:right], passes, orientation, all_outputs)
        result.trim_box, result.trimmed = box, dict(trimmed)["original"]
        pairs += [(trimmed_label(name), hex_) for name, hex_ in trimmed]
    seen: set[str] = set()
    for label, hex_ in pairs:
        if hex_ not in seen:
            seen.add(hex_)
            result.hashes[label] = hex_
    return result


def variant_facts(rgb: np.ndarray, passes: int = 4, orientation: int = 1,
                  dcts: tuple[Dihedral, int] | None = None) -> dict[str, Any]:
    """The facts this module's extractor records for one decoded RGB image (the stored grid, ``orientation``
    its EXIF orientation): the variants, and the trimmed displayed image's hash and quality."""
    found = variant_hashes(np.asarray(rgb)[:, :, :3], passes, orientation=orientation, dcts=dcts)
    return {"pdq_variants": found.hashes, "pdq_unletterbox": found.trimmed,
            "pdq_unletterbox_quality": found.trimmed_quality}


class PdqVariantsExtractor:
    """Adds ``pdq_variants`` ({name: hex}), ``pdq_unletterbox`` (hex or null) and its quality to images."""

    name = "pdq_variants"
    version = "3"  # 3: hashed from the stored grid's one luminance buffer, labelled for the displayed image
    produces = ("pdq_variants", "pdq_unletterbox", "pdq_unletterbox_quality")

    def __init__(self, config: Any = None, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size
        self.passes = BankSettings.from_config(config).variant_passes

    def extract(self, item: Item) -> dict[str, Any]:
        if not is_image(item.media_type):
            return {}
        stored = stored_array(item, self.decode_size)
        dcts = dihedral_item(item, self.decode_size) if self.passes == 4 else None
        return variant_facts(stored, self.passes, item._orientation or 1, dcts)
