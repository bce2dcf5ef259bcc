"""The extractor contract.

An extractor is a small object with a ``name``, a ``version``, the record keys it ``produces`` and
``extract(item) -> facts``. Facts are a JSON-serialisable dict; they are stored per content (SHA-256) under
the extractor's name and version, so every value in a report can be traced to the code that produced it and
recomputed when that code changes. The keys of the facts dict become top-level fields of the item record,
so each extractor declares the keys it owns: two extractors declaring the same key is an error when the
pipeline is built, and a key an extractor did not declare is refused (an ``extractor_error``) when it runs.

An extractor signals a per-item failure by raising :class:`tripwire.errors.ItemError`; the pipeline records
it and still runs the remaining extractors (a truncated JPEG still gets digests and EXIF). The default set
is composed in :mod:`tripwire.pipeline.extractors`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .media.item import Item

Facts = dict[str, Any]


@runtime_checkable
class Extractor(Protocol):
    name: str
    version: str

    @property
    def produces(self) -> tuple[str, ...]:
        """The record keys this extractor's facts may contain (and no other extractor's may)."""
        ...

    def extract(self, item: Item) -> Facts: ...
