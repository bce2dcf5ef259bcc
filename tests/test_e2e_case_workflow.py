"""The analyst's workflow end to end, as a new user runs it: real processes, a real browser, real outputs.

``tripwire scan`` a folder of benign pictures into a case (the real command line in a subprocess) →
``tripwire serve`` on that database (a real server process) → log in with a reviewer key in Chromium →
the case list → the case grid, whose thumbnails are made by the server from the case's own files, greyscale
(one channel) and blurred (checked on the bytes served, against an unblurred greyscale reduction of the
same file) → three items selected with the keyboard and categorised together (VICS category 1) → the
Decided view says what was decided, by whom and when → ``tripwire report ncmec case:NAME --dry-run`` (XML
valid against NCMEC's published schema) and ``tripwire export vics case:NAME`` (VICS 2.0 JSON with those
three Media, category 1) are non-empty and valid.

Benign fixtures only (camera sample photographs from ../shared/fixtures, a synthesised gradient with
shapes). Screenshots of the grid and of the Decided view are written to the test's folder, and to
docs/screenshots/ (case-grid.png, case-decided.png) when TRIPWIRE_UPDATE_SCREENSHOTS=1. Skipped outside CI
when Chromium or Playwright is missing, like tests/test_console_browser.py whose helpers it uses.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from helpers import image_bytes, synth_image, tripwire
from lxml import etree
from PIL import Image
from test_console_browser import _require_browser, _wait_for, launch_chromium
from service_helpers import free_port

REPO = Path(__file__).resolve().parents[1]
SPEC_XSD = REPO.parent / "shared" / "specs" / "ncmec" / "cyber_tipline.xsd"
CASE = "drive-7"
CAMERA = ("Canon_PowerShot_S40.jpg", "Nikon_D70.jpg", "Canon_40D.jpg")


def _ok(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = tripwire(*args, env=env)
    assert proc.returncode == 0, f"tripwire {' '.join(args)} failed: {proc.stderr}"
    return proc


def _run_together(commands: list[tuple[str, ...]], env: dict[str, str]) -> list[str]:
    """Run independent ``tripwire`` commands at the same time; their stdout, each checked for success."""
    procs = [subprocess.Popen([sys.executable, "-m", "tripwire", *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for c in commands]
    outs = []
    for command, proc in zip(commands, procs):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"tripwire {' '.join(command)} failed: {stderr}"
        outs.append(stdout)
    return outs


def _sharpness(img: Image.Image) -> float:
    """Mean absolute difference between neighbouring pixels: high for detail, low once blurred."""
    a = np.asarray(img, dtype=np.float32)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def _serve(db: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``tripwire serve`` on ``db`` (one scan slot: this test uploads nothing); (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", str(db), "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, "TRIPWIRE_SERVICE_SCAN_CONCURRENCY": "1"})
    return proc, f"http://127.0.0.1:{port}"


def _ready(server: tuple[subprocess.Popen, str]) -> str:
    proc, base = server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                return base
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"tripwire serve did not start: {proc.stderr.read() if proc.stderr else ''}")


def test_scan_review_in_the_grid_then_report_and_export(tmp_path, fixtures):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    folder = tmp_path / "seized"
    folder.mkdir()
    for name in CAMERA:
        shutil.copy(fixtures / "camera" / name, folder / name)
    (folder / "shapes.png").write_bytes(image_bytes(synth_image(5, (320, 240)), "PNG"))
    with zipfile.ZipFile(folder / "holiday.zip", "w") as zf:  # a member is shown from inside its archive
        zf.writestr("album/boat.jpg", image_bytes(synth_image(9, (300, 200))))
    db, out = tmp_path / "case.db", tmp_path / "out"
    env = {**os.environ, "TRIPWIRE_BANKS_INDEX_PATH": str(tmp_path / "idx")}

    key = _ok("keys", "create", "--role", "reviewer", "--name", "analyst", "--db", str(db), env=env).stdout.strip()
    # the server starts while the case is scanned into its database (it reviews whatever cases are there)
    server = _serve(db, env)
    try:
        _ok("scan", str(folder), "--case", CASE, "--db", str(db), "--out", str(out), "-q", env=env)
        items = {Path(r["path"]).name: r for r in map(json.loads, (out / "items.jsonl").read_text().splitlines())}
        assert {"boat.jpg", "holiday.zip", "shapes.png", *CAMERA} <= set(items)
        base = _ready(server)
        shots = tmp_path / "screenshots"
        shots.mkdir()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(20_000)
                # /docs in a browser without a session: the login page, not raw JSON
                page.goto(f"{base}/docs")
                assert "/console/login" in page.url
                page.goto(f"{base}/console/cases")
                page.fill("#key", key)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/console/cases")
                row = page.locator(f"#cases-table tr:has-text('{CASE}')")
                assert row.locator("td.num").nth(1).inner_text() == str(len(items))  # every item is to be reviewed
                row.locator("a").click()
                page.wait_for_url("**/console/cases/*")

                tiles = page.locator("#grid li.tile")
                expect(tiles).to_have_count(len(items))
                order = [int(t) for t in tiles.evaluate_all("ts => ts.map(t => t.dataset.item)")]
                priorities = [items_by_id["priority"] for items_by_id in
                              sorted(items.values(), key=lambda r: (-(r["priority"] or 0), r["item_id"]))]
                assert [next(r["priority"] for r in items.values() if r["item_id"] == i) for i in order] == priorities
                _wait_for(lambda: page.eval_on_selector_all(
                    "#grid .thumb img", "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"))
                # every picture of the case has a thumbnail, the archive member included; the zip itself has none
                shown = set(page.eval_on_selector_all("#grid .thumb img", "imgs => imgs.map(i => i.closest('li').dataset.item)"))
                pictures = {str(r["item_id"]) for r in items.values() if (r["media_type"] or "").startswith("image/")}
                assert shown == pictures and str(items["boat.jpg"]["item_id"]) in shown

                # the thumbnail bytes are greyscale (one channel) and blurred, made from the file on disk
                big = items["Canon_PowerShot_S40.jpg"]["item_id"]
                served = page.request.get(f"{base}/console/items/{big}/thumb")
                assert served.status == 200 and served.headers["cache-control"] == "no-store"
                thumb = Image.open(io.BytesIO(served.body()))
                assert thumb.mode == "L" and thumb.format == "JPEG" and max(thumb.size) <= 200
                plain = Image.open(folder / "Canon_PowerShot_S40.jpg").convert("L").resize(thumb.size, Image.LANCZOS)
                assert _sharpness(thumb) < 0.35 * _sharpness(plain), (_sharpness(thumb), _sharpness(plain))

                # keyboard: select the first three tiles, VICS category 1, apply (nothing is recorded before Apply)
                for step in ("x", "l", "x", "l", "x"):
                    page.keyboard.press(step)
                page.keyboard.press("1")
                assert page.inner_text("#selected-count") == "3 selected"
                assert page.eval_on_selector("#vics", "s => s.value") == "1"
                picked = [int(i) for i in page.eval_on_selector_all("input.pick-box:checked", "bs => bs.map(b => b.value)")]
                assert picked == order[:3]
                page.screenshot(path=str(shots / "case-grid.png"), full_page=True)
                page.click("#apply")
                page.wait_for_url("**decided=3")
                expect(page.locator("#bulk-done")).to_be_visible()
                expect(tiles).to_have_count(len(items) - 3)  # the to-review view moved on

                page.click("#view-decided")
                page.wait_for_url("**view=decided")
                decided = page.locator("#grid li.tile .decided")
                expect(decided).to_have_count(3)
                assert all("confirmed abuse" in t and "analyst" in t for t in decided.all_inner_texts())
                page.screenshot(path=str(shots / "case-decided.png"), full_page=True)

                # a 100x68 picture is shown at its real size on the item page (concealed), never stretched
                small = items["Canon_40D.jpg"]["item_id"]
                page.goto(f"{base}/console/items/{small}")
                _wait_for(lambda: page.eval_on_selector("#media", "el => el.complete && el.naturalWidth > 0"))
                size = page.eval_on_selector("#media", "el => [el.naturalWidth, el.clientWidth, el.clientHeight]")
                assert size == [100, 100, 68], size
                assert "blur(" in page.eval_on_selector("#media", "el => getComputedStyle(el).filter")
            finally:
                browser.close()
    finally:
        server[0].send_signal(signal.SIGTERM)
        try:
            server[0].wait(timeout=20)
        except subprocess.TimeoutExpired:
            server[0].kill()

    # what the grid recorded is what reporting sees
    ncmec_dir = tmp_path / "ncmec"
    report, export = _run_together([
        ("report", "ncmec", f"case:{CASE}", "--dry-run", "--db", str(db), "--out", str(ncmec_dir)),
        ("export", "vics", f"case:{CASE}", "--db", str(db))], env)
    assert etree.fromstring(report.encode("utf-8")).tag == "report"
    xsd = etree.XMLSchema(etree.parse(str(SPEC_XSD)))
    written = sorted(ncmec_dir.glob("report-*.xml"))
    assert written and all(xsd.validate(etree.parse(str(p))) for p in written), [str(e) for e in xsd.error_log]
    files = [p for p in written if "-file-" in p.name]
    assert len(files) == 3  # one fileDetails document per decided item

    vics = json.loads(export)
    assert vics["@odata.context"].endswith("$metadata#Cases")
    media = vics["value"][0]["Media"]
    assert len(media) == 3 and {m["Category"] for m in media} == {1}
    by_md5 = {r["md5"].lower() for r in items.values() if r["item_id"] in picked}
    assert {m["MD5"].lower() for m in media} == by_md5

    for name in ("case-grid.png", "case-decided.png"):
        assert (shots / name).stat().st_size > 10_000
    if os.environ.get("TRIPWIRE_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("case-grid.png", "case-decided.png"):
            shutil.copyfile(shots / name, target / name)
