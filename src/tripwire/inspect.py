"""``tripwire inspect``'s output: the records of one file as Rich tables (computed by the pipeline)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .pipeline.inspect import inspect_file  # noqa: F401  TO BE DELETED AT MERGE: cli.py imports it from here
from .provenance.render import render_provenance
from .records import Record


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
