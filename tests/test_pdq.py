"""PDQ as ThreatExchange computes it, on the image as displayed, draft-decoded within PDQ's tolerance."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from tripwire.media.item import Item
from tripwire.signals.imageinfo import ImageInfoExtractor
from tripwire.signals.pdq import PdqExtractor

from helpers import hamming


def _item(path: Path) -> Item:
    data = path.read_bytes()
    return Item(str(path), data, len(data))


def _camera(fixtures) -> list[Path]:
    return sorted((fixtures / "camera").rglob("*.jpg"))


def test_draft_decode_within_ten_bits_of_full_decode(fixtures):
    full, draft = PdqExtractor(decode_size=None), PdqExtractor()
    checked = 0
    for path in _camera(fixtures):
        f, d = full.extract(_item(path)), draft.extract(_item(path))
        if f["pdq_quality"] >= 80:
            assert hamming(f["pdq"], d["pdq"]) <= 10, path
            checked += 1
    assert checked >= 40


def test_same_hash_format_as_threatexchange(fixtures):
    """Upright files (no EXIF rotation) hash exactly as python-threatexchange's PdqSignal does."""
    full = PdqExtractor(decode_size=None)
    for name in ("gps/DSCN0010.jpg", "Canon_40D.jpg", "orientation/landscape_1.jpg", "mobile/jolla.jpg"):
        path = fixtures / "camera" / name
        assert full.extract(_item(path))["pdq"] == PdqSignal.hash_from_file(path)


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_exif_orientation_applied_before_hashing(fixtures, kind):
    """The 8 orientation fixtures store one picture 8 ways; as displayed they are the same picture."""
    paths = [fixtures / "camera" / "orientation" / f"{kind}_{i}.jpg" for i in range(1, 9)]
    hashes = [PdqExtractor().extract(_item(p))["pdq"] for p in paths]
    for a, b in itertools.combinations(hashes, 2):
        assert hamming(a, b) <= 31  # each file re-encoded separately: they match at PDQ's default radius
    # without orientation the stored grids differ wildly (threatexchange ignores EXIF orientation)
    raw = [PdqSignal.hash_from_file(p) for p in paths]
    assert max(hamming(raw[0], r) for r in raw[1:]) > 64
    sizes = {tuple(ImageInfoExtractor().extract(_item(p)).values()) for p in paths}
    assert len(sizes) == 1  # width/height as displayed
