"""File names that are not UTF-8 (POSIX paths are bytes): a folder entry and a tar member named
b"caf\\xe9.png" are scanned, stored losslessly (display form in ``path``, exact bytes in ``path_raw``, keyed by
the bytes), resumed without duplicates, reported as valid UTF-8 with the byte escaped, and accepted by
``POST /v1/scan`` (issue 11, item 2). Before the fix one such name aborted the whole scan with a
UnicodeEncodeError and nothing was stored."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from service_helpers import make_config, make_keys, make_settings, scan
from sqlalchemy import select

from tripwire.service.app import create_app
from tripwire.store.db import open_db, path_key
from tripwire.store.models import ItemRow, SourceRow

NAME = b"caf\xe9.png"  # Latin-1 e-acute: not valid UTF-8
SHOWN = "caf\\xe9.png"


def _tar_with(name: bytes, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:  # the name's bytes as they are
        info = tarfile.TarInfo(os.fsdecode(name))
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    out = buf.getvalue()
    assert name in out
    return out


def test_display_form_and_exact_bytes():
    from tripwire.records import path_bytes, shown, shown_path, stored_path

    raw = os.fsdecode(b"/case/" + NAME)
    assert shown_path(raw) == "/case/" + SHOWN and shown_path("/case/plain.png") == "/case/plain.png"
    assert shown_path(raw).encode("utf-8")  # valid UTF-8
    assert path_bytes(raw) == b"/case/" + NAME and path_bytes("/case/plain.png") is None
    assert stored_path(shown_path(raw), path_bytes(raw)) == raw
    # a real name that contains the escape text is a different path, with a different key
    assert path_key(raw) != path_key("/case/" + SHOWN)
    rec = shown({"path": raw, "error": {"code": "x", "message": f"cannot read {raw}"}})
    assert rec["path"] == "/case/" + SHOWN and rec["error"]["message"] == "cannot read /case/" + SHOWN


def _scan(root: Path, db: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tripwire", "scan", str(root), "--db", db, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)


def test_scan_stores_and_resumes_a_name_that_is_not_utf8(tmp_path, db_url):
    root = tmp_path / "media"
    root.mkdir()
    png = image_bytes(synth_image(7), "PNG")
    with open(os.fsencode(root) + b"/" + NAME, "wb") as fh:
        fh.write(png)
    (root / SHOWN).write_bytes(image_bytes(synth_image(8), "PNG"))  # the escape text as a real name: kept apart
    (root / "members.tar").write_bytes(_tar_with(NAME, image_bytes(synth_image(9), "PNG")))
    out = tmp_path / "o"
    first = _scan(root, db_url, out)
    assert first.returncode == 0, first.stderr
    assert "0 with errors" in first.stderr, first.stderr

    lines = (out / "items.jsonl").read_bytes().decode("utf-8").splitlines()  # strict: valid UTF-8
    by_path = {r["path"]: r for r in map(json.loads, lines)}
    direct = str(root / SHOWN)  # the byte-named file and the one named with the escape text show alike
    member = f"{root / 'members.tar'}!/{SHOWN}"
    assert member in by_path and direct in by_path
    for path in (member, direct):
        rec = by_path[path]
        assert rec["error"] is None and rec["sha256"] and rec["md5"] and rec["pdq"], rec
    assert sum(1 for line in lines if json.loads(line)["path"] == direct) == 2  # two items, not merged
    assert "\\udce9" not in "".join(lines)
    assert SHOWN in (out / "items.csv").read_text(encoding="utf-8")
    (out / "report.html").read_text(encoding="utf-8")

    db = open_db(db_url)
    try:
        with db.session() as s:
            items = list(s.scalars(select(ItemRow)))
            sources = list(s.scalars(select(SourceRow)))
        from tripwire.records import stored_path

        raw_file = os.fsdecode(os.fsencode(root) + b"/" + NAME)
        exact = {stored_path(i.path, i.path_raw) for i in items}
        assert raw_file in exact and str(root / SHOWN) in exact
        assert f"{root / 'members.tar'}!/{os.fsdecode(NAME)}" in exact
        assert [i.path_raw for i in items if i.path_key == path_key(raw_file)] == [os.fsencode(raw_file)]
        assert {stored_path(s_.path, s_.path_raw) for s_ in sources} >= {raw_file, str(root / SHOWN)}
        count = len(items)
    finally:
        db.dispose()

    again = _scan(root, db_url, out)
    assert again.returncode == 0, again.stderr
    assert "0 items stored from 0 files (3 already done)" in again.stderr, again.stderr
    db = open_db(db_url)
    try:
        with db.session() as s:
            assert len(list(s.scalars(select(ItemRow.id)))) == count
    finally:
        db.dispose()


def test_inspect_prints_the_escaped_name(tmp_path):
    target = os.fsencode(tmp_path) + b"/" + NAME
    with open(target, "wb") as fh:
        fh.write(image_bytes(synth_image(3), "PNG"))
    r = subprocess.run([sys.executable, "-m", "tripwire", "inspect", "--json", os.fsdecode(target)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.decode("utf-8"))["path"] == str(tmp_path / SHOWN)


def test_service_scan_accepts_a_tar_member_that_is_not_utf8(tmp_path, db_url):
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    try:
        with TestClient(app, base_url="https://testserver") as client:
            r = scan(client, keys.h("submitter"), [("members.tar", _tar_with(NAME, image_bytes(synth_image(11), "PNG")))])
            assert r.status_code == 200, r.text
            records = r.json()["files"][0]["records"]
            member = next(rec for rec in records if rec["path"].endswith("!/" + SHOWN))
            assert member["error"] is None and member["pdq"] and member["item_id"]
            detail = client.get(f"/v1/items/{member['item_id']}", headers=keys.h("reviewer"))
            assert detail.status_code == 200 and detail.json()["record"]["path"].endswith("!/" + SHOWN)
    finally:
        db.dispose()
