"""Every class of hostile or broken input becomes an item with an error code; the scan goes on."""

from __future__ import annotations

import dataclasses
import os
import struct
import zipfile
import zlib

import hang_signal
import pytest

from tripwire.config import Config, Limits
from tripwire.pipeline.scan import run_scan
from tripwire.signals.registry import registry
from tripwire.store.db import open_db

from helpers import image_bytes, read_jsonl, synth_image


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _scan(tmp_path, root, config: Config | None = None, workers: int = 2):
    db = open_db(str(tmp_path / "case.db"))
    out = tmp_path / "out"
    run_scan([str(root)], db, "t", out, config or Config(), workers=workers, quiet=True)
    db.dispose()
    # top-level files by their name under root; archive members by their full display path
    return {r["path"] if "!/" in r["path"] else os.path.relpath(r["path"], root): r
            for r in read_jsonl(out / "items.jsonl")}


def _code(record) -> str | None:
    return (record["error"] or {}).get("code")


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "evidence"
    d.mkdir()
    (d / "good.jpg").write_bytes(image_bytes(synth_image(1), "JPEG"))
    return d


def test_empty_truncated_and_bomb_images(tmp_path, root):
    (root / "empty.jpg").write_bytes(b"")
    jpeg = image_bytes(synth_image(2, (640, 480)), "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "huge.png").write_bytes(_png_declaring(100_000, 100_000))
    records = _scan(tmp_path, root)
    assert _code(records["good.jpg"]) is None and records["good.jpg"]["pdq"]
    assert _code(records["empty.jpg"]) == "empty_file"
    assert _code(records["truncated.jpg"]) == "decode_error"
    assert records["truncated.jpg"]["sha256"]  # digests survive a failed decode
    assert _code(records["huge.png"]) == "decompression_bomb"
    assert "10000000000 pixels" in records["huge.png"]["error"]["message"]


def test_zip_bomb_is_refused(tmp_path, root):
    bomb = root / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as fh:
            block = b"\x00" * (16 * 1024 * 1024)
            for _ in range(64):  # 1 GiB of zeros
                fh.write(block)
        zf.writestr("fine.jpg", image_bytes(synth_image(3), "JPEG"))
    assert bomb.stat().st_size < 5 * 1024 * 1024
    records = _scan(tmp_path, root)
    member = records[f"{bomb}!/zeros.bin"]
    assert _code(member) == "archive_bomb"
    assert member["sha256"] is None
    assert _code(records[f"{bomb}!/fine.jpg"]) is None  # the rest of the archive still counts


def test_total_size_cap_for_archives(tmp_path, root):
    arc = root / "many.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_STORED) as zf:
        for i in range(5):
            zf.writestr(f"part{i}.bin", os.urandom(300_000))
    config = Config(limits=Limits(max_archive_total_bytes=1_000_000))
    records = _scan(tmp_path, root, config)
    codes = [_code(records[f"{arc}!/part{i}.bin"]) for i in range(5)]
    assert codes == [None, None, None, "archive_bomb", "archive_bomb"]


def test_traversal_names_stay_inside_the_archive(tmp_path, root):
    evil = root / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../evil", b"payload-one")
        zf.writestr("/etc/evil_abs", b"payload-two")
        zf.writestr("ok/fine.txt", b"payload-three")
    before = set(os.listdir(tmp_path))
    records = _scan(tmp_path, root)
    assert _code(records[f"{evil}!/../evil"]) == "unsafe_member_name"
    assert _code(records[f"{evil}!//etc/evil_abs"]) == "unsafe_member_name"
    assert records[f"{evil}!/../evil"]["sha256"] is not None  # still hashed, from inside the archive
    assert _code(records[f"{evil}!/ok/fine.txt"]) is None
    # only the case database, its indexes and the reports appear: nothing is extracted from the archive
    assert set(os.listdir(tmp_path)) - before <= {"case.db", "case.db-wal", "case.db-shm", "case.db.itemindex",
                                                  "case.db.pdqindex", "out"}
    assert not (tmp_path / "evil").exists() and not os.path.exists("/etc/evil_abs")


def test_symlinks_and_special_files(tmp_path, root):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(image_bytes(synth_image(4), "JPEG"))
    (root / "link_out.jpg").symlink_to(outside)
    (root / "link_in.jpg").symlink_to(root / "good.jpg")
    os.mkfifo(root / "pipe")
    records = _scan(tmp_path, root)
    assert _code(records["link_out.jpg"]) == "symlink_outside_root"
    assert records["link_out.jpg"]["sha256"] is None  # not followed, not read
    assert _code(records["link_in.jpg"]) == "symlink_inside_root"  # accounted for, not hashed twice
    assert records["link_in.jpg"]["sha256"] is None and str(root / "good.jpg") in records["link_in.jpg"]["error"]["message"]
    assert _code(records["pipe"]) == "not_a_regular_file"
    assert _code(records["good.jpg"]) is None


def test_unreadable_files(tmp_path, root):
    locked = root / "locked.jpg"
    locked.write_bytes(image_bytes(synth_image(5), "JPEG"))
    db = open_db(str(tmp_path / "case.db"))
    targets = [str(root), str(tmp_path / "vanished.jpg")]
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads everything; /proc/self/mem exists, is a regular file, and fails to read
        targets.append("/proc/self/mem")
    run_scan(targets, db, "t", tmp_path / "out", Config(), workers=1, quiet=True)
    records = {r["path"]: r for r in read_jsonl(tmp_path / "out" / "items.jsonl")}
    assert _code(records[str(tmp_path / "vanished.jpg")]) == "unreadable"
    if os.geteuid() != 0:
        assert _code(records[str(locked)]) == "unreadable"
    else:
        assert _code(records["/proc/self/mem"]) == "unreadable"
    assert _code(records[str(root / "good.jpg")]) is None


def test_hanging_decoder_is_killed_and_the_rest_survives(tmp_path, root):
    """An item whose extractor hangs (tests/hang_signal.py: a plug-in that blocks for a minute on marked bytes,
    loaded by the worker processes like any plug-in) is killed at the 0.5 s budget; the rest survives."""
    slow = b"not an image, " + hang_signal.MARKER
    (root / "slow.png").write_bytes(slow)
    arc = root / "mixed.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:  # deflated: the archive's bytes lack the marker
        zf.writestr("a.jpg", image_bytes(synth_image(6), "JPEG"))
        zf.writestr("slow.png", slow)
        zf.writestr("b.jpg", image_bytes(synth_image(7), "JPEG"))
    config = Config(limits=dataclasses.replace(Limits(), item_timeout_s=0.5),
                    sections={"signals": {"types": [hang_signal.SPEC]}})
    try:
        records = _scan(tmp_path, root, config)
    finally:
        registry.unregister(hang_signal.HangSignal.name)
    assert _code(records["slow.png"]) == "timeout"
    assert _code(records[f"{arc}!/slow.png"]) == "timeout"
    for name in ("a.jpg", "b.jpg"):
        assert _code(records[f"{arc}!/{name}"]) is None and records[f"{arc}!/{name}"]["pdq"]
    assert _code(records["mixed.zip"]) is None
    assert _code(records["good.jpg"]) is None
