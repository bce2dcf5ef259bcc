"""variant_hashes: every rotation/flip of a picture finds its hash exactly; padding is trimmed and queried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image
from tripwire.signals.index import PdqIndex
from tripwire.signals.pdq_variants import DIHEDRAL_VARIANTS, OPS, variant_hashes

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
INVERSE = {"original": "original", "rot90": "rot270", "rot180": "rot180", "rot270": "rot90",
           "flip_vertical": "flip_vertical", "flip_horizontal": "flip_horizontal", "transpose": "transpose",
           "antitranspose": "antitranspose"}


def photo(size: tuple[int, int]) -> np.ndarray:
    with Image.open(FIXTURES / "camera" / "gps" / "DSCN0010.jpg") as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB").resize(size)))


def code_of(rgb: np.ndarray) -> np.ndarray:
    return np.packbits(pdqhash.compute(np.ascontiguousarray(rgb))[0].astype(np.uint8))


def test_variant_names_follow_pdqhash_order():
    """On odd sizes pdqhash's variants are exact, which pins down what each of its 8 variants is."""
    img = photo((333, 257))
    variants = pdqhash.compute_dihedral(img)[0]
    for v, name in enumerate(DIHEDRAL_VARIANTS):
        assert np.array_equal(np.packbits(variants[v].astype(np.uint8)), code_of(OPS[name](img))), name


@pytest.mark.parametrize("size", [(512, 384), (400, 300), (333, 257)])
def test_every_rotation_and_flip_is_found_exactly(size):
    original = photo(size)
    bank = code_of(original)
    for op in DIHEDRAL_VARIANTS:
        q = variant_hashes(np.ascontiguousarray(OPS[op](original)), passes=4)
        codes = q.codes()
        dist = np.unpackbits(codes ^ bank, axis=1).sum(axis=1)
        best = int(dist.argmin())
        assert dist[best] == 0, (size, op)
        assert list(q.hashes)[best] == INVERSE[op]
        assert len({c.tobytes() for c in codes}) == len(codes) <= 8  # one exact code per transform
        assert set(q.hashes) <= set(DIHEDRAL_VARIANTS) and q.quality >= 50 and q.trim_box is None
        wide = variant_hashes(np.ascontiguousarray(OPS[op](original)), all_outputs=True)
        assert {c.tobytes() for c in codes} <= {c.tobytes() for c in wide.codes()}


def test_padding_is_trimmed_and_matched():
    original = photo((400, 300))
    padded = np.zeros((300 + 120, 400, 3), np.uint8)
    padded[60:360] = original
    idx = PdqIndex()
    idx.add([1], code_of(original)[None])
    plain = idx.search(code_of(padded)[None], 31)
    assert plain == []
    q = variant_hashes(padded)
    assert q.trim_box == (60, 360, 0, 400)
    best = min(idx.search(q.codes(), 31), key=lambda hit: hit[2])
    assert best[2] == 0 and list(q.hashes)[best[0]] == "unletterbox"
    rotated = np.ascontiguousarray(np.rot90(padded))  # padded and turned
    q = variant_hashes(rotated)
    best = min(idx.search(q.codes(), 31), key=lambda hit: hit[2])
    assert best[2] == 0 and list(q.hashes)[best[0]] == "unletterbox:rot270"
    assert variant_hashes(padded, unletterbox=False).trim_box is None


def test_single_pass_is_pdqhash_dihedral():
    img = photo((400, 300))
    q = variant_hashes(img, passes=1, unletterbox=False)
    direct = np.stack([np.packbits(v.astype(np.uint8)) for v in pdqhash.compute_dihedral(img)[0]])
    assert {c.tobytes() for c in q.codes()} == {c.tobytes() for c in direct}


def test_bad_input():
    with pytest.raises(ValueError):
        variant_hashes(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        variant_hashes(np.zeros((10, 10, 3), np.uint8), passes=2)
