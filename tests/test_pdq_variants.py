"""Large images get their rotation/flip hashes from a reduced copy: cheaper, and still close to exact."""

from __future__ import annotations

import numpy as np

from tripwire.signals.pdq import pdq_of_array
from tripwire.signals.pdq_variants import VARIANT_SHORT_SIDE, reduced_for_variants, variant_facts

from helpers import hamming, synth_image


def test_large_images_are_reduced_and_still_match_every_orientation():
    upright = np.asarray(synth_image(11, (1600, 1200)))
    truth = pdq_of_array(upright)[0]
    assert min(reduced_for_variants(upright).shape[:2]) == VARIANT_SHORT_SIDE
    for turned in (np.rot90(upright, 1), np.rot90(upright, 2), upright[:, ::-1], upright[::-1]):
        variants = variant_facts(np.ascontiguousarray(turned))["pdq_variants"]
        assert min(hamming(truth, h) for h in variants.values()) <= 12  # far inside the match radius of 31
        assert hamming(truth, pdq_of_array(np.ascontiguousarray(turned))[0]) > 31  # plain PDQ misses it


def test_small_images_are_hashed_as_they_are():
    img = np.asarray(synth_image(12, (640, 480)))
    assert reduced_for_variants(img) is img
    assert variant_facts(img)["pdq_variants"]["original"] == pdq_of_array(img)[0]
