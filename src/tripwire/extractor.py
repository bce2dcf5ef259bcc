"""The extractor contract and the default set run by ``tripwire scan`` and ``tripwire inspect``.

An extractor is a small object with a ``name``, a ``version`` and ``extract(item) -> facts``. Facts are a
JSON-serialisable dict; they are stored per content (SHA-256) under the extractor's name and version, so
every value in a report can be traced to the code that produced it and recomputed when that code changes.
The keys of the facts dict become top-level fields of the item record, so each extractor owns distinct keys.

An extractor signals a per-item failure by raising :class:`tripwire.errors.ItemError`; the pipeline records
it and still runs the remaining extractors (a truncated JPEG still gets digests and EXIF).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .config import Config
from .media.item import Item

Facts = dict[str, Any]


@runtime_checkable
class Extractor(Protocol):
    name: str
    version: str

    def extract(self, item: Item) -> Facts: ...


def default_extractors(config: Config) -> list[Extractor]:
    """The extractors every scan runs, in order: digests and image size, then every registered signal
    type's extractors (each extractor once, by name), then provenance."""
    from .provenance.extractor import ProvenanceExtractor
    from .signals.digests import DigestExtractor
    from .signals.imageinfo import ImageInfoExtractor
    from .signals.registry import registry

    registry.configure(config)
    chosen: list[Extractor] = [DigestExtractor(), ImageInfoExtractor()]
    for signal_type in registry.all():
        for extractor in signal_type.extractors(config):
            if all(extractor.name != e.name for e in chosen):
                chosen.append(extractor)
    return [*chosen, ProvenanceExtractor(config)]
