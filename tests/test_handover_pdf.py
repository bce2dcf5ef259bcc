"""``tripwire report CASE --pdf``: the investigator handover PDF, read back with pypdfium2.

SQLite and PostgreSQL. A case of benign fixtures (one with a bidi override in its file name) is scanned, two items are decided
(one twice: the first decision is superseded), and the PDF written by the real command line is opened with
PDFium: its text carries every decided item's path, SHA-256 and MD5, each decision with its reviewer, note
and the audit event that recorded it, the audit chain's head hash as ``tripwire audit verify`` computes it,
and the case manifest digest recomputed here from items.csv. No image is embedded.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import pypdfium2 as pdfium
from helpers import tripwire
from sqlalchemy.engine import make_url

from tripwire.config import Config
from tripwire.pipeline.scan import run_scan
from tripwire.review import audit
from tripwire.review.deciding import decide
from tripwire.store import queries
from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
FILES = [FIXTURES / "camera/Canon_40D.jpg", FIXTURES / "generators/a1111_duck.png", FIXTURES / "camera/Nikon_D70.jpg"]
HOSTILE = "holiday\u202egpj.exe.jpg"  # a right-to-left override would show this as "holidayexe.jpg" reversed


def _text(pdf_path: Path) -> str:
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for page in pdf:  # nothing but text and lines: no image object on any page
            assert not [o for o in page.get_objects() if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE]
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def test_handover_pdf_carries_digests_decisions_and_the_audit_head(db_url, tmp_path):
    folder = tmp_path / "seized"
    folder.mkdir()
    for src in FILES:
        shutil.copy(src, folder / src.name)
    shutil.copy(FIXTURES / "camera/Pentax_K10D.jpg", folder / HOSTILE)
    url = db_url
    db = open_db(url)
    run_scan([str(folder)], db, "drive-7", tmp_path / "out", Config(), workers=1, quiet=True)
    ids = {Path(r["path"]).name: r["item_id"] for r in queries.iter_records(db, db.case_id("drive-7", create=False))}
    decide(db, ids[FILES[0].name], "not_abuse", "analyst-2")
    decide(db, ids[FILES[0].name], "needs_escalation", "analyst-1", note="second opinion asked")
    decide(db, ids[FILES[1].name], "ai_generated", "analyst-1", note="generator metadata")
    decide(db, ids[HOSTILE], "not_abuse", "analyst-3")
    with db.session() as s:
        verification = audit.verify(s)
        events = {e.data["decision_id"]: e for e in s.query(audit.AuditEvent).filter_by(kind="decision")}
    assert verification.ok and verification.events == 4

    env = {**os.environ, "TRIPWIRE_ACTOR": "analyst-1"}
    target = tmp_path / "handover" / "drive-7.pdf"
    proc = tripwire("report", "drive-7", "--pdf", str(target), "--db", url, env=env)
    assert proc.returncode == 0, proc.stderr
    assert verification.head in proc.stderr
    text = _text(target)
    flat = " ".join(text.split())
    packed = "".join(text.split())  # long paths wrap across lines

    assert f"audit head hash {verification.head}" in flat and "intact, 4 event(s)" in flat
    assert "Prepared by analyst-1" in flat
    password = make_url(url).password
    assert not password or f":{password}@" not in flat  # the database is named without its password
    with (tmp_path / "out" / "items.csv").open(encoding="utf-8", newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["item_id"]))
    manifest = hashlib.sha256("".join(f"{r['item_id']}\t{r['sha256'] or '-'}\t{r['path']}\n" for r in rows).encode()).hexdigest()
    assert f"case manifest {manifest}" in flat
    for name, decisions in ((FILES[0].name, [("not_abuse", "analyst-2", "superseded"), ("needs_escalation", "analyst-1", "stands")]),
                            (FILES[1].name, [("ai_generated", "analyst-1", "stands")])):
        path = folder / name
        assert "".join(str(path).split()) in packed
        assert hashlib.sha256(path.read_bytes()).hexdigest() in flat
        assert hashlib.md5(path.read_bytes()).hexdigest() in flat
        for decision, reviewer, state in decisions:
            assert f"{decision} by {reviewer} at" in flat and f"({state})" in flat
    for decision_id, event in events.items():
        assert f"audit event {event.seq} {event.hash}" in flat, decision_id
    assert "second opinion asked" in flat and "generator metadata" in flat
    # the undecided item is counted, not listed as decided; the bidi override is shown, never obeyed
    assert "Item " + str(ids[FILES[2].name]) + ":" not in flat
    assert "\u202e" not in text and "holiday\\u202egpj.exe.jpg" in packed
    assert "3 item(s) decided" in flat

    # a second argument without --pdf is a usage error
    assert tripwire("report", "drive-7", str(target), "--db", url, env=env).returncode == 2
    db.dispose()
