"""PDQ, Meta's perceptual image hash: 256 bits as 64 hex, matched by Hamming distance within a radius.

An image offers more than its plain hash for matching: the hashes of its 8 rotations/flips and of the
image with its solid borders trimmed (:mod:`tripwire.signals.pdq_variants`). The labels say which pixel
operation maps the *query* onto the bank's picture: the :data:`~tripwire.signals.pdq_labels.DIHEDRAL_VARIANTS` names for the image as
given, ``unletterbox`` and ``unletterbox:<variant>`` for the trimmed image. Banks carry their own radius
and quality floor (``bank create --pdq-radius/--min-quality``, defaults 31 and 50, as ThreatExchange/HMA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ...config import ScanSettings
from ..pdq_labels import TRIMMED_LABELS, UNLETTERBOX
from .base import Query, SignalType

if TYPE_CHECKING:
    from ...config import BankSettings, Config
    from ...extractor import Extractor

class PdqSignal(SignalType):
    name = "pdq"
    aliases = ("hashpdq", "photopdq")
    te_name = "pdq"
    te_class_path = "threatexchange.signal_type.pdq.signal:PdqSignal"
    hma_name = "pdq"
    hma_content_types = ("photo",)
    display_name = "PDQ"
    matching = "distance"
    hex_length = 64
    radius = 31
    min_quality = 50

    def index_class(self) -> type:
        from ..index import PdqIndex

        return PdqIndex

    def radius_for(self, bank: Any) -> int:
        return int(bank.pdq_radius)

    def min_quality_for(self, bank: Any) -> int:
        return int(bank.min_quality)

    def queries(self, record: Mapping[str, Any], settings: "BankSettings") -> list[Query]:
        """The plain hash, the rotation/flip variants and the trimmed image's hashes, as ``settings`` allow."""
        quality = record.get("pdq_quality")
        trimmed_quality = record.get("pdq_unletterbox_quality")
        found: list[tuple[str, Any, Any]] = [("original", record.get("pdq"), quality)]
        variants = record.get("pdq_variants")
        for label, value in (variants.items() if isinstance(variants, dict) else ()):
            trimmed = label in TRIMMED_LABELS
            if (trimmed and not settings.unletterbox) or (
                    not settings.variants and label not in ("original", UNLETTERBOX)):
                continue
            found.append((label, value, trimmed_quality if trimmed else quality))
        if settings.unletterbox:
            found.append((UNLETTERBOX, record.get("pdq_unletterbox"), trimmed_quality))
        out = []
        for label, value, q in found:
            hex_ = self.valid(value) if isinstance(value, str) else None
            if hex_ is not None:
                out.append(Query(self.name, hex_, label, q))
        return out

    def extractor(self, config: "Config | None" = None) -> "Extractor":
        from ..pdq import PdqExtractor

        return PdqExtractor(decode_size=_decode_size(config))

    def extractors(self, config: "Config | None" = None) -> "list[Extractor]":
        """``pdq`` and the variants at the same decode size, so an item is decoded once for both."""
        from ..pdq_variants import PdqVariantsExtractor

        return [self.extractor(config), PdqVariantsExtractor(config, decode_size=_decode_size(config))]


def _decode_size(config: "Config | None") -> int | None:
    """The decode size ``[scan] pdq_decode`` selects (exact: full size)."""
    from ..pdq import DECODE_SIZES

    return DECODE_SIZES[ScanSettings.from_config(config).pdq_decode]
