"""Hostile clients against the service (issue 11): uploads that hang a decoder, spoofed proxy headers, and
planted login CSRF cookies. Every hostile input is built here, from benign synthesised data."""

from __future__ import annotations

import dataclasses
import io
import threading
import time

from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from PIL import Image
from service_helpers import make_config, make_keys, make_settings, scan

from tripwire.config import Limits
from tripwire.service.app import create_app
from tripwire.store.db import open_db


def _slow_png() -> bytes:
    """A 144-megapixel flat grey PNG: 0.6 MB on the wire, seconds of decoding and hashing (a stand-in for an
    upload that hangs a decoder; the same input tests/test_bad_input.py uses for ``tripwire scan``)."""
    buf = io.BytesIO()
    Image.new("L", (12_000, 12_000), 128).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _codes(body: dict) -> list[str | None]:
    return [(r.get("error") or {}).get("code") for f in body["files"] for r in f["records"]]


def test_hanging_upload_times_out_and_does_not_block_other_uploads(tmp_path):
    """Two uploads that would each occupy a decoder for many seconds fill both scan slots; each comes back with
    a ``timeout`` record soon after the per-item limit, and an ordinary upload sent meanwhile is served."""
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    config = dataclasses.replace(config, limits=dataclasses.replace(Limits(), item_timeout_s=1.0, max_pixels=500_000_000))
    settings = make_settings(config, scan_concurrency=2)
    slow, good = _slow_png(), image_bytes(synth_image(3))
    app = create_app(config=config, settings=settings, database=db)
    with TestClient(app, base_url="https://testserver") as client:
        warm = scan(client, keys.h("submitter"), [("warm.jpg", image_bytes(synth_image(2)))])  # workers started
        assert warm.status_code == 200 and _codes(warm.json()) == [None]
        results: dict[str, tuple[float, dict]] = {}

        def post(name: str, data: bytes) -> None:
            t0 = time.monotonic()
            r = scan(client, keys.h("submitter"), [(name, data)])
            assert r.status_code == 200, r.text
            results[name] = (time.monotonic() - t0, r.json())

        threads = [threading.Thread(target=post, args=(f"hostile-{i}.png", slow)) for i in (1, 2)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # both slots are taken by now
        post("ordinary.jpg", good)
        for t in threads:
            t.join(timeout=120)
    db.dispose()
    for name in ("hostile-1.png", "hostile-2.png"):
        seconds, body = results[name]
        assert _codes(body) == ["timeout"], body
        assert "no result within 1 s" in body["files"][0]["records"][0]["error"]["message"]
        assert str(tmp_path) not in str(body) and "/tw-scan-" not in str(body)  # no spool path leaks
        assert seconds < 8.0, f"{name} answered after {seconds:.1f} s: it held its slot past the 1 s limit"
    seconds, body = results["ordinary.jpg"]
    assert _codes(body) == [None] and body["files"][0]["records"][0]["pdq"]
    assert seconds < 8.0, f"the ordinary upload waited {seconds:.1f} s behind the hostile ones"


def test_service_item_timeout_setting_overrides_the_limits(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, item_timeout_s=2.5), database=db)
    assert app.state.service.scanner.workers.item_timeout_s == 2.5
    app = create_app(config=config, settings=make_settings(config), database=db)
    assert app.state.service.scanner.workers.item_timeout_s == config.limits.item_timeout_s
    db.dispose()
