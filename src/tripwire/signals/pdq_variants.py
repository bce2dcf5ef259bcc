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

Variant names (``pdq_variants`` keys, the names of :mod:`tripwire.match.index_query`) say what maps the
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

from typing import Any

import numpy as np
import pdqhash
from PIL import Image

from ..match.index_query import _COMPOSED, DIHEDRAL_VARIANTS
from ..media.image import load_oriented
from ..media.item import Item
from ..media.sniff import is_image
from .pdq import PDQ_DECODE_SIZE, bits_to_hex, dihedral_pass
from .unletterbox import find_uniform_borders

UNLETTERBOX = "unletterbox"
#: smallest trimmed side worth hashing
_MIN_TRIMMED = 16
#: rotation/flip passes run on a copy reduced to this short side when the image's exceeds the next value
VARIANT_SHORT_SIDE = 640
VARIANT_SHRINK_ABOVE = 768
#: compute_dihedral outputs that are exact (the hash of the really transformed image): original, transpose
_EXACT_OUTPUTS = (0, 6)


def dihedral_hashes(rgb: np.ndarray, passes: int = 4, unturned: tuple | None = None) -> tuple[dict[str, str], int]:
    """{variant name: 64-hex PDQ} for the 8 orientations (exact with 4 passes), and the image's quality.

    ``unturned`` is ``pdqhash.compute_dihedral(rgb)`` when the caller already has it (it is not redone).
    """
    arr = np.asarray(rgb)
    if passes == 1:
        variants, quality = unturned or pdqhash.compute_dihedral(np.ascontiguousarray(arr))
        return {name: bits_to_hex(bits) for name, bits in zip(DIHEDRAL_VARIANTS, variants)}, int(quality)
    if passes != 4:
        raise ValueError("passes must be 1 or 4")
    found: dict[str, str] = {}
    quality = 0
    for k in range(4):
        if k == 0 and unturned is not None:
            variants, q = unturned
        else:
            variants, q = pdqhash.compute_dihedral(np.ascontiguousarray(np.rot90(arr, k)))
        if k == 0:
            quality = int(q)
        for v in _EXACT_OUTPUTS:
            found[_COMPOSED[k][v]] = bits_to_hex(variants[v])
    return {name: found[name] for name in DIHEDRAL_VARIANTS}, quality


def reduced_for_variants(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a box-reduced copy with a ``VARIANT_SHORT_SIDE`` short side when it is large."""
    h, w = arr.shape[:2]
    if min(h, w) <= VARIANT_SHRINK_ABOVE:
        return arr
    scale = VARIANT_SHORT_SIDE / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize(size, Image.BOX))


def variant_facts(rgb: np.ndarray, passes: int = 4, unturned: tuple | None = None) -> dict[str, Any]:
    """The facts this module's extractor records for one decoded RGB image (as displayed).

    ``unturned`` (``pdqhash.compute_dihedral`` of ``rgb``) is reused unless the image is reduced first.
    """
    full = np.asarray(rgb)[:, :, :3]
    arr = reduced_for_variants(full)
    hashes, _quality = dihedral_hashes(arr, passes, unturned if arr is full else None)
    variants: dict[str, str] = {}
    seen: set[str] = set()
    for name, hex_ in hashes.items():
        if hex_ not in seen:
            seen.add(hex_)
            variants[name] = hex_
    facts: dict[str, Any] = {"pdq_variants": variants, "pdq_unletterbox": None, "pdq_unletterbox_quality": None}
    box = find_uniform_borders(arr)
    if box is not None:
        top, bottom, left, right = box
        if min(bottom - top, right - left) >= _MIN_TRIMMED:
            trimmed, trimmed_quality = dihedral_hashes(arr[top:bottom, left:right], passes)
            facts["pdq_unletterbox"] = trimmed["original"]
            facts["pdq_unletterbox_quality"] = trimmed_quality
            for name, hex_ in trimmed.items():
                if hex_ not in seen:
                    seen.add(hex_)
                    variants[UNLETTERBOX if name == "original" else f"{UNLETTERBOX}:{name}"] = hex_
    return facts


def passes_setting(config: Any = None) -> int:
    section = ((getattr(config, "sections", None) or {}).get("banks") or {}) if config is not None else {}
    passes = int(section.get("variant_passes", 4))
    if passes not in (1, 4):
        from ..errors import UsageError

        raise UsageError(f"banks.variant_passes must be 1 or 4, not {passes}")
    return passes


class PdqVariantsExtractor:
    """Adds ``pdq_variants`` ({name: hex}), ``pdq_unletterbox`` (hex or null) and its quality to images."""

    name = "pdq_variants"
    version = "2"  # 2: exact orientations (4 passes), trimmed image in all orientations
    produces = ("pdq_variants", "pdq_unletterbox", "pdq_unletterbox_quality")

    def __init__(self, config: Any = None, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size
        self.passes = passes_setting(config)

    def extract(self, item: Item) -> dict[str, Any]:
        if not is_image(item.media_type):
            return {}
        img = load_oriented(item, min_size=self.decode_size)
        return variant_facts(np.asarray(img), self.passes, dihedral_pass(item, self.decode_size))
