"""``tripwire inspect``: the same record ``scan`` stores, for one file, computed in this process."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..media.walk import walk
from ..records import ItemRecord, RawRecord, shown
from .pipeline import Pipeline, by_depth
from .worker import new_record


def inspect_file(path: str, config: Config, db: Any | None = None) -> list[ItemRecord]:
    """Records for ``path`` (several for an archive: the archive first, then its members)."""
    pipeline = Pipeline.from_config(config, db)
    raws: list[RawRecord] = []
    for source in walk([path]):
        if source.error is not None:
            raws.append(new_record(source.path, source.path, error=source.error))
        else:
            raws.extend(pipeline.extract(source.path))
    return [shown(flat) for flat in sorted((flat for _, flat, _ in pipeline.finish(raws)), key=by_depth)]
