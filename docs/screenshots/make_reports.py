"""Make docs/screenshots/triage-report.png and docs/screenshots/handover-pdf.png from benign fixtures.

    PYTHONPATH=src python docs/screenshots/make_reports.py [--fixtures ../shared/fixtures] [--chromium /usr/bin/chromium]

Scans a folder of benign fixtures (camera photos, generator outputs, C2PA samples) into a throw-away case,
with a bank holding the SHA-256 of one photo and the PDQ of a brightened copy of another (a "known-bad" bank
of benign files, as in the tests), records three human decisions, writes the reports, then renders report.html
in headless Chromium (Playwright) and the first page of the handover PDF with PDFium. Nothing here is
committed but the two PNGs; the case lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
PICKS = ["camera/Canon_40D.jpg", "camera/Nikon_D70.jpg", "camera/Pentax_K10D.jpg", "camera/Olympus_C8080WZ.jpg",
         "camera/Kodak_CX7530.jpg", "camera/Sony_HDR-HC3.jpg", "camera/gps/DSCN0010.jpg",
         "camera/hdr/iphone_hdr_YES.jpg", "malformed/exif_45-gps_ifd.jpg", "generators/a1111_duck.png",
         "generators/comfyui_img2img.png", "generators/fooocus_goldfish.png", "generators/novelai_cat.png",
         "generators/invokeai_v3_painting.png", "c2pa/C.jpg", "c2pa/ocsp.jpg", "c2pa/XCA.jpg",
         "watermark/sdxl_1024_b0_png.png"]


def build_case(fixtures: Path, work: Path) -> tuple[object, int, Path]:
    """Scan the picks into case ``drive-1`` with a benign "known" bank and three decisions; returns
    (database, case id, report folder)."""
    from PIL import Image, ImageEnhance

    from tripwire.banks.store import BankStore
    from tripwire.config import Config
    from tripwire.pipeline.inspect import inspect_file
    from tripwire.pipeline.scan import run_scan
    from tripwire.review.deciding import decide
    from tripwire.store import queries
    from tripwire.store.db import open_db

    seized = Path("evidence") / "drive-1" / "DCIM"  # relative to ``work`` (the current folder): short paths
    seized.mkdir(parents=True)
    for pick in PICKS:
        shutil.copy(fixtures / pick, seized / Path(pick).name)
    brightened = work / "brightened.png"
    ImageEnhance.Brightness(Image.open(fixtures / "camera/Pentax_K10D.jpg").convert("RGB")).enhance(1.15).save(brightened)
    (record,) = list(inspect_file(str(brightened), Config(), None))

    db = open_db(f"sqlite:///{work / 'case.db'}")
    store = BankStore(db)
    store.create_bank("hotline-list", source="benign stand-in for a hotline hash list")
    store.add_entries("hotline-list", [
        {"signal_type": "sha256", "value": hashlib.sha256((fixtures / "camera/Canon_40D.jpg").read_bytes()).hexdigest(), "category": "1"},
        {"signal_type": "pdq", "value": record["pdq"], "category": "2"},
    ])
    out = work / "report"
    run_scan([str(seized)], db, "drive-1", out, Config(), workers=1, quiet=True)
    case_id = db.case_id("drive-1", create=False)
    assert case_id is not None
    ids = {Path(r["path"]).name: int(r["item_id"]) for r in queries.iter_records(db, case_id)}
    decide(db, ids["Canon_40D.jpg"], "confirmed_abuse", "analyst-1", note="hash match confirmed on review (benign stand-in)")
    decide(db, ids["a1111_duck.png"], "not_abuse", "analyst-2")
    decide(db, ids["a1111_duck.png"], "ai_generated", "analyst-1", note="generator metadata; second look")
    decide(db, ids["Nikon_D70.jpg"], "not_abuse", "analyst-2", note="landscape photo")
    return db, case_id, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    args.out = args.out.resolve()

    import pypdfium2 as pdfium
    from playwright.sync_api import sync_playwright

    from tripwire.report.handover import write_handover
    from tripwire.report.writer import write_case_reports

    with tempfile.TemporaryDirectory(prefix="tripwire-shots-") as tmp:
        work = Path(tmp)
        os.chdir(work)
        db, case_id, out = build_case(args.fixtures.resolve(), work)
        write_case_reports(db, case_id, out, "drive-1")  # again: now with the decisions
        pdf_path = out / "handover.pdf"
        write_handover(db, "drive-1", pdf_path, "analyst-1")
        db.dispose()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1400, "height": 1500}, device_scale_factor=1)
            page.goto((out / "report.html").as_uri())
            page.screenshot(path=str(args.out / "triage-report.png"), full_page=False)
            browser.close()

        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            pdf[0].render(scale=1.5).to_pil().convert("RGB").save(args.out / "handover-pdf.png", optimize=True)
        finally:
            pdf.close()
    print(f"wrote {args.out / 'triage-report.png'} and {args.out / 'handover-pdf.png'}")


if __name__ == "__main__":
    main()
