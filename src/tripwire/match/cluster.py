"""Near-duplicate clusters within a case: the same picture saved, resized, re-encoded, rotated or padded.

An analyst reviewing a seized device sees the same image dozens of times in different sizes and formats;
grouping them means one decision per picture instead of one per file. Two items are linked when their
contents are identical (same SHA-256) or when their PDQ hashes are within ``radius`` bits of each other —
comparing each item's 8 dihedral variants and its unletterboxed hash against every other item's hash, so
a rotated or letterboxed copy joins its original. Clusters are the connected components of those links
(so a chain of small edits forms one cluster), computed with the same exact :class:`PdqIndex` the matcher
uses. Hashes below ``min_quality`` (flat, nearly featureless images) do not link: they collide too easily.

Each item's ``cluster`` is an integer (1 = the largest cluster) or null when the item has no near-duplicate
in the case; :func:`assign_case_clusters` stores it in the items' stage data, where items.jsonl, items.csv
and report.html pick it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sqlalchemy import select, update

from ..config import Config
from ..records import ItemRecord
from ..store.db import Database
from ..store.models import Content, Fact, ItemRow
from ..signals.index import PdqIndex, hex_to_codes

DEFAULT_RADIUS = 31
DEFAULT_MIN_QUALITY = 50
#: units whose queries are searched in one pass
_BATCH = 2048
_CHUNK = 500


@dataclass
class ClusterUnit:
    """One distinct content: its hashes and how many items carry it."""

    key: str
    pdq: str | None = None
    quality: int | None = None
    #: extra hashes to query with (dihedral variants, unletterboxed hash)
    queries: list[str] = field(default_factory=list)
    items: int = 1


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


def cluster_units(units: Sequence[ClusterUnit], radius: int = DEFAULT_RADIUS,
                  min_quality: int = DEFAULT_MIN_QUALITY) -> list[list[int]]:
    """Groups of unit indices (largest first) whose units are near-duplicates; units with several items
    are a group on their own. Units in no group are left out."""
    n = len(units)
    uf = _UnionFind(n)
    eligible = [i for i, u in enumerate(units)
                if u.pdq and len(u.pdq) == 64 and (u.quality is None or u.quality >= min_quality)]
    if len(eligible) > 1:
        index = PdqIndex()
        index.add(np.array(eligible, dtype=np.int64), hex_to_codes([units[i].pdq for i in eligible]))  # type: ignore[misc]
        for start in range(0, len(eligible), _BATCH):
            owners: list[int] = []
            hexes: list[str] = []
            for i in eligible[start : start + _BATCH]:
                seen = set()
                for h in [units[i].pdq, *units[i].queries]:
                    if h and len(h) == 64 and h not in seen:
                        seen.add(h)
                        owners.append(i)
                        hexes.append(h.lower())
            qrows, ids, _dists = index.search_arrays(hex_to_codes(hexes), radius)
            for qrow, other in zip(qrows.tolist(), ids.tolist()):
                owner = owners[qrow]
                if owner != other:
                    uf.union(owner, other)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    out = [g for g in groups.values() if len(g) > 1 or units[g[0]].items > 1]
    out.sort(key=lambda g: (-sum(units[i].items for i in g), min(units[i].key for i in g)))
    return out


@dataclass
class ClusterSummary:
    clusters: int = 0
    clustered_items: int = 0
    largest: int = 0
    updated: int = 0
    seconds: float = 0.0


def settings(config: Config | None) -> tuple[int, int]:
    """(radius, min_quality) from ``[cluster]`` in the configuration."""
    section = ((config.sections if config else {}) or {}).get("cluster") or {}
    return int(section.get("radius", DEFAULT_RADIUS)), int(section.get("min_quality", DEFAULT_MIN_QUALITY))


def assign_case_clusters(db: Database, case_id: int, config: Config | None = None, *,
                         radius: int | None = None, min_quality: int | None = None) -> ClusterSummary:
    """Cluster a case's items and store each item's ``cluster`` (int or null) in its stage data.

    Only items whose cluster changed are rewritten, so re-running after adding a few files is cheap.
    """
    started = time.monotonic()
    cfg_radius, cfg_quality = settings(config)
    radius = cfg_radius if radius is None else radius
    min_quality = cfg_quality if min_quality is None else min_quality
    unit_of_sha: dict[str, int] = {}
    units: list[ClusterUnit] = []
    item_ids: list[int] = []
    item_units: list[int] = []  # -1: no content (error before hashing): never clustered
    current: list[Any] = []
    q = (select(ItemRow.id, ItemRow.sha256, ItemRow.stage_data, Content.pdq, Content.pdq_quality)
         .outerjoin(Content, Content.sha256 == ItemRow.sha256)
         .where(ItemRow.case_id == case_id).order_by(ItemRow.id))
    with db.engine.connect() as conn:
        for item_id, sha, stage_data, pdq, quality in conn.execution_options(stream_results=True, yield_per=5000).execute(q):
            item_ids.append(item_id)
            current.append((stage_data or {}).get("cluster") if isinstance(stage_data, dict) else None)
            if sha is None:
                item_units.append(-1)
                continue
            u = unit_of_sha.get(sha)
            if u is None:
                u = unit_of_sha[sha] = len(units)
                units.append(ClusterUnit(sha, pdq, quality, items=0))
            units[u].items += 1
            item_units.append(u)
        vq = (select(Fact.sha256, Fact.data).where(Fact.extractor == "pdq_variants")
              .where(Fact.sha256.in_(select(ItemRow.sha256).where(ItemRow.case_id == case_id))))
        for sha, data in conn.execution_options(stream_results=True, yield_per=5000).execute(vq):
            u = unit_of_sha.get(sha)
            if u is None or not isinstance(data, dict):
                continue
            extra = [h for h in (data.get("pdq_variants") or {}).values() if isinstance(h, str)]
            if data.get("pdq_unletterbox"):
                extra.append(data["pdq_unletterbox"])
            units[u].queries = extra
    groups = cluster_units(units, radius, min_quality)
    cluster_of_unit: dict[int, int] = {}
    summary = ClusterSummary(clusters=len(groups))
    for number, group in enumerate(groups, start=1):
        size = sum(units[i].items for i in group)
        summary.clustered_items += size
        summary.largest = max(summary.largest, size)
        for i in group:
            cluster_of_unit[i] = number
    changed: dict[int, int | None] = {}
    for item_id, u, old in zip(item_ids, item_units, current):
        new = cluster_of_unit.get(u) if u >= 0 else None
        if new != old:
            changed[item_id] = new
    ids = list(changed)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        with db.session() as s:
            for item_id, stage_data in s.execute(select(ItemRow.id, ItemRow.stage_data).where(ItemRow.id.in_(chunk))).all():
                data = dict(stage_data or {})
                data["cluster"] = changed[item_id]
                s.execute(update(ItemRow).where(ItemRow.id == item_id).values(stage_data=data))
    summary.updated = len(ids)
    summary.seconds = time.monotonic() - started
    return summary


class ClusterStage:
    """Pipeline stage: every new record starts with ``cluster: null``; :func:`assign_case_clusters` fills
    it in once the whole case is known (at the end of ``tripwire scan``)."""

    name = "cluster"

    def apply(self, record: ItemRecord) -> None:
        record.setdefault("cluster", None)
