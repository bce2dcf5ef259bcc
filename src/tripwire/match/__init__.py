"""Matching: exact digests and the perceptual (PDQ) index, near-duplicate clustering."""
