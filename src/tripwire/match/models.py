"""Tables of the series index (see :mod:`tripwire.match.series`): one row per series, one per examined item,
and the persisted LSH buckets that let a later scan find an item's series without re-reading the others.

* ``series``: the key fields (checkpoint key, LoRA set, a representative prompt template), seed range,
  member count, first and last time a member was added. ``block`` is the hash of checkpoint key + LoRA set.
* ``series_members``: item id -> series id (NULL: the item was examined and carries no generator facts, so
  it is never looked at again), its case, its seed and its template's MinHash signature.
* ``series_buckets``: (LSH bucket, series) -> the member whose band produced it. A new item's buckets are
  looked up here, so its cost does not grow with the number of items already assigned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, utcnow


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: sha256 (32 hex) of checkpoint key + LoRA set: the series' blocking key
    block: Mapped[str] = mapped_column(String(32), index=True)
    #: ``v2:<autov2>``, ``v1:<autov1>`` or ``name:<normalised name>`` (None: the metadata named no checkpoint)
    checkpoint: Mapped[str | None] = mapped_column(String(300), nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: ``[{"key": "v3:…"|"sha256:…"|"name:…", "name": str}]``, sorted by key
    loras: Mapped[list[Any]] = mapped_column(JSON)
    #: the first member's normalised prompt template (members are within the threshold of some member)
    template: Mapped[str] = mapped_column(Text)
    seed_min: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seed_max: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    members: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeriesMember(Base):
    __tablename__ = "series_members"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    #: NULL: examined, no generator facts (not a member of anything)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), nullable=True,
                                                  index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: MinHash signature of the prompt template (little-endian uint32 per permutation)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeriesBucket(Base):
    __tablename__ = "series_buckets"

    #: signed 64-bit hash of (block, band number, the band's MinHash values)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: indexed on its own too (migration 0008): a merge reads and deletes the folded series' buckets
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), primary_key=True, index=True)
    #: the member whose signature produced the bucket (its signature verifies a candidate)
    item_id: Mapped[int] = mapped_column(ForeignKey("series_members.item_id", ondelete="CASCADE"), index=True)
