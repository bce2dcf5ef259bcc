"""Archives inside archives, every tar compression, single compressed files, depth cap, naming."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

from tripwire.config import Config, Limits
from tripwire.pipeline.scan import run_scan
from tripwire.store.db import open_db

from helpers import image_bytes, read_jsonl, synth_image


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _scan(tmp_path, root, config=None) -> dict[str, dict]:
    db = open_db(str(tmp_path / "case.db"))
    run_scan([str(root)], db, "a", tmp_path / "out", config or Config(), workers=1, quiet=True)
    return {r["path"].replace(str(root) + "/", ""): r for r in read_jsonl(tmp_path / "out" / "items.jsonl")}


def test_nested_archives_named_with_bang(tmp_path):
    jpg = image_bytes(synth_image(1), "JPEG")
    png = image_bytes(synth_image(2), "PNG")
    inner_zip = _zip({"dir/inner.jpg": jpg})
    root = tmp_path / "in"
    root.mkdir()
    (root / "outer.tar.gz").write_bytes(_tar({"photos/x.png": png, "nested/inner.zip": inner_zip}, "w:gz"))
    (root / "b.tar.bz2").write_bytes(_tar({"y.jpg": jpg}, "w:bz2"))
    (root / "c.tar.xz").write_bytes(_tar({"z.png": png}, "w:xz"))
    (root / "d.tar").write_bytes(_tar({"w.jpg": jpg}))
    (root / "single.png.gz").write_bytes(gzip.compress(png))
    (root / "single.jpg.bz2").write_bytes(bz2.compress(jpg))
    (root / "single.jpg.xz").write_bytes(lzma.compress(jpg))
    records = _scan(tmp_path, root)
    for path, mime in {
        "outer.tar.gz": "application/gzip",
        "outer.tar.gz!/photos/x.png": "image/png",
        "outer.tar.gz!/nested/inner.zip": "application/zip",
        "outer.tar.gz!/nested/inner.zip!/dir/inner.jpg": "image/jpeg",
        "b.tar.bz2!/y.jpg": "image/jpeg",
        "c.tar.xz!/z.png": "image/png",
        "d.tar!/w.jpg": "image/jpeg",
        "single.png.gz!/single.png": "image/png",
        "single.jpg.bz2!/single.jpg": "image/jpeg",
        "single.jpg.xz!/single.jpg": "image/jpeg",
    }.items():
        assert records[path]["media_type"] == mime, path
        assert records[path]["error"] is None, (path, records[path]["error"])
    assert len(records) == 7 + 3 + 3 + 3  # top-level files, outer.tar.gz members, tar members, single streams
    # identical content is stored once, with every path that holds it
    same = [p for p, r in records.items() if r["sha256"] == records["d.tar!/w.jpg"]["sha256"]]
    assert sorted(same) == sorted(["outer.tar.gz!/nested/inner.zip!/dir/inner.jpg", "b.tar.bz2!/y.jpg",
                                   "d.tar!/w.jpg", "single.jpg.bz2!/single.jpg", "single.jpg.xz!/single.jpg"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert records["d.tar!/w.jpg"]["sha256"] in html  # listed as a duplicate group


def test_depth_cap_and_corrupt_archives(tmp_path):
    jpg = image_bytes(synth_image(3), "JPEG")
    level = _zip({"deep.jpg": jpg})
    for i in range(3):
        level = _zip({f"l{i}.zip": level})
    root = tmp_path / "in"
    root.mkdir()
    (root / "deep.zip").write_bytes(level)
    (root / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    tgz = _tar({"a.jpg": jpg, "b.jpg": jpg}, "w:gz")
    (root / "cut.tar.gz").write_bytes(tgz[: len(tgz) // 2])
    records = _scan(tmp_path, root, Config(limits=Limits(max_archive_depth=2)))
    assert records["deep.zip!/l2.zip"]["error"] is None
    assert records["deep.zip!/l2.zip!/l1.zip"]["error"]["code"] == "archive_too_deep"
    assert not any(p.endswith("deep.jpg") for p in records)
    assert records["broken.zip"]["error"]["code"] == "archive_error"
    cut = [r for p, r in records.items() if p.startswith("cut.tar.gz")]
    assert any((r["error"] or {}).get("code") in ("archive_error", "decode_error") for r in cut)


def test_duplicate_member_names_are_all_kept(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("same.txt", b"first")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("same.txt", b"second")
    (root / "dup.zip").write_bytes(buf.getvalue())
    records = _scan(tmp_path, root)
    assert {"dup.zip!/same.txt", "dup.zip!/same.txt#2"} <= set(records)
    assert records["dup.zip!/same.txt"]["sha256"] != records["dup.zip!/same.txt#2"]["sha256"]
