"""A series in the review console, in a real browser: Playwright driving Debian's Chromium against a real
uvicorn on 127.0.0.1. Three uploads of one series (same checkpoint, LoRA and prompt template with small
variations; benign synthetic pictures, placeholder names) with account context; the reviewer opens an item,
follows its link to the series, sees the grid concealed (blurred AND greyscale) with shared facts and the
account, makes ONE bulk decision, and every member is decided — each with its own decision row and audit
event, and the audit chain verifies.

A screenshot of the series page is written to the test's folder, and to docs/screenshots/console-series.png
when TRIPWIRE_UPDATE_SCREENSHOTS=1. Skipped outside CI when Chromium or Playwright is missing (a failure
in CI), like tests/test_console_browser.py whose server and browser helpers it uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import httpx
from sqlalchemy import select
from test_console_browser import _filter, _require_browser, _Server, _wait_for, console_app, launch_chromium
from test_series import LAKE, a1111_png

from tripwire.review.models import AuditEvent, Decision

REPO = Path(__file__).resolve().parents[1]


def test_series_bulk_decision_in_chromium(tmp_path):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    db, keys, app, media_dir, shots = console_app(tmp_path, "series.db")

    with _Server(app) as base:
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys.admin}"}, timeout=60)
        ids, series = [], set()
        for i, prompt in enumerate(LAKE):
            data = a1111_png(60 + i, prompt)
            (media_dir / hashlib.sha256(data).hexdigest()).write_bytes(data)  # preserved: the grid can show it
            ctx = json.dumps({"platform": "example-social", "post_id": f"post-{i}", "account_handle": "@alpha_studio"})
            r = api.post("/v1/scan", files=[("files", (f"lake{i}.png", data, "image/png"))], data={"context": ctx}).json()
            ids.append(r["files"][0]["item_id"])
            series.add(r["files"][0]["records"][0]["series"])
        assert len(series) == 1 and None not in series
        series_id = series.pop()

        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(30_000)
                page.goto(f"{base}/console/items/{ids[0]}")
                page.fill("#key", keys.reviewer)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/console/items/{ids[0]}")
                page.click("#series-link")
                page.wait_for_url(f"{base}/console/series/{series_id}")
                expect(page.locator("#members tbody tr")).to_have_count(3)
                tiles = page.locator("img.tile-media")
                expect(tiles).to_have_count(3)
                for n in range(3):
                    _wait_for(lambda: tiles.nth(n).evaluate("el => el.complete && el.naturalWidth > 0"))
                    concealed = tiles.nth(n).evaluate("el => getComputedStyle(el).filter")
                    assert "blur(" in concealed and "grayscale(1)" in concealed, concealed
                facts = page.inner_text("#facts")
                assert "ckpt-one" in facts and "style-alpha" in facts and "consecutive" in facts
                assert "@alpha_studio" in page.inner_text("#accounts")
                page.screenshot(path=str(shots / "console-series.png"), full_page=True)
                # one tile revealed by its own click (audited), the others stay concealed
                page.click(f"#tile-{ids[0]} button.tile-reveal")
                _wait_for(lambda: tiles.nth(0).evaluate("el => getComputedStyle(el).filter") == "none")
                assert "blur(" in tiles.nth(1).evaluate("el => getComputedStyle(el).filter")
                with db.session() as s:
                    reveal = s.scalar(select(AuditEvent).where(AuditEvent.kind == "media.reveal"))
                    assert reveal is not None and reveal.subject == f"item:{ids[0]}"
                # keys never decide here: only the deliberate click on a button
                page.keyboard.press("a")
                assert page.url == f"{base}/console/series/{series_id}"
                page.fill("#note", "one creator's run of landscapes")
                page.click("#series-form button[value=ai_generated]")
                page.wait_for_url(f"{base}/console/series/{series_id}?done=3")
                expect(page.locator("#series-decided")).to_have_text("3 decided")
                cells = page.locator("#members td.decision")
                assert [cells.nth(n).inner_text() for n in range(3)] == ["ai generated"] * 3
                assert "blur(" in _filter(page, "img.tile-media")  # the page reloads concealed after the decision
            finally:
                browser.close()
        assert api.get("/v1/audit/verify").json()["ok"]
        for item_id in ids:
            item = api.get(f"/v1/items/{item_id}").json()
            assert item["decisions"][-1]["decision"] == "ai_generated" and item["queue"]["state"] == "decided"
        api.close()
    with db.session() as s:
        rows = list(s.scalars(select(Decision).where(Decision.item_id.in_(ids))))
        assert sorted(d.item_id for d in rows) == sorted(ids) and all(d.reviewer for d in rows)
        events = {e.subject: e.data for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision"))}
        for d in rows:
            assert events[f"item:{d.item_id}"]["decision_id"] == d.id
    db.dispose()
    assert (shots / "console-series.png").stat().st_size > 10_000
    if os.environ.get("TRIPWIRE_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shots / "console-series.png", target / "console-series.png")
