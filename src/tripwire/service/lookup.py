"""Compatibility names for ``routes_api`` until it imports :mod:`tripwire.match.lookup` (delete at merge)."""

from __future__ import annotations

from typing import Any, Sequence

from ..match.lookup import parse_query
from ..match.matcher import Matcher, Query

__all__ = ["lookup_many", "parse_query"]


def lookup_many(matcher: Matcher, queries: Sequence[Query], *, check_enabled: bool = True) -> list[dict[str, Any]]:
    return matcher.lookup_many(queries, check_enabled=check_enabled)
