"""The PDQ hashes the matcher queries: 8 rotations/flips of the image, and the image without its padding.

A known image re-posted rotated, mirrored or letterboxed has a PDQ hash ~128 bits from the original, far
beyond any match radius; HMA misses all of these. Hashing the query image in all 8 dihedral orientations
(one ``pdqhash.compute_dihedral`` call: the DCT is computed once) and, when it has solid-colour bands, the
trimmed content too, turns each of those into an ordinary near-match.

Variant names say what was done to the *query* to reach the listed hash: ``rot90`` is the query rotated
90 degrees counter-clockwise (``rot270`` is 90 clockwise), ``flip_h`` mirrored left-right, ``flip_v``
mirrored top-bottom, ``transpose`` mirrored across the main diagonal, ``transverse`` across the other one.

The image is decoded exactly as :class:`tripwire.signals.pdq.PdqExtractor` decodes it (EXIF orientation
applied, JPEG draft decode to at least 512 px), so ``pdq_variants["original"]`` equals ``pdq``.
"""

from __future__ import annotations

import numpy as np
import pdqhash

from ..media.image import load_oriented
from ..media.item import Item
from ..media.sniff import is_image
from .pdq import PDQ_DECODE_SIZE, bits_to_hex
from .unletterbox import trim_uniform_borders

#: pdqhash.compute_dihedral's order, named by the transform applied to the query image
VARIANT_NAMES: tuple[str, ...] = ("original", "rot90", "rot180", "rot270", "flip_v", "flip_h", "transpose", "transverse")
UNLETTERBOX = "unletterbox"


def dihedral_hashes(rgb: np.ndarray) -> tuple[dict[str, str], int]:
    """{variant name: 64-hex PDQ} for the 8 orientations, and the quality (shared by all 8)."""
    variants, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return {name: bits_to_hex(bits) for name, bits in zip(VARIANT_NAMES, variants)}, int(quality)


def unletterbox_hash(rgb: np.ndarray) -> tuple[str, int] | None:
    """PDQ (hex, quality) of the image with its uniform borders trimmed; None when it has none."""
    trimmed = trim_uniform_borders(rgb)
    if trimmed is None or min(trimmed.shape[:2]) < 16:
        return None
    bits, quality = pdqhash.compute(np.ascontiguousarray(trimmed))
    return bits_to_hex(bits), int(quality)


def variant_facts(rgb: np.ndarray) -> dict[str, object]:
    """The facts this module's extractor records for one decoded RGB image."""
    variants, _quality = dihedral_hashes(rgb)
    trimmed = unletterbox_hash(rgb)
    return {
        "pdq_variants": variants,
        "pdq_unletterbox": trimmed[0] if trimmed else None,
        "pdq_unletterbox_quality": trimmed[1] if trimmed else None,
    }


class PdqVariantsExtractor:
    """Adds ``pdq_variants`` ({name: hex}), ``pdq_unletterbox`` (hex or null) and its quality to images."""

    name = "pdq_variants"
    version = "1"

    def __init__(self, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size

    def extract(self, item: Item) -> dict[str, object]:
        if not is_image(item.media_type):
            return {}
        img = load_oriented(item, min_size=self.decode_size)
        return variant_facts(np.asarray(img))
