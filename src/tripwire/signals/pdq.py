"""PDQ (Meta's perceptual hash) of every image, as displayed, from a draft-mode decode.

PDQ reduces the image to 64x64 luminance with Jarosz filters, so decoding a 24-megapixel JPEG at full
resolution is wasted work: a draft decode (DCT scaling) to at least ``PDQ_DECODE_SIZE`` on each side gives
hashes within a few bits of the full decode (bench/hashing.py measures the maximum distance) at a fraction
of the cost. Hashes are 64 lowercase hex characters, as ThreatExchange and HMA write them.
"""

from __future__ import annotations

import numpy as np
import pdqhash

from ..media.image import load_oriented
from ..media.item import Item
from ..media.sniff import is_image

#: both sides of a JPEG are decoded to at least this many pixels (or full size when smaller)
PDQ_DECODE_SIZE = 512

_BIT_WEIGHTS = 1 << np.arange(7, -1, -1, dtype=np.uint8)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 bits (most significant first) as ThreatExchange's 64-char hex string."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def pdq_of_array(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(bits), int(quality)


def pdq_dihedral_of_array(rgb: np.ndarray) -> tuple[list[str], int]:
    """The 8 rotation/flip variants (pdqhash's order: original, rot90, rot180, rot270, flipX, flipY,
    flipPlus1, flipMinus1) and the quality."""
    variants, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [bits_to_hex(v) for v in variants], int(quality)


#: ``pdqhash.compute_dihedral``'s output: the 8 hashes as bit arrays, and the quality
DihedralPass = tuple[list[np.ndarray], int]


def dihedral_pass(item: Item, decode_size: int | None = PDQ_DECODE_SIZE, turns: int = 0) -> DihedralPass:
    """``pdqhash.compute_dihedral`` of the displayed image turned ``turns`` quarter turns, once per item.

    Its first output is exactly ``pdqhash.compute``'s hash, so the plain PDQ and the matcher's rotation/flip
    variants (:mod:`tripwire.signals.pdq_variants`) share the unturned pass instead of hashing twice.
    """
    key = (decode_size, turns)
    if key not in item._pdq_passes:
        rgb = np.asarray(load_oriented(item, min_size=decode_size))
        variants, quality = pdqhash.compute_dihedral(np.ascontiguousarray(np.rot90(rgb, turns) if turns else rgb))
        item._pdq_passes[key] = (variants, int(quality))
    return item._pdq_passes[key]


class PdqExtractor:
    name = "pdq"
    version = "1"
    produces = ("pdq", "pdq_quality")

    def __init__(self, decode_size: int | None = PDQ_DECODE_SIZE) -> None:
        self.decode_size = decode_size

    def extract(self, item: Item) -> dict[str, object]:
        if not is_image(item.media_type):
            return {}
        variants, quality = dihedral_pass(item, self.decode_size)
        return {"pdq": bits_to_hex(variants[0]), "pdq_quality": quality}
