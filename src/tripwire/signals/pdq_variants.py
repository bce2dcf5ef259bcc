"""The PDQ hashes the matcher queries: every rotation/flip of the image, and of the image without padding.

A known image re-posted rotated, mirrored or letterboxed has a PDQ hash ~128 bits from the original, far
beyond any match radius; HMA misses all of these. The query image is hashed in all 8 dihedral orientations
and, when it has solid-colour bands (:mod:`tripwire.signals.unletterbox`), so is the trimmed content; the
matcher searches all of them in one index pass.

**Exact orientations.** pdqhash derives the 8 orientations from one DCT (``compute_dihedral``), but PDQ's
box filter is one-sided, so only the ``original`` and ``transpose`` outputs equal the hash of the really
transformed image; the other six come out up to ~40 bits off (measured on fixtures and synthesised
images of odd and even sizes), which loses ~5% of rotated or mirrored copies at radius 31. With the default
``[banks] variant_passes = 4`` the image is turned by 0/90/180/270 degrees and each turn contributes its two
exact outputs: 8 exact hashes for 4 DCTs. ``variant_passes = 1`` keeps pdqhash's single-DCT variants (4x
less hashing, lower recall on rotations).

Variant names (``pdq_variants`` keys, :data:`tripwire.signals.pdq_labels.DIHEDRAL_VARIANTS`) say what maps the
*query* onto the bank's picture: ``original``, ``rot90``/``rot180``/``rot270`` (counter-clockwise, as
``np.rot90``: a copy turned 90 degrees counter-clockwise matches through ``rot270``), ``flip_horizontal``
(mirrored left-right), ``flip_vertical``, ``transpose``, ``antitranspose``; the trimmed image's are
``unletterbox`` and ``unletterbox:<variant>``. Identical hashes are listed once, under the first name. The
image is decoded exactly as :class:`tripwire.signals.pdq.PdqExtractor` decodes it (shared decode, and the
unturned pass is shared too), so ``pdq_variants["original"]`` equals ``pdq`` — except for large images:
when the decoded short side exceeds ``VARIANT_SHRINK_ABOVE`` the passes run on a box-reduced copy with a
``VARIANT_SHORT_SIDE`` short side, whose hashes stay within ~10 bits of the full-size ones (measured on the
fixtures: at most 8 bits over every rotation/flip of 1024x1024 PNGs and a 4608x1976 photo) at a fifth of
the cost; the matcher queries ``pdq`` itself as well, so nothing exact is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pdqhash
from PIL import Image

from ..config import BankSettings
from ..media.image import load_oriented
from ..media.item import Item
from ..media.sniff import is_image
from .hamming import hex_to_codes
from .pdq import PDQ_DECODE_SIZE, DihedralPass, bits_to_hex, dihedral_pass
from .pdq_labels import DIHEDRAL_VARIANTS, UNLETTERBOX, trimmed_label
from .unletterbox import find_uniform_borders

__all__ = ["COMPOSED", "DIHEDRAL_VARIANTS", "OPS", "UNLETTERBOX", "VariantHashes", "dihedral_hashes",
           "reduced_for_variants", "variant_facts", "variant_hashes", "PdqVariantsExtractor"]

#: smallest trimmed side worth hashing
_MIN_TRIMMED = 16
#: rotation/flip passes run on a copy reduced to this short side when the image's exceeds the next value
VARIANT_SHORT_SIDE = 640
VARIANT_SHRINK_ABOVE = 768
#: compute_dihedral outputs that are always exact (the hash of the really transformed image): PDQ's
#: one-sided box filter shift is mapped onto itself only by the identity and the transpose
_EXACT_OUTPUTS = (0, 6)

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


def _compose_table() -> list[list[str]]:
    """names[k][v]: the single operation equal to variant v applied after k quarter turns."""
    probe = np.arange(6).reshape(2, 3)
    by_result = {OPS[n](probe).tobytes() + bytes(OPS[n](probe).shape): n for n in DIHEDRAL_VARIANTS}
    table = []
    for k in range(4):
        row = []
        for v in DIHEDRAL_VARIANTS:
            out = OPS[v](np.rot90(probe, k))
            row.append(by_result[out.tobytes() + bytes(out.shape)])
        table.append(row)
    return table


#: COMPOSED[k][v]: the name of compute_dihedral's output v on the image turned k quarter turns
COMPOSED = _compose_table()


def _dihedral(arr: np.ndarray, passes: int, unturned: DihedralPass | None, all_outputs: bool
              ) -> tuple[list[tuple[str, str]], int]:
    """(label, hex) for the 8 orientations in DIHEDRAL_VARIANTS order, then (``all_outputs``) the inexact
    outputs of the other turns labelled ``<variant>~<turn>``; and the quality of the image as given."""
    if passes not in (1, 4):
        raise ValueError("passes must be 1 or 4")
    found: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    quality = 0
    for k in range(passes):
        if k == 0 and unturned is not None:
            variants, q = unturned
        else:
            variants, q = pdqhash.compute_dihedral(np.ascontiguousarray(np.rot90(arr, k) if k else arr))
        if k == 0:
            quality = int(q)
        for v in range(8):
            name = COMPOSED[k][v]
            if passes == 1 or v in _EXACT_OUTPUTS:
                found[name] = bits_to_hex(variants[v])
            elif all_outputs:
                extra.append((f"{name}~{k}", bits_to_hex(variants[v])))
    return [(name, found[name]) for name in DIHEDRAL_VARIANTS] + extra, quality


def dihedral_hashes(rgb: np.ndarray, passes: int = 4, unturned: DihedralPass | None = None) -> tuple[dict[str, str], int]:
    """{variant name: 64-hex PDQ} for the 8 orientations (exact with 4 passes), and the image's quality.

    ``unturned`` is ``pdqhash.compute_dihedral(rgb)`` when the caller already has it (it is not redone).
    """
    pairs, quality = _dihedral(np.asarray(rgb), passes, unturned, False)
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
                   unturned: DihedralPass | None = None) -> VariantHashes:
    """Every orientation of an (h, w, 3) uint8 image and, when it has solid bands, of the trimmed image.

    ``all_outputs`` (with 4 passes) also keeps the inexact outputs of every turn (up to 32 hashes per image):
    they behave like one-pixel-shifted copies and find a few more resized or cropped copies
    (bench/robustness.py) for 4x the search cost.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {arr.shape} {arr.dtype}")
    pairs, quality = _dihedral(arr, passes, unturned, all_outputs)
    result = VariantHashes({}, quality)
    box = find_uniform_borders(arr) if unletterbox else None
    if box is not None and min(box[1] - box[0], box[3] - box[2]) >= _MIN_TRIMMED:
        top, bottom, left, right = box
        trimmed, result.trimmed_quality = _dihedral(arr[top:bottom, left:right], passes, None, all_outputs)
        result.trim_box, result.trimmed = box, trimmed[0][1]
        pairs += [(trimmed_label(name), hex_) for name, hex_ in trimmed]
    seen: set[str] = set()
    for label, hex_ in pairs:
        if hex_ not in seen:
            seen.add(hex_)
            result.hashes[label] = hex_
    return result


def reduced_for_variants(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a box-reduced copy with a ``VARIANT_SHORT_SIDE`` short side when it is large."""
    h, w = arr.shape[:2]
    if min(h, w) <= VARIANT_SHRINK_ABOVE:
        return arr
    scale = VARIANT_SHORT_SIDE / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize(size, Image.Resampling.BOX))


def variant_facts(rgb: np.ndarray, passes: int = 4, unturned: DihedralPass | None = None) -> dict[str, Any]:
    """The facts this module's extractor records for one decoded RGB image (as displayed).

    ``unturned`` (``pdqhash.compute_dihedral`` of ``rgb``) is reused unless the image is reduced first.
    """
    full = np.asarray(rgb)[:, :, :3]
    arr = reduced_for_variants(full)
    found = variant_hashes(arr, passes, unturned=unturned if arr is full else None)
    return {"pdq_variants": found.hashes, "pdq_unletterbox": found.trimmed,
            "pdq_unletterbox_quality": found.trimmed_quality}


class PdqVariantsExtractor:
    """Adds ``pdq_variants`` ({name: hex}), ``pdq_unletterbox`` (hex or null) and its quality to images."""

    name = "pdq_variants"
    version = "2"  # 2: exact orientations (4 passes), trimmed image in all orientations
    produces = ("pdq_variants", "pdq_unletterbox", "pdq_unletterbox_quality")

    def __init__(self, config: Any = None, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size
        self.passes = BankSettings.from_config(config).variant_passes

    def extract(self, item: Item) -> dict[str, Any]:
        if not is_image(item.media_type):
            return {}
        img = load_oriented(item, min_size=self.decode_size)
        return variant_facts(np.asarray(img), self.passes, dihedral_pass(item, self.decode_size))
