"""The base of the cryptographic digest types: exact match by value, computed by the digest extractor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import SignalType

if TYPE_CHECKING:
    from ...config import Config
    from ...extractor import Extractor


class DigestSignal(SignalType):
    """A file digest: hex of a fixed length, matched exactly (a byte-identical file)."""

    matching = "exact"

    def extractor(self, config: "Config | None" = None) -> "Extractor":
        from ..digests import DigestExtractor

        return DigestExtractor()
