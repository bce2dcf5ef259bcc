"""Provenance: is an image AI-generated, AI-edited or a camera original, and which evidence says so."""
