"""``tripwire inspect``: the same record ``scan`` stores, for one file, computed in this process."""

from __future__ import annotations

from typing import Any

from .config import Config
from .media.walk import walk
from .pipeline.stages import default_stages
from .pipeline.worker import SourceProcessor, Task, new_record
from .record import Record, from_worker


def inspect_file(path: str, config: Config, db: Any | None = None) -> list[Record]:
    """Records for ``path`` (several for an archive: the archive first, then its members)."""
    raws: list[Record] = []

    def send(message: tuple) -> None:
        if message[0] == "record":
            raws.append(message[2])

    for source in walk([path]):
        if source.error is not None:
            raws.append(new_record(source.path, source.path, error=source.error))
        else:
            SourceProcessor(config).process(Task(0, source.path), send)
    records = [from_worker(raw) for raw in raws]
    stages = default_stages(config, db)
    for record in records:
        for stage in stages:
            stage.apply(record)
    records.sort(key=lambda r: (r["path"].count("!/"), r["path"]))
    return records
