"""Write items.jsonl, items.csv and the triage report (report.html + report-pages/) for a case in one pass.

report.html is what a person triages from: the case in numbers, charts where a picture reads faster than a
table (priority, provenance, AI tools, camera makes, banks, decisions), every bank match with its bank,
category, variant and distance, the decisions, generator series and near-duplicate clusters, and the first
page of the item list in priority order. The rest of the list is split into static pages of
:data:`PAGE_SIZE` items under ``report-pages/`` with an index of the priority bands, so a 100k-item case
opens instantly, needs no JavaScript and no network, and no page grows with the case. No media is embedded.

Files are written under temporary names and renamed into place, so an interrupted report never leaves a
half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, NamedTuple

from .. import __version__, csvsafe
from ..records import ItemRecord
from .html import render

if TYPE_CHECKING:
    from ..store.db import Database

#: CSV columns, stable: scripts depend on them. Long text (prompts) is truncated; items.jsonl has it all.
CSV_COLUMNS = [
    "path", "size", "media_type", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality",
    "error_code", "error_message", "provenance_label", "provenance_confidence", "provenance_tool",
    "prompt", "match_count", "priority", "priority_reason", "cluster",
    "item_id", "pdq_decode",
]
CSV_TEXT_LIMIT = 200
MAX_ERRORS_LISTED = 2000
#: items per page of the priority-ordered list (report.html shows the first page)
PAGE_SIZE = 250
#: matches and decisions listed in report.html (items.jsonl has them all)
MAX_TABLE_ROWS = 2000
#: bars per chart before the rest is folded into "other"
CHART_BARS = 12
PAGES_DIR = "report-pages"


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
class Bar:
    """One bar of a chart: a label, its count and its share of the largest bar (0..1, for the SVG width)."""

    label: str
    count: int
    share: float


def bars(counter: Counter, limit: int = CHART_BARS, ordered: bool = False) -> list[Bar]:
    """The ``limit`` largest counts as chart bars (in the counter's own order when ``ordered``), the rest
    folded into one ``other`` bar."""
    top = list(counter.items())[:limit] if ordered else counter.most_common(limit)
    rest = sum(counter.values()) - sum(n for _, n in top)
    rows = [(str(label), n) for label, n in top] + ([(f"other ({len(counter) - limit} more)", rest)] if rest else [])
    peak = max((n for _, n in rows), default=1) or 1
    return [Bar(label, n, n / peak) for label, n in rows]


class Row(NamedTuple):
    """One line of the priority-ordered item list (a tuple: a 100k-item case keeps 100k of these)."""

    priority: float
    item_id: int | None
    path: str
    media_type: str | None
    provenance: str | None
    reason: str | None
    matches: str | None
    cluster: int | None
    series: int | None
    decision: str | None


def _match_text(match: Mapping[str, Any]) -> str:
    """``known-list · category 1 (label) · pdq d=4 via rot90`` for one bank match."""
    text = str(match.get("bank") or "?")
    if match.get("category") is not None:
        text += f" · category {match['category']}"
        if match.get("category_label"):
            text += f" ({match['category_label']})"
    text += f" · {match.get('signal_type') or '?'}"
    if match.get("distance") is not None:
        text += f" d={match['distance']}"
    variant = match.get("variant")
    if variant and variant != "original":
        text += f" via {variant}"
    if match.get("negative"):
        text += " (allow-list)"
    return text


def _provenance_text(prov: Mapping[str, Any]) -> str | None:
    if not prov:
        return None
    text = str(prov.get("label") or "unknown")
    if prov.get("confidence"):
        text += f" ({prov['confidence']})"
    if prov.get("tool"):
        text += f" — {prov['tool']}"
    return text


def _shared(text: str | None) -> str | None:
    """One copy of a text many rows repeat (reasons, verdicts, match summaries): a 1M-item list stays small."""
    return sys.intern(text) if isinstance(text, str) else None


def _evidence(prov: Mapping[str, Any], source: str) -> Iterator[Mapping[str, Any]]:
    for entry in prov.get("evidence") or []:
        if isinstance(entry, dict) and entry.get("source") == source:
            yield entry


@dataclass
class Summary:
    """What report.html shows, gathered while the records stream past.

    ``decisions`` maps item ids to their latest human decision (``decision``, ``reviewer``, ``at``, ``note``);
    the report shows it next to each item, counts it and lists the decided items.
    """

    decisions: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    items: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_outcome: Counter = field(default_factory=Counter)
    by_error: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    #: generator / C2PA tool of items whose verdict is AI-generated or AI-edited
    by_ai_tool: Counter = field(default_factory=Counter)
    #: EXIF Make of items with camera evidence
    by_camera: Counter = field(default_factory=Counter)
    #: editing programs named in EXIF Software / XMP CreatorTool (editing evidence)
    by_editor: Counter = field(default_factory=Counter)
    by_priority: Counter = field(default_factory=Counter)
    by_bank: Counter = field(default_factory=Counter)
    by_category: Counter = field(default_factory=Counter)
    by_decision: Counter = field(default_factory=Counter)
    with_matches: int = 0
    match_count: int = 0
    #: (priority, item id, path, match) for the matches table, first MAX_TABLE_ROWS by priority
    match_rows: list[tuple[float, int | None, str, str, dict[str, Any]]] = field(default_factory=list)
    decided: list[dict[str, Any]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
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
        prov: Mapping[str, Any] = record.get("provenance") or {}
        if prov:
            label = prov.get("label")
            self.by_label[label] += 1
            if label in ("ai_generated", "ai_edited"):
                self.by_ai_tool[str(prov.get("tool") or "tool not named")] += 1
            for exif in _evidence(prov, "exif"):
                if exif.get("camera"):
                    self.by_camera[str(exif.get("make") or exif.get("model") or "make not recorded")] += 1
            editors = {str(e["editor"]) for source in ("exif", "xmp") for e in _evidence(prov, source) if e.get("editor")}
            self.by_editor.update(editors)
        priority = float(record.get("priority") or 0.0)
        self.by_priority[priority] += 1
        item_id = record.get("item_id")
        path = record["path"]
        matches = [m for m in record.get("matches") or [] if isinstance(m, dict)]
        if matches:
            self.with_matches += 1
            self.match_count += len(matches)
            for m in matches:
                self.by_bank[str(m.get("bank") or "?")] += 1
                self.by_category[str(m.get("category") if m.get("category") is not None else "none")] += 1
                self.match_rows.append((priority, item_id, path, record.get("priority_reason") or "", dict(m)))
            if len(self.match_rows) > 2 * MAX_TABLE_ROWS:  # keep the highest priorities, bounded
                self.match_rows.sort(key=lambda r: (-r[0], r[1] or 0))
                del self.match_rows[MAX_TABLE_ROWS:]
        decision = self.decisions.get(item_id) if isinstance(item_id, int) else None
        if decision is not None:
            self.by_decision[decision["decision"]] += 1
            self.decided.append({"item_id": item_id, "path": path, **decision})
        cluster = record.get("cluster")
        if cluster is not None:
            self.clusters.setdefault(cluster, []).append(path)
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
                entry["paths"].append(path)
        shown = "; ".join(_match_text(m) for m in matches[:3]) + (f"; +{len(matches) - 3} more" if len(matches) > 3 else "")
        self.rows.append(Row(priority, item_id, path, _shared(record.get("media_type")), _shared(_provenance_text(prov)),
                             _shared(record.get("priority_reason")), _shared(shown or None), cluster, series,
                             _shared(f"{decision['decision']} ({decision['reviewer']})" if decision else None)))


def _atomic_open(path: Path, newline: str | None = None):
    tmp = path.with_name(path.name + ".part")
    return tmp, open(tmp, "w", encoding="utf-8", newline=newline)


def _page_name(number: int) -> str:
    return f"items-{number:05d}.html"


def _bands(rows: list[Row], pages: int) -> list[dict[str, Any]]:
    """Which pages hold which priority: ``[{priority, items, first, last}]``, highest priority first."""
    bands: dict[float, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        page = i // PAGE_SIZE + 1
        band = bands.setdefault(row.priority, {"priority": row.priority, "items": 0, "first": page, "last": page,
                                               "reason": row.reason})
        band["items"] += 1
        band["last"] = page
    return list(bands.values())


def _write_pages(out: Path, rows: list[Row], context: dict[str, Any]) -> None:
    """Every page of the item list into report-pages/, swapped in whole (a shorter list leaves no stale page)."""
    final = out / PAGES_DIR
    tmp = out / (PAGES_DIR + ".part")
    old = out / (PAGES_DIR + ".old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir()
    pages = context["pages"]
    for number in range(1, pages + 1):
        chunk = rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        html = render("items_page.html.j2", page=number, rows=chunk, first_rank=(number - 1) * PAGE_SIZE + 1,
                      page_href=_page_name, home="../report.html", **context)
        (tmp / _page_name(number)).write_text(html, encoding="utf-8")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def write_reports(records: Iterable[ItemRecord], out: str | Path, case: str,
                  duplicates: Callable[[], list[dict]] | None = None,
                  extra: dict[str, Any] | None = None,
                  decisions: Mapping[int, Mapping[str, Any]] | None = None) -> Summary:
    """Stream ``records`` into items.jsonl and items.csv, then render the triage report from the summary.

    ``decisions``: item id -> latest human decision (see :func:`case_decisions`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(decisions=decisions or {})
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
    rows = sorted(summary.rows, key=lambda r: (-r.priority, r.item_id or 0, r.path))
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    common = {"case": case, "pages": pages, "total": len(rows), "page_size": PAGE_SIZE, "version": __version__,
              "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    _write_pages(out, rows, common)
    summary.match_rows.sort(key=lambda r: (-r[0], r[1] or 0))
    summary.decided.sort(key=lambda d: (str(d.get("at") or ""), d["item_id"]), reverse=True)
    html = render(
        "report.html.j2",
        summary=summary,
        duplicates=duplicates() if duplicates else [],
        clusters=sorted((paths for paths in summary.clusters.values() if len(paths) > 1), key=len, reverse=True),
        series=sorted((e for e in summary.series.values() if e["members"] > 1), key=lambda e: (-e["members"], e["id"])),
        max_errors=MAX_ERRORS_LISTED,
        max_rows=MAX_TABLE_ROWS,
        extra=extra or {},
        rows=rows[:PAGE_SIZE],
        first_rank=1,
        page=1,
        bands=_bands(rows, pages),
        page_href=lambda n: f"{PAGES_DIR}/{_page_name(n)}",
        charts={
            "priority": bars(Counter({f"{p:g}": n for p, n in sorted(summary.by_priority.items(), reverse=True)}),
                             limit=len(summary.by_priority), ordered=True),
            "label": bars(summary.by_label),
            "ai_tool": bars(summary.by_ai_tool),
            "camera": bars(summary.by_camera),
            "editor": bars(summary.by_editor),
            "bank": bars(summary.by_bank),
            "category": bars(summary.by_category),
            "decision": bars(summary.by_decision),
        },
        **common,
    )
    html_tmp = out / "report.html.part"
    html_tmp.write_text(html, encoding="utf-8")
    os.replace(html_tmp, out / "report.html")
    return summary


def case_decisions(db: Database, case_id: int) -> dict[int, dict[str, Any]]:
    """Item id -> the latest human decision (decision, reviewer, at, note, bank) of every decided item of a case."""
    from sqlalchemy import select

    from ..review.decisions import latest_decisions
    from ..review.models import Decision
    from ..store.models import ItemRow, iso

    with db.session() as s:
        decided = s.scalars(select(Decision.item_id).join(ItemRow, ItemRow.id == Decision.item_id)
                            .where(ItemRow.case_id == case_id).distinct())
        latest = latest_decisions(s, decided)
    return {item_id: {"decision": d.decision, "reviewer": d.reviewer, "at": iso(d.created_at), "note": d.note,
                      "bank": d.bank, "decision_id": d.id} for item_id, d in latest.items()}


def write_case_reports(db: Database, case_id: int, out: str | Path, case: str) -> Summary:
    """The case's reports from the database: its records, duplicate groups and decisions."""
    from ..store import queries

    return write_reports(queries.iter_records(db, case_id), out, case,
                         duplicates=lambda: queries.duplicate_groups(db, case_id),
                         decisions=case_decisions(db, case_id))
