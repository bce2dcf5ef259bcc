"""kill -9 at random moments of a brand-new case's first ``tripwire scan``, then the same command again.

Issue 11: a process killed during a new database's first migration left tables without an ``alembic_version``
row, and every later ``tripwire scan`` failed with "table cases already exists". This runs ``--tries`` times:
a new SQLite database, ``python -m tripwire scan FOLDER --db NEW`` killed (SIGKILL) after a random delay
within the length of an unkilled first run, then the same command to completion. A try passes when the
second command exits 0 and every file of the folder is an item of the case exactly once.

    PYTHONPATH=src python bench/migration_kill.py [--tries 50] [--seed 11] [--src PATH]

``--src`` is the source tree the scans run (default: this checkout's src/), to compare with older code. Each
kill is classified by what it left: no database file yet, a database without the schema's head revision
(killed before or during the migration), or a migrated one (killed while scanning).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def make_folder(folder: Path, n: int = 8) -> list[str]:
    """Benign synthesised images (gradients, shapes) and one text file."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        y, x = np.mgrid[0:96, 0:128]
        arr = np.stack([(x * 2 + i * 20) % 256, (y * 2) % 256, (x + y + i * 30) % 256], axis=-1).astype("uint8")
        img = Image.fromarray(arr)
        ImageDraw.Draw(img).ellipse((10 + i * 5, 10, 60 + i * 5, 70), fill=(250, 200 - i * 10, 40))
        path = folder / f"img{i}.png"
        img.save(path)
        paths.append(str(path))
    note = folder / "notes.txt"
    note.write_text("alpha bravo charlie\n", encoding="utf-8")
    paths.append(str(note))
    return sorted(paths)


def scan(src: str, folder: Path, db: Path, out: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=src)
    cmd = [sys.executable, "-m", "tripwire", "scan", str(folder), "--db", str(db), "--out", str(out), "--workers", "1", "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def state_of(db: Path) -> str:
    if not db.exists():
        return "no database yet"
    try:
        con = sqlite3.connect(db)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = con.execute("SELECT version_num FROM alembic_version").fetchall() if "alembic_version" in tables else []
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"unreadable ({exc})"
    if not tables:
        return "empty database"
    if not version:
        return "tables without a revision"
    return f"at revision {version[0][0]}"


def items_of(db: Path) -> Counter[str]:
    con = sqlite3.connect(db)
    try:
        return Counter(r[0] for r in con.execute("SELECT path FROM items"))
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--src", default=str(HERE / "src"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tw-migkill-") as tmp:
        root = Path(tmp)
        expected = make_folder(root / "folder")
        started = time.monotonic()
        probe = scan(args.src, root / "folder", root / "probe.db", root / "probe-out")
        probe.communicate(timeout=300)
        window = time.monotonic() - started
        if probe.returncode != 0:
            print(f"an unkilled scan failed (exit {probe.returncode})", file=sys.stderr)
            return 2
        print(f"unkilled first run: {window:.2f} s; kills land uniformly in [0, {window:.2f}] s")
        states: Counter[str] = Counter()
        failures: list[str] = []
        for i in range(args.tries):
            db, out = root / f"try{i}.db", root / f"out{i}"
            first = scan(args.src, root / "folder", db, out)
            time.sleep(rng.uniform(0, window))
            first.kill()
            first.communicate()
            state = state_of(db) if first.returncode == -9 else "finished before the kill"
            states[state] += 1
            second = scan(args.src, root / "folder", db, out)
            _, err = second.communicate(timeout=300)
            if second.returncode != 0:
                failures.append(f"try {i} ({state}): exit {second.returncode}: {err.decode(errors='replace').strip()[-200:]}")
                continue
            found = items_of(db)
            if sorted(found) != expected or set(found.values()) != {1}:
                failures.append(f"try {i} ({state}): items {dict(found)}")
        print(f"tries: {args.tries}, failures: {len(failures)}")
        for state, n in sorted(states.items()):
            print(f"  killed with {state}: {n}")
        for line in failures:
            print("  FAIL", line)
        return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
