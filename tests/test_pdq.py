"""PDQ as ThreatExchange computes it (the stored pixels); the displayed image's hash is a variant; drafts stay close."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from tripwire.media.item import Item
from tripwire.signals.imageinfo import ImageInfoExtractor
from tripwire.signals.pdq import DRAFT_DECODE_SIZE, PdqExtractor
from tripwire.signals.pdq_variants import PdqVariantsExtractor

from helpers import hamming


def _item(path: Path) -> Item:
    data = path.read_bytes()
    return Item(str(path), data, len(data))


def _camera(fixtures) -> list[Path]:
    return sorted((fixtures / "camera").rglob("*.jpg"))


def test_draft_decode_within_ten_bits_of_full_decode(fixtures):
    full, draft = PdqExtractor(), PdqExtractor(decode_size=DRAFT_DECODE_SIZE)
    checked = 0
    for path in _camera(fixtures):
        f, d = full.extract(_item(path)), draft.extract(_item(path))
        if f["pdq_quality"] >= 80:
            assert hamming(f["pdq"], d["pdq"]) <= 10, path
            checked += 1
    assert checked >= 40


def test_same_hash_format_as_threatexchange(fixtures):
    """Upright files (no EXIF rotation) hash exactly as python-threatexchange's PdqSignal does."""
    full = PdqExtractor()
    for name in ("gps/DSCN0010.jpg", "Canon_40D.jpg", "orientation/landscape_1.jpg", "mobile/jolla.jpg"):
        path = fixtures / "camera" / name
        assert full.extract(_item(path))["pdq"] == PdqSignal.hash_from_file(path)


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_pdq_is_the_stored_grid_and_the_displayed_hash_is_a_variant(fixtures, kind):
    """The 8 orientation fixtures store one picture 8 ways. ``pdq`` is the stored grid's hash (threatexchange's:
    they differ wildly), and the variant ``original`` is the displayed picture's (they all match)."""
    paths = [fixtures / "camera" / "orientation" / f"{kind}_{i}.jpg" for i in range(1, 9)]
    raw = [PdqSignal.hash_from_file(p) for p in paths]
    assert [PdqExtractor().extract(_item(p))["pdq"] for p in paths] == raw
    assert max(hamming(raw[0], r) for r in raw[1:]) > 64
    shown = [PdqVariantsExtractor().extract(_item(p))["pdq_variants"]["original"] for p in paths]
    for a, b in itertools.combinations(shown, 2):
        assert hamming(a, b) <= 31  # each file re-encoded separately: they match at PDQ's default radius
    sizes = {tuple(ImageInfoExtractor().extract(_item(p)).values()) for p in paths}
    assert len(sizes) == 1  # width/height as displayed
