"""The PDQ codes to look up for one image: its rotations and flips, and the same with padding trimmed.

A bank holds one PDQ hash per picture, taken as the picture was. A copy may be rotated, mirrored or padded;
querying these codes finds it anyway:

* **Dihedral variants.** pdqhash computes the hashes of the 8 rotations/flips from one DCT
  (``compute_dihedral``). They are exact only when both sides of the image are odd: PDQ's box filters are
  one-sided, so on even sizes the filtered 64x64 grid of a rotated image is shifted by a pixel against the
  rotation of the original's grid, and the variants come out 10-30 bits away from the hash of the really
  rotated picture (measured on the fixtures). Only two outputs are always exact, the original and the
  transpose (the one-sided shift maps onto itself under those alone). ``passes=4`` hashes the image turned
  by 0, 90, 180 and 270 degrees (pixel rotation, cheap) and keeps those two outputs of each turn: the 8
  transforms, each exact, for 4x the hashing cost. ``passes=1`` is pdqhash's single DCT, all 8 outputs.
* **Unletterbox.** When the image has solid bands (:mod:`tripwire.signals.unletterbox`), the codes of the
  trimmed image are added, labelled ``trimmed:<variant>``.

Duplicate codes are dropped; each code keeps the name of the first transform that produced it. A label
names the pixel operation that maps the *query* onto the bank's picture: a query that is the picture
turned by 90 degrees counter-clockwise (``np.rot90(picture)``) matches through ``rot270``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash

from ..signals.unletterbox import find_uniform_borders

#: the pixel operation behind each of pdqhash's dihedral variants, in its order (checked by the tests)
DIHEDRAL_VARIANTS = ("original", "rot90", "rot180", "rot270", "flip_vertical", "flip_horizontal",
                     "transpose", "antitranspose")

#: compute_dihedral outputs that are always exact (the hash of the really transformed image): the filter's
#: one-sided shift is mapped onto itself only by the identity and the transpose
EXACT_OUTPUTS = (0, 6)

_OPS = {
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
    by_result = {_OPS[n](probe).tobytes() + bytes(_OPS[n](probe).shape): n for n in DIHEDRAL_VARIANTS}
    table = []
    for k in range(4):
        row = []
        for v in DIHEDRAL_VARIANTS:
            out = _OPS[v](np.rot90(probe, k))
            row.append(by_result[out.tobytes() + bytes(out.shape)])
        table.append(row)
    return table


_COMPOSED = _compose_table()
#: COMPOSED[k][v]: the name of compute_dihedral's output v on the image turned k quarter turns
COMPOSED = _COMPOSED


@dataclass
class QueryCodes:
    """Codes to search for one image, with the transform each stands for."""

    codes: np.ndarray  # (k, 32) uint8, unique rows
    variants: list[str]  # per row: a DIHEDRAL_VARIANTS name, or "trimmed:" + one
    quality: int  # PDQ quality of the image as given (0-100; tripwire does not match below 50 by default)
    trim_box: tuple[int, int, int, int] | None  # (top, bottom, left, right) kept by unletterbox, if any


def _dihedral(
    rgb: np.ndarray, passes: int, all_outputs: bool = False
) -> tuple[list[np.ndarray], list[str], int]:
    codes: list[np.ndarray] = []
    names: list[str] = []
    quality = 0
    for k in range(passes):
        turned = np.ascontiguousarray(np.rot90(rgb, k)) if k else np.ascontiguousarray(rgb)
        variants, q = pdqhash.compute_dihedral(turned)
        if k == 0:
            quality = int(q)
        for v in range(8) if passes == 1 or all_outputs else EXACT_OUTPUTS:
            codes.append(np.packbits(np.asarray(variants[v], dtype=np.uint8)))
            names.append(_COMPOSED[k][v])
    return codes, names, quality


def query_codes(
    rgb: np.ndarray, passes: int = 4, unletterbox: bool = True, all_outputs: bool = False
) -> QueryCodes:
    """The codes to search for an RGB image (an (h, w, 3) uint8 array as displayed).

    ``passes``: 4 (exact dihedral variants, 4 PDQ computations) or 1 (pdqhash's DCT-domain variants, one
    computation; rotations of even-sized images can then miss). ``unletterbox``: add the codes of the image
    with solid bands trimmed, when it has any. ``all_outputs`` (with 4 passes): keep all 8 outputs of every
    turn, up to 32 codes; the inexact ones behave like one-pixel-shifted copies and find a few more resized
    or cropped copies (bench/robustness.py) for 4x the search cost.
    """
    if passes not in (1, 4):
        raise ValueError("passes must be 1 or 4")
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {arr.shape} {arr.dtype}")
    codes, names, quality = _dihedral(arr, passes, all_outputs)
    box = find_uniform_borders(arr) if unletterbox else None
    if box is not None:
        top, bottom, left, right = box
        more, more_names, _ = _dihedral(arr[top:bottom, left:right], passes, all_outputs)
        codes += more
        names += [f"trimmed:{n}" for n in more_names]
    seen: dict[bytes, int] = {}
    keep_codes: list[np.ndarray] = []
    keep_names: list[str] = []
    for code, name in zip(codes, names):
        key = code.tobytes()
        if key in seen:
            continue
        seen[key] = len(keep_codes)
        keep_codes.append(code)
        keep_names.append(name)
    return QueryCodes(np.stack(keep_codes), keep_names, quality, box)
