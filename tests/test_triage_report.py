"""The triage report (report.html + report-pages/) says what matched, in priority order, and follows bank changes.

A folder of benign fixtures is scanned into a case with a bank holding the SHA-256 of one and the PDQ of a
slightly changed copy of another: report.html lists those two items first, with bank, category, signal and
distance. A second list imported afterwards is re-matched the way ``tripwire bank import`` does it (a
:func:`~tripwire.pipeline.rematch.mark` before, :func:`~tripwire.pipeline.rematch.rematch` after), and the
regenerated report lists the newly matching item; a human decision shows in the decisions section. SQLite and PostgreSQL. The item
list is split into static pages (no script, no network) that together hold every item exactly once.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from helpers import hamming
from lxml import html as lhtml
from PIL import Image, ImageEnhance

from tripwire.banks.store import BankStore
from tripwire.config import Config
from tripwire.pipeline.rematch import mark, rematch
from tripwire.pipeline.scan import run_scan
from tripwire.report import writer
from tripwire.review.deciding import decide
from tripwire.store import queries
from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
A = FIXTURES / "camera/Canon_40D.jpg"          # banked by SHA-256 before the scan
B = FIXTURES / "camera/Pentax_K10D.jpg"        # banked by the PDQ of a brightened copy before the scan
C = FIXTURES / "camera/Olympus_C8080WZ.jpg"    # banked by SHA-256 after the scan (re-match)
OTHERS = [FIXTURES / "camera/Nikon_D70.jpg", FIXTURES / "generators/a1111_duck.png", FIXTURES / "c2pa/C.jpg"]


def _pdq(path: Path) -> str:
    from tripwire.pipeline.inspect import inspect_file

    (record,) = list(inspect_file(str(path), Config(), None))
    return record["pdq"]


def _matches(page: Path) -> dict[str, list[str]]:
    """file name -> [bank, category, signal, variant, distance] of each row of the bank-matches table."""
    doc = lhtml.parse(str(page))
    out: dict[str, list[str]] = {}
    for tr in doc.xpath('//table[@id="match-table"]/tr[td]'):
        cells = [td.text_content().strip() for td in tr.xpath("td")]
        out[Path(cells[2]).name] = cells[3:8]
    return out


def _listed(out: Path) -> list[tuple[float, str]]:
    """(priority, file name) of every row of every page of the item list, in page order."""
    rows = []
    for page in sorted((out / writer.PAGES_DIR).glob("items-*.html")):
        for tr in lhtml.parse(str(page)).xpath('//table[@id="item-table"]/tr[td]'):
            cells = [td.text_content().strip() for td in tr.xpath("td")]
            rows.append((float(cells[1]), Path(cells[3]).name))
    return rows


def test_report_lists_matches_in_priority_order_and_follows_a_bank_import(db_url, tmp_path):
    folder = tmp_path / "seized"
    folder.mkdir()
    for src in (A, B, C, *OTHERS):
        shutil.copy(src, folder / src.name)
    changed = tmp_path / "changed.png"
    ImageEnhance.Brightness(Image.open(B).convert("RGB")).enhance(1.15).save(changed)
    pdq_b, pdq_changed = _pdq(B), _pdq(changed)
    distance = hamming(pdq_b, pdq_changed)
    assert 0 < distance <= 31

    db = open_db(db_url)
    store = BankStore(db)
    store.create_bank("known-list", source="test list of benign fixtures")
    store.add_entries("known-list", [{"signal_type": "sha256", "value": hashlib.sha256(A.read_bytes()).hexdigest(), "category": "1"},
                                     {"signal_type": "pdq", "value": pdq_changed, "category": "2"}])
    run_scan([str(folder)], db, "drive-1", tmp_path / "out1", Config(), workers=1, quiet=True)

    out1 = tmp_path / "out1"
    html = (out1 / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in html  # the charts are inline SVG
    matches = _matches(out1 / "report.html")
    assert matches == {A.name: ["known-list", "1 (CAM (child abuse material))", "sha256", "original", "0"],
                       B.name: ["known-list", "2 (child exploitive / age difficult)", "pdq", "original", str(distance)]}
    listed = _listed(out1)
    assert sorted(n for _, n in listed) == sorted(p.name for p in (A, B, C, *OTHERS))  # every item once
    assert [p for p, _ in listed] == sorted((p for p, _ in listed), reverse=True)      # highest priority first
    assert {n for _, n in listed[:2]} == {A.name, B.name}

    # a new list arrives: re-matched as `tripwire bank import` does, without re-scanning
    before = mark(db)
    store.create_bank("new-list", source="second test list")
    store.add_entries("new-list", [{"signal_type": "sha256", "value": hashlib.sha256(C.read_bytes()).hexdigest(), "category": "1"}])
    result = rematch(db, Config(), since=before, trigger="bank import new-list")
    assert result.newly == 1
    case_id = db.case_id("drive-1", create=False)
    ids = {Path(r["path"]).name: r["item_id"] for r in queries.iter_records(db, case_id)}
    decide(db, ids[OTHERS[0].name], "not_abuse", "reviewer-7", note="holiday photo")
    writer.write_case_reports(db, case_id, tmp_path / "out2", "drive-1")

    out2 = tmp_path / "out2"
    matches = _matches(out2 / "report.html")
    assert set(matches) == {A.name, B.name, C.name}
    assert matches[C.name] == ["new-list", "1 (CAM (child abuse material))", "sha256", "original", "0"]
    assert {n for _, n in _listed(out2)[:3]} == {A.name, B.name, C.name}
    doc = lhtml.parse(str(out2 / "report.html"))
    decided = [[td.text_content().strip() for td in tr.xpath("td")] for tr in doc.xpath('//table[@id="decision-table"]/tr[td]')]
    assert [(Path(d[2]).name, d[3], d[4], d[6]) for d in decided] == [(OTHERS[0].name, "not_abuse", "reviewer-7", "holiday photo")]
    db.dispose()


def test_item_list_pages_split_a_large_case_and_leave_no_stale_page(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "PAGE_SIZE", 7)
    records = [{"path": f"/case/img-{i:03d}.jpg", "media_type": "image/jpeg", "error": None, "item_id": i + 1,
                "priority": float(i % 5 * 10), "priority_reason": f"band {i % 5}", "matches": []} for i in range(30)]
    out = tmp_path / "out"
    writer.write_reports(iter(records), out, "big")
    pages = sorted((out / writer.PAGES_DIR).glob("items-*.html"))
    assert len(pages) == 5
    listed = _listed(out)
    assert sorted(n for _, n in listed) == sorted(Path(r["path"]).name for r in records)
    assert [p for p, _ in listed] == sorted((p for p, _ in listed), reverse=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f'href="{writer.PAGES_DIR}/items-00005.html"' in html  # the priority-band index reaches the last page
    writer.write_reports(iter(records[:8]), out, "big")  # a smaller case: the old pages go
    assert len(list((out / writer.PAGES_DIR).glob("items-*.html"))) == 2
