"""kill -9 at any moment, then the same command again: every item present exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile

from helpers import image_bytes, read_jsonl, synth_image, write_images


def _count(db, table: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_mid_scan_then_resume(tmp_path):
    root = tmp_path / "media"
    write_images(root / "a", 150)
    write_images(root / "b", 150, fmt="PNG")
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        for i in range(40):
            zf.writestr(f"inner/{i}.jpg", image_bytes(synth_image(1000 + i), "JPEG"))
    expected = 150 + 150 + 1 + 40
    db = tmp_path / "case.db"
    cmd = [sys.executable, "-m", "tripwire", "scan", str(root), "--db", str(db), "--out", str(tmp_path / "o"),
           "--case", "resume", "--workers", "1", "-q"]
    kills = 0
    partials = []
    for wait_for in (20, 120):  # kill twice at different points (a fast run may finish before the second)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while _count(db, "items") < wait_for and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the scanner and its workers, no clean-up
            kills += 1
        proc.wait()
        partials.append(_count(db, "items"))
    assert kills >= 1, "the scan finished before it could be killed"
    assert 0 < partials[0] < expected  # the first kill left a partial case behind
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select path, count(*) from items group by path").fetchall()
        sources = conn.execute("select count(*) from sources").fetchone()[0]
    assert len(rows) == expected
    assert all(n == 1 for _, n in rows)
    assert sources == 300 + 1
    records = read_jsonl(tmp_path / "o" / "items.jsonl")
    assert len(records) == expected == len({r["path"] for r in records})
    assert all(r["error"] is None and r["pdq"] for r in records if r["media_type"].startswith("image/"))
    # a further run has nothing to do
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and _count(db, "items") == expected


def test_rerun_skips_finished_sources(tmp_path):
    root = tmp_path / "media"
    write_images(root, 5)
    db = tmp_path / "case.db"
    args = [sys.executable, "-m", "tripwire", "scan", str(root), "--db", str(db), "--out", str(tmp_path / "o")]
    first = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    (root / "new.jpg").write_bytes(image_bytes(synth_image(99), "JPEG"))
    second = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0
    assert "1 items stored from 1 files (5 already done)" in second.stderr
    assert len(read_jsonl(tmp_path / "o" / "items.jsonl")) == 6
