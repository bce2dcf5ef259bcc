"""The issue's headline check: scan all of ../shared/fixtures through the real CLI."""

from __future__ import annotations

import hashlib
import os
import re

from PIL import Image

from helpers import read_jsonl, tripwire


def _decodable(path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


def test_scan_all_fixtures(fixtures, tmp_path):
    out = tmp_path / "o"
    proc = tripwire("scan", str(fixtures), "--db", str(tmp_path / "t.db"), "--out", str(out), "--workers", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    records = {r["path"]: r for r in read_jsonl(out / "items.jsonl")}
    files = [os.path.join(d, f) for d, _, names in os.walk(fixtures) for f in names]
    assert sorted(records) == sorted(os.path.abspath(f) for f in files)
    for f in files:
        r = records[os.path.abspath(f)]
        data = open(f, "rb").read()
        assert r["sha256"] == hashlib.sha256(data).hexdigest(), f
        assert r["md5"] == hashlib.md5(data).hexdigest(), f
        assert r["size"] == len(data)
        if r["media_type"].startswith("image/") and r["error"] is None:
            assert re.fullmatch(r"[0-9a-f]{64}", r["pdq"]), f
            assert 0 <= r["pdq_quality"] <= 100
            assert r["width"] > 0 and r["height"] > 0
    for f in (fixtures / "malformed").iterdir():
        r = records[str(f)]
        if not _decodable(f):
            assert r["error"] is not None and r["error"]["code"] in {"empty_file", "decode_error", "unsupported_media"}, f
    # the report files exist and agree
    assert (out / "items.csv").read_text().count("\n") == len(records) + 1
    html = (out / "report.html").read_text()
    assert f"<b>{len(records)}</b>items" in html
    assert "<script" not in html.lower()
