"""The review console in a real browser: Playwright driving Debian's Chromium against a real uvicorn on
127.0.0.1. Log in with a key, open the queue, check that media is blurred AND greyscale until a deliberate
click reveals it (for that item only), decide with a keyboard shortcut, and see the queue advance.

Benign synthetic media only (a gradient with shapes, the duck from the generator fixtures). Screenshots of
the queue and item pages are written to the test's folder, and to docs/screenshots/ when
TRIPWIRE_UPDATE_SCREENSHOTS=1. Outside CI the test is skipped when Chromium or Playwright is missing; in CI
(CI=true) that is a failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers import image_bytes, synth_image
from service_helpers import free_port, make_config, make_keys, make_settings
from sqlalchemy import select

from tripwire.review.models import AuditEvent
from tripwire.service.app import create_app
from tripwire.store.db import open_db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]


def _require_browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


def launch_chromium(pw):
    """Debian's Chromium (or the one on PATH) under Playwright, headless, with the flags these tests need."""
    return pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                              args=CHROMIUM_ARGS)


class _Server:
    """A real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def _wait_for(condition, timeout: float = 15.0) -> None:
    """Poll from Python (the console's CSP forbids the string evaluation Playwright's waits use)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _filter(page, selector: str) -> str:
    return page.eval_on_selector(selector, "el => getComputedStyle(el).filter")


def console_app(tmp_path: Path, name: str):
    """A service on a fresh SQLite case database with a preserved-media folder: (db, keys, app, media, shots)."""
    db = open_db(f"sqlite:///{tmp_path / name}")
    keys = make_keys(db)
    media_dir = tmp_path / "preserved"
    media_dir.mkdir()
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, media_dir=str(media_dir)), database=db)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    return db, keys, app, media_dir, shots


def test_review_console_in_chromium(tmp_path, fixtures):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    db, keys, app, media_dir, shots = console_app(tmp_path, "console.db")

    known = image_bytes(synth_image(77, (480, 360)))
    duck = (fixtures / "generators" / "a1111_duck.png").read_bytes()
    for data in (known, duck):  # preserved content exists for both items
        (media_dir / hashlib.sha256(data).hexdigest()).write_bytes(data)

    with _Server(app) as base:
        admin = {"Authorization": f"Bearer {keys.admin}"}
        api = httpx.Client(base_url=base, headers=admin, timeout=60)
        assert api.post("/v1/banks", json={"name": "platform-confirmed", "category_scheme": "none"}).status_code == 201
        api.post("/v1/banks/platform-confirmed/entries",
                 json={"entries": [{"signal_type": "sha256", "value": hashlib.sha256(known).hexdigest()}]})
        ctx = '{"platform": "example-social", "post_id": "post-1001", "account_handle": "@bravo"}'
        hit = api.post("/v1/scan", files=[("files", ("holiday.jpg", known, "image/jpeg"))], data={"context": ctx}).json()
        ai = api.post("/v1/scan", files=[("files", ("duck.png", duck, "image/png"))]).json()
        hit_id, ai_id = hit["files"][0]["item_id"], ai["files"][0]["item_id"]
        assert hit["action"] == "block" and ai["action"] == "review"

        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(30_000)
                # log in with a key
                page.goto(f"{base}/console/queue")
                assert "/console/login" in page.url
                page.fill("#key", keys.reviewer)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/console/queue")
                rows = page.locator("table.queue tbody tr")
                expect(rows).to_have_count(2)
                assert rows.nth(0).get_attribute("data-item") == str(hit_id)  # highest priority first
                cookie = next(c for c in page.context.cookies() if c["name"] == "tw_session")
                assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
                page.screenshot(path=str(shots / "console-queue.png"), full_page=True)

                # open the first item with the keyboard
                page.keyboard.press("Enter")
                page.wait_for_url(f"{base}/console/items/{hit_id}")
                _wait_for(lambda: page.eval_on_selector("#media", "el => el.complete && el.naturalWidth > 0"))
                concealed = _filter(page, "#media")
                assert "blur(" in concealed and "grayscale(1)" in concealed, concealed
                page.screenshot(path=str(shots / "console-item.png"), full_page=True)
                # keyboard shortcuts never reveal: only the deliberate click does
                page.keyboard.press("r")
                assert "blur(" in _filter(page, "#media")
                page.click("#reveal")
                expect(page.locator("#media-frame")).not_to_have_class("media-frame concealed")
                _wait_for(lambda: _filter(page, "#media") == "none")  # after the short transition
                with db.session() as s:
                    reveal = s.scalar(select(AuditEvent).where(AuditEvent.kind == "media.reveal"))
                    assert reveal is not None and reveal.subject == f"item:{hit_id}"

                # decide with a keyboard shortcut: the console moves on to the next item, concealed again
                page.keyboard.press("c")
                page.wait_for_url(f"{base}/console/items/{ai_id}?done={hit_id}")
                expect(page.locator("#undo")).to_be_visible()  # the decision just made can be taken back
                _wait_for(lambda: page.eval_on_selector("#media", "el => el.complete && el.naturalWidth > 0"))
                again = _filter(page, "#media")
                assert "blur(" in again and "grayscale(1)" in again, "the reveal must not carry over to the next item"

                # the queue advanced: the decided item is gone
                page.goto(f"{base}/console/queue")
                expect(page.locator("table.queue tbody tr")).to_have_count(1)
                assert page.locator("table.queue tbody tr").first.get_attribute("data-item") == str(ai_id)
                assert page.inner_text("#queue-total") == "1"
            finally:
                browser.close()
        decided = api.get(f"/v1/items/{hit_id}").json()
        assert decided["decisions"][0]["decision"] == "confirmed_abuse" and decided["queue"]["state"] == "decided"
        assert api.get("/v1/audit/verify").json()["ok"]
        api.close()
    db.dispose()
    for name in ("console-queue.png", "console-item.png"):
        assert (shots / name).stat().st_size > 10_000
    if os.environ.get("TRIPWIRE_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("console-queue.png", "console-item.png"):
            shutil.copyfile(shots / name, target / name)
