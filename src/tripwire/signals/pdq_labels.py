"""The names of PDQ's query variants: which pixel operation maps the *query* onto the bank's picture.

Kept apart from the hashing (:mod:`.pdq_variants`) and the signal type (:mod:`.types.pdq`) so both can use
them without importing each other.
"""

from __future__ import annotations

#: the pixel operation behind each of pdqhash's dihedral outputs, in its order (checked by the tests)
DIHEDRAL_VARIANTS = ("original", "rot90", "rot180", "rot270", "flip_vertical", "flip_horizontal",
                     "transpose", "antitranspose")
UNLETTERBOX = "unletterbox"
#: the labels of the trimmed image's hashes
TRIMMED_LABELS = frozenset({UNLETTERBOX} | {f"{UNLETTERBOX}:{v}" for v in DIHEDRAL_VARIANTS})


def trimmed_label(variant: str) -> str:
    """The label of the trimmed image's hash in orientation ``variant``."""
    return UNLETTERBOX if variant == "original" else f"{UNLETTERBOX}:{variant}"
