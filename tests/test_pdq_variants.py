"""The 8 rotation/flip hashes come from one luminance buffer and equal pdqhash's hash of each transformed image."""

from __future__ import annotations

import numpy as np

from tripwire.media.image import ORIENTATION_OPS
from tripwire.signals.pdq import dihedral_dcts, hex_of_dct, pdq_of_array, quality_of_buffer, dihedral_buffers
from tripwire.signals.pdq_variants import DIHEDRAL_VARIANTS, OPS, variant_facts

from helpers import hamming, synth_image


def test_large_and_odd_sizes_are_exact_in_every_orientation():
    """No reduced copy any more: every orientation of a large image is its exact hash (strip-wise luminance)."""
    for seed, size in ((11, (1600, 1200)), (13, (1203, 901)), (14, (64, 64)), (15, (7, 300))):
        upright = np.asarray(synth_image(seed, size))
        variants = variant_facts(upright)["pdq_variants"]
        for name in DIHEDRAL_VARIANTS:
            truth = pdq_of_array(np.ascontiguousarray(OPS[name](upright)))[0]
            assert variants.get(name, truth) == truth, (size, name)  # identical hashes are listed once
        assert variants["original"] == pdq_of_array(upright)[0]
        if min(size) >= 64:
            assert hamming(variants["original"], pdq_of_array(np.ascontiguousarray(upright[:, ::-1]))[0]) > 31


def test_quality_is_pdqhash_quality():
    for seed, size in ((3, (640, 480)), (4, (100, 75))):
        img = np.asarray(synth_image(seed, size))
        _, quality = dihedral_dcts(img)
        assert quality == pdq_of_array(img)[1] == quality_of_buffer(dihedral_buffers(img)[0, 0])


def test_too_small_to_hash_is_pdqhash_zero_hash():
    tiny = np.zeros((4, 40, 3), np.uint8)
    facts = variant_facts(tiny)
    assert set(facts["pdq_variants"].values()) == {pdq_of_array(tiny)[0]} == {"0" * 64}


def test_orientation_labels_are_relative_to_the_displayed_image():
    """Given the stored grid and its EXIF orientation, ``original`` is the displayed image's hash, and the
    stored grid's own hash sits under the turn that maps the displayed image onto it."""
    stored = np.asarray(synth_image(21, (300, 200)))
    for orientation, op in ORIENTATION_OPS.items():
        displayed = np.ascontiguousarray(OPS[op](stored))
        facts = variant_facts(stored, orientation=orientation)["pdq_variants"]
        assert facts["original"] == pdq_of_array(displayed)[0], orientation
        for name in DIHEDRAL_VARIANTS:
            assert facts.get(name, facts["original"]) in facts.values()
            if name in facts:
                assert facts[name] == pdq_of_array(np.ascontiguousarray(OPS[name](displayed)))[0], (orientation, name)
        assert pdq_of_array(stored)[0] in facts.values()


def test_hex_of_dct_is_pdqhash_bit_order():
    img = np.asarray(synth_image(5, (321, 241)))
    blocks, _ = dihedral_dcts(img)
    assert hex_of_dct(blocks[(False, False, False)]) == pdq_of_array(img)[0]
