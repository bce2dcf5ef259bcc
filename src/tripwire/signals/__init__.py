"""Signals computed from content: cryptographic digests and perceptual hashes."""
