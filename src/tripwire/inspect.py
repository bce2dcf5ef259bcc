"""``tripwire inspect``: the same record ``scan`` stores, for one file, computed in this process."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .config import Config
from .media.walk import walk
from .pipeline.stages import default_stages
from .pipeline.worker import SourceProcessor, Task, new_record
from .provenance.render import render_provenance
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


def _fmt(value: Any) -> str:
    return "—" if value is None else str(value)


def render(records: list[Record], console: Console) -> None:
    for record in records:
        if record.get("provenance"):
            render_provenance(record, console)  # the verdict and its evidence first
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        error = record.get("error")
        for key in ("path", "media_type", "size", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality"):
            table.add_row(key, _fmt(record.get(key)))
        table.add_row("error", f"[red]{error['code']}[/]: {error['message']}" if error else "none")
        if "priority" in record:
            table.add_row("priority", f"{record.get('priority')} ({record.get('priority_reason')})")
        if "matches" in record:
            table.add_row("matches", str(len(record.get("matches") or [])))
        console.print(table)
        console.print()
