"""Trade join: a post whose media is a member of a series (tripwire.match.series) inherits the series.

Posts carry hashes, not files. A media entry's ``sha256`` (or ``md5``) is looked up among the case
database's items; each series those items belong to is attached to the post (``series`` in posts.jsonl:
id, model, model hash, LoRAs) and becomes a shared ``series`` entity in the account graph, so two accounts
publishing outputs of the same creator's run — the same checkpoint, LoRAs and template — are linked even when
they never post the same file.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import select

from ..match.models import Series, SeriesMember
from ..signals.registry import registry
from ..store.db import Database
from ..store.models import ItemRow

SeriesLookup = Callable[[dict[str, Any]], list[dict[str, Any]]]


class DatabaseSeries:
    """Callable ``media -> [series]`` over a case database's series tables (results cached per hash)."""

    def __init__(self, db: Database, cache: int = 100_000) -> None:
        self.db = db
        self._cache: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._limit = cache

    def _lookup(self, kind: str, value: str) -> list[dict[str, Any]]:
        key = (kind, value)
        found = self._cache.get(key)
        if found is not None:
            return found
        column = ItemRow.sha256 if kind == "sha256" else None
        with self.db.session() as s:
            q = (select(Series).join(SeriesMember, SeriesMember.series_id == Series.id)
                 .join(ItemRow, ItemRow.id == SeriesMember.item_id))
            if column is not None:
                q = q.where(column == value)
            else:
                from ..store.models import Content

                q = q.join(Content, Content.sha256 == ItemRow.sha256).where(Content.md5 == value)
            rows = list(s.scalars(q.distinct().order_by(Series.id).limit(20)))
            found = [{"id": r.id, "model": r.model, "model_hash": r.model_hash,
                      "loras": [lo.get("name") for lo in (r.loras or []) if isinstance(lo, dict)],
                      "members": r.members} for r in rows]
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[key] = found
        return found

    def __call__(self, media: dict[str, Any]) -> list[dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for kind in ("sha256", "md5"):
            raw = media.get(kind)
            value = registry.get(kind).valid(raw) if isinstance(raw, str) else None
            if value:
                for entry in self._lookup(kind, value):
                    out.setdefault(entry["id"], entry)
                if out:
                    break
        return list(out.values())
