"""Hash look-ups as a platform sends them: one signal type and value per hash, validated by its type.

``POST /v1/lookup``, HMA's ``/m/lookup`` and ``/m/raw_lookup`` and the bank CLI parse what they are given
here and ask :meth:`Matcher.lookup_many`, so a hash looked up and the same hash inside a scanned file get
the same answer.
"""

from __future__ import annotations

from typing import Any

from ..signals.registry import registry
from ..signals.types.base import Query


def parse_query(signal_type: str, value: str, quality: Any = None) -> Query:
    """A validated query; ValueError with a readable message otherwise."""
    st = registry.resolve(str(signal_type or ""))
    kind = registry.get(st) if st in registry else None
    if kind is None or kind.matching is None:
        raise ValueError(f"cannot look up {signal_type!r} hashes (supported: {', '.join(registry.names())})")
    v = kind.normalise(value)
    q = None
    if quality is not None:
        try:
            q = int(quality)
        except (TypeError, ValueError):
            raise ValueError(f"quality must be an integer 0-100, not {quality!r}") from None
        if not 0 <= q <= 100:
            raise ValueError("quality must be between 0 and 100")
    return Query(st, v, "original" if kind.matching == "distance" else None, q)
