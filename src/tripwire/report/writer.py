"""Write items.jsonl, items.csv and report.html for a case in one streaming pass over its records.

Files are written under temporary names and renamed into place, so an interrupted report never leaves a
half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .. import __version__, csvsafe
from ..records import ItemRecord
from .html import render

#: CSV columns, stable: scripts depend on them. Long text (prompts) is truncated; items.jsonl has it all.
CSV_COLUMNS = [
    "path", "size", "media_type", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality",
    "error_code", "error_message", "provenance_label", "provenance_confidence", "provenance_tool",
    "prompt", "match_count", "priority", "priority_reason", "cluster",
    "item_id",
]
CSV_TEXT_LIMIT = 200
MAX_ERRORS_LISTED = 2000


def _truncate(value: Any, limit: int = CSV_TEXT_LIMIT) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def csv_row(record: ItemRecord) -> dict[str, Any]:
    error: Mapping[str, Any] = record.get("error") or {}
    prov: Mapping[str, Any] = record.get("provenance") or {}
    generator: Mapping[str, Any] = record.get("generator") or {}
    matches = record.get("matches")
    row = {key: record.get(key) for key in CSV_COLUMNS if key in record}
    row.update(
        error_code=error.get("code"),
        error_message=_truncate(error.get("message")),
        provenance_label=prov.get("label"),
        provenance_confidence=prov.get("confidence"),
        provenance_tool=prov.get("tool"),
        prompt=_truncate(generator.get("prompt")),
        match_count=len(matches) if isinstance(matches, list) else None,
        priority_reason=_truncate(record.get("priority_reason")),
    )
    return row


@dataclass
class Summary:
    """What report.html shows, gathered while the records stream past."""

    items: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_outcome: Counter = field(default_factory=Counter)
    by_error: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    with_matches: int = 0
    match_count: int = 0
    clusters: dict[Any, list[str]] = field(default_factory=dict)
    #: series id -> {members, model, loras, template (first member's prompt), paths (first 50)}
    series: dict[Any, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, record: ItemRecord) -> None:
        self.items += 1
        self.by_type[record.get("media_type") or "unknown"] += 1
        error = record.get("error")
        self.by_outcome["error" if error else "ok"] += 1
        if error:
            self.by_error[error.get("code")] += 1
            if len(self.errors) < MAX_ERRORS_LISTED:
                self.errors.append({"path": record["path"], "code": error.get("code"), "message": error.get("message")})
        prov = record.get("provenance")
        if prov:
            self.by_label[prov.get("label")] += 1
        matches = record.get("matches") or []
        if matches:
            self.with_matches += 1
            self.match_count += len(matches)
        cluster = record.get("cluster")
        if cluster is not None:
            self.clusters.setdefault(cluster, []).append(record["path"])
        series = record.get("series")
        if series is not None:
            entry = self.series.get(series)
            if entry is None:
                gen: Mapping[str, Any] = record.get("generator") or {}
                loras = gen.get("loras")
                entry = self.series[series] = {
                    "id": series, "members": 0, "model": gen.get("model"), "paths": [],
                    "prompt": _truncate(gen.get("prompt")),
                    "loras": [str(x.get("name")) for x in loras if isinstance(x, dict)] if isinstance(loras, list) else []}
            entry["members"] += 1
            if len(entry["paths"]) < 50:
                entry["paths"].append(record["path"])


def _atomic_open(path: Path, newline: str | None = None):
    tmp = path.with_name(path.name + ".part")
    return tmp, open(tmp, "w", encoding="utf-8", newline=newline)


def write_reports(records: Iterable[ItemRecord], out: str | Path, case: str,
                  duplicates: Callable[[], list[dict]] | None = None,
                  extra: dict[str, Any] | None = None) -> Summary:
    """Stream ``records`` into items.jsonl and items.csv, then render report.html from the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    jsonl_tmp, jsonl = _atomic_open(out / "items.jsonl")
    csv_tmp, csv_fh = _atomic_open(out / "items.csv", newline="")
    with jsonl, csv_fh:
        writer = csvsafe.DictWriter(csv_fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            jsonl.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            writer.writerow(csv_row(record))
            summary.add(record)
    os.replace(jsonl_tmp, out / "items.jsonl")
    os.replace(csv_tmp, out / "items.csv")
    html = render(
        "report.html.j2",
        case=case,
        summary=summary,
        duplicates=duplicates() if duplicates else [],
        clusters=sorted((paths for paths in summary.clusters.values() if len(paths) > 1), key=len, reverse=True),
        series=sorted((e for e in summary.series.values() if e["members"] > 1), key=lambda e: (-e["members"], e["id"])),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=__version__,
        max_errors=MAX_ERRORS_LISTED,
        extra=extra or {},
    )
    html_tmp = out / "report.html.part"
    html_tmp.write_text(html, encoding="utf-8")
    os.replace(html_tmp, out / "report.html")
    return summary
