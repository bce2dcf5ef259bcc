"""The investigator handover PDF (``tripwire report CASE --pdf``): what a case holds and how it was handled.

An investigator receiving a case needs to know, without opening any media and without tripwire: which files
were examined (paths and digests), what people decided about them (decision, reviewer, time, note, and every
earlier decision the latest one superseded), and whether that record can be trusted. So the document has:

* a case summary (items, sources, errors, media types, provenance verdicts, bank matches, decisions);
* the audit chain as verified when the PDF was made: events, whether the chain is intact, and its head hash.
  Every decision is listed with the sequence number and hash of the audit event that recorded it, so a copy
  of the audit trail (``tripwire audit verify``) ties each line of the PDF to the chain's head;
* the case manifest digest: SHA-256 over one line ``item_id<TAB>sha256<TAB>path`` per item in item-id order
  (``-`` where an item has no SHA-256), recomputable from items.csv, so the full item list handed over with
  the PDF can be checked against it;
* the chain of custody of every decided item: path, SHA-256, MD5, size, media type, the decision history,
  and who revealed its media in the console and when;
* bank-matched items still waiting for a decision.

No media, thumbnail or prompt is included. Every value read from a file or typed by a person is written
with control and bidi characters made visible (:func:`tripwire.termsafe.safe_text`), so a file name cannot
reorder or hide text in the document. Text needs a Unicode font: DejaVu Sans (found in the usual system
font folders, or ``[reporting.pdf] font``/``mono_font`` in the configuration); without one the PDF core
fonts are used and characters outside Latin-1 are written as ``\\uXXXX`` escapes (never dropped).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select

from .. import __version__
from ..errors import UsageError
from ..review import audit
from ..review.models import AuditEvent, Decision
from ..store import queries
from ..store.db import Database
from ..store.models import Case, Content, ItemRow, SourceRow, iso
from ..termsafe import safe_text

__all__ = ["Handover", "gather", "manifest_digest", "write_handover", "write_pdf"]

#: decided items whose full chain of custody is written (beyond it: counted, and listed in items.csv)
MAX_DECIDED = 20_000
#: matched-but-undecided items and scanned sources listed
MAX_LISTED = 2_000
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
             "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
_CHUNK = 500


@dataclass
class CustodyItem:
    """One decided item: what it is, and every decision on it, oldest first (the last one stands)."""

    item_id: int
    path: str
    sha256: str | None
    md5: str | None
    size: int | None
    media_type: str | None
    scanned_at: str | None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    reveals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Handover:
    case: str
    created_at: str | None
    generated_at: str
    prepared_by: str
    database: str
    items: int = 0
    errors: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    by_decision: Counter = field(default_factory=Counter)
    matched: int = 0
    manifest: str = ""
    sources: int = 0
    source_rows: list[dict[str, Any]] = field(default_factory=list)
    first_scan: str | None = None
    last_scan: str | None = None
    audit_ok: bool = False
    audit_events: int = 0
    audit_head: str = audit.GENESIS
    audit_problem: str | None = None
    custody: list[CustodyItem] = field(default_factory=list)
    decided: int = 0
    undecided_matches: list[dict[str, Any]] = field(default_factory=list)
    undecided_matched: int = 0


def manifest_digest(lines: Iterable[tuple[int, str | None, str]]) -> str:
    """SHA-256 over ``item_id\\tsha256\\tpath\\n`` per item, in the order given (item-id order)."""
    h = hashlib.sha256()
    for item_id, sha256, path in lines:
        h.update(f"{item_id}\t{sha256 or '-'}\t{path}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _database_name(db: Database) -> str:
    """The database as people may read it: the URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(str(db.engine.url)).render_as_string(hide_password=True)
    except Exception:
        return db.engine.url.get_backend_name()


def gather(db: Database, case: str, prepared_by: str) -> Handover:
    """Everything the handover states about ``case``, read from the database (no file is opened)."""
    with db.session() as s:
        row = s.scalar(select(Case).where(Case.name == case))
        if row is None:
            known = ", ".join(s.scalars(select(Case.name).order_by(Case.name))) or "none"
            raise UsageError(f"no case named {case!r} (cases: {known})")
        case_id, created = row.id, iso(row.created_at)
        verification = audit.verify(s)
        first, last = s.execute(select(func.min(ItemRow.scanned_at), func.max(ItemRow.scanned_at))
                                .where(ItemRow.case_id == case_id)).one()
        sources = list(s.scalars(select(SourceRow).where(SourceRow.case_id == case_id).order_by(SourceRow.path)))
    h = Handover(case=case, created_at=created, prepared_by=prepared_by, database=_database_name(db),
                 generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 audit_ok=verification.ok, audit_events=verification.events, audit_head=verification.head,
                 audit_problem=None if verification.ok else f"event {verification.first_bad_seq}: {verification.problem}",
                 first_scan=iso(first), last_scan=iso(last), sources=len(sources))
    h.source_rows = [{"path": r.path, "items": r.item_count, "finished_at": iso(r.finished_at)} for r in sources[:MAX_LISTED]]

    lines: list[tuple[int, str | None, str]] = []
    matched: dict[int, dict[str, Any]] = {}
    for record in queries.iter_records(db, case_id):
        item_id = int(record["item_id"])
        h.items += 1
        lines.append((item_id, record.get("sha256"), record["path"]))
        if record.get("error"):
            h.errors += 1
        h.by_type[record.get("media_type") or "unknown"] += 1
        prov = record.get("provenance")
        if isinstance(prov, dict):
            h.by_label[str(prov.get("label") or "unknown")] += 1
        matches = [m for m in record.get("matches") or [] if isinstance(m, dict) and not m.get("negative")]
        if matches:
            h.matched += 1
            matched[item_id] = {"item_id": item_id, "path": record["path"], "sha256": record.get("sha256"),
                                "matches": "; ".join(f"{m.get('bank')} category {m.get('category') or '-'} "
                                                     f"{m.get('signal_type')} d={m.get('distance')}" for m in matches[:3])}
    h.manifest = manifest_digest(lines)
    _custody(db, case_id, h)
    decided = {c.item_id for c in h.custody}
    waiting = [m for i, m in sorted(matched.items()) if i not in decided]
    h.undecided_matched = len(waiting)
    h.undecided_matches = waiting[:MAX_LISTED]
    return h


def _custody(db: Database, case_id: int, h: Handover) -> None:
    """Every decision on the case's items, grouped per item, with the audit event that recorded each."""
    with db.session() as s:
        decided_ids = list(s.scalars(select(Decision.item_id).join(ItemRow, ItemRow.id == Decision.item_id)
                                     .where(ItemRow.case_id == case_id).distinct().order_by(Decision.item_id)))
        h.decided = len(decided_ids)
        for start in range(0, min(len(decided_ids), MAX_DECIDED), _CHUNK):
            chunk = decided_ids[start : min(start + _CHUNK, MAX_DECIDED)]
            subjects = [f"item:{i}" for i in chunk]
            recorded: dict[int, AuditEvent] = {}
            reveals: dict[str, list[dict[str, Any]]] = {}
            for ev in s.scalars(select(AuditEvent).where(AuditEvent.subject.in_(subjects),
                                                         AuditEvent.kind.in_(("decision", "media.reveal")))
                                .order_by(AuditEvent.seq)):
                if ev.kind == "decision" and isinstance(ev.data, dict) and isinstance(ev.data.get("decision_id"), int):
                    recorded[ev.data["decision_id"]] = ev
                elif ev.kind == "media.reveal" and ev.subject:
                    reveals.setdefault(ev.subject, []).append({"actor": ev.actor, "at": ev.at, "seq": ev.seq})
            items = {r.id: r for r in s.scalars(select(ItemRow).where(ItemRow.id.in_(chunk)))}
            shas = {r.sha256 for r in items.values() if r.sha256}
            md5s = {sha: md5 for sha, md5 in s.execute(select(Content.sha256, Content.md5).where(Content.sha256.in_(shas)))}
            history: dict[int, list[Decision]] = {}
            for d in s.scalars(select(Decision).where(Decision.item_id.in_(chunk)).order_by(Decision.id)):
                history.setdefault(d.item_id, []).append(d)
            for item_id in chunk:
                r = items[item_id]
                entry = CustodyItem(item_id, r.path, r.sha256, md5s.get(r.sha256 or ""), r.size, r.media_type,
                                    iso(r.scanned_at), reveals=reveals.get(f"item:{item_id}", []))
                for d in history.get(item_id, []):
                    event = recorded.get(d.id)
                    entry.decisions.append({"id": d.id, "decision": d.decision, "reviewer": d.reviewer,
                                            "at": iso(d.created_at), "note": d.note, "bank": d.bank,
                                            "audit_seq": event.seq if event else None,
                                            "audit_hash": event.hash if event else None})
                if entry.decisions:
                    h.by_decision[entry.decisions[-1]["decision"]] += 1
                h.custody.append(entry)


# -- the document ----------------------------------------------------------------------------------------


def _find_font(name: str, configured: str | None) -> str | None:
    if configured:
        if not Path(configured).is_file():
            raise UsageError(f"[reporting.pdf] font file not found: {configured}")
        return configured
    for folder in FONT_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    return None


class _Document:
    """fpdf2 with the two fonts the handover uses and text made safe for both."""

    def __init__(self, title: str, settings: Mapping[str, Any]) -> None:
        from fpdf import FPDF

        document = self

        class _Pages(FPDF):
            def footer(self) -> None:  # every page says what it is part of
                self.set_y(-11)
                self.set_font(document.sans, "", 7.5)
                self.cell(0, 4, document.text(f"{title} — page {self.page_no()} of {{nb}}", document.sans), align="C")

        pdf = _Pages(orientation="portrait", unit="mm", format="A4")
        pdf.set_auto_page_break(True, margin=15)
        pdf.set_margins(15, 15, 15)
        pdf.set_title(title)
        pdf.set_creator(f"tripwire {__version__}")
        sans = _find_font("DejaVuSans.ttf", settings.get("font"))
        mono = _find_font("DejaVuSansMono.ttf", settings.get("mono_font"))
        bold = _find_font("DejaVuSans-Bold.ttf", None) if sans and not settings.get("font") else None
        self.unicode = bool(sans and mono)
        if self.unicode:
            pdf.add_font("body", "", sans)
            pdf.add_font("body", "B", bold or sans)
            pdf.add_font("mono", "", mono)
            self.glyphs = {name: set(getattr(pdf.fonts[name], "cmap", None) or ()) for name in ("body", "mono")}
            self.sans, self.mono = "body", "mono"
        else:
            self.glyphs = {}
            self.sans, self.mono = "helvetica", "courier"
        self.pdf = pdf
        pdf.add_page()

    def text(self, value: Any, font: str) -> str:
        """``value`` with controls and bidi marks visible, and any character the font lacks as ``\\uXXXX``."""
        text = safe_text("" if value is None else value)
        if self.unicode:
            glyphs = self.glyphs["mono" if font == self.mono else "body"]
            ok = lambda ch: ord(ch) in glyphs or ch == " "  # noqa: E731
        else:
            ok = lambda ch: ord(ch) < 256  # noqa: E731
        return "".join(ch if ok(ch) else f"\\u{ord(ch):04x}" for ch in text)

    def heading(self, text: str, size: float = 13) -> None:
        self.pdf.ln(2)
        self.pdf.set_font(self.sans, "B", size)
        self.pdf.multi_cell(0, size * 0.5, self.text(text, self.sans), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def para(self, text: str, size: float = 9.5) -> None:
        self.pdf.set_font(self.sans, "", size)
        self.pdf.multi_cell(0, 4.6, self.text(text, self.sans), align="L", new_x="LMARGIN", new_y="NEXT")

    def fields(self, rows: Iterable[tuple[str, Any, bool]], label_w: float = 38) -> None:
        """Label/value lines; a value marked ``True`` is set in the monospace font (digests, paths)."""
        for label, value, mono in rows:
            self.pdf.set_font(self.sans, "B", 8.5)
            self.pdf.cell(label_w, 4.4, self.text(label, self.sans))
            font = self.mono if mono else self.sans
            self.pdf.set_font(font, "", 8 if mono else 8.5)
            self.pdf.multi_cell(0, 4.4, self.text("—" if value in (None, "") else value, font), new_x="LMARGIN", new_y="NEXT")

    def rule(self) -> None:
        y = self.pdf.get_y() + 1
        self.pdf.set_draw_color(190, 190, 195)
        self.pdf.line(self.pdf.l_margin, y, self.pdf.w - self.pdf.r_margin, y)
        self.pdf.ln(2.5)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}: {n}" for k, n in counter.most_common()) or "none"


def write_pdf(h: Handover, path: str | Path, settings: Mapping[str, Any] | None = None) -> None:
    """Lay out ``h`` as the handover PDF at ``path`` (written whole under a temporary name, then renamed)."""
    doc = _Document(f"tripwire handover — case {h.case}", settings or {})
    pdf = doc.pdf
    doc.heading(f"Investigator handover — case {h.case}", 16)
    doc.para(f"Prepared by {h.prepared_by} on {h.generated_at} with tripwire {__version__} from the case database "
             f"{h.database}. This document contains hashes, paths and human decisions only: no media, no thumbnails, "
             "no prompts.")
    doc.rule()
    doc.heading("Case summary")
    doc.fields([
        ("case", h.case, False), ("case created", h.created_at, False),
        ("scanned", f"{h.first_scan or '—'} to {h.last_scan or '—'}", False),
        ("sources", f"{h.sources} file(s), folder(s) or archive(s) examined", False),
        ("items", f"{h.items} ({h.errors} could not be fully processed)", False),
        ("media types", _counts(h.by_type), False),
        ("provenance", _counts(h.by_label), False),
        ("bank matches", f"{h.matched} item(s) match a bank; {h.undecided_matched} of them have no decision yet", False),
        ("decisions", f"{h.decided} item(s) decided — latest decisions: {_counts(h.by_decision)}", False),
    ])
    doc.heading("Integrity")
    doc.fields([
        ("audit chain", ("intact" if h.audit_ok else f"BROKEN ({h.audit_problem})") + f", {h.audit_events} event(s), "
                        "verified when this document was made", False),
        ("audit head hash", h.audit_head, True),
        ("case manifest", h.manifest, True),
    ])
    doc.para("The audit head hash is the hash of the newest event of the hash-chained audit trail "
             "(`tripwire audit verify` recomputes it); each decision below names the event that recorded it. "
             "The case manifest is SHA-256 over one line \"item_id<TAB>sha256<TAB>path\" per item in item-id order "
             "('-' for an item without a SHA-256), recomputable from items.csv.", 8.5)
    doc.rule()
    doc.heading(f"Chain of custody: {h.decided} decided item(s)")
    if not h.custody:
        doc.para("No item of this case has a recorded human decision.")
    for item in h.custody:
        if pdf.will_page_break(40):
            pdf.add_page()
        latest = item.decisions[-1] if item.decisions else {}
        doc.heading(f"Item {item.item_id}: {latest.get('decision', '—')} by {latest.get('reviewer', '—')}", 10.5)
        doc.fields([
            ("path", item.path, True), ("sha256", item.sha256, True), ("md5", item.md5, True),
            ("size / type", f"{item.size if item.size is not None else '—'} bytes, {item.media_type or '—'}", False),
            ("scanned", item.scanned_at, False),
        ])
        for n, d in enumerate(item.decisions, 1):
            state = "stands" if n == len(item.decisions) else "superseded"
            line = f"#{d['id']} {d['decision']} by {d['reviewer']} at {d['at']} ({state})"
            if d.get("bank"):
                line += f"; hashes added to bank {d['bank']}"
            doc.fields([(f"decision {n}", line, False)])
            if d.get("note"):
                doc.fields([("  note", d["note"], False)])
            doc.fields([("  audit event", f"{d['audit_seq']} {d['audit_hash']}" if d.get("audit_seq") else "not found", True)])
        for r in item.reveals:
            doc.fields([("media revealed", f"by {r['actor']} at {r['at']} (audit event {r['seq']})", False)])
        doc.rule()
    if h.decided > len(h.custody):
        doc.para(f"The first {len(h.custody)} decided items are listed; {h.decided - len(h.custody)} more are in the "
                 "database (`tripwire report CASE` writes them all to items.csv).")
    if h.undecided_matches:
        doc.heading(f"Bank matches waiting for a decision: {h.undecided_matched}")
        for m in h.undecided_matches:
            if pdf.will_page_break(14):
                pdf.add_page()
            doc.fields([(f"item {m['item_id']}", m["path"], True), ("  sha256", m["sha256"], True),
                        ("  matches", m["matches"], False)])
        if h.undecided_matched > len(h.undecided_matches):
            doc.para(f"The first {len(h.undecided_matches)} are listed.")
    if h.source_rows:
        doc.heading(f"Sources examined: {h.sources}")
        for src in h.source_rows:
            doc.fields([(f"{src['items']} item(s)", src["path"], True)], label_w=22)
        if h.sources > len(h.source_rows):
            doc.para(f"The first {len(h.source_rows)} are listed.")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    pdf.output(str(tmp))
    tmp.replace(path)


def write_handover(db: Database, case: str, path: str | Path, prepared_by: str,
                   settings: Mapping[str, Any] | None = None) -> Handover:
    """Gather the case from ``db`` and write its handover PDF at ``path``."""
    handover = gather(db, case, prepared_by)
    write_pdf(handover, path, settings)
    return handover
