"""The extractors every scan runs, and the check that their declared facts do not overlap.

Each extractor's facts become top-level fields of the item record. Two extractors writing the same key
would silently overwrite each other in whichever order they ran, so the keys are declared
(``Extractor.produces``) and checked when a pipeline is built, before any file is read.
"""

from __future__ import annotations

from typing import Sequence

from ..config import Config
from ..errors import UsageError
from ..extractor import Extractor


def default_extractors(config: Config) -> list[Extractor]:
    """The extractors every scan runs, in order: digests and image size, then every registered signal
    type's extractors (each extractor once, by name), then provenance."""
    from ..provenance.extractor import ProvenanceExtractor
    from ..signals.digests import DigestExtractor
    from ..signals.imageinfo import ImageInfoExtractor
    from ..signals.registry import registry

    registry.configure(config)
    chosen: list[Extractor] = [DigestExtractor(), ImageInfoExtractor()]
    for signal_type in registry.all():
        for extractor in signal_type.extractors(config):
            if all(extractor.name != e.name for e in chosen):
                chosen.append(extractor)
    return [*chosen, ProvenanceExtractor(config)]


def check_declarations(extractors: Sequence[Extractor]) -> None:
    """Refuse a set of extractors in which two declare the same fact key (or share a name)."""
    owners: dict[str, str] = {}
    names: set[str] = set()
    for extractor in extractors:
        if extractor.name in names:
            raise UsageError(f"two extractors are named {extractor.name!r}: facts are stored per extractor name")
        names.add(extractor.name)
        for key in extractor.produces:
            other = owners.setdefault(key, extractor.name)
            if other != extractor.name:
                raise UsageError(f"extractors {other!r} and {extractor.name!r} both declare the fact {key!r}: "
                                 "each record key must come from one extractor")
