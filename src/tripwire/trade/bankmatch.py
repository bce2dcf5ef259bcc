"""Media in posts matched against banks, with the same matcher ``tripwire scan`` uses.

Posts carry hashes, not files (``media[] {sha256?, md5?, pdq?, pdq_quality?}``). Every value whose key is
a matchable signal type is looked up in the named banks, with each bank's radius, quality floor and
allow-lists, so a feed and a media scan can never disagree about what is known. The banks are a case
database's (``--bank``) or hash-list files loaded into memory (``--banks``, :mod:`tripwire.trade.hashlists`).

A *media matcher* is any callable ``media dict -> list of match dicts`` (``bank``, ``signal_type``,
``value``, ``distance``, ``category``, ``entry_id``): what :class:`tripwire.trade.posts.PostAnalyzer` asks.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..errors import UsageError
from ..match.matcher import Matcher, Query
from ..signals.registry import registry

MediaMatcher = Callable[[dict[str, Any]], list[dict[str, Any]]]


def media_queries(media: dict[str, Any]) -> list[Query]:
    """The well-formed values of a post's media entry, with ``<type>_quality`` where the feed gives one."""
    out = []
    for kind in registry.matchable():
        value = media.get(kind.name)
        value = kind.valid(value) if isinstance(value, str) else None
        if value is None:
            continue
        quality = media.get(f"{kind.name}_quality")
        quality = int(quality) if isinstance(quality, (int, float)) and not isinstance(quality, bool) else None
        out.append(Query(kind.name, value, "original" if kind.matching == "distance" else None, quality))
    return out


class BankMediaMatcher:
    """Callable ``media -> [match]`` over the named banks of a matcher's database."""

    def __init__(self, matcher: Matcher, banks: Iterable[str], counts: dict[str, Any] | None = None) -> None:
        self.matcher = matcher
        matcher.open()
        known = {b.name for b in matcher.banks.values()}
        self.names = set(banks)
        missing = sorted(self.names - known)
        if missing:
            raise UsageError(f"no bank named {', '.join(missing)} in the database (banks: {', '.join(sorted(known)) or 'none'})")
        self.counts = counts if counts is not None else {name: "database" for name in sorted(self.names)}

    def __call__(self, media: dict[str, Any]) -> list[dict[str, Any]]:
        queries = media_queries(media)
        if not queries:
            return []
        result = self.matcher.match_queries(queries)
        return [{"bank": m["bank"], "signal_type": m["signal_type"], "value": m.get("value"),
                 "distance": m["distance"], "category": m.get("category"), "entry_id": m.get("entry_id")}
                for m in result.matches if m["bank"] in self.names]



class CombinedMatcher:
    """Several media matchers (hash-list files and database banks) as one."""

    def __init__(self, matchers: list[Any]) -> None:
        self.matchers = matchers
        self.counts = {k: v for m in matchers for k, v in getattr(m, "counts", {}).items()}

    def __call__(self, media: dict[str, Any]) -> list[dict[str, Any]]:
        return [hit for m in self.matchers for hit in m(media)]
