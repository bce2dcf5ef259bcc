"""Media in posts matched against the case database's banks, with the same matcher ``tripwire scan`` uses.

Posts carry hashes, not files (``media[] {sha256?, md5?, pdq?}``): exact digests and the one PDQ hash the
feed supplies are looked up in the named banks, with each bank's radius, quality floor and allow-lists, so
a feed and a media scan can never disagree about what is known.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from ..errors import UsageError
from ..match.matcher import Matcher, PdqQuery

_HEX = re.compile(r"^[0-9a-fA-F]+$")
MediaMatcher = Callable[[dict[str, Any]], list[dict[str, Any]]]


class DatabaseBankMatcher:
    """Callable ``media -> [match]`` over the named banks of a case database."""

    def __init__(self, matcher: Matcher, banks: Iterable[str]) -> None:
        self.matcher = matcher
        matcher.open()
        known = {b.name for b in matcher.banks.values()}
        self.names = set(banks)
        missing = sorted(self.names - known)
        if missing:
            raise UsageError(f"no bank named {', '.join(missing)} in the database (banks: {', '.join(sorted(known)) or 'none'})")
        self.counts = {name: "database" for name in sorted(self.names)}

    def __call__(self, media: dict[str, Any]) -> list[dict[str, Any]]:
        digests = {t: media[t].strip().lower() for t in ("md5", "sha1", "sha256")
                   if isinstance(media.get(t), str) and _HEX.match(media[t].strip())}
        queries = []
        pdq = media.get("pdq")
        if isinstance(pdq, str) and len(pdq) == 64 and _HEX.match(pdq):
            quality = media.get("pdq_quality")
            queries.append(PdqQuery("original", pdq.lower(), quality if isinstance(quality, int) else None))
        if not digests and not queries:
            return []
        result = self.matcher.match(digests, queries)
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
