"""VICS 2.0 case export (Project VIC / Griffeye / CAID) built on reviewed items.

Export (``tripwire export vics CASE > case.json``) writes one VICS case whose ``Media`` array has one Media per
unique file (SHA-256) of the case that carries a recorded human decision: ``MD5``/``SHA1`` (upper-case hex, as
VICS tools write them), ``MediaSize``, ``AlternativeHashes`` with ``PDQ`` and ``SHA256``, ``Category`` from
the decision (``[reporting.vics.categories]``, default confirmed_abuse 1 = CAM, ai_generated 3 = CGI/animation,
not_abuse 0 = non-pertinent), ``IsPrecategorized`` (true: a person categorised it before the export),
``MediaFiles`` with every path the file occurred at, and ``Tags`` carrying tripwire's decision, provenance label
and generator tool (``tripwire:provenance=ai_generated``, ``tripwire:tool=ComfyUI``) and, for a file in a
series (:mod:`tripwire.match.series`), ``tripwire:series=<id>`` (the database's series id, so every Media of
one creator's run can be grouped by that tag). Files nobody decided on
are not exported: an export to investigators is sharing, and sharing needs a human decision.

Import (the same shape read back) is :mod:`tripwire.review.vics_import`; both use the vocabulary in
:mod:`tripwire.review.vics`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Mapping

from .. import __version__
from ..records import PDQ_DRAFT_NOTE
from ..signals.registry import registry
from ..review.decisions import EXPORTABLE
from ..review.vics import IMPORT_NOTE, TAG_PREFIX, category_map, split_path
from ..store.db import Database
from .ncmec import MIN_PDQ_QUALITY
from .reviewed import ReviewedItem, reviewed_items

CONTEXT_CASES = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Cases"
#: more severe first: a file with conflicting decisions at different paths takes the most severe
_SEVERITY = ("confirmed_abuse", "ai_generated", "not_abuse")


def _imported(item: ReviewedItem) -> dict[str, Any]:
    """What an imported VICS file carried for the item (its ``vics`` field: tags, comments), or ``{}``."""
    vics = item.record.get("vics")
    return vics if isinstance(vics, dict) else {}


def _tags(group: list[ReviewedItem], decision: str) -> list[str]:
    tags = {f"{TAG_PREFIX}decision={decision}"}
    for item in group:
        provenance = item.record.get("provenance")
        label = provenance.get("label") if isinstance(provenance, dict) else None
        if label:
            tags.add(f"{TAG_PREFIX}provenance={label}")
        if item.provenance_tool:
            tags.add(f"{TAG_PREFIX}tool={item.provenance_tool}")
        series = item.record.get("series")
        if isinstance(series, int) and not isinstance(series, bool):
            tags.add(f"{TAG_PREFIX}series={series}")
        for tag in _imported(item).get("tags") or []:  # carried from an imported VICS file
            if (isinstance(tag, str) and tag.strip() and not tag.startswith(f"{TAG_PREFIX}decision=")
                    and not tag.startswith(f"{TAG_PREFIX}series=")):  # another database's series ids
                tags.add(tag.strip())
    return sorted(tags)


def exported_pdq(group: list[ReviewedItem]) -> ReviewedItem | None:
    """The item whose PDQ the file's Media carries (the first of quality >= MIN_PDQ_QUALITY), if any."""
    return next((i for i in group if i.pdq and (i.pdq_quality is None or i.pdq_quality >= MIN_PDQ_QUALITY)), None)


def media_of(number: int, group: list[ReviewedItem], categories: Mapping[str, int]) -> dict[str, Any]:
    """The VICS Media object for one unique file (all its paths in ``group``)."""
    decisions = {i.decision.decision for i in group}
    decision = next(d for d in _SEVERITY if d in decisions)
    first = group[0]
    media: dict[str, Any] = {"MediaID": number}
    category = categories.get(decision)
    if category is not None:
        media["Category"] = category
    media["IsPrecategorized"] = category is not None
    md5 = next((i.md5 for i in group if i.md5), None)
    sha1 = next((i.sha1 for i in group if i.sha1), None)
    if md5:
        media["MD5"] = md5.upper()
    if sha1:
        media["SHA1"] = sha1.upper()
    size = next((i.size for i in group if i.size is not None), None)
    if size is not None:
        media["MediaSize"] = size
    alternatives = []
    pdq = exported_pdq(group)
    if pdq is not None and pdq.pdq:
        alternatives.append({"HashName": registry.display_name("pdq"), "HashValue": pdq.pdq})
    if first.sha256:
        alternatives.append({"HashName": registry.display_name("sha256"), "HashValue": first.sha256})
    if alternatives:
        media["AlternativeHashes"] = alternatives
    media["MediaFiles"] = [split_path(p) for p in sorted({i.path for i in group})]
    media["Tags"] = _tags(group, decision)
    notes_set = {i.decision.note.strip() for i in group
                 if i.decision.note and i.decision.note.strip() and not i.decision.note.startswith(IMPORT_NOTE)}
    for item in group:  # comments carried from an imported VICS file
        comments = _imported(item).get("comments")
        if isinstance(comments, str) and comments.strip():
            notes_set.add(comments.strip())
    notes = sorted(notes_set)
    if len(decisions) > 1:
        notes.insert(0, "tripwire: paths of this file carry different decisions (" + ", ".join(sorted(decisions)) + ")")
    if pdq is not None and pdq.pdq_draft:
        notes.insert(0, f"tripwire: PDQ {PDQ_DRAFT_NOTE}")
    if notes:
        media["Comments"] = " | ".join(notes)
    return media


@dataclass
class VicsExport:
    case: str
    media: int = 0
    files: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    #: Media whose PDQ comes from the draft decode (their Comments say so)
    draft_pdq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_case(db: Database, case: str, out: IO[str], config: Any = None) -> VicsExport:
    """Write ``case`` as a VICS 2.0 case (one Media per unique decided file) to ``out``."""
    categories = category_map(config)
    with db.session() as s:
        items = reviewed_items(s, case=case, allowed=EXPORTABLE)
    groups: dict[str, list[ReviewedItem]] = {}
    for item in items:
        groups.setdefault(item.sha256 or item.md5 or f"item:{item.item_id}", []).append(item)
    summary = VicsExport(case)
    header = {
        "CaseID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire-case:{case}")),
        "CaseNumber": case,
        "SourceApplicationName": "tripwire",
        "SourceApplicationVersion": __version__,
        "DateCreated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    out.write("{\n")
    out.write(f'"@odata.context": {json.dumps(CONTEXT_CASES)},\n')
    out.write('"value": [\n')
    head = json.dumps(header, ensure_ascii=False)
    out.write(head[:-1] + ', "Media": [')
    for number, (_, group) in enumerate(sorted(groups.items(), key=lambda kv: min(i.item_id for i in kv[1])), 1):
        media = media_of(number, group, categories)
        out.write(",\n" if number > 1 else "\n")
        out.write(json.dumps(media, ensure_ascii=False, separators=(",", ":")))
        summary.media += 1
        summary.files += len(media["MediaFiles"])
        key = str(media.get("Category", "none"))
        summary.by_category[key] = summary.by_category.get(key, 0) + 1
        pdq = exported_pdq(group)
        if pdq is not None and pdq.pdq_draft:
            summary.draft_pdq += 1
    out.write("\n]}\n]\n}\n")
    return summary
